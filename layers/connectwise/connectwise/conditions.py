"""ConnectWise's `conditions` query language, built safely, in its two dialects.

Both dialects (reference A.4 for SOAP Find* and RunReportQuery; rest_api.md section 2 for REST):
`field operator value`, joined by `AND` / `OR` with parentheses; strings in double quotes,
numbers bare, date-times in square brackets as ISO 8601 UTC. They differ in details:

| | SOAP | REST |
|---|---|---|
| nested field | `Company.Name` | `company/name` (a `.` is written as `/`) |
| booleans | `true` / `false` | `True` / `False` |
| operators | `= != < <= > >= like` | the same and `contains` |
| `like` wildcard (`*` in a request) | `%` | `*` |
| `[` in a string | refused | written `[[]` |

How a `"` inside a string is escaped is documented in neither, so such a value is refused rather
than guessed at: a value can never end its quotes early and smuggle in another condition. So is a
`*` in a REST string compared with `=` (it may be taken as a wildcard and cannot be escaped), and
a `]` in a SOAP string, and a `%` in a SOAP `like` (it would be a wildcard there). A `like`
value's wildcard is written `*` whatever the dialect, so one request means the same on both.
Numbers are bounded (at most 30 digits before or after the point) and so is the whole text
(2,000 characters, ConnectWise's advice for a URL). Field names are plain identifiers. Every refusal is a ValueError naming
the field and the problem; the value's type is checked when a condition is built, its text when
it is rendered for a dialect.

    >>> render(all_of(where("LastUpdated", ">", datetime(2026, 1, 2, tzinfo=UTC)),
    ...               any_of(where("Status", "=", "Open"), where("Closed", "=", False))))
    'LastUpdated > [2026-01-02T00:00:00Z] AND (Status = "Open" OR Closed = false)'
    >>> render(where("company.identifier", "=", "[A]"), REST)
    'company/identifier = "[[]A]"'
"""

import re
from dataclasses import dataclass
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Literal

Dialect = Literal["soap", "rest"]
SOAP: Dialect = "soap"
REST: Dialect = "rest"

OPERATORS = frozenset({"=", "!=", "<", "<=", ">", ">=", "like", "contains"})
FIELD = re.compile(r"[A-Za-z_][A-Za-z0-9_]*([./][A-Za-z_][A-Za-z0-9_]*)*")
UNSAFE = re.compile(r'["\\\x00-\x1f\x7f]')  # quotes, escapes, control characters: in no dialect
UNSAFE_IN = {SOAP: re.compile(r"[\[\]]"), REST: re.compile(r"\*")}  # REST: a wildcard, unless `like`

Value = str | bool | int | Decimal | date | datetime


@dataclass(frozen=True)
class Condition:
    field: str
    operator: str
    value: Value

    def __post_init__(self) -> None:
        if not isinstance(self.field, str) or not FIELD.fullmatch(self.field):
            raise ValueError(f"condition field {self.field!r} is not a plain field name")
        if self.operator not in OPERATORS:
            raise ValueError(
                f"condition on {self.field}: operator {self.operator!r} is not one of {sorted(OPERATORS)}"
            )
        if self.operator in ("like", "contains") and not isinstance(self.value, str):
            raise ValueError(f"condition on {self.field}: `{self.operator}` needs a string")
        _typed(self.field, self.value)  # refuse values of no type ConnectWise takes when built

    def render(self, dialect: Dialect) -> str:
        if dialect == SOAP and (self.operator == "contains" or "/" in self.field):
            raise ValueError(f"condition on {self.field}: `contains` and `/` are REST only")
        field = self.field.replace(".", "/") if dialect == REST else self.field
        return f"{field} {self.operator} {_literal(self, dialect)}"

    def __str__(self) -> str:
        return self.render(SOAP)


@dataclass(frozen=True)
class Group:
    joiner: str  # AND | OR
    parts: tuple["Expression", ...]

    def __post_init__(self) -> None:
        if not self.parts:
            raise ValueError(f"an {self.joiner} group needs at least one condition")
        for part in self.parts:
            if not isinstance(part, Condition | Group):
                raise ValueError(f"{part!r} is not a condition")

    def render(self, dialect: Dialect) -> str:
        return f" {self.joiner} ".join(
            f"({part.render(dialect)})"
            if isinstance(part, Group) and len(part.parts) > 1
            else part.render(dialect)
            for part in self.parts
        )

    def __str__(self) -> str:
        return self.render(SOAP)


Expression = Condition | Group


def where(field: str, operator: str, value: Value) -> Condition:
    return Condition(field, operator, value)


def all_of(*parts: Expression) -> Group:
    return Group("AND", parts)


def any_of(*parts: Expression) -> Group:
    return Group("OR", parts)


def both(*parts: Expression | None) -> Expression | None:
    """The parts given (None left out) joined by AND; None when there are none."""
    given = [part for part in parts if part is not None]
    return None if not given else given[0] if len(given) == 1 else all_of(*given)


MAX_TEXT = 2000


def render(expression: Expression | None, dialect: Dialect = SOAP) -> str:
    """The conditions string ConnectWise takes in `dialect`; empty for no conditions."""
    text = "" if expression is None else expression.render(dialect)
    if len(text) > MAX_TEXT:
        raise ValueError(
            f"the conditions are {len(text)} characters long, more than ConnectWise takes ({MAX_TEXT})"
        )
    return text


def _typed(field: str, value: Value) -> None:
    if isinstance(value, str):
        if bad := UNSAFE.search(value):
            raise ValueError(
                f"condition on {field}: the value contains {bad.group()!r}, which cannot be quoted safely"
            )
        return
    if isinstance(value, bool | int | date):  # datetime is a date
        if isinstance(value, datetime) and value.tzinfo is None:
            raise ValueError(f"condition on {field}: the date-time {value.isoformat()} has no time zone")
        return
    if isinstance(value, Decimal):
        if not value.is_finite():
            raise ValueError(f"condition on {field}: {value} is not a finite number")
        if value and not -30 <= value.adjusted() <= 30:
            raise ValueError(f"condition on {field}: {value} is out of range")
        return
    raise ValueError(f"condition on {field}: {type(value).__name__} values are not supported (use Decimal)")


def _literal(condition: Condition, dialect: Dialect) -> str:
    field, value = condition.field, condition.value
    if isinstance(value, bool):  # before int: bool is an int
        return ("True" if value else "False") if dialect == REST else ("true" if value else "false")
    if isinstance(value, int):
        return str(value)
    if isinstance(value, Decimal):
        return format(value, "f")
    if isinstance(value, datetime):
        return f"[{_iso(value)}]"
    if isinstance(value, date):
        return f"[{value.isoformat()}T00:00:00Z]"
    like = condition.operator == "like"
    bad = None if dialect == REST and like else UNSAFE_IN[dialect].search(value)
    if dialect == SOAP and like and not bad:
        bad = re.search("%", value)
    if bad:
        raise ValueError(
            f"condition on {field}: the value contains {bad.group()!r}, which cannot be quoted safely"
        )
    if dialect == REST:
        return '"' + value.replace("[", "[[]") + '"'
    return '"' + (value.replace("*", "%") if like else value) + '"'


def _iso(value: datetime) -> str:
    utc = value.astimezone(UTC)
    return utc.strftime("%Y-%m-%dT%H:%M:%S") + (f".{utc.microsecond:06d}" if utc.microsecond else "") + "Z"
