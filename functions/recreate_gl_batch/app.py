"""On demand (EventBridge event or direct invoke): recreate a previously updated GL batch into S3."""

from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from connectwise.transport import Deadline
from tasks.gl.recreate import recreate_gl_batch
from tasks.gl.requests import RecreateRequest
from tasks.platform.observability import entry_point
from tasks.platform.requests import parse_request
from tasks.runtime import services


@entry_point("recreate_gl_batch")
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    request = parse_request(event, RecreateRequest)
    return recreate_gl_batch(request, services(), Deadline.of(context))
