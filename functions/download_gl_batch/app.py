"""Scheduled (one EventBridge rule per connection and kinds): download a GL batch of unposted records."""

from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from connector.gl_batches import DownloadRequest, download_gl_batch
from connector.runtime import logger, parse_request, services
from connectwise.transport import Deadline


@logger.inject_lambda_context(clear_state=True)
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    request = parse_request(event, DownloadRequest)
    logger.append_keys(connection=request.connection)
    return download_gl_batch(request, services(), Deadline.of(context))
