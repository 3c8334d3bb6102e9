"""An invoice's payment over REST: find the invoice by number, read its payment, create it or
replace its amount. The amount is capped at the invoice total here, as the Accounting Interface
caps it. ConnectWise keeps one payment per invoice for this connector."""

from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from connectwise.accounting_interface import wire
from connectwise.errors import (
    ConnectWiseError,
    DocumentError,
    OutcomeUnknownError,
    PsaError,
    UnknownInvoiceError,
)
from connectwise.models import PaymentApplied, check_payment
from connectwise.rest.api import RestApi, lookup


def update_invoice_payment(
    api: RestApi, invoice_number: str, paid_amount: Decimal, date_paid: datetime
) -> PaymentApplied:
    """Set the invoice's one payment to `paid_amount`, capped at the invoice total.

    Nothing is written when the payment already holds that amount and date. A write whose
    reply is lost is read back: it counts as applied only if the payment now shows it."""
    check_payment(invoice_number, paid_amount, date_paid)
    unknown = UnknownInvoiceError(f"{wire.UNKNOWN_INVOICE} {invoice_number}")
    condition = lookup("invoiceNumber", invoice_number, unknown)
    found = list(api.pages("/finance/invoices", conditions=condition, fields="id,invoiceNumber,total"))
    if not found:
        raise unknown
    invoice = found[0]
    total = _money(invoice.get("total"), f"invoice {invoice_number} total")
    path = f"/finance/invoices/{invoice['id']}/payments"
    amount = min(paid_amount, total)
    body: dict[str, Any] = {
        "type": "Payment",
        "invoice": {"id": invoice["id"]},
        "amount": amount,
        "paymentDate": date_paid.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
    }
    existing = _the_payment(api, path, invoice_number)
    held = existing if existing is not None and _holds(existing, body) else None
    if held is None:
        try:
            held = _write_payment(api, path, existing, body)
        except OutcomeUnknownError as lost:
            try:
                held = _the_payment(api, path, invoice_number)
            except ConnectWiseError:
                raise lost from None  # could not look: still unknown
            if held is None or not _holds(held, body):
                raise
    applied = _money(held.get("amount"), f"invoice {invoice_number} payment")
    return PaymentApplied(
        invoice_number=invoice_number,
        total=total,
        paid_amount=applied,
        date_paid=date_paid if applied == total else None,
    )


def _the_payment(api: RestApi, path: str, invoice_number: str) -> dict[str, Any] | None:
    payments = list(api.pages(path))
    if len(payments) > 1:
        raise PsaError(
            f"invoice {invoice_number} has {len(payments)} payments in ConnectWise; this connector keeps "
            "one payment per invoice and will not choose which to change"
        )
    return payments[0] if payments else None


def _write_payment(
    api: RestApi, path: str, existing: dict[str, Any] | None, body: dict[str, Any]
) -> dict[str, Any]:
    """Create the payment or replace its amount; never repeated in place (a late landing could
    overwrite a newer amount). Returns the payment as ConnectWise answered it."""
    if existing is None:
        try:
            return _payment_reply(api.json("POST", path, body, repeatable=False), path)
        except PsaError:
            existing = _the_payment(api, path, str(body["invoice"]["id"]))
            if existing is None:
                raise
            # Someone created it meanwhile (ConnectWise refuses a second one): replace its amount.
    reply = api.json("PUT", f"{path}/{existing['id']}", body | {"id": existing["id"]}, repeatable=False)
    return _payment_reply(reply, path)


def _money(value: Any, what: str) -> Decimal:
    if isinstance(value, bool) or not isinstance(value, int | Decimal):
        raise DocumentError(f"{what}: expected an amount, got {value!r}")
    return Decimal(value)


def _payment_reply(reply: Any, path: str) -> dict[str, Any]:
    """A written payment as ConnectWise answered it; a reply without its amount is no answer."""
    if (
        not isinstance(reply, dict)
        or isinstance(reply.get("amount"), bool)
        or not isinstance(reply.get("amount"), int | Decimal)
    ):
        raise OutcomeUnknownError(
            f"{path}: the reply holds no payment amount; ConnectWise may have applied it"
        )
    return reply


def _holds(payment: dict[str, Any], body: dict[str, Any]) -> bool:
    """Whether ConnectWise's payment already holds the amount and date of `body`."""
    try:
        held = datetime.fromisoformat(str(payment.get("paymentDate")).replace("Z", "+00:00"))
        wanted = datetime.fromisoformat(str(body["paymentDate"]).replace("Z", "+00:00"))
    except ValueError:
        return False
    amount = payment.get("amount")
    return isinstance(amount, int | Decimal) and Decimal(amount) == body["amount"] and held == wanted
