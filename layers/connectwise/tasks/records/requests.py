"""What the report and record tasks are asked, as JSON: conditions are typed values, never text."""

import re
from datetime import date, datetime
from decimal import Decimal
from typing import Any, Self

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StrictBool,
    StrictInt,
    StrictStr,
    field_validator,
    model_validator,
)

from connectwise.conditions import Dialect, Expression, all_of, any_of, render, where
from tasks.platform.errors import InvalidRequestError
from tasks.platform.requests import ConnectionName

NAME = r"[A-Za-z_][A-Za-z0-9_]*([./][A-Za-z_][A-Za-z0-9_]*)*"
ORDER_BY = re.compile(NAME + r"( (ASC|DESC|asc|desc))?")
DEFAULT_PAGE_SIZE = 500


def _plain_order(order_by: str) -> str:
    if order_by and not ORDER_BY.fullmatch(order_by):
        raise ValueError("order_by is a field name, optionally followed by ASC or DESC")
    return order_by


def _plain_fields(fields: list[str]) -> list[str]:
    for name in fields:
        if not re.fullmatch(NAME, name):
            raise ValueError(f"{name!r} is not a field name")
    return fields


class ConditionSpec(BaseModel):
    """One condition, or an all/any group, as JSON; values are typed, never pasted into text."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    field: str | None = None
    op: str | None = None
    # Strict: a JSON 1.0 is not the boolean true, nor 2.0 the integer 2; decimals are {"decimal": "1.50"}.
    value: StrictBool | StrictInt | StrictStr | dict[str, StrictStr] | None = (
        None  # {"decimal": "1.50"}, {"datetime": ...}, {"date": ...}
    )
    all: list["ConditionSpec"] | None = None
    any: list["ConditionSpec"] | None = None

    @model_validator(mode="after")
    def _one_kind(self) -> Self:
        given = [
            name
            for name, present in (
                ("field/op/value", (self.field, self.op, self.value) != (None, None, None)),
                ("all", self.all is not None),
                ("any", self.any is not None),
            )
            if present
        ]
        if len(given) != 1:
            raise ValueError(
                f"a condition is one of field/op/value, all or any; got {' and '.join(given) or 'none'}"
            )
        return self

    def expression(self) -> Expression:
        if self.all is not None:
            return all_of(*(part.expression() for part in self.all))
        if self.any is not None:
            return any_of(*(part.expression() for part in self.any))
        if self.field is None or self.op is None or self.value is None:
            raise ValueError("a condition needs field, op and value (or all / any)")
        return where(self.field, self.op, _typed_value(self.value))


class DownloadRecordsRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    connection: str = ConnectionName
    full: bool = False  # a complete resync: ignore the watermark
    conditions: ConditionSpec | None = None  # in the backend's field names; a feed of its own
    order_by: str = ""  # the files' row order (a download reads in last-updated order)
    fields: list[str] = Field(default_factory=list)  # the fields to write (and the id and last-updated)
    page_size: int = Field(DEFAULT_PAGE_SIZE, ge=1, le=1000)

    _order = field_validator("order_by")(_plain_order)
    _fields = field_validator("fields")(_plain_fields)


class RunReportRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    connection: str = ConnectionName
    report: str = Field(min_length=1)
    conditions: ConditionSpec | None = None
    order_by: str = ""
    fields: list[str] = Field(default_factory=list)  # the report's columns, in this order; all if empty
    skip: int = Field(0, ge=0)  # rows passed over before the first one written
    limit: int | None = Field(None, ge=1)  # rows at most
    count: bool = False  # only count the matching rows (RunReportCount, /count); no files
    page_size: int = Field(DEFAULT_PAGE_SIZE, ge=1, le=1000)

    _order = field_validator("order_by")(_plain_order)
    _fields = field_validator("fields")(_plain_fields)

    @field_validator("report")
    @classmethod
    def _not_a_path_step(cls, report: str) -> str:
        if report.strip() in (".", ".."):
            raise ValueError(f"{report!r} is not a report name")
        return report


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
    try:
        if kind == "decimal":
            return Decimal(text)
        if kind == "datetime":
            return datetime.fromisoformat(text.replace("Z", "+00:00"))
        if kind == "date":
            return date.fromisoformat(text)
    except (ArithmeticError, ValueError):  # decimal.InvalidOperation is an ArithmeticError
        raise ValueError(f"{text!r} is not a {kind}") from None
    raise ValueError(f"unknown value type {kind!r}")


def conditions_of(request: DownloadRecordsRequest | RunReportRequest, dialect: Dialect) -> Expression | None:
    """The request's conditions as an expression the backend's dialect can say; a bad one is the
    request's fault, found before anything is asked of ConnectWise."""
    try:
        expression = request.conditions.expression() if request.conditions else None
        render(expression, dialect)
        return expression
    except (ValueError, ArithmeticError) as exc:  # ArithmeticError: a decimal that is not a number
        raise InvalidRequestError(f"invalid {type(request).__name__}: conditions: {exc}") from None


def ordered(rows: list[dict[str, Any]], order_by: str) -> list[dict[str, Any]]:
    """`rows` sorted by one of their fields (`name [ASC|DESC]`), empty values last either way."""
    name, _, direction = order_by.partition(" ")
    if rows and name not in rows[0]:
        raise KeyError(name)
    filled = [row for row in rows if row.get(name) is not None]
    empty = [row for row in rows if row.get(name) is None]
    return sorted(filled, key=lambda row: row[name], reverse=direction.upper() == "DESC") + empty
