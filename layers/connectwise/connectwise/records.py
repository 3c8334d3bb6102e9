"""What the report and record tasks ask of a site, whichever API answers: `RecordsBackend`.

SOAP (`connectwise.soap.records`) and REST (`connectwise.rest.records`) both offer it, so the
tasks never ask which one they have. Conditions travel as typed expressions and each backend
renders them in its own dialect (`connectwise.conditions`).
"""

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any, Protocol

from connectwise.conditions import Dialect, Expression
from connectwise.transport import Deadline

RECORD_TYPES = ("agreements", "companies", "invoices", "opportunities", "purchase_orders")


@dataclass(frozen=True)
class Record:
    """A record as written to the files (`row`), and what incremental downloads page it by."""

    id: int
    last_updated: datetime | None
    row: dict[str, Any]


@dataclass(frozen=True)
class RecordQuery:
    """Which records (conditions in the backend's field names) and which of their fields (all if empty)."""

    conditions: Expression | None = None
    fields: tuple[str, ...] = ()


@dataclass(frozen=True)
class ReportQuery:
    conditions: Expression | None = None
    order_by: str = ""
    fields: tuple[str, ...] = ()  # the report's columns, in this order; all if empty
    skip: int = 0
    limit: int | None = None
    page_size: int = 500


@dataclass(frozen=True)
class ReportInfo:
    name: str
    fields: list[dict[str, str]] = field(default_factory=list)  # [{"name", "type"}], empty if not asked


class RecordsBackend(Protocol):
    dialect: Dialect  # of the conditions it sends

    def within(self, deadline: Deadline) -> "RecordsBackend":
        """The same client with every call fitting `deadline`."""
        ...

    def reports(self, include_fields: bool) -> list[ReportInfo]: ...

    def record_fields(self, entity: str, asked: Sequence[str]) -> tuple[str, ...]:
        """The fields asked for, in the API's own spelling (matched without regard to case); a
        ValueError names any the record type does not have."""
        ...

    def report_rows(self, report: str, query: ReportQuery) -> Iterator[dict[str, Any]]:
        """The report's rows, each {column: value} typed by the column's type (Numeric as Decimal,
        DateTime as datetime, Boolean as bool, Text as str, None for empty); `query.fields`
        matched to the report's columns without regard to case (ValueError for one it lacks),
        written in the report's spelling."""
        ...

    def report_count(self, report: str, conditions: Expression | None) -> int: ...

    def records_from(
        self, entity: str, since: datetime | None, *, after: bool, query: RecordQuery, limit: int
    ) -> list[Record]:
        """The first `limit` records last updated at or after `since` (strictly after if `after`;
        all if None), in last-updated order."""
        ...

    def records_at(self, entity: str, instant: datetime, query: RecordQuery) -> Iterator[Record]:
        """Every record last updated exactly at `instant`, in a stable order."""
        ...


def typed_cell(value: Any, kind: str) -> Any:
    """A report cell typed by its column's type, as both APIs name them: Numeric as Decimal (never
    float), Boolean as bool, DateTime as datetime, anything else as text; empty as None."""
    if value is None or value == "":
        return None
    if kind == "Numeric":
        number = Decimal(str(value))
        # One decimal place reads as cents, as connectwise.jsonmoney reads REST's numbers: the
        # same cell is written the same whichever API answered.
        return number.quantize(Decimal("0.01")) if number.as_tuple().exponent == -1 else number
    if kind == "Boolean":
        return value if isinstance(value, bool) else str(value).strip().lower() == "true"
    if kind == "DateTime":
        return datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    return str(value)


def spelled(asked: Sequence[str], known: Sequence[str], what: str) -> tuple[str, ...]:
    """`asked` in the spelling of `known`, matched without regard to case; a ValueError names
    the first one `what` does not have."""
    by_lower = {name.lower(): name for name in known}
    missing = [name for name in asked if name.lower() not in by_lower]
    if missing:
        raise ValueError(f"{what} has no field {missing[0]!r}")
    return tuple(dict.fromkeys(by_lower[name.lower()] for name in asked))
