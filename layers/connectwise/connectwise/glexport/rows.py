"""Records as rows: a record's values typed as its model types them, without pydantic's cost.

A row is what `Model.model_validate(values).model_dump()` gives: every field in the model's
order, then the attributes the model does not know (as strings); Decimal, date, datetime, bool,
int and lists of ints. `fast_row` makes it for the forms ConnectWise writes (amounts as Python's
Decimal reads them, which is what pydantic does; `Y`/`N`/`True`/`False`; `2026-09-29`, also with
`T00:00:00Z`; `20.00%`; `1503,1504`; JSON numbers and booleans) and returns None for anything
else, or for a missing required field: the reader then validates that record with its model
(`validated_row`), which gives the same row or pydantic's error. The unit tests hold the two to
each other on every kind of value. Validating every record with pydantic cost more than
parsing the document; typing its values here costs less.
"""

import re
from collections.abc import Callable
from datetime import date, datetime
from decimal import Decimal
from functools import cache
from types import UnionType
from typing import Any, get_args

from pydantic import BeforeValidator, ValidationError
from pydantic.fields import FieldInfo

from connectwise.errors import DocumentError
from connectwise.glexport import values
from connectwise.glexport.values import CwElement

Row = dict[str, Any]


class _Unsure(Exception):
    """A value in a form the fast path does not take: pydantic decides."""


CACHED = 8192  # texts remembered per kind: amounts, dates and rates repeat across records


class _Kind:
    """How the fast path types one kind of field: a text it `takes` is made (`make`) once and
    remembered (values are immutable; a list is made each time); a JSON value goes to `other`,
    which raises _Unsure for what it does not take."""

    def __init__(
        self,
        takes: Callable[[str], Any],
        make: Callable[[str], Any],
        other: Callable[[Any], Any],
        cached: bool = True,
    ) -> None:
        self.takes, self.make, self.other = takes, make, other
        self.known: dict[str, Any] = {}
        self.cached = cached

    def text(self, text: str) -> Any:
        value = self.known.get(text)
        if value is None:
            if not self.takes(text):
                raise _Unsure
            value = self.make(text)
            if self.cached and len(self.known) < CACHED:
                self.known[text] = value
        return value


def _finite(text: str) -> Decimal:
    """What pydantic makes of a decimal text: Python's Decimal of it, refused if not finite."""
    value = Decimal(text)
    if not value.is_finite():
        raise _Unsure
    return value


def _percent(text: str) -> Decimal:
    return _finite(text.removesuffix("%"))


def _split_ids(text: str) -> list[int]:
    return [int(part) for part in text.split(",")]


def _day(text: str) -> date:
    return date.fromisoformat(text[:10])  # YYYY-MM-DD, or YYYY-MM-DDT00:00:00Z (REST)


def _moment(text: str) -> datetime:
    return values.us_datetime(text) if "/" in text else datetime.fromisoformat(text)


def _json_decimal(value: Any) -> Decimal:
    if type(value) is Decimal and value.is_finite():
        return value
    if type(value) is int:
        return Decimal(value)
    raise _Unsure


def _json_int(value: Any) -> int:
    if type(value) is int:
        return value
    raise _Unsure


def _json_ids(value: Any) -> list[int]:
    if type(value) is list and all(type(i) is int for i in value):
        return list(value)
    raise _Unsure


def _never(value: Any) -> Any:
    raise _Unsure


def _always(text: str) -> bool:
    return True


_FLAGS = {"True": True, "False": False, "Y": True, "N": False, "true": True, "false": False}
_DECIMAL = _Kind(_always, _finite, _json_decimal)
_RATE = _Kind(_always, _percent, _json_decimal)
_INT = _Kind(re.compile(r"-?[0-9]{1,18}").fullmatch, int, _json_int)
_ID_LIST = _Kind(re.compile(r"[0-9]{1,18}(?:,[0-9]{1,18})*").fullmatch, _split_ids, _json_ids, cached=False)
_DATE = _Kind(re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}(?:T00:00:00Z)?").fullmatch, _day, _never)
_DATETIME = _Kind(
    re.compile(
        r"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}Z?"
        r"|[0-9]{1,2}/[0-9]{1,2}/[0-9]{4} [0-9]{1,2}:[0-9]{2}:[0-9]{2} [AP]M"
    ).fullmatch,
    _moment,
    _never,
)
_FLAG = _Kind(_FLAGS.__contains__, _FLAGS.__getitem__, _never)  # typed in fast_row's own loop
_NEVER = _Kind(_never, _never, _never)  # lines, sections: the model decides
_BY_VALIDATOR = {values.rate_text: _RATE, values.ids_text: _ID_LIST, values.us_datetime: _DATETIME}
_BY_TYPE: dict[Any, _Kind] = {Decimal: _DECIMAL, int: _INT, bool: _FLAG, date: _DATE}


