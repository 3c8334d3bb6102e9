"""What the report and record tasks are asked, as JSON: conditions are typed values, never text."""

import re
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator

from connectwise.conditions import Expression, all_of, any_of, where
from connectwise.soap.client import DEFAULT_PAGE_SIZE
from tasks.platform.requests import ConnectionName

ORDER_BY = re.compile(r"[A-Za-z_][A-Za-z0-9_]*( (ASC|DESC|asc|desc))?")


class DownloadRecordsRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    connection: str = ConnectionName
    full: bool = False  # a complete resync: ignore the watermark
    page_size: int = Field(DEFAULT_PAGE_SIZE, ge=1, le=1000)


class ConditionSpec(BaseModel):
    """One condition, or an all/any group, as JSON; values are typed, never pasted into text."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    field: str | None = None
    op: str | None = None
    value: str | bool | int | dict[str, str] | None = (
        None  # {"decimal": "1.50"}, {"datetime": ...}, {"date": ...}
    )
    all: list["ConditionSpec"] | None = None
    any: list["ConditionSpec"] | None = None

    def expression(self) -> Expression:
        if self.all is not None:
            return all_of(*(part.expression() for part in self.all))
        if self.any is not None:
            return any_of(*(part.expression() for part in self.any))
        if self.field is None or self.op is None or self.value is None:
            raise ValueError("a condition needs field, op and value (or all / any)")
        return where(self.field, self.op, _typed_value(self.value))


class RunReportRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    connection: str = ConnectionName
    report: str = Field(min_length=1)
    conditions: ConditionSpec | None = None
    order_by: str = ""
    fields: list[str] = Field(default_factory=list)  # the report's columns to keep; all if empty
    limit: int | None = Field(None, ge=1)  # rows at most
    page_size: int = Field(DEFAULT_PAGE_SIZE, ge=1, le=1000)

    @field_validator("order_by")
    @classmethod
    def _plain_order(cls, order_by: str) -> str:
        if order_by and not ORDER_BY.fullmatch(order_by):
            raise ValueError("order_by is a field name, optionally followed by ASC or DESC")
        return order_by


class ListReportsRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    connection: str = ConnectionName
    include_fields: bool = True


def _typed_value(value: str | bool | int | dict[str, str]) -> Any:
    if not isinstance(value, dict):
        return value
    if len(value) != 1:
        raise ValueError('a typed value is one of {"decimal": ...}, {"datetime": ...}, {"date": ...}')
    ((kind, text),) = value.items()
    if kind == "decimal":
        return Decimal(text)
    if kind == "datetime":
        return datetime.fromisoformat(text.replace("Z", "+00:00"))
    if kind == "date":
        return date.fromisoformat(text)
    raise ValueError(f"unknown value type {kind!r}")
