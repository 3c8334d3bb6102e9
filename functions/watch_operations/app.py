"""Every 15 minutes, for the whole stack: GL batches left waiting and scheduled jobs that did not
succeed on time, as metrics for the alarms (tasks.connections.watch)."""

from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from connectwise.transport import Deadline
from tasks.connections.watch import WatchRequest, watch
from tasks.platform.observability import entry_point
from tasks.platform.requests import parse_request
from tasks.runtime import watcher


@entry_point("watch_operations")
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    request = parse_request(event, WatchRequest)
    return watch(request, watcher(), Deadline.of(context))
