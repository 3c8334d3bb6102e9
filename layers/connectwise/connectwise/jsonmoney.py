"""JSON with exact money: numbers are read as Decimal, and Decimal is written as a JSON number.

Reading keeps the number's text exactly, except that a JSON double written with one decimal
place (`15.0`, `1374.5`: how ConnectWise's doubles come out) reads as cents (`15.00`), so amounts
look the same whichever backend served them. Writing: the standard library writes floats only; a
Decimal goes through float when the float's shortest text is the same number (every amount with
at most 15 significant digits); anything else is refused rather than rounded.
"""

import json
from decimal import Decimal
from typing import Any


def loads(text: bytes | str) -> Any:
    return json.loads(text, parse_float=_decimal)


def _decimal(text: str) -> Decimal:
    point = text.find(".")
    if point != -1 and len(text) - point == 2:  # one decimal place: 15.0 -> 15.00
        text += "0"
    return Decimal(text)


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
