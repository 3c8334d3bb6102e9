"""JSON with exact money: numbers are read as Decimal, and Decimal is written as a JSON number.

The standard library writes floats only. A Decimal goes through float when the float's shortest
text is the same number (every amount with at most 15 significant digits); anything else is
refused rather than rounded.
"""

import json
from decimal import Decimal
from typing import Any


def loads(text: bytes | str) -> Any:
    return json.loads(text, parse_float=Decimal)


def cents(value: Decimal) -> Decimal:
    """15.0 (how a JSON double comes back) as 15.00; more places are kept as they are."""
    exponent = value.as_tuple().exponent
    return value.quantize(Decimal("0.01")) if isinstance(exponent, int) and exponent > -2 else value


def dumps(value: Any) -> bytes:
    return json.dumps(_exact(value), separators=(",", ":")).encode()


def _exact(value: Any) -> Any:
    if isinstance(value, Decimal):
        number = float(value)
        if not value.is_finite() or Decimal(repr(number)) != value:
            raise ValueError(f"{value} cannot be written as an exact JSON number")
        return number
    if isinstance(value, dict):
        return {key: _exact(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_exact(item) for item in value]
    return value
