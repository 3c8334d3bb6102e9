"""Tests read GL batches whole: a sink that keeps what a streaming read hands it (the bytes and
the records' rows) and rebuilds the GLExport models from them, beside the batch the read found."""

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from connectwise.glexport import GLBatch, GLExport, read_glexport
from connectwise.glexport.rest_json import read_rest_glexport
from connectwise.models import KINDS

SECTIONS = {
    "Vendor": "Vendors",
    "Customer": "Customers",
    "Transaction": "Transactions",
    "PurchaseTransaction": "PurchaseTransactions",
}


@dataclass
class Kept:
    """A GLSink keeping everything (tests only: memory grows with the batch)."""

    batch_id: str | None = None
    media_type: str = ""
    chunks: list[bytes] = field(default_factory=list)
    rows: list[dict[str, Any]] = field(default_factory=list)

    def begin(self, batch_id: str, media_type: str) -> None:
        assert self.batch_id is None, "begun twice"
        self.batch_id, self.media_type = batch_id, media_type

    def raw(self, chunk: bytes) -> None:
        assert self.batch_id is not None, "bytes before begin"
        self.chunks.append(chunk)

    def record(self, row: dict[str, Any]) -> None:
        assert self.batch_id is not None, "a record before begin"
        self.rows.append(row)

    @property
    def content(self) -> bytes:
        return b"".join(self.chunks)


@dataclass
class KeptBatch:
    """A read's GLBatch (its methods are this object's) and everything its sink was handed."""

    batch: GLBatch
    kept: Kept

    def __getattr__(self, name: str) -> Any:
        return getattr(self.batch, name)

    @property
    def document(self) -> GLExport:
        """The GLExport models, rebuilt from the header and the rows."""
        records: dict[str, list[dict[str, Any]]] = {
            element: [] for element in [*SECTIONS, "ExpenseTransaction"]
        }
        for row in self.kept.rows:
            records[row["element"]].append(
                {k: v for k, v in row.items() if k not in ("element", "GLBatchID")}
            )
        values = self.batch.header.model_dump(exclude={"ExpenseBills", *SECTIONS.values()})
        values |= {attribute: records[element] for element, attribute in SECTIONS.items()}
        bills = self.batch.header.ExpenseBills
        if bills is not None or records["ExpenseTransaction"]:
            values["ExpenseBills"] = (bills.model_dump() if bills else {}) | {
                "ExpenseTransactions": records["ExpenseTransaction"]
            }
        return GLExport.model_validate(values)

    @property
    def expense_transactions(self) -> list[Any]:
        bills = self.document.ExpenseBills
        return bills.ExpenseTransactions if bills else []

    def records(self, kind: str) -> list[Any]:
        document = self.document
        return {
            "invoices": document.Transactions,
            "expenses": self.expense_transactions,
            "procurement": document.PurchaseTransactions,
        }[kind]


def keep(read: Callable[..., GLBatch], *args: Any, **kwargs: Any) -> KeptBatch:
    """`read(*args, sink=..., **kwargs)` with a sink that keeps everything."""
    kept = Kept()
    return KeptBatch(read(*args, sink=kept, **kwargs), kept)


def read_xml(raw: bytes) -> KeptBatch:
    return keep(read_glexport, [raw])


def read_json(raw: bytes, batch_id: str, kinds: dict[str, bool] | None = None) -> KeptBatch:
    return keep(read_rest_glexport, [raw], batch_id, kinds or dict.fromkeys(KINDS, True))
