"""The REST reports: `/system/reports`, `/system/reports/{reportName}`, `.../columns` and
`.../count`, with the SOAP side's reports (`sandbox.soap.REPORTS`): the same names, columns,
types ("Text", "Numeric", "DateTime", "Boolean") and rows.

A report's data is `{"column_definitions": [{"<column>": {"type", "isNullable",
"identityColumn"}}, ...one map per column, in order], "row_values": [[v1, v2, ...], ...]}`;
Numeric values are exact JSON numbers, DateTime values "...Z" text, Boolean values JSON booleans,
null for none. `conditions` and `orderBy` name report columns; `columns` (a comma list) selects
and orders the columns; `page`/`pageSize` page the rows (navigable only: report rows have no id
to page forward by). An unknown report or column is a 404 or a 400 with the error body.
"""

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any
from urllib.parse import unquote

from sandbox import soap
from sandbox.data import Site
from sandbox.rest_paging import ApiError, Reply, bad_request, count, link_header, navigate, page, select

PATH = "/system/reports"


def route(
    site: Site, route: str, query: Mapping[str, str], headers: Mapping[str, str], url: str
) -> Reply | None:
    """A GET of a report path (lower case, after the API prefix), or None if it is not one."""
    if route == PATH:
        return page([{"name": name} for name in soap.REPORTS], query, headers, url)
    if not route.startswith(PATH + "/"):
        return None
    _, tail = route[len(PATH) + 1 :].partition("/")[::2]
    if tail not in ("", "columns", "count"):
        return None
    spelled = url[url.lower().rindex(PATH + "/") + len(PATH) + 1 :].partition("/")[
        0
    ]  # as the caller wrote it
    report = _report(unquote(spelled))
    if tail == "columns":
        return Reply(200, [{column: _definition(report, column)} for column in report[1]])
    rows = _rows(site, report)
    if tail == "count":
        return count(rows, query)
    if headers.get("pagination-type", "").lower() == "forward-only":
        raise bad_request("pagination-type", "report rows have no id to page forward by; use page")
    if query.get("fields"):
        raise bad_request("fields", "reports choose their columns with `columns`")
    chosen = _columns(query, report)
    rows, links = navigate(select(rows, query), query)
    body = {
        "column_definitions": [{column: _definition(report, column)} for column in chosen],
        "row_values": [[_value(row[column]) for column in chosen] for row in rows],
    }
    return Reply(200, body, link_header(url, links))


Report = tuple[str, dict[str, tuple[str, str]]]  # as soap.REPORTS: entity, {column: (field, type)}


def _report(name: str) -> Report:
    for known, report in soap.REPORTS.items():
        if known.lower() == name.lower():
            return report
    raise ApiError(404, "NotFound", f"Report '{name[:100]}' was not found")


def _rows(site: Site, report: Report) -> list[dict[str, Any]]:
    entity, columns = report
    return [
        {column: record.get(source) for column, (source, _) in columns.items()}
        for record in soap.records(site, entity)
    ]


def _definition(report: Report, column: str) -> dict[str, Any]:
    source, kind = report[1][column]
    return {"type": kind, "isNullable": True, "identityColumn": source == "Id"}


def _columns(query: Mapping[str, str], report: Report) -> list[str]:
    wanted = [c.strip() for c in query.get("columns", "").split(",") if c.strip()]
    if not wanted:
        return list(report[1])
    chosen = []
    for name in wanted:
        column = next((c for c in report[1] if c.lower() == name.lower()), None)
        if column is None:
            raise bad_request("columns", f"the report has no column {name[:40]!r}")
        chosen.append(column)
    return chosen


def _value(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.astimezone(UTC).isoformat().replace("+00:00", "Z")
    return value
