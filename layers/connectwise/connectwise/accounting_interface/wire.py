"""The Accounting Interface's wire format: the one place that holds what is reconstructed.

ConnectWise never published how the GL page is called. What is confirmed (see
shared/reference/legacy_soap_and_accounting_interface.md, section B):

* it is an ASP.NET page of the handler `App.services.system_io.GLEntry.GLEntry_GeneralLedger`
  under `/<PSA directory>/services/system_io/GLEntry/`, the directory being `v4_6_release`;
* it logs in a normal member (company, username, password);
* the names `ExportInvoices`, `ExportExpenses`, `ExportInventory`, `GLBatchID` (response
  attributes) and `GLEntryRecIDList` (error text); GL entry ids travel comma-separated;
* replies are a GLExport document, `<PsaData>` on success or `<PsaError>` on failure;
* invoice payments are given as InvoiceNumber, PaidAmount, DatePaid (Zynk's document names),
  one payment per invoice, and an unknown invoice fails with "Cannot find Invoice Number X".

RECONSTRUCTED here, not confirmed: the page name, the HTTP method (a form POST), the name of
every other parameter and of the actions, the text of errors other than the empty-list and
unknown-invoice ones, and the payment reply's attributes (the invoice's Total, the PaidAmount
ConnectWise now holds after capping, and DatePaid once fully paid). The client (`connectwise.accounting_interface.client`) and the sandbox both use this module, so a
correction from a real site is a change to this file alone.
"""

from collections.abc import Iterable, Mapping
from datetime import date, datetime
from decimal import Decimal

from connectwise.glexport.values import parse_ids

__all__ = ["parse_ids"]  # GL entry ids are read as the documents write them

PAGE_PATH = "services/system_io/GLEntry/GeneralLedger.aspx"  # reconstructed page name
METHOD = "POST"  # reconstructed: form-encoded body

# Member login (reconstructed names).
COMPANY = "CompanyId"
USERNAME = "MemberId"
PASSWORD = "Password"  # noqa: S105 - a field name, not a password

ACTION = "Action"
EXPORT = "ExportGLBatch"
RECREATE = "RecreateGLBatch"
UPDATE = "UpdateGLBatch"
PAYMENT = "UpdateInvoicePayment"

# Confirmed as attribute names of the GLExport root; used as request names too.
EXPORT_INVOICES = "ExportInvoices"
EXPORT_EXPENSES = "ExportExpenses"
EXPORT_INVENTORY = "ExportInventory"
BATCH_ID = "GLBatchID"
ENTRY_IDS = "GLEntryRecIDList"  # confirmed by the PsaError text

# Invoice payment fields: the element names of Zynk's ArrayOfUpdateInvoicePayment document.
INVOICE_NUMBER = "InvoiceNumber"
PAID_AMOUNT = "PaidAmount"
DATE_PAID = "DatePaid"
INVOICE_TOTAL = "Total"  # reconstructed: attribute of the payment reply

THRU_DATE = "ThruDate"
OWNER_LEVEL = "OwnerLevel"

# Recreate filters: the six record-id lists of Zynk's settings, wire names reconstructed.
RECREATE_FILTERS = {
    "include_invoice_ids": "IncludedInvoiceRecIDs",
    "exclude_invoice_ids": "ExcludedInvoiceRecIDs",
    "include_expense_ids": "IncludedExpenseRecIDs",
    "exclude_expense_ids": "ExcludedExpenseRecIDs",
    "include_inventory_ids": "IncludedInventoryRecIDs",
    "exclude_inventory_ids": "ExcludedInventoryRecIDs",
}

# Confirmed texts.
UPDATE_SUCCESS = "Batch update was successful"
EMPTY_ENTRY_LIST = "Cannot find GLEntryRecIDList to update"
UNKNOWN_INVOICE = "Cannot find Invoice Number"
# Reconstructed texts (the sandbox says these; the client recognises them).
BAD_LOGIN = "Username or password is incorrect"
UNKNOWN_BATCH = "Cannot find GL batch"
INVALID_AMOUNT = "Invalid PaidAmount"
PAYMENT_SUCCESS = "Invoice payment update was successful"


def page_url(site: str, directory: str, use_ssl: bool) -> str:
    scheme = "https" if use_ssl else "http"
    return f"{scheme}://{site}/{directory.strip('/')}/{PAGE_PATH}"


def format_bool(value: bool) -> str:
    return "True" if value else "False"


def parse_bool(value: str | None) -> bool:
    return (value or "").strip().lower() in {"true", "y", "yes", "1"}


def format_ids(ids: Iterable[int]) -> str:
    return ",".join(str(i) for i in ids)


def login_fields(company: str, username: str, password: str) -> dict[str, str]:
    return {COMPANY: company, USERNAME: username, PASSWORD: password}


def export_fields(
    invoices: bool, expenses: bool, procurement: bool, thru_date: date | None, owner_level: str | None
) -> dict[str, str]:
    fields = {
        ACTION: EXPORT,
        EXPORT_INVOICES: format_bool(invoices),
        EXPORT_EXPENSES: format_bool(expenses),
        EXPORT_INVENTORY: format_bool(procurement),
    }
    return fields | _period_fields(thru_date, owner_level)


def recreate_fields(
    batch_id: str,
    filters: Mapping[str, Iterable[int]],
    thru_date: date | None,
    owner_level: str | None,
    invoices: bool = True,
    expenses: bool = True,
    procurement: bool = True,
) -> dict[str, str]:
    fields = {
        ACTION: RECREATE,
        BATCH_ID: batch_id,
        EXPORT_INVOICES: format_bool(invoices),
        EXPORT_EXPENSES: format_bool(expenses),
        EXPORT_INVENTORY: format_bool(procurement),
    }
    for key, wire_name in RECREATE_FILTERS.items():
        ids = list(filters.get(key, ()))
        if ids:
            fields[wire_name] = format_ids(ids)
    return fields | _period_fields(thru_date, owner_level)


def update_fields(batch_id: str, gl_entry_ids: Iterable[int]) -> dict[str, str]:
    return {ACTION: UPDATE, BATCH_ID: batch_id, ENTRY_IDS: format_ids(gl_entry_ids)}


def payment_fields(invoice_number: str, paid_amount: Decimal, date_paid: datetime) -> dict[str, str]:
    """The single payment ConnectWise keeps for an invoice: the amount replaces any earlier one."""
    return {
        ACTION: PAYMENT,
        INVOICE_NUMBER: invoice_number,
        PAID_AMOUNT: f"{paid_amount:.2f}",
        DATE_PAID: date_paid.isoformat(),
    }


def _period_fields(thru_date: date | None, owner_level: str | None) -> dict[str, str]:
    fields = {}
    if thru_date is not None:
        fields[THRU_DATE] = thru_date.isoformat()
    if owner_level:
        fields[OWNER_LEVEL] = owner_level
    return fields
