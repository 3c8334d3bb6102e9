"""The sandbox's reading of ConnectWise `conditions`: parse, then filter records.

Independent of the connector's builder (connectwise.conditions), so the tests can check one
against the other. Anything it cannot parse is a ConditionsError, which the SOAP side answers
with a fault, as ConnectWise does for a malformed condition.
"""

import re
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

TOKEN = re.compile(
    r"""\s*(?:
        (?P<string>"[^"]*")
      | (?P<date>\[[^\]]*\])
      | (?P<number>-?\d+(?:\.\d+)?)
      | (?P<op><=|>=|!=|=|<|>)
      | (?P<paren>[()])
      | (?P<word>[A-Za-z_][A-Za-z0-9_.]*)
    )""",
    re.VERBOSE,
)

Predicate = Callable[[Mapping[str, Any]], bool]


class ConditionsError(ValueError):
    pass


def parse(text: str) -> Predicate:
    """A predicate over records (field name -> value); an empty text matches everything."""
    tokens = _tokenize(text)
    if not tokens:
        return lambda record: True
    predicate, rest = _expression(tokens)
    if rest:
        raise ConditionsError(f"unexpected {rest[0][1]!r} in conditions")
    return predicate


def _tokenize(text: str) -> list[tuple[str, str]]:
    tokens, position = [], 0
    while position < len(text):
        if text[position:].strip() == "":
            break
        match = TOKEN.match(text, position)
        if not match:
            raise ConditionsError(f"cannot read conditions at {text[position : position + 20]!r}")
        kind = match.lastgroup or ""
        tokens.append((kind, match.group(kind)))
        position = match.end()
    return tokens


def _expression(tokens: list[tuple[str, str]]) -> tuple[Predicate, list[tuple[str, str]]]:
    left, tokens = _term(tokens)
    while tokens and tokens[0] == ("word", tokens[0][1]) and tokens[0][1].lower() == "or":
        right, tokens = _term(tokens[1:])
        left = (lambda a, b: lambda r: a(r) or b(r))(left, right)
    return left, tokens


def _term(tokens: list[tuple[str, str]]) -> tuple[Predicate, list[tuple[str, str]]]:
    left, tokens = _factor(tokens)
    while tokens and tokens[0][0] == "word" and tokens[0][1].lower() == "and":
        right, tokens = _factor(tokens[1:])
        left = (lambda a, b: lambda r: a(r) and b(r))(left, right)
    return left, tokens


def _factor(tokens: list[tuple[str, str]]) -> tuple[Predicate, list[tuple[str, str]]]:
    if not tokens:
        raise ConditionsError("conditions end where a condition was expected")
    if tokens[0] == ("paren", "("):
        inner, rest = _expression(tokens[1:])
        if not rest or rest[0] != ("paren", ")"):
            raise ConditionsError("a parenthesis is not closed")
        return inner, rest[1:]
    if len(tokens) < 3 or tokens[0][0] != "word":
        raise ConditionsError(f"expected `field operator value`, got {' '.join(t[1] for t in tokens[:3])!r}")
    (_, field), (op_kind, operator), (value_kind, raw) = tokens[:3]
    if op_kind == "word" and operator.lower() == "like":
        operator = "like"
    elif op_kind != "op":
        raise ConditionsError(f"{operator!r} is not an operator")
    return _comparison(field, operator, _value(value_kind, raw)), tokens[3:]


def _value(kind: str, raw: str) -> Any:
    if kind == "string":
        return raw[1:-1]
    if kind == "number":
        return Decimal(raw)
    if kind == "date":
        try:
            return datetime.fromisoformat(raw[1:-1].replace("Z", "+00:00"))
        except ValueError:
            raise ConditionsError(f"{raw} is not a date") from None
    if kind == "word" and raw.lower() in ("true", "false"):
        return raw.lower() == "true"
    raise ConditionsError(f"{raw!r} is not a value")


def _comparison(field: str, operator: str, value: Any) -> Predicate:
    def matches(record: Mapping[str, Any]) -> bool:
        actual = _lookup(record, field)
        if actual is None:
            return operator == "!="
        if operator == "like":
            pattern = "".join(".*" if c == "%" else re.escape(c) for c in str(value))
            return re.fullmatch(pattern, str(actual), re.IGNORECASE | re.DOTALL) is not None
        left, right = _comparable(actual, value, field)
        result: bool = {
            "=": left == right,
            "!=": left != right,
            "<": left < right,
            "<=": left <= right,
            ">": left > right,
            ">=": left >= right,
        }[operator]
        return result

    return matches


def _lookup(record: Mapping[str, Any], field: str) -> Any:
    for name, value in record.items():
        if name.lower() == field.lower():
            return value
    raise ConditionsError(f"unknown field {field!r}")


def _comparable(actual: Any, value: Any, field: str) -> tuple[Any, Any]:
    if isinstance(actual, bool) or isinstance(value, bool):
        if not (isinstance(actual, bool) and isinstance(value, bool)):
            raise ConditionsError(f"{field} cannot be compared with {value!r}")
        return actual, value
    if isinstance(actual, datetime):
        if not isinstance(value, datetime):
            raise ConditionsError(f"{field} is a date; compare it with [date]")
        return actual.astimezone(UTC), value.astimezone(UTC)
    if isinstance(actual, int | Decimal):
        if not isinstance(value, Decimal):
            raise ConditionsError(f"{field} is a number")
        return Decimal(actual), value
    return str(actual).lower(), str(value).lower()
