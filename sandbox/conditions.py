"""The sandbox's reading of ConnectWise `conditions`: parse, then filter records.

Independent of the connector's builder (connectwise.conditions), so the tests can check one
against the other. Anything it cannot parse is a ConditionsError, which the SOAP side answers
with a fault, as ConnectWise does for a malformed condition, and the REST side with a 400.

Two dialects. `parse` reads the SOAP one (flat field names, `like` with `%`). `parse_rest` reads
the REST one (../shared/reference/rest_api.md section 2) over JSON documents:
* field names nested with `/` (`company/identifier`), matched without case; `lastUpdated` means
  `_info/lastUpdated`; a name the document does not have is an error, a null reference on the
  way (`company` null in `company/name`) reads as null;
* strings in double quotes, where `[[]` stands for a literal `[`; numbers bare (compared as
  Decimal); `true`/`false` in any case; date-times in `[...]` with `Z` or an offset (compared as
  date-times, also against a document's date-time text); `null`;
* `= != < <= > >= like contains in`, and `not like`, `not contains`, `not in`; `like` takes `*`
  wildcards; `in (1, 2, 3)`; text compares without case, as ConnectWise's database does;
* `and`/`or` in any case (`and` binds first) and parentheses;
* as in SQL, a null field matches only `= null` and `!= null`.
"""

import operator
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

_BLANK = re.compile(r"\s*\Z")

Predicate = Callable[[Mapping[str, Any]], bool]
COMPARE: dict[str, Callable[[Any, Any], Any]] = {
    "=": operator.eq,
    "!=": operator.ne,
    "<": operator.lt,
    "<=": operator.le,
    ">": operator.gt,
    ">=": operator.ge,
}


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


def _tokenize(text: str, token: re.Pattern[str] = TOKEN) -> list[tuple[str, str]]:
    tokens, position = [], 0
    while position < len(text):
        if _BLANK.match(text, position):
            break
        match = token.match(text, position)
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
        return bool(COMPARE[operator](left, right))

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


# The REST dialect

REST_TOKEN = re.compile(
    r"""\s*(?:
        (?P<string>"[^"]*")
      | (?P<date>\[[^\]]*\])
      | (?P<number>-?\d+(?:\.\d+)?)
      | (?P<op><=|>=|!=|=|<|>)
      | (?P<paren>[()])
      | (?P<comma>,)
      | (?P<word>[A-Za-z_][A-Za-z0-9_]*(?:/[A-Za-z_][A-Za-z0-9_]*)*)
    )""",
    re.VERBOSE,
)
FIELD_PATH = re.compile(r"[A-Za-z_][A-Za-z0-9_]*(?:/[A-Za-z_][A-Za-z0-9_]*)*")
ALIASES = {"lastupdated": "_info/lastUpdated"}  # ConnectWise reads both as the record's _info.lastUpdated
MAX_DEPTH = 50  # nested parentheses: deeper is refused, not a stack overflow
_WORD_OPERATORS = ("like", "contains", "in")
_NULL = object()  # the `null` literal


def parse_rest(text: str) -> Predicate:
    """A predicate over REST documents; an empty text matches everything."""
    tokens = _tokenize(text, REST_TOKEN)
    if not tokens:
        return lambda record: True
    reader = _RestReader(tokens)
    predicate = reader.expression(0)
    if reader.at < len(tokens):
        raise ConditionsError(f"unexpected {tokens[reader.at][1]!r} in conditions")
    return predicate


def resolve(record: Mapping[str, Any], field: str) -> tuple[list[str], Any]:
    """The document's own spelling of a `/` path (matched without case) and its value; a null
    reference on the way reads as null, a name the document lacks is a ConditionsError."""
    path = ALIASES.get(field.lower(), field)
    if not FIELD_PATH.fullmatch(path):
        raise ConditionsError(f"{field!r} is not a field name")
    keys: list[str] = []
    value: Any = record
    for name in path.split("/"):
        if value is None:
            return keys, None
        key = (
            next((k for k in value if k.lower() == name.lower()), None)
            if isinstance(value, Mapping)
            else None
        )
        if key is None:
            raise ConditionsError(f"unknown field {field!r}")
        keys.append(key)
        value = value[key]
    return keys, value


class _RestReader:
    """Recursive descent over the tokens by position; `or` and `and` chains are flat lists, so a
    long chain costs no stack."""

    def __init__(self, tokens: list[tuple[str, str]]) -> None:
        self.tokens, self.at = tokens, 0

    def _peek_word(self, *words: str) -> bool:
        if self.at < len(self.tokens) and self.tokens[self.at][0] == "word":
            return self.tokens[self.at][1].lower() in words
        return False

    def _take(self, what: str) -> tuple[str, str]:
        if self.at >= len(self.tokens):
            raise ConditionsError(f"conditions end where {what} was expected")
        self.at += 1
        return self.tokens[self.at - 1]

    def expression(self, depth: int) -> Predicate:
        parts = [self.term(depth)]
        while self._peek_word("or"):
            self.at += 1
            parts.append(self.term(depth))
        return parts[0] if len(parts) == 1 else lambda record: any(p(record) for p in parts)

    def term(self, depth: int) -> Predicate:
        parts = [self.factor(depth)]
        while self._peek_word("and"):
            self.at += 1
            parts.append(self.factor(depth))
        return parts[0] if len(parts) == 1 else lambda record: all(p(record) for p in parts)

    def factor(self, depth: int) -> Predicate:
        kind, text = self._take("a condition")
        if (kind, text) == ("paren", "("):
            if depth >= MAX_DEPTH:
                raise ConditionsError(f"parentheses nest deeper than {MAX_DEPTH}")
            inner = self.expression(depth + 1)
            if self._take("`)`") != ("paren", ")"):
                raise ConditionsError("a parenthesis is not closed")
            return inner
        if kind != "word" or text.lower() in ("and", "or", "not"):
            raise ConditionsError(f"expected a field name, got {text!r}")
        return _rest_comparison(text, self._operator(), self._operand())

    def _operator(self) -> str:
        kind, text = self._take("an operator")
        negated = kind == "word" and text.lower() == "not"
        if negated:
            kind, text = self._take("an operator after `not`")
        if kind == "word" and text.lower() in _WORD_OPERATORS:
            return ("not " if negated else "") + text.lower()
        if kind != "op" or negated:
            raise ConditionsError(f"{text!r} is not an operator")
        return text

    def _operand(self) -> Any:
        kind, text = self._take("a value")
        if (kind, text) != ("paren", "("):
            return _rest_value(kind, text)
        values = [_rest_value(*self._take("a value"))]
        while (separator := self._take("`,` or `)`")) == ("comma", ","):
            values.append(_rest_value(*self._take("a value")))
        if separator != ("paren", ")"):
            raise ConditionsError(f"expected `,` or `)` in a list, got {separator[1]!r}")
        return tuple(values)


