"""The registry's DynamoDB stream (a connection added, changed or removed) and a daily sweep:
keep EventBridge Scheduler as the registry says (tasks.connections.schedules)."""

from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from connectwise.transport import Deadline
from tasks.connections.schedules import ReconcileRequest, reconcile
from tasks.platform.observability import entry_point
from tasks.platform.requests import parse_request
from tasks.runtime import reconciler


@entry_point("reconcile_schedules")
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    request = parse_request(event, ReconcileRequest)
    return reconcile(request, reconciler(), Deadline.of(context))
