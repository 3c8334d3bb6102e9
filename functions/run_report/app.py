"""On demand or scheduled: run a report (conditions, order, fields, limit); rows to S3 as CSV and
JSON Lines, then a ReportReady event."""

from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from connector.runtime import logger, parse_request, services
from connector.soap_tasks import RunReportRequest, run_report
from connectwise.transport import Deadline


@logger.inject_lambda_context(clear_state=True)
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    request = parse_request(event, RunReportRequest)
    logger.append_keys(connection=request.connection, report=request.report)
    svc = services()
    client = svc.soap_for(request.connection).within(Deadline.of(context))
    return run_report(request, svc, client, context.aws_request_id)
