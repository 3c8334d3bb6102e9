"""Scheduled (one schedule per job of a connection, from the registry): download a GL batch of unposted records."""

from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from connectwise.transport import Deadline
from tasks.gl.download import download_gl_batch
from tasks.gl.requests import DownloadRequest
from tasks.platform.observability import entry_point
from tasks.platform.requests import parse_request
from tasks.runtime import scheduled_job, services


@entry_point("download_gl_batch")
@scheduled_job
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    request = parse_request(event, DownloadRequest)
    return download_gl_batch(request, services(), Deadline.of(context))
