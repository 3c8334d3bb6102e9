"""A GL batch as it is read: the document goes by chunk by chunk and record by record to a sink
(`GLSink`: the download writes both to S3 as they come), and what the connector needs of the
batch (its id, counts, totals, GL entry ids) is added up on the way (`Reading`), so memory
does not grow with the batch. `GLBatch` is what a finished read found."""

from collections.abc import Iterable
from dataclasses import dataclass, field
from decimal import Decimal
from functools import cached_property
from typing import Any, Protocol

import pydantic_core

from connectwise.errors import DocumentError
from connectwise.glexport.models import GLExport
from connectwise.glexport.rows import Row
from connectwise.models import KINDS

XML, JSON = "application/xml", "application/json"
# A record element -> its kind and the field holding its lines (their GL entry ids count too).
KINDS_OF = {
    "Transaction": ("invoices", "Details"),
    "ExpenseTransaction": ("expenses", "ExpenseDetails"),
    "PurchaseTransaction": ("procurement", "PurchaseDetails"),
}
PROLOG_LIMIT = 2**20  # bytes before the GLExport element starts: ConnectWise sends a line


class GLSink(Protocol):
    """Where a read hands the document: `begin` once (the batch id known), then the bytes as
    they came (`raw`) and each record's row as it is read (`record`), interleaved."""

    def begin(self, batch_id: str, media_type: str) -> None: ...

    def raw(self, chunk: bytes) -> None: ...

    def record(self, row: Row) -> None:
        """The record's row (rows.py) after `element` and `GLBatchID`: one line of records.jsonl."""
        ...


@dataclass(frozen=True)
class GLBatch:
    """What a read of a GLExport found. `header` is the document's root with its options and
    batch id; its record lists are empty (the records went to the sink)."""

    header: GLExport
    media_type: str = XML
    ignored_elements: tuple[str, ...] = ()
    record_counts: dict[str, int] = field(default_factory=lambda: dict.fromkeys(KINDS, 0))
    record_totals: dict[str, Decimal] = field(default_factory=lambda: dict.fromkeys(KINDS, Decimal("0.00")))
    ids_by_kind: dict[str, list[int]] = field(default_factory=lambda: {kind: [] for kind in KINDS})

    @property
    def raw_name(self) -> str:
        """glexport.xml or glexport.json."""
        return "glexport.json" if self.media_type == JSON else "glexport.xml"

    @property
    def batch_id(self) -> str:
        return self.header.GLBatchID

    def counts(self) -> dict[str, int]:
        return dict(self.record_counts)

    def totals(self) -> dict[str, Decimal]:
        return dict(self.record_totals)

    @property
    def is_empty(self) -> bool:
        return not any(self.record_counts.values())

    def gl_entry_ids(self) -> list[int]:
        """Distinct ids of every `GLEntryRecID` attribute, sorted: what an update posts."""
        return list(self._distinct_ids)

    @cached_property
    def _distinct_ids(self) -> list[int]:
        return sorted(set().union(*self.ids_by_kind.values()))

    def gl_entry_ids_by_kind(self) -> dict[str, list[int]]:
        """The distinct GL entry ids of each kind's records (with their lines), sorted."""
        return {kind: list(ids) for kind, ids in self.ids_by_kind.items()}

    def summary(self) -> dict[str, Any]:
        """The JSON summary printed by `python -m connectwise glexport` and sent in events."""
        return {
            "batch_id": self.batch_id,
            "counts": self.counts(),
            "totals": {kind: str(total) for kind, total in self.record_totals.items()},
            "gl_entry_ids": len(self.gl_entry_ids()),
        }


def json_line(row: Row) -> bytes:
    """A record's row as its line of records.jsonl: amounts as strings (exact), dates ISO."""
    line = pydantic_core.to_json(row)
    if b"\xe2\x80\xa8" in line or b"\xe2\x80\xa9" in line or b"\xc2\x85" in line:
        # Line and paragraph separators and NEL, escaped: a reader splitting on lines
        # (str.splitlines) would cut the record in two.
        line = line.replace(b"\xe2\x80\xa8", b"\\u2028").replace(b"\xe2\x80\xa9", b"\\u2029")
        line = line.replace(b"\xc2\x85", b"\\u0085")
    return line + b"\n"


class Reading:
    """One read in progress: hands the sink what goes by and adds the records up."""

    def __init__(self, sink: GLSink | None, media_type: str) -> None:
        self.sink, self.media_type = sink, media_type
        self.header: GLExport | None = None
        self.early: list[bytes] = []  # bytes before the batch id is known
        self.size = 0
        self.counts: dict[str, int] = dict.fromkeys(KINDS, 0)
        self.totals: dict[str, Decimal] = dict.fromkeys(KINDS, Decimal("0.00"))
        self.ids: dict[str, set[int]] = {kind: set() for kind in KINDS}
        self.ignored: set[str] = set()

    def begin(self, header: GLExport) -> None:
        self.header = header
        if self.sink:
            self.sink.begin(header.GLBatchID, self.media_type)
            for chunk in self.early:
                self.sink.raw(chunk)
        self.early = []

    def raw(self, chunk: bytes) -> None:
        self.size += len(chunk)
        if self.header is not None:
            if self.sink:
                self.sink.raw(chunk)
        elif self.size > PROLOG_LIMIT:
            raise DocumentError(
                f"the GLExport document has no GLExport element in its first {PROLOG_LIMIT} bytes"
            )
        else:
            self.early.append(chunk)

    def record(self, element: str, row: Row) -> None:
        if self.header is None or not self.header.GLBatchID:
            raise DocumentError("GLExport has records but no GLBatchID")
        if element in KINDS_OF:
            kind, lines = KINDS_OF[element]
            self.counts[kind] += 1
            self.totals[kind] += row["Total"]
            ids = self.ids[kind]
            if element != "PurchaseTransaction":  # a receipt's GL entries are its lines'
                ids.update(row["GLEntryRecID"])
            for line in row[lines]:
                ids.update(line["GLEntryRecID"])
        if self.sink:
            self.sink.record({"element": element, "GLBatchID": self.header.GLBatchID} | row)

    def ignore(self, names: Iterable[str]) -> None:
        self.ignored.update(names)

    def batch(self) -> GLBatch:
        if self.header is None:
            raise DocumentError("the GLExport document has no GLExport element")
        ids_by_kind: dict[str, list[int]] = {
            kind: sorted(self.ids.pop(kind)) for kind in KINDS
        }  # freed as sorted
        self.sink = None  # the parser may hold this reading in a cycle: hold nothing big
        return GLBatch(
            header=self.header,
            media_type=self.media_type,
            ignored_elements=tuple(sorted(self.ignored)),
            record_counts=self.counts,
            record_totals=self.totals,
            ids_by_kind=ids_by_kind,
        )
