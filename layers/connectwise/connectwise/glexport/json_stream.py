"""A JSON document read as it arrives, with ijson's C backend (yajl2): the items of the arrays
asked for, one at a time, and every other top-level member whole; nothing else is kept.

ijson's `items` builds values in C for one prefix, which it compares (`==`) with the path of
each event outside a value it is building. `_Layout` is a prefix that equals the path of an
item of any array asked for (`transactions.item`) and of any other top-level member, so one
pass builds them all at C speed; Python sees a few events per member and one per item. On the
way it checks the document's layout: an object at the top, each array asked for an array, no
member twice. Numbers are exact: an integer is an int, any other number a Decimal (the readers
apply connectwise.jsonmoney's rule to the values they map).
"""

from collections import deque
from collections.abc import Callable, Collection, Iterable, Iterator
from functools import cache
from itertools import accumulate
from typing import Any, NamedTuple

from connectwise.errors import CutShortError, DocumentError

BUFFER = 2**16


class Item(NamedTuple):
    """The item at `position` in the array of the member `name`."""

    name: str
    position: int
    value: Any


class Member(NamedTuple):
    """A top-level member not read item by item, with its whole value."""

    name: str
    value: Any


@cache
def backend() -> Any:
    """ijson's C backend; the pure-Python ones are many times slower, too slow for a big batch."""
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
) -> Iterator[Item | Member]:
    """The items of the top-level members named in `arrays` (each must be an array) and every
    other top-level member, in the order of the document in `chunks`; each chunk goes to `raw`
    as it is read. Raises DocumentError naming the problem (CutShortError: it ends early)."""
    parser = backend()
    from ijson import JSONError

    feed = _Feed(chunks, raw)
    layout = _Layout(arrays, what)
    positions: dict[str, int] = {}
    try:
        for value in parser.items(feed, layout):
            name, whole = layout.found.popleft()
            if layout.problem and not name:
                raise layout.problem
            if whole:
                yield Member(name, value)
            else:
                positions[name] = position = positions.get(name, -1) + 1
                yield Item(name, position, value)
        layout.finish()
        if layout.problem:
            raise layout.problem
    except JSONError:
        if feed.refused:
            raise DocumentError(feed.refused.format(what=what)) from None
        if feed.ended:
            raise CutShortError(
                f"the {what} is cut short: it ends after {feed.size} bytes, before its end"
            ) from None
        # yajl's message quotes the document around the error: a customer's name, a memo.
        raise DocumentError(f"the {what} is not JSON (after about {feed.size} bytes)") from None


class _Layout(str):
    """The prefix given to ijson's `items` (see the module's doc). ijson compares it with the
    path of every event outside a value being built: the top-level object's start, end and keys
    (path ""), then each member's first event (its name), and, for an array asked for, its
    items' starts (`name.item`) and its end (`name`). An empty object stands for an empty array,
    as an empty value did before; anything else where an array is asked for is refused. A problem
    is not raised here (ijson's C code does not expect it): the path is matched, so that ijson
    hands its value over at once, and `members` raises the problem in its place."""

    def __new__(cls, arrays: Collection[str], what: str) -> "_Layout":
        return super().__new__(cls, "")

    def __init__(self, arrays: Collection[str], what: str) -> None:
        self.arrays, self.what = frozenset(arrays), what
        self.found: deque[tuple[str, bool]] = deque()  # (member, whole) of each value matched
        self.tops = 0  # events at the top level: its start, its keys, its end
        self.member = ""  # the member being read
        self.state = "closed"  # of an array asked for: "opened", then "closed" at its end
        self.seen: set[str] = set()
        self.problem: DocumentError | None = None

    __hash__ = str.__hash__

    def __eq__(self, path: object) -> bool:
        if self.problem:
            return False
        if path == "":
            self._member_done()
            self.tops += 1
            return bool(self.problem) and self._refuse()
        if self.tops == 1:  # a value before any key: the top level is an array
            return self._refuse(f"expected a {self.what} object, got an array")
        if not self.member:
            return self._member_starts(str(path))
        if self.state == "opened" and path == f"{self.member}.item":
            self.found.append((self.member, False))
            return True
        if self.state == "opened" and path == self.member:
            self.state = "closed"
            return False
        return self._refuse(f"{self.what}.{self.member} is not a list")

    def _refuse(self, problem: str = "") -> bool:
        """Note the problem and match the path: ijson hands its value over, `members` raises."""
        if problem:
            self.problem = DocumentError(problem)
        self.found.append(("", False))
        return True

    def _member_starts(self, name: str) -> bool:
        if name in self.seen:
            return self._refuse(f"{self.what}.{name} appears twice")
        self.seen.add(name)
        self.member = name
        if name in self.arrays:
            self.state = "opened"
            return False
        self.found.append((name, True))
        return True  # built whole

    def _member_done(self) -> None:
        if self.member in self.arrays and self.state != "closed":  # a single value, not an array
            self.problem = DocumentError(f"{self.what}.{self.member} is not a list")
        self.member, self.state = "", "closed"

    def finish(self) -> None:
        if self.tops < 2 and not self.problem:
            self.problem = DocumentError(f"expected a {self.what} object, got a single value")


