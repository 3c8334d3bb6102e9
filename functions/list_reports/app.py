"""On demand or scheduled: the site's reports and their fields, to S3 as a catalog."""

from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from connectwise.transport import Deadline
from tasks.platform.observability import entry_point
from tasks.platform.requests import parse_request
from tasks.records.reports import list_reports
from tasks.records.requests import ListReportsRequest
from tasks.runtime import scheduled_job, services


@entry_point("list_reports")
@scheduled_job
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    request = parse_request(event, ListReportsRequest)
    return list_reports(request, services(), Deadline.of(context))
