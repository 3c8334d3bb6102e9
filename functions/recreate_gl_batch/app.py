"""On demand (EventBridge event or direct invoke): recreate a previously updated GL batch into S3."""

from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from connector.gl_batches import RecreateRequest, recreate_gl_batch
from connector.runtime import logger, parse_request, services
from connectwise.transport import Deadline


@logger.inject_lambda_context(clear_state=True)
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    request = parse_request(event, RecreateRequest)
    logger.append_keys(connection=request.connection, batch_id=request.batch_id)
    return recreate_gl_batch(request, services(), Deadline.of(context))
