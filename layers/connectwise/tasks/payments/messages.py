"""Payment messages from the accounting system: JSON or Zynk's ArrayOfUpdateInvoicePayment XML.

A message carries one payment or many. Two meanings arrive:

* an individual payment, with its own id (every JSON payment; an XML entry with `PaymentId`):
  the invoice's payments are summed;
* the invoice's paid-to-date amount (an XML entry without `PaymentId`, as Zynk users send it:
  a later update replaces the earlier one). Its id is derived from its content, so the same
  entry sent again is recognised.

JSON numbers are read as Decimal, never float. Each payment is validated on its own: a bad one
is rejected with its index and problem while the others in the message go ahead.
"""

import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any
from xml.etree.ElementTree import Element

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, ValidationError

from connectwise.errors import DocumentError
from connectwise.safexml import parse_xml
from tasks.platform.errors import InvalidRequestError, describe_validation
from tasks.platform.payment_ledger import PAID_TO_DATE, PAYMENT
from tasks.platform.requests import ConnectionName

XML_ROOT = "ArrayOfUpdateInvoicePayment"
XML_ITEM = "UpdateInvoicePayment"


class Payment(BaseModel):
    """One customer payment against one ConnectWise invoice."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    connection: str = ConnectionName
    invoice_number: str = Field(min_length=1, max_length=50, pattern=r"^\S(.*\S)?$")
    paid_amount: Decimal = Field(gt=0, max_digits=15, decimal_places=2, allow_inf_nan=False)
    date_paid: AwareDatetime
    payment_id: str = Field(min_length=1, max_length=128, pattern=r"^[^\s]+$")
    currency: str | None = Field(default=None, pattern=r"^[A-Z]{3}$")
    kind: str = Field(PAYMENT, pattern=f"^({PAYMENT}|{PAID_TO_DATE})$")  # set by the format (module doc)


@dataclass(frozen=True)
class RejectedPayment:
    """A payment that cannot be applied as given; `fields` is what could be read of it."""

    index: int
    fields: dict[str, str]
    error: str


def parse_payment_message(body: str, connection: str | None) -> list[Payment | RejectedPayment]:
    """Every payment of a message, validated one by one.

    `connection` comes from the message (its `connection` attribute, else its MessageGroupId);
    a JSON payment may name it too, but not another one. Raises InvalidRequestError when the message as a whole is unreadable,
    whatever the reason (hostile nesting included): one message never fails the others.
    """
    try:
        return _parse(body, connection)
    except InvalidRequestError:
        raise
    except Exception as exc:
        raise InvalidRequestError(f"payment message is unreadable: {type(exc).__name__}") from None


def _parse(body: str, connection: str | None) -> list[Payment | RejectedPayment]:
    text = body.strip()
    if text.startswith("<"):
        return [
            validate_payment(i, fields, connection) for i, fields in enumerate(_xml_payments(text.encode()))
        ]
    try:
        data = json.loads(text, parse_float=Decimal)
    except json.JSONDecodeError as exc:
        raise InvalidRequestError(
            f"payment message is neither JSON nor XML: {exc.msg} at position {exc.pos}"
        ) from None
    if isinstance(data, dict) and "payments" in data:
        data = data["payments"]
    items = data if isinstance(data, list) else [data]
    if not items:
        raise InvalidRequestError("payment message holds no payment")
    return [validate_json_payment(i, item, connection) for i, item in enumerate(items)]


def validate_json_payment(index: int, item: Any, connection: str | None) -> Payment | RejectedPayment:
    """A JSON payment, which is always an individual payment: it may not say its kind."""
    if isinstance(item, dict) and "kind" in item:
        return RejectedPayment(
            index, {}, f"payment {index}: kind is not taken from JSON (JSON payments are individual payments)"
        )
    return validate_payment(index, item, connection)


def validate_payment(index: int, item: Any, connection: str | None) -> Payment | RejectedPayment:
    """One payment as read (a JSON object, or an XML entry's fields), or why it is refused."""
    if not isinstance(item, dict):
        return RejectedPayment(index, {}, f"payment {index}: expected an object, got {type(item).__name__}")
    fields = dict(item)
    if connection and fields.setdefault("connection", connection) != connection:
        shown = {key: str(value)[:100] for key, value in fields.items() if key in _SHOWN}
        return RejectedPayment(
            index,
            shown,
            f"payment {index}: names connection {str(fields['connection'])[:64]!r} but was sent for "
            f"connection {connection!r} (message attribute or group); send it for its own connection",
        )
    try:
        return Payment.model_validate(fields)
    except ValidationError as exc:
        shown = {key: str(value)[:100] for key, value in fields.items() if key in _SHOWN}
        label = f"payment {index}" + (
            f" (invoice {shown['invoice_number']})" if shown.get("invoice_number") else ""
        )
        return RejectedPayment(index, shown, f"{label}: {describe_validation(exc)}")


_SHOWN = ("connection", "invoice_number", "paid_amount", "date_paid", "payment_id", "currency", "kind")


def _xml_payments(raw: bytes) -> list[dict[str, Any]]:
    try:
        root = parse_xml(raw, "payment document")
    except DocumentError as exc:
        raise InvalidRequestError(exc.message) from None
    if root.tag != XML_ROOT:
        raise InvalidRequestError(f"expected <{XML_ROOT}>, got <{root.tag}>")
    items = []
    for element in root:
        if element.tag != XML_ITEM:
            raise InvalidRequestError(f"unexpected <{element.tag}> in <{XML_ROOT}>")
        items.append(_xml_fields(element))
    if not items:
        raise InvalidRequestError("payment message holds no payment")
    return items


def _xml_fields(element: Element) -> dict[str, Any]:
    def text(name: str) -> str | None:
        child = element.find(name)
        return None if child is None or child.text is None else child.text.strip()

    return xml_payment_fields(text)


def xml_payment_fields(text: Callable[[str], str | None]) -> dict[str, Any]:
    """An `UpdateInvoicePayment`'s fields from `text(child)` (its first such child's text,
    stripped, or None), with its kind and, for a paid-to-date entry, its content-derived id."""
    fields: dict[str, Any] = {
        "invoice_number": text("InvoiceNumber"),
        "paid_amount": text("PaidAmount"),
        "date_paid": text("DatePaid"),
    }
    if text("Currency"):
        fields["currency"] = text("Currency")
    if text("PaymentId"):
        fields["payment_id"], fields["kind"] = text("PaymentId"), PAYMENT
    else:
        # The invoice's paid-to-date amount: its id is its content, so the same entry sent again
        # is recognised and two different amounts or dates never share an id.
        content = "|".join(str(fields[k]) for k in ("invoice_number", "paid_amount", "date_paid"))
        fields["payment_id"] = "ptd-" + hashlib.sha256(content.encode()).hexdigest()[:24]
        fields["kind"] = PAID_TO_DATE
    return {k: v for k, v in fields.items() if v is not None}


def payments_document(rows: list[dict[str, Any]], with_errors: bool) -> bytes:
    """Success or fail file in the reference XML shape (Zynk's ArrayOfUpdateInvoicePayment).

    An individual payment carries its `PaymentId`; an entry without one is a paid-to-date amount,
    as in the input."""
    lines = [
        '<?xml version="1.0" encoding="utf-8"?>',
        f'<{XML_ROOT} xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" xmlns:xsd="http://www.w3.org/2001/XMLSchema">',
    ]
    for row in rows:
        lines.append(f"  <{XML_ITEM}>")
        lines.append(f"    <InvoiceNumber>{_escape(row.get('invoice_number', ''))}</InvoiceNumber>")
        lines.append(f"    <PaidAmount>{_escape(row.get('paid_amount', ''))}</PaidAmount>")
        lines.append(f"    <DatePaid>{_escape(row.get('date_paid', ''))}</DatePaid>")
        if row.get("kind") == PAYMENT and row.get("payment_id"):
            lines.append(f"    <PaymentId>{_escape(row['payment_id'])}</PaymentId>")
        if with_errors:
            lines.append(f"    <ErrorMessage>{_escape(row.get('error', ''))}</ErrorMessage>")
        lines.append(f"  </{XML_ITEM}>")
    lines.append(f"</{XML_ROOT}>")
    return ("\n".join(lines) + "\n").encode()


def _escape(value: Any) -> str:
    text = value.isoformat() if isinstance(value, datetime) else str(value)
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
