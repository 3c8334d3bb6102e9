"""The sandbox's Accounting Interface: state kept as ConnectWise keeps it.

* An export hands out the unposted records of the chosen kinds under a fresh GLBatchID and
  marks nothing.
* An update adds GL entries to a batch; a record leaves the unposted lists once all its GL
  entries are in a batch. An empty list gets ConnectWise's documented PsaError.
* A recreate returns the records of an updated batch, with the include/exclude filters.
* An invoice keeps one payment: a later update replaces the amount, an amount above the total
  is capped at the total (the overage is discarded), and the paid date is only set once the
  invoice is fully paid. An unknown invoice number gets "Cannot find Invoice Number X"; numbers
  are matched without case, as ConnectWise's database compares them.
* The login's company id is matched without case (sandbox/company_ids.py), the rest exactly.
"""

import threading
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime
from decimal import Decimal

from connectwise.accounting_interface import wire
from sandbox import documents
from sandbox.company_ids import same_company
from sandbox.data import Expense, Invoice, PurchaseReceipt, Site

Reply = tuple[int, bytes]


@dataclass(frozen=True)
class Credentials:
    company: str = "sandbox"
    username: str = "accounting"
    password: str = "sandbox-password"  # noqa: S105 - the loopback sandbox's well-known login


class AccountingInterface:
    def __init__(self, site: Site, credentials: Credentials = Credentials()) -> None:
        self.site = site
        self.credentials = credentials
        self.posted: dict[int, str] = {}  # GL entry id -> batch id
        self.exported: set[str] = set()
        self.lock = threading.Lock()
        records: list[Invoice | Expense | PurchaseReceipt] = [*site.invoices, *site.expenses, *site.purchases]
        self.all_entry_ids = {i for record in records for i in record.entry_ids()}
        # ConnectWise's database compares invoice numbers without case (as its REST conditions do).
        self.invoices_by_number = {invoice.number.upper(): invoice for invoice in site.invoices}
        self.payment_updates = 0
        self.exports = 0  # exports of unposted records, through either side
        self.calls = 0  # GL page requests answered (the login accepted)
        self._payment_ids = iter(range(90001, 10**9))

    def new_payment_id(self) -> int:
        return next(self._payment_ids)

    def handle(self, form: Mapping[str, str]) -> Reply:
        """Answer one POST of the GL page."""
        if (
            not same_company(form.get(wire.COMPANY, ""), self.credentials.company)
            or form.get(wire.USERNAME) != self.credentials.username
            or form.get(wire.PASSWORD) != self.credentials.password
        ):
            return 200, documents.psa_error(wire.BAD_LOGIN)
        action = form.get(wire.ACTION)
        try:
            with self.lock:
                self.calls += 1
                if action == wire.EXPORT:
                    return 200, self.export(form)
                if action == wire.RECREATE:
                    return 200, self.recreate(form)
                if action == wire.UPDATE:
                    return 200, self.update(form)
                if action == wire.PAYMENT:
                    return 200, self.pay(form)
        except ValueError as exc:
            return 200, documents.psa_error(str(exc))
        return 200, documents.psa_error(f"Unknown action {action!r}")

    def export(self, form: Mapping[str, str]) -> bytes:
        kinds = _kinds(form)
        thru, owner = _thru_date(form), form.get(wire.OWNER_LEVEL, "")
        batch_id = self.site.new_batch_id()
        self.exported.add(batch_id)
        self.exports += 1

        def unposted(record: Invoice | Expense | PurchaseReceipt) -> bool:
            return (
                record.date <= thru
                and (not owner or owner == record.location)
                and any(i not in self.posted for i in record.entry_ids())
            )

        return documents.glexport(
            batch_id,
            kinds,
            [r for r in self.site.invoices if kinds["invoices"] and unposted(r)],
            [r for r in self.site.expenses if kinds["expenses"] and unposted(r)],
            [r for r in self.site.purchases if kinds["procurement"] and unposted(r)],
        )

    def update(self, form: Mapping[str, str]) -> bytes:
        batch_id = form.get(wire.BATCH_ID, "")
        ids = wire.parse_ids(form.get(wire.ENTRY_IDS))
        if not ids:
            return documents.psa_error(wire.EMPTY_ENTRY_LIST, "updateBatch")
        if batch_id not in self.exported:
            return documents.psa_error(f"{wire.UNKNOWN_BATCH} {batch_id}", "updateBatch")
        unknown = sorted(set(ids) - self.all_entry_ids)
        if unknown:
            return documents.psa_error(f"Cannot find GLEntryRecID {_first(unknown)}", "updateBatch")
        elsewhere = sorted(i for i in ids if self.posted.get(i, batch_id) != batch_id)
        if elsewhere:
            other = self.posted[elsewhere[0]]
            return documents.psa_error(
                f"GLEntryRecID {elsewhere[0]} is already in batch {other}", "updateBatch"
            )
        for entry_id in ids:
            self.posted[entry_id] = batch_id
        return documents.psa_data(wire.UPDATE_SUCCESS)

    def recreate(self, form: Mapping[str, str]) -> bytes:
        batch_id = form.get(wire.BATCH_ID, "")
        if batch_id not in set(self.posted.values()):
            return documents.psa_error(f"{wire.UNKNOWN_BATCH} {batch_id}", "recreateBatch")
        kinds = _kinds(form)
        thru, owner = _thru_date(form), form.get(wire.OWNER_LEVEL, "")
        lists = {key: set(wire.parse_ids(form.get(name))) for key, name in wire.RECREATE_FILTERS.items()}

        def selected(record: Invoice | Expense | PurchaseReceipt, kind: str) -> bool:
            include, exclude = lists[f"include_{kind}_ids"], lists[f"exclude_{kind}_ids"]
            return (
                any(self.posted.get(i) == batch_id for i in record.entry_ids())
                and record.date <= thru
                and (not owner or owner == record.location)
                and (not include or record.id in include)
                and record.id not in exclude
            )

        return documents.glexport(
            batch_id,
            kinds,
            [r for r in self.site.invoices if kinds["invoices"] and selected(r, "invoice")],
            [r for r in self.site.expenses if kinds["expenses"] and selected(r, "expense")],
            [r for r in self.site.purchases if kinds["procurement"] and selected(r, "inventory")],
        )

    def pay(self, form: Mapping[str, str]) -> bytes:
        number = form.get(wire.INVOICE_NUMBER, "")
        invoice = self.invoices_by_number.get(number.upper())
        if invoice is None:
            return documents.psa_error(f"{wire.UNKNOWN_INVOICE} {number}", "updateInvoicePayment")
        try:
            amount = Decimal(form.get(wire.PAID_AMOUNT, ""))
            paid_at = datetime.fromisoformat(form.get(wire.DATE_PAID, ""))
        except (ArithmeticError, ValueError):
            return documents.psa_error(
                f"{wire.INVALID_AMOUNT} for Invoice Number {number}", "updateInvoicePayment"
            )
        if not amount.is_finite() or amount < 0:
            return documents.psa_error(
                f"{wire.INVALID_AMOUNT} for Invoice Number {number}", "updateInvoicePayment"
            )
        invoice.paid_amount = min(amount, invoice.total).quantize(Decimal("0.01"))
        invoice.paid_date = paid_at if invoice.paid_amount == invoice.total else None
        invoice.updated_at = datetime.now(UTC).replace(microsecond=0)  # as REST's _info.lastUpdated
        invoice.payment_at = paid_at
        if invoice.payment_id is None:
            invoice.payment_id = self.new_payment_id()
        self.payment_updates += 1
        return documents.payment_reply(invoice)

    def unposted_invoice_numbers(self) -> list[str]:
        with self.lock:
            return [i.number for i in self.site.invoices if any(e not in self.posted for e in i.entry_ids())]


def _kinds(form: Mapping[str, str]) -> dict[str, bool]:
    return {
        "invoices": wire.parse_bool(form.get(wire.EXPORT_INVOICES)),
        "expenses": wire.parse_bool(form.get(wire.EXPORT_EXPENSES)),
        "procurement": wire.parse_bool(form.get(wire.EXPORT_INVENTORY)),
    }


def _thru_date(form: Mapping[str, str]) -> date:
    value = form.get(wire.THRU_DATE)
    try:
        return date.fromisoformat(value) if value else date.today()
    except ValueError:
        raise ValueError(f"Invalid ThruDate {value!r}") from None


def _first(ids: list[int]) -> str:
    return str(ids[0]) + (f" (and {len(ids) - 1} more)" if len(ids) > 1 else "")
