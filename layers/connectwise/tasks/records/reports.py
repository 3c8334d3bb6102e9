"""Reports, through the SOAP Reporting API or REST `/system/reports` (`services.records_for`):
the catalog of a site's reports, a report's rows, or their count. Both write the same files and
events, so a consumer cannot tell which API answered."""

from typing import Any

from connectwise.records import ReportQuery
from connectwise.transport import Deadline
from tasks.platform.errors import InvalidRequestError
from tasks.platform.keys import catalog_key, report_prefix
from tasks.platform.services import Services
from tasks.records.requests import ListReportsRequest, RunReportRequest, conditions_of
from tasks.records.rows import write_rows


def run_report(
    request: RunReportRequest, services: Services, deadline: Deadline, request_id: str
) -> dict[str, Any]:
    """The report's rows (its conditions, order, fields, skip and limit) to S3, then `ReportReady`;
    with `count`, only the number of matching rows (in the event, no files)."""
    client = services.records_for(request.connection).within(deadline)
    conditions = conditions_of(request, client.dialect)
    detail: dict[str, Any] = {"connection": request.connection, "report": request.report}
    if request.conditions:
        detail["conditions"] = request.conditions.model_dump(mode="json", exclude_none=True)
    if request.count:
        detail["count"] = client.report_count(request.report, conditions)
        services.notices.publish("ReportReady", detail)
        return detail
    query = ReportQuery(
        conditions, request.order_by, tuple(request.fields), request.skip, request.limit, request.page_size
    )
    try:
        rows = list(client.report_rows(request.report, query))
    except ValueError as exc:  # a field the report does not have
        raise InvalidRequestError(f"invalid RunReportRequest: fields: {exc}") from None
    prefix = report_prefix(request.connection, request.report, services.clock(), request_id)
    detail |= {"rows": len(rows), "files": write_rows(services.store, prefix, rows) if rows else {}}
    services.notices.publish("ReportReady", detail)
    services.count("ReportRowsDownloaded", len(rows), request.connection)
    return detail


def list_reports(request: ListReportsRequest, services: Services, deadline: Deadline) -> dict[str, Any]:
    """The site's reports and their fields, to S3 as a catalog."""
    client = services.records_for(request.connection).within(deadline)
    reports = [{"name": r.name, "fields": r.fields} for r in client.reports(request.include_fields)]
    key = services.store.put_json(catalog_key(request.connection), reports)
    return {"connection": request.connection, "reports": [r["name"] for r in reports], "catalog": key}
