"""`RecordsBackend` over the SOAP APIs: the Reporting API 1.5 and the 2.0 Find operations.

RunReportQuery takes no field list, so a report's fields are chosen from each row here (checked
against GetReportFields first); the Find operations take `returnFields`, so a download's fields
are chosen by ConnectWise (checked against the bundled WSDL's Find result first).
"""

from collections.abc import Iterator, Sequence
from datetime import datetime
from functools import cache
from typing import Any, Self

from connectwise.conditions import SOAP, Expression, both, render, where
from connectwise.records import Record, RecordQuery, ReportInfo, ReportQuery, spelled
from connectwise.safexml import parse_xml
from connectwise.soap.client import DEFAULT_PAGE_SIZE, ENTITIES, WSDL_DIR, SoapClient
from connectwise.transport import Deadline

XSD = "{http://www.w3.org/2001/XMLSchema}"


class SoapRecords:
    dialect = SOAP

    def __init__(self, client: SoapClient) -> None:
        self.client = client

    def within(self, deadline: Deadline) -> Self:
        return type(self)(self.client.within(deadline))

    # Reports

    def reports(self, include_fields: bool) -> list[ReportInfo]:
        return [
            ReportInfo(r["Name"], [{"name": f["Name"], "type": f["Type"]} for f in r.get("Field") or []])
            for r in self.client.get_reports(include_fields=include_fields)
        ]

    def report_rows(self, report: str, query: ReportQuery) -> Iterator[dict[str, Any]]:
        known = [f["Name"] for f in self.client.get_report_fields(report)] if query.fields else []
        fields = spelled(query.fields, known, f"report {report}")
        size = min(query.page_size, query.limit or query.page_size)
        rows = self.client.run_report(
            report, render(query.conditions, SOAP), query.order_by, size, skip=query.skip
        )
        for number, row in enumerate(rows):
            if query.limit is not None and number >= query.limit:
                return
            yield {name: row.get(name) for name in fields} if fields else row

    def report_count(self, report: str, conditions: Expression | None) -> int:
        return self.client.run_report_count(report, render(conditions, SOAP))

    # Records

    def record_fields(self, entity: str, asked: Sequence[str]) -> tuple[str, ...]:
        return spelled(asked, find_fields(entity), entity)

    def records_from(
        self, entity: str, since: datetime | None, *, after: bool, query: RecordQuery, limit: int
    ) -> list[Record]:
        field = ENTITIES[entity].last_updated
        window = where(field, ">" if after else ">=", since) if since else None
        conditions = render(both(window, query.conditions), SOAP)
        page = self.client.find_page(
            entity, conditions, order_by=field, limit=limit, return_fields=_fields(entity, query)
        )
        return [self._record(entity, r, query) for r in page]

    def records_at(self, entity: str, instant: datetime, query: RecordQuery) -> Iterator[Record]:
        """Paged by id (`Id > last`), never by skip: a record of the instant that changes while it
        is read leaves the set without moving another one past a page boundary."""
        field, last = ENTITIES[entity].last_updated, 0
        while True:
            conditions = render(
                both(where(field, "=", instant), where("Id", ">", last), query.conditions), SOAP
            )
            page = self.client.find_page(
                entity,
                conditions,
                order_by="Id",
                limit=DEFAULT_PAGE_SIZE,
                return_fields=_fields(entity, query),
            )
            for record in page:
                yield self._record(entity, record, query)
            if len(page) < DEFAULT_PAGE_SIZE:
                return
            last = page[-1]["Id"]

    def _record(self, entity: str, record: dict[str, Any], query: RecordQuery) -> Record:
        wanted = _fields(entity, query)
        row = {name: record.get(name) for name in wanted} if wanted else record
        at = record.get(ENTITIES[entity].last_updated)
        if isinstance(at, datetime) and at.tzinfo is None:  # a site that writes its local time
            at = at.replace(tzinfo=self.client.login.zone)
        return Record(record["Id"], at, row)


@cache
def find_fields(entity: str) -> tuple[str, ...]:
    """The fields of the record type's Find result, in the bundled WSDL's order."""
    root = parse_xml((WSDL_DIR / ENTITIES[entity].api.wsdl).read_bytes())
    for complex_type in root.iter(f"{XSD}complexType"):
        name = complex_type.get("name", "")
        if name.endswith("FindResult") and not name.startswith("ArrayOf"):
            return tuple(e.get("name", "") for e in complex_type.iter(f"{XSD}element"))
    raise LookupError(f"no Find result in {ENTITIES[entity].api.wsdl}")


def _fields(entity: str, query: RecordQuery) -> list[str] | None:
    """The fields asked for, and always the id and last-updated the download pages by."""
    if not query.fields:
        return None
    return list(dict.fromkeys(["Id", ENTITIES[entity].last_updated, *query.fields]))
