"""A JSON document read as it arrives, with ijson's C backend (yajl2): the members of its
top-level object one by one, and the items of the arrays asked for one at a time, each built
whole and handed on; nothing else is kept. Numbers are exact: an integer is an int, any other
number a Decimal, read as connectwise.jsonmoney reads them (one decimal place as cents).
"""

from collections.abc import Callable, Collection, Iterable, Iterator
from decimal import Decimal
from functools import cache
from typing import Any, NamedTuple

from connectwise.errors import CutShortError, DocumentError
from connectwise.jsonmoney import cents

BUFFER = 2**16


class Item(NamedTuple):
    """The item at `position` in the array of the member `name`."""

    name: str
    position: int
    value: Any


class Other(NamedTuple):
    """A member not read item by item: the type of its value (`dict`, `list`, `str`, `int`,
    `Decimal`, `bool`, `NoneType`) and whether it is truthy (an object or array with content)."""

    name: str
    kind: str
    truthy: bool


@cache
def backend() -> Any:
    """ijson's C backend; the pure-Python ones are 20 times slower and would not fit a big batch."""
    try:
        import ijson

        return ijson.get_backend("yajl2_c")
    except ImportError:
        raise RuntimeError(
            "reading a REST GLExport needs ijson's C backend (yajl2_c), which this installation "
            "lacks: install ijson from its binary wheel (layers/connectwise/requirements.lock)"
        ) from None


def members(
    chunks: Iterable[bytes], raw: Callable[[bytes], None], arrays: Collection[str], what: str
) -> Iterator[Item | Other]:
    """The top-level object's members of the document in `chunks` (each chunk handed to `raw`
    as it is read): the items of the members named in `arrays` whose value is an array, an
    `Other` for every other member. Raises DocumentError (CutShortError: it ends early)."""
    parser = backend()
    from ijson import JSONError

    feed = _Feed(chunks, raw)
    try:
        yield from _members(iter(parser.basic_parse(feed, buf_size=BUFFER)), arrays, what)
    except (JSONError, _EndedEarly) as exc:
        if feed.ended:
            raise CutShortError(
                f"the {what} is cut short: it ends after {feed.size} bytes, before its end"
            ) from None
        raise DocumentError(f"the {what} is not JSON ({exc})") from None


class _EndedEarly(Exception):
    """The events ended inside a value (ijson raises first; this is the guard)."""


def _members(events: Iterator[tuple[str, Any]], arrays: Collection[str], what: str) -> Iterator[Item | Other]:
    event, value = next(events, ("end", None))
    if event == "end":
        raise _EndedEarly
    if event != "start_map":
        raise DocumentError(f"expected a {what} object, got {_kind(event, value)}")
    seen: set[str] = set()
    for event, name in events:
        if event == "end_map":
            return
        if name in seen:
            raise DocumentError(f"{what}.{name} appears twice")
        seen.add(name)
        event, value = next(events, ("end", None))
        if event == "start_array" and name in arrays:
            for index, (event, value) in enumerate(events):
                if event == "end_array":
                    break
                yield Item(name, index, _value(event, value, events))
        else:
            yield Other(name, _kind(event, value), _skip(event, value, events))
    raise _EndedEarly


_KINDS = {"start_map": "dict", "start_array": "list", "boolean": "bool", "null": "NoneType", "string": "str"}


def _kind(event: str, value: Any) -> str:
    return _KINDS.get(event) or type(value).__name__


def _skip(event: str, value: Any, events: Iterator[tuple[str, Any]]) -> bool:
    """Skip a value whose first event was just read; is it truthy?"""
    if event not in ("start_map", "start_array"):
        return bool(value)
    depth, empty = 1, True
    for event, _ in events:
        if event in ("start_map", "start_array"):
            depth += 1
        elif event in ("end_map", "end_array"):
            depth -= 1
            if depth == 0:
                return not empty
        empty = False
    raise _EndedEarly


def _value(event: str, value: Any, events: Iterator[tuple[str, Any]]) -> Any:
    """The value whose first event was just read, built from its events."""
    if event == "start_map":
        root: Any = {}
    elif event == "start_array":
        root = []
    else:
        return cents(value) if type(value) is Decimal else value
    stack = [root]
    top, key = root, None
    for event, value in events:  # the hot loop of a REST read: keep it plain
        if event == "map_key":
            key = value
            continue
        if event == "end_map" or event == "end_array":
            stack.pop()
            if not stack:
                return root
            top = stack[-1]
            continue
        opened = event == "start_map" or event == "start_array"
        if opened:
            value = {} if event == "start_map" else []
        elif type(value) is Decimal:
            value = cents(value)
        if type(top) is dict:
            top[key] = value
        else:
            top.append(value)
        if opened:
            stack.append(value)
            top = value
    raise _EndedEarly


class _Feed:
    """The chunks as a file for ijson; each goes to `raw` as ijson reads it."""

    def __init__(self, chunks: Iterable[bytes], raw: Callable[[bytes], None]) -> None:
        self.chunks = iter(chunks)
        self.raw = raw
        self.size = 0
        self.ended = False

    def read(self, size: int = -1) -> bytes:
        if size == 0:  # ijson asks whether the file gives bytes or text
            return b""
        for chunk in self.chunks:
            if chunk:
                self.size += len(chunk)
                self.raw(chunk)
                return chunk
        self.ended = True
        return b""
