"""ConnectWise's `conditions` query language (SOAP Find* and RunReportQuery), built safely.

What the public sources show of the syntax (reference A.4): `Field = value` with `=`, `!=`, `<`,
`<=`, `>`, `>=` and `like` (`%` wildcards); strings in double quotes, booleans and numbers bare,
dates in square brackets as ISO 8601 with an offset; `and` / `or` and parentheses.

How a `"` inside a string is escaped is documented nowhere, so such a value is refused rather
than guessed at: a value can never end its quotes early and smuggle in another condition. Field
names are plain identifiers. Every refusal is a ValueError naming the field and the problem.

    >>> str(all_of(where("LastUpdated", ">", datetime(2026, 1, 2, tzinfo=UTC)),
    ...            any_of(where("Status", "=", "Open"), where("Closed", "=", False))))
    'LastUpdated > [2026-01-02T00:00:00Z] AND (Status = "Open" OR Closed = false)'
"""

import re
from dataclasses import dataclass
from datetime import UTC, date, datetime
from decimal import Decimal

OPERATORS = frozenset({"=", "!=", "<", "<=", ">", ">=", "like"})
FIELD = re.compile(r"[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*")
UNSAFE_IN_STRING = re.compile(r'["\\\x00-\x1f\x7f\[\]]')  # quotes, escapes, control characters, brackets

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
        if self.operator == "like" and not isinstance(self.value, str):
            raise ValueError(f"condition on {self.field}: `like` needs a string")
        _literal(self.field, self.value)  # refuse bad values when built, not when sent

    def __str__(self) -> str:
        return f"{self.field} {self.operator} {_literal(self.field, self.value)}"


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

    def __str__(self) -> str:
        return f" {self.joiner} ".join(
            f"({part})" if isinstance(part, Group) and len(part.parts) > 1 else str(part)
            for part in self.parts
        )


Expression = Condition | Group


def where(field: str, operator: str, value: Value) -> Condition:
    return Condition(field, operator, value)


def all_of(*parts: Expression) -> Group:
    return Group("AND", parts)


def any_of(*parts: Expression) -> Group:
    return Group("OR", parts)


def render(expression: Expression | None) -> str:
    """The conditions string ConnectWise takes; empty for no conditions."""
    return "" if expression is None else str(expression)


def _literal(field: str, value: Value) -> str:
    if isinstance(value, bool):  # before int: bool is an int
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, Decimal):
        if not value.is_finite():
            raise ValueError(f"condition on {field}: {value} is not a finite number")
        return format(value, "f")
    if isinstance(value, datetime):
        if value.tzinfo is None:
            raise ValueError(f"condition on {field}: the date-time {value.isoformat()} has no time zone")
        return f"[{_iso(value)}]"
    if isinstance(value, date):
        return f"[{value.isoformat()}T00:00:00Z]"
    if isinstance(value, str):
        bad = UNSAFE_IN_STRING.search(value)
        if bad:
            raise ValueError(
                f"condition on {field}: the value contains {bad.group()!r}, which cannot be quoted safely"
            )
        return f'"{value}"'
    raise ValueError(f"condition on {field}: {type(value).__name__} values are not supported (use Decimal)")


def _iso(value: datetime) -> str:
    utc = value.astimezone(UTC)
    return utc.strftime("%Y-%m-%dT%H:%M:%S") + (f".{utc.microsecond:06d}" if utc.microsecond else "") + "Z"
