"""On demand or scheduled: run a report (conditions, order, fields, limit); rows to S3 as CSV and
JSON Lines, then a ReportReady event."""

from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from connectwise.transport import Deadline
from tasks.platform.observability import entry_point
from tasks.platform.requests import parse_request
from tasks.records.reports import run_report
from tasks.records.requests import RunReportRequest
from tasks.runtime import scheduled_job, services


@entry_point("run_report")
@scheduled_job
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    request = parse_request(event, RunReportRequest)
    return run_report(request, services(), Deadline.of(context), context.aws_request_id)