def _rest_value(kind: str, raw: str) -> Any:
    if kind == "string":
        return raw[1:-1].replace("[[]", "[")
    if kind == "number":
        return Decimal(raw)
    if kind == "date":
        moment = _datetime(raw[1:-1])
        if moment is None:
            raise ConditionsError(f"{raw} is not a date-time with Z or an offset")
        return moment
    if kind == "word" and raw.lower() in ("true", "false"):
        return raw.lower() == "true"
    if kind == "word" and raw.lower() == "null":
        return _NULL
    raise ConditionsError(f"{raw!r} is not a value")


def _datetime(text: str) -> datetime | None:
    """An ISO 8601 date-time with its zone, in UTC; None if it is not one."""
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    return moment.astimezone(UTC) if moment.tzinfo else None


def _rest_comparison(field: str, operator: str, value: Any) -> Predicate:
    if not FIELD_PATH.fullmatch(field):
        raise ConditionsError(f"{field!r} is not a field name")
    if (operator in ("in", "not in")) != isinstance(value, tuple):
        raise ConditionsError(f"{field} {operator}: `in` takes a list `(a, b)`, other operators one value")
    if value is _NULL and operator not in ("=", "!="):
        raise ConditionsError(f"{field} {operator} null: null compares only with = or !=")
    if operator.endswith(("like", "contains")) and not isinstance(value, str):
        raise ConditionsError(f"{field} {operator} needs a quoted string")

    def matches(record: Mapping[str, Any]) -> bool:
        _, actual = resolve(record, field)
        if value is _NULL:
            return (actual is None) == (operator == "=")
        if actual is None:
            return False
        if operator.startswith("not "):
            return not _test(actual, operator[4:], value, field)
        return _test(actual, operator, value, field)

    return matches


def _test(actual: Any, operator: str, value: Any, field: str) -> bool:
    if operator == "in":
        return any(_test(actual, "=", v, field) for v in value)
    if operator in ("like", "contains"):
        if isinstance(actual, dict | list):
            raise ConditionsError(f"{field} is an object; name one of its fields, e.g. {field}/id")
        text = str(actual).casefold()
        pattern = value.casefold()
        return pattern in text if operator == "contains" else _glob(pattern.split("*"), text)
    left, right = _rest_comparable(actual, value, field)
    return bool(COMPARE[operator](left, right))


def _glob(parts: list[str], text: str) -> bool:
    """`like` with `*` wildcards, without backtracking: the literal parts in order, the first at
    the start and the last at the end."""
    if len(parts) == 1:
        return text == parts[0]
    first, *middle, last = parts
    if not text.startswith(first) or len(text) - len(first) < len(last) or not text.endswith(last):
        return False
    position, end = len(first), len(text) - len(last)
    for part in middle:
        found = text.find(part, position, end)
        if found < 0:
            return False
        position = found + len(part)
    return True


def _rest_comparable(actual: Any, value: Any, field: str) -> tuple[Any, Any]:
    if isinstance(actual, dict | list):
        raise ConditionsError(f"{field} is an object; name one of its fields, e.g. {field}/id")
    if isinstance(value, bool):
        if not isinstance(actual, bool):
            raise ConditionsError(f"{field} is not a boolean; compare it with {_kind_hint(actual)}")
        return actual, value
    if isinstance(value, datetime):
        moment = (
            actual if isinstance(actual, datetime) else _datetime(actual) if isinstance(actual, str) else None
        )
        if moment is None:
            raise ConditionsError(f"{field} is not a date-time; compare it with {_kind_hint(actual)}")
        return moment.astimezone(UTC), value
    if isinstance(value, Decimal):
        if isinstance(actual, bool) or not isinstance(actual, int | Decimal):
            raise ConditionsError(f"{field} is not a number; compare it with {_kind_hint(actual)}")
        return Decimal(actual), value
    if not isinstance(actual, str):
        raise ConditionsError(f"{field} is not text; compare it with {_kind_hint(actual)}")
    return actual.casefold(), value.casefold()


def _kind_hint(actual: Any) -> str:
    if isinstance(actual, bool):
        return "true or false"
    if isinstance(actual, int | Decimal):
        return "a bare number"
    if isinstance(actual, datetime) or (isinstance(actual, str) and _datetime(actual)):
        return "a date-time in [...]"
    return 'a quoted string ("...")'
