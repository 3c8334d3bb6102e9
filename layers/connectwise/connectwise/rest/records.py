"""`RecordsBackend` over the REST API: reports (`/system/reports...`) and the five record lists.

Record lists are read in last-updated order with navigable paging (`orderBy=_info/lastUpdated
asc`, conditions `lastUpdated >= [...]`), one page from the cursor at a time; the records of one
instant are read with forward-only paging (`lastUpdated = [...]`, ordered by id), the order
ConnectWise documents as stable. Each record is written with the columns of
`record_columns.json` (docs/rest-records-mapping.md): references flattened as `company.name`.
"""

import json
from collections.abc import Iterator, Sequence
from datetime import datetime
from functools import cache
from pathlib import Path
from typing import Any, Self
from urllib.parse import quote

from connectwise.conditions import REST, Expression, both, render, where
from connectwise.errors import DocumentError
from connectwise.records import Record, RecordQuery, ReportInfo, ReportQuery, spelled, typed_cell
from connectwise.rest.api import MAX_PAGE_SIZE, RestApi
from connectwise.transport import Deadline

PATHS = {
    "agreements": "/finance/agreements",
    "companies": "/company/companies",
    "invoices": "/finance/invoices",
    "opportunities": "/sales/opportunities",
    "purchase_orders": "/procurement/purchaseorders",
}
LAST_UPDATED = "lastUpdated"  # the conditions' name for a record's `_info.lastUpdated`
ORDER_BY_LAST_UPDATED = "_info/lastUpdated asc"
ALWAYS = ("id", "_info.lastUpdated")  # what a download pages by, written whatever `fields` asks


@cache
def columns(entity: str) -> tuple[str, ...]:
    table = json.loads((Path(__file__).with_name("record_columns.json")).read_text())
    return tuple(table[entity])


class RestRecords:
    dialect = REST

    def __init__(self, api: RestApi) -> None:
        self.api = api

    def within(self, deadline: Deadline) -> Self:
        return type(self)(self.api.within(deadline))

    # Reports

    def reports(self, include_fields: bool) -> list[ReportInfo]:
        names = [str(r["name"]) for r in self._navigable("/system/reports")]
        if not include_fields:
            return [ReportInfo(name) for name in names]
        return [ReportInfo(name, [{"name": n, "type": t} for n, t in self._columns(name)]) for name in names]

    def report_rows(self, report: str, query: ReportQuery) -> Iterator[dict[str, Any]]:
        known = [name for name, _ in self._columns(report)] if query.fields else []
        fields = spelled(query.fields, known, f"report {report}")
        size = min(query.page_size, query.limit or query.page_size, MAX_PAGE_SIZE)
        number, drop = divmod(query.skip, size)
        written = 0
        params = {
            "conditions": render(query.conditions, REST) or None,
            "orderBy": query.order_by or None,
            "columns": ",".join(fields) or None,
            "pageSize": size,
        }
        while True:
            number += 1
            data = self.api.get(_report_path(report), page=number, **params)
            names, kinds, rows = _report_page(report, data)
            for values in rows[drop:]:
                if query.limit is not None and written >= query.limit:
                    return
                row = {n: typed_cell(v, k) for n, k, v in zip(names, kinds, values, strict=True)}
                yield {name: row.get(name) for name in fields} if fields else row
                written += 1
            drop = 0
            if len(rows) < size:
                return

    def report_count(self, report: str, conditions: Expression | None) -> int:
        return _count(
            self.api.get(_report_path(report) + "/count", conditions=render(conditions, REST) or None)
        )

    def _columns(self, report: str) -> list[tuple[str, str]]:
        found = self.api.get(_report_path(report) + "/columns")
        return _definitions(report, found)

    def _navigable(self, path: str, **params: Any) -> Iterator[dict[str, Any]]:
        number = 0
        while True:
            number += 1
            page = self.api.get(path, page=number, pageSize=MAX_PAGE_SIZE, **params)
            if not isinstance(page, list):
                raise DocumentError(f"GET {path}: expected a list, got {type(page).__name__}")
            yield from page
            if len(page) < MAX_PAGE_SIZE:
                return

    # Records

    def record_fields(self, entity: str, asked: Sequence[str]) -> tuple[str, ...]:
        """Column names as in docs/rest-records-mapping.md (`company.name`, or ConnectWise's
        `company/name`); a reference (`company`) stands for all of its columns."""
        known = columns(entity)
        lower = {name.lower() for name in known}
        found: list[str] = []
        for name in asked:
            dotted = name.replace("/", ".")
            parts = [c for c in known if c.lower().startswith(dotted.lower() + ".")]
            found += parts if parts and dotted.lower() not in lower else spelled([dotted], known, entity)
        return tuple(dict.fromkeys(found))

    def records_from(
        self, entity: str, since: datetime | None, *, after: bool, query: RecordQuery, limit: int
    ) -> list[Record]:
        window = where(LAST_UPDATED, ">" if after else ">=", since) if since else None
        page = self.api.get(
            PATHS[entity],
            conditions=render(both(window, query.conditions), REST) or None,
            orderBy=ORDER_BY_LAST_UPDATED,
            fields=_fields(query),
            page=1,
            pageSize=limit,
        )
        if not isinstance(page, list):
            raise DocumentError(f"GET {PATHS[entity]}: expected a list, got {type(page).__name__}")
        return [_record(entity, r, query) for r in page]

    def records_at(self, entity: str, instant: datetime, query: RecordQuery) -> Iterator[Record]:
        conditions = render(both(where(LAST_UPDATED, "=", instant), query.conditions), REST)
        for record in self.api.pages(PATHS[entity], conditions=conditions, fields=_fields(query)):
            yield _record(entity, record, query)