MAX_DEPTH = 256  # a GLExport nests 5 deep; yajl's memory grows with the square of the depth
_NOT_QUOTES_OR_BRACKETS = bytes(b for b in range(256) if b not in b'"[]{}')
_STEP = {ord("["): 1, ord("{"): 1, ord("]"): -1, ord("}"): -1}


class _Feed:
    """The chunks as a file for ijson; each goes to `raw` as ijson reads it. A document nested
    deeper than MAX_DEPTH is refused as it arrives (20,000 levels, 40 KB, would cost yajl a
    gigabyte); a UTF-8 byte order mark is read past, as json.loads does."""

    def __init__(self, chunks: Iterable[bytes], raw: Callable[[bytes], None]) -> None:
        self.chunks = iter(chunks)
        self.raw = raw
        self.size = 0
        self.ended = False
        self.refused = ""  # why the document was refused, with {what} for its name
        self.depth = 0
        self.in_string = False  # the last chunk ended inside a string
        self.escape = b""  # a backslash the last chunk ended in

    def read(self, size: int = -1) -> bytes:
        if size == 0:  # ijson asks whether the file gives bytes or text
            return b""
        for chunk in self.chunks:
            if chunk:
                first = self.size == 0
                self.size += len(chunk)
                self.raw(chunk)
                if self._too_deep(chunk):
                    self.refused = f"the {{what}} nests deeper than {MAX_DEPTH} levels: refused"
                    return b""  # ends the input: ijson stops, `members` raises the refusal
                return chunk[3:] if first and chunk.startswith(b"\xef\xbb\xbf") else chunk
        self.ended = True
        return b""

    def _too_deep(self, chunk: bytes) -> bool:
        """Follows the nesting outside strings (a string may go on into the next chunk)."""
        text, self.escape = self.escape + chunk, b""
        if (len(text) - len(text.rstrip(b"\\"))) % 2:  # a backslash escaping the next chunk's first byte
            text, self.escape = text[:-1], b"\\"
        if b"\\" in text:  # escapes: none is a quote or a bracket once \\ and \" are gone
            text = text.replace(b"\\\\", b"").replace(b'\\"', b"")
        # Only quotes and brackets matter; two quotes with nothing between hold no bracket, so
        # most strings go at C speed, and few pieces are left to look at.
        kept = text.translate(None, _NOT_QUOTES_OR_BRACKETS)
        while b'""' in kept:
            kept = kept.replace(b'""', b"")
        pieces = kept.split(b'"')  # every quote left opens or closes a string
        outside = b"".join(pieces[1::2] if self.in_string else pieces[0::2])
        self.in_string ^= len(pieces) % 2 == 0
        # Block by block: a block of 64 brackets rises at most 64, so only a block that could
        # pass MAX_DEPTH is followed bracket by bracket.
        for start in range(0, len(outside), 64):
            block = outside[start : start + 64]
            if (
                self.depth + 64 > MAX_DEPTH
                and max(accumulate((_STEP[b] for b in block), initial=self.depth)) > MAX_DEPTH
            ):
                return True
            opens = block.count(b"[") + block.count(b"{")
            self.depth += 2 * opens - len(block)
        return False
