"""What the GL tasks are asked: a download (by a schedule), a posting confirmation (by the
accounting system, through SQS), a recreate (on demand)."""

from datetime import date, datetime, timedelta
from typing import Annotated, Any, Literal, Self
from zoneinfo import ZoneInfo

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    model_validator,
)

from connectwise.models import KINDS, Kind, RecreateFilters
from tasks.platform.requests import ConnectionName

# Thru dates a finance team schedules with, resolved in the connection's time zone when the task
# runs. Weeks end on Sunday (ISO 8601; ConnectWise and Zynk document no week convention).
ThruRule = Literal["today", "end_of_last_month", "end_of_last_week"]
THRU_RULES: tuple[ThruRule, ...] = ("today", "end_of_last_month", "end_of_last_week")


def _thru_date(value: Any) -> Any:
    """A date (YYYY-MM-DD) or a rule name, refused with one clear message otherwise."""
    if value is None or isinstance(value, date) or value in THRU_RULES:
        return value
    if isinstance(value, str):
        try:
            return date.fromisoformat(value)
        except ValueError:
            pass
    raise ValueError(f"a date (YYYY-MM-DD) or one of {', '.join(THRU_RULES)}")


ThruDate = Annotated[date | ThruRule | None, BeforeValidator(_thru_date)]


def resolve_thru_date(thru: date | ThruRule | None, now: float, zone: ZoneInfo) -> date | None:
    """The date a request's thru date stands for at `now` (epoch seconds), in `zone`; None leaves
    it to ConnectWise (its today)."""
    if thru is None or isinstance(thru, date):
        return thru
    today = datetime.fromtimestamp(now, zone).date()
    if thru == "today":
        return today
    if thru == "end_of_last_month":
        return today.replace(day=1) - timedelta(days=1)
    return today - timedelta(days=today.isoweekday())  # the Sunday before this week's Monday


# One or more kinds, each once, in a fixed order.
Kinds = Annotated[list[Kind], Field(min_length=1), AfterValidator(lambda kinds: sorted(set(kinds)))]


class DownloadRequest(BaseModel):
    """What a schedule asks for: which connection, which kinds of unposted records."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    connection: str = ConnectionName
    kinds: Kinds
    thru_date: ThruDate = None
    owner_level: str | None = None


class PostingConfirmation(BaseModel):
    """The accounting system's word on a batch: posted (all or the listed GL entries) or abandon.
    A batch this connector did not download (adopted) must list its GL entries."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    connection: str = ConnectionName
    batch_id: str = Field(min_length=1, max_length=64)
    gl_entry_ids: list[int] | None = None
    action: Literal["post", "abandon"] = "post"


class RecreateRequest(BaseModel):
    """Download an updated batch again: its records of `kinds` (all by default), through the
    thru date, at the owner level, narrowed by the record filters."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    connection: str = ConnectionName
    batch_id: str = Field(min_length=1, max_length=64)
    kinds: Kinds = Field(default_factory=lambda: sorted(KINDS))
    filters: RecreateFilters = Field(default_factory=RecreateFilters)
    thru_date: ThruDate = None
    owner_level: str | None = None

    @model_validator(mode="after")
    def _filters_of_chosen_kinds(self) -> Self:
        for name, ids in self.filters.model_dump().items():
            kind = FILTER_KINDS[name.split("_", 1)[1]]
            if ids and kind not in self.kinds:
                raise ValueError(f"filters.{name}: {kind} are not among the kinds recreated")
        return self


FILTER_KINDS = {"invoice_ids": "invoices", "expense_ids": "expenses", "inventory_ids": "procurement"}
