"""Reports (SOAP Reporting API 1.5): the catalog of a site's reports, and a report's rows."""

from typing import Any

from connectwise.conditions import render
from connectwise.soap.client import SoapClient
from connectwise.transport import Deadline
from tasks.platform.errors import InvalidRequestError
from tasks.platform.keys import catalog_key, report_prefix
from tasks.platform.services import Services
from tasks.records.requests import ListReportsRequest, RunReportRequest
from tasks.records.rows import write_rows


def run_report(
    request: RunReportRequest, services: Services, deadline: Deadline, request_id: str
) -> dict[str, Any]:
    """The report's rows (its conditions, order, fields and limit) to S3, then `ReportReady`."""
    try:
        conditions = render(request.conditions.expression()) if request.conditions else ""
    except (ValueError, ArithmeticError) as exc:  # ArithmeticError: a decimal that is not a number
        raise InvalidRequestError(f"invalid RunReportRequest: conditions: {exc}") from None
    client: SoapClient = services.soap_for(request.connection).within(deadline)
    rows = []
    for row in client.run_report(request.report, conditions, request.order_by, request.page_size):
        rows.append({name: row.get(name) for name in request.fields} if request.fields else row)
        if request.limit and len(rows) >= request.limit:
            break
    prefix = report_prefix(request.connection, request.report, services.clock(), request_id)
    keys = write_rows(services.store, prefix, rows) if rows else {}
    detail = {
        "connection": request.connection,
        "report": request.report,
        "conditions": conditions,
        "rows": len(rows),
        "files": keys,
    }
    services.notices.publish("ReportReady", detail)
    return detail


def list_reports(request: ListReportsRequest, services: Services, deadline: Deadline) -> dict[str, Any]:
    """The site's reports and their fields, to S3 as a catalog."""
    client: SoapClient = services.soap_for(request.connection).within(deadline)
    reports = [
        {
            "name": r["Name"],
            "id": r["Id"],
            "custom": r["IsCustom"],
            "fields": [{"name": f["Name"], "type": f["Type"]} for f in r.get("Field") or []],
        }
        for r in client.get_reports(include_fields=request.include_fields)
    ]
    key = services.store.put_json(catalog_key(request.connection), reports)
    return {"connection": request.connection, "reports": [r["name"] for r in reports], "catalog": key}