def _report_path(report: str) -> str:
    return "/system/reports/" + quote(report, safe="")


def _fields(query: RecordQuery) -> str | None:
    if not query.fields:
        return None
    return ",".join(dict.fromkeys(name.replace(".", "/") for name in (*ALWAYS, *query.fields)))


def _record(entity: str, record: Any, query: RecordQuery) -> Record:
    """The record's row (its columns flattened, in the mapping's order) and what it pages by."""
    if not isinstance(record, dict) or not isinstance(record.get("id"), int):
        raise DocumentError(f"GET {PATHS[entity]}: a record without an id: {str(record)[:80]}")
    flat = _flatten(record)
    names = tuple(dict.fromkeys((*ALWAYS, *query.fields))) if query.fields else columns(entity)
    stamp = flat.get("_info.lastUpdated")
    try:
        last_updated = datetime.fromisoformat(str(stamp).replace("Z", "+00:00")) if stamp else None
    except ValueError:
        raise DocumentError(f"{entity} {record['id']}: lastUpdated {stamp!r} is not a date-time") from None
    return Record(record["id"], last_updated, {name: flat.get(name) for name in names})


def _flatten(record: dict[str, Any]) -> dict[str, Any]:
    flat: dict[str, Any] = {}
    for name, value in record.items():
        if isinstance(value, dict):
            flat |= {f"{name}.{sub}": v for sub, v in value.items() if sub != "_info"}
        else:
            flat[name] = value
    return flat


def _report_page(report: str, data: Any) -> tuple[list[str], list[str], list[list[Any]]]:
    if not isinstance(data, dict) or not isinstance(data.get("row_values"), list):
        raise DocumentError(f"report {report}: the reply has no row_values")
    definitions = _definitions(report, data.get("column_definitions"))
    rows = data["row_values"]
    for values in rows:
        if not isinstance(values, list) or len(values) != len(definitions):
            raise DocumentError(f"report {report}: a row does not match its {len(definitions)} columns")
    return [n for n, _ in definitions], [k for _, k in definitions], rows


def _definitions(report: str, found: Any) -> list[tuple[str, str]]:
    """[(column, type)] from ConnectWise's list of one-entry maps {column: {type, ...}}."""
    if not isinstance(found, list) or not all(isinstance(d, dict) for d in found):
        raise DocumentError(f"report {report}: unreadable column definitions")
    return [(name, str((spec or {}).get("type", "Text"))) for d in found for name, spec in d.items()]


def _count(found: Any) -> int:
    if not isinstance(found, dict) or not isinstance(found.get("count"), int):
        raise DocumentError(f"a count reply without a count: {str(found)[:80]}")
    return int(found["count"])
