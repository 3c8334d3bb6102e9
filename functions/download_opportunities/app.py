"""Scheduled: download the opportunities changed since the last run (all of them with `"full": true`) to S3."""

from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from connectwise.transport import Deadline
from tasks.platform.observability import entry_point
from tasks.platform.requests import parse_request
from tasks.records.downloads import download_records
from tasks.records.requests import DownloadRecordsRequest
from tasks.runtime import scheduled_job, services


@entry_point("download_opportunities")
@scheduled_job
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    request = parse_request(event, DownloadRecordsRequest)
    return download_records(
        "opportunities", request, services(), Deadline.of(context), context.aws_request_id
    )