def _kind(field: FieldInfo) -> _Kind | None:
    """How the fast path types a field; None for text."""
    for meta in field.metadata:
        if isinstance(meta, BeforeValidator) and meta.func in _BY_VALIDATOR:
            return _BY_VALIDATOR[meta.func]
    annotation = field.annotation
    if annotation is str:
        return None
    if isinstance(annotation, UnionType):  # X | None
        annotation = next(arg for arg in get_args(annotation) if arg is not type(None))
    return _BY_TYPE.get(annotation, _NEVER)


class _Plan:
    """A model's fields as the fast path needs them, worked out once: amounts and flags (most
    of a record's typed values) apart from the other typed fields."""

    def __init__(self, model: type[CwElement]) -> None:
        self.template: Row = {}
        self.amounts: list[str] = []
        self.flags: list[str] = []
        self.others: list[tuple[str, _Kind, Any]] = []  # name, kind, value when left blank
        self.lists: list[str] = []  # fields whose default is a new list per row
        self.required: list[str] = []
        for name, field in model.model_fields.items():
            required = field.is_required()
            default = None if required else field.get_default(call_default_factory=True)
            self.template[name] = default
            if isinstance(default, list):
                self.lists.append(name)
            if required:
                self.required.append(name)
            kind = _kind(field)
            if kind is _DECIMAL:
                self.amounts.append(name)
            elif kind is _FLAG:
                self.flags.append(name)
            elif kind is not None:
                self.others.append((name, kind, _Unsure if required else default))
        self.typed = frozenset([*self.amounts, *self.flags, *(name for name, _, _ in self.others)])
        self.names = tuple(self.template)


@cache
def _plan(model: type[CwElement]) -> _Plan:
    return _Plan(model)


def fast_row(model: type[CwElement], attributes: dict[str, Any]) -> Row | None:
    """The row of a record in the forms ConnectWise writes; None: validate it with the model.
    A typed field left blank ("") takes its default, as when ConnectWise omits it.

    `attributes` is handed over: when ConnectWise wrote them in the model's order (it does; some
    may be left off at the end), the row is that dict, typed in place. When None is returned it
    may hold typed values where the fast path got that far, which the model takes as it took
    their text. This is the hot path of a read: plain loops, a dict lookup rather than a call."""
    plan = _plan(model)
    count = len(attributes)
    if tuple(attributes) == plan.names[:count]:
        row = attributes
        for name in plan.names[count:]:
            row[name] = [] if name in plan.lists else plan.template[name]
    else:
        row = plan.template | attributes
        for name in plan.lists:
            if name not in attributes:
                row[name] = []
    known, made, flags = _DECIMAL.known, _DECIMAL.text, _FLAGS
    try:
        for name in plan.amounts:
            value = row[name]
            if value.__class__ is str:
                if value:
                    amount = known.get(value)
                    row[name] = made(value) if amount is None else amount
                else:
                    row[name] = None  # blank; a required one is refused below
            elif value is not None:
                row[name] = _json_decimal(value)
        for name in plan.flags:
            value = row[name]
            if value.__class__ is str:
                row[name] = flags[value] if value else None
            elif value is not None and value.__class__ is not bool:
                return None
        for name, kind, blank in plan.others:
            value = row[name]
            if value.__class__ is str:
                if value:
                    found = kind.known.get(value)
                    row[name] = kind.text(value) if found is None else found
                elif blank is _Unsure:
                    return None
                else:
                    row[name] = [] if blank == [] else blank
            elif value is not None and value != blank:  # a default is left as it is
                row[name] = kind.other(value)
    except (_Unsure, ArithmeticError, ValueError, KeyError):
        return None
    for name in plan.required:
        if row[name] is None:
            return None
    return row


def validated_row(
    model: type[CwElement], attributes: dict[str, Any], problem: Callable[[ValidationError], str]
) -> Row:
    """The row of a record: the fast path, or the model's validation (blank typed values left
    out first); a value the model refuses raises DocumentError(problem(pydantic's error))."""
    row = fast_row(model, attributes)
    if row is not None:
        return row
    typed = _plan(model).typed
    given = {
        name: value
        for name, value in attributes.items()
        if value is not None and (value != "" or name not in typed)  # None: left by the fast path
    }
    try:
        return model.model_validate(given).model_dump()
    except ValidationError as exc:
        raise DocumentError(problem(exc)) from None
