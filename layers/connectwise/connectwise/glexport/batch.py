"""A downloaded GL batch: the document as ConnectWise sent it and as parsed, and what the
connector reads from it (counts, totals, GL entry ids, one JSON line per record)."""

from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from connectwise.glexport.models import ExpenseTransaction, GLExport, PurchaseTransaction, Transaction
from connectwise.models import KINDS


@dataclass(frozen=True)
class GLBatch:
    """A GLExport as ConnectWise sent it (`raw`, byte for byte: XML from the Accounting
    Interface, JSON from the REST API) and as parsed (`document`)."""

    raw: bytes
    document: GLExport
    ignored_elements: tuple[str, ...] = field(default=())
    media_type: str = "application/xml"

    @property
    def raw_name(self) -> str:
        """glexport.xml or glexport.json."""
        return "glexport.json" if self.media_type == "application/json" else "glexport.xml"

    @property
    def batch_id(self) -> str:
        return self.document.GLBatchID

    @property
    def expense_transactions(self) -> list[ExpenseTransaction]:
        bills = self.document.ExpenseBills
        return bills.ExpenseTransactions if bills else []

    def records(self, kind: str) -> list[Transaction] | list[ExpenseTransaction] | list[PurchaseTransaction]:
        if kind == "invoices":
            return self.document.Transactions
        if kind == "expenses":
            return self.expense_transactions
        if kind == "procurement":
            return self.document.PurchaseTransactions
        raise ValueError(f"unknown kind {kind!r}; expected one of {', '.join(KINDS)}")

    def counts(self) -> dict[str, int]:
        return {kind: len(self.records(kind)) for kind in KINDS}

    def totals(self) -> dict[str, Decimal]:
        return {kind: sum((r.Total for r in self.records(kind)), Decimal("0.00")) for kind in KINDS}

    @property
    def is_empty(self) -> bool:
        return not any(self.counts().values())

    def gl_entry_ids(self) -> list[int]:
        """Distinct ids of every `GLEntryRecID` attribute, sorted: what an update posts."""
        return sorted({i for ids in self.gl_entry_ids_by_kind().values() for i in ids})

    def gl_entry_ids_by_kind(self) -> dict[str, list[int]]:
        """The distinct GL entry ids of each kind's records (with their lines), sorted."""
        ids: dict[str, set[int]] = {kind: set() for kind in KINDS}
        for tx in self.document.Transactions:
            ids["invoices"].update(tx.GLEntryRecID)
            for detail in tx.Details:
                ids["invoices"].update(detail.GLEntryRecID)
        for expense in self.expense_transactions:
            ids["expenses"].update(expense.GLEntryRecID)
            for expense_detail in expense.ExpenseDetails:
                ids["expenses"].update(expense_detail.GLEntryRecID)
        for purchase in self.document.PurchaseTransactions:
            for purchase_detail in purchase.PurchaseDetails:
                ids["procurement"].update(purchase_detail.GLEntryRecID)
        return {kind: sorted(found) for kind, found in ids.items()}

    def summary(self) -> dict[str, Any]:
        """The JSON summary printed by `python -m connectwise glexport` and sent in events."""
        return {
            "batch_id": self.batch_id,
            "counts": self.counts(),
            "totals": {kind: str(total) for kind, total in self.totals().items()},
            "gl_entry_ids": len(self.gl_entry_ids()),
        }

    def json_lines(self) -> list[dict[str, Any]]:
        """One JSON-ready object per record, tagged with its element name and the batch id."""
        doc = self.document
        rows: list[dict[str, Any]] = []
        sections: list[tuple[str, list[Any]]] = [
            ("Vendor", doc.Vendors),
            ("Customer", doc.Customers),
            ("Transaction", doc.Transactions),
            ("ExpenseTransaction", self.expense_transactions),
            ("PurchaseTransaction", doc.PurchaseTransactions),
        ]
        for element, records in sections:
            for record in records:
                rows.append({"element": element, "GLBatchID": doc.GLBatchID} | record.model_dump(mode="json"))
        return rows
