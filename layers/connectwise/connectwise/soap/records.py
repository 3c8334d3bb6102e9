"""`RecordsBackend` over the SOAP APIs: the Reporting API 1.5 and the 2.0 Find operations.

RunReportQuery takes no field list, so a report's fields are chosen from each row here; the
Find operations take `returnFields`, so a download's fields are chosen by ConnectWise.
"""

from collections.abc import Iterator
from datetime import datetime
from typing import Any, Self

from connectwise.conditions import SOAP, Expression, both, render, where
from connectwise.records import Record, RecordQuery, ReportInfo, ReportQuery
from connectwise.soap.client import ENTITIES, SoapClient
from connectwise.transport import Deadline


class SoapRecords:
    dialect = SOAP

    def __init__(self, client: SoapClient) -> None:
        self.client = client

    def within(self, deadline: Deadline) -> Self:
        return type(self)(self.client.within(deadline))

    def reports(self, include_fields: bool) -> list[ReportInfo]:
        return [
            ReportInfo(r["Name"], [{"name": f["Name"], "type": f["Type"]} for f in r.get("Field") or []])
            for r in self.client.get_reports(include_fields=include_fields)
        ]

    def report_rows(self, report: str, query: ReportQuery) -> Iterator[dict[str, Any]]:
        rows = self.client.run_report(
            report, render(query.conditions, SOAP), query.order_by, query.page_size, skip=query.skip
        )
        for number, row in enumerate(rows):
            if query.limit is not None and number >= query.limit:
                return
            yield {name: row.get(name) for name in query.fields} if query.fields else row

    def report_count(self, report: str, conditions: Expression | None) -> int:
        return self.client.run_report_count(report, render(conditions, SOAP))

    def records_from(
        self, entity: str, since: datetime | None, *, after: bool, query: RecordQuery, limit: int
    ) -> list[Record]:
        field = ENTITIES[entity].last_updated
        window = where(field, ">" if after else ">=", since) if since else None
        conditions = render(both(window, query.conditions), SOAP)
        page = self.client.find_page(
            entity, conditions, order_by=field, limit=limit, return_fields=_fields(entity, query)
        )
        return [_record(entity, r, query) for r in page]

    def records_at(self, entity: str, instant: datetime, query: RecordQuery) -> Iterator[Record]:
        field = ENTITIES[entity].last_updated
        conditions = render(both(where(field, "=", instant), query.conditions), SOAP)
        for record in self.client.find(
            entity, conditions, order_by="Id", return_fields=_fields(entity, query)
        ):
            yield _record(entity, record, query)


def _fields(entity: str, query: RecordQuery) -> list[str] | None:
    """The fields asked for, and always the id and last-updated the download pages by."""
    if not query.fields:
        return None
    return list(dict.fromkeys(["Id", ENTITIES[entity].last_updated, *query.fields]))


def _record(entity: str, record: dict[str, Any], query: RecordQuery) -> Record:
    wanted = _fields(entity, query)
    row = {name: record.get(name) for name in wanted} if wanted else record
    return Record(record["Id"], record.get(ENTITIES[entity].last_updated), row)
