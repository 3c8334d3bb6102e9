"""JSON with exact money: numbers are read as Decimal, and Decimal is written as a JSON number.

Reading keeps the number's digits exactly, except that a number with one decimal place (`15.0`,
`1374.5`: how ConnectWise's doubles come out) reads as cents (`15.00`), so amounts look the same
whichever backend served them (`cents`: the streaming GLExport reader applies the same rule). Writing: the standard library writes floats only; a
Decimal goes through float when the float's shortest text is the same number (every amount with
at most 15 significant digits); anything else is refused rather than rounded.
"""

import json
from decimal import Decimal
from typing import Any


def loads(text: bytes | str) -> Any:
    return json.loads(text, parse_float=_decimal)


def _decimal(text: str) -> Decimal:
    return cents(Decimal(text))


def cents(number: Decimal) -> Decimal:
    """A number with one decimal place as cents: 15.0 -> 15.00; any other as it is."""
    sign, digits, exponent = number.as_tuple()
    return Decimal((sign, (*digits, 0), -2)) if exponent == -1 else number  # exact, any size


def dumps(value: Any) -> bytes:
    return json.dumps(value, separators=(",", ":"), default=_number).encode()


def _number(value: Any) -> float:
    """Called by the encoder for what JSON does not know: a Decimal, written as an exact number."""
    if not isinstance(value, Decimal):
        raise TypeError(f"{type(value).__name__} is not JSON serializable")
    number = float(value)
    if not value.is_finite() or Decimal(repr(number)) != value:
        raise ValueError(f"{value} cannot be written as an exact JSON number")
    return number
