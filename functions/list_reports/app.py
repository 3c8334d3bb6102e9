"""On demand or scheduled: the site's reports and their fields, to S3 as a catalog."""

from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from connector.runtime import logger, parse_request, services
from connector.soap_tasks import ListReportsRequest, list_reports
from connectwise.transport import Deadline


@logger.inject_lambda_context(clear_state=True)
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    request = parse_request(event, ListReportsRequest)
    logger.append_keys(connection=request.connection)
    svc = services()
    return list_reports(request, svc, svc.soap_for(request.connection).within(Deadline.of(context)))
