"""What a batch of payment messages comes to: one outcome per payment, and the messages to
retry or keep in the DLQ."""

from dataclasses import dataclass, field
from decimal import Decimal

from tasks.payments.messages import Payment, RejectedPayment
from tasks.platform.payment_ledger import APPLIED, PAYMENT, Entry, InvoiceLedger
from tasks.platform.requests import is_connection_name

Group = list[tuple[str, Payment]]  # (message id, payment) for one invoice


@dataclass
class PaymentOutcome:
    """What happened to one payment: applied, duplicate (no-op) or failed (permanent)."""

    status: str
    connection: str
    invoice_number: str
    payment_id: str
    paid_amount: str
    date_paid: str
    currency: str = ""
    kind: str = PAYMENT  # "payment" (summed) or "paid_to_date" (the invoice's amount, set)
    cumulative: str = ""  # what the invoice's payments give: their sum, or the latest paid-to-date
    connectwise_amount: str = ""  # what ConnectWise holds after its cap
    invoice_total: str = ""
    overage: str = "0.00"  # the part of this payment ConnectWise discarded
    error: str = ""
    message_id: str = ""


@dataclass
class Message:
    message_id: str
    body: str
    connection: str | None = None  # from the message attribute `connection`, else its MessageGroupId
    refused: str = ""  # why the message as a whole cannot be applied (its connection unclear)


@dataclass
class BatchResult:
    outcomes: list[PaymentOutcome] = field(default_factory=list)
    retry: list[str] = field(default_factory=list)  # message ids that hit transient faults
    rejected: dict[str, str] = field(default_factory=dict)  # message id -> error, copied to the DLQ
    errors: list[str] = field(default_factory=list)


def entry_of(payment: Payment, message_id: str, seq: int) -> Entry:
    return Entry(
        payment.payment_id,
        payment.paid_amount,
        payment.date_paid.isoformat(),
        payment.currency or "",
        kind=payment.kind,
        message_id=message_id,
        seq=seq,
    )


def applied_outcomes(state: InvoiceLedger, reported: dict[str, str]) -> list[PaymentOutcome]:
    return [
        entry_outcome(
            "applied",
            state,
            state.payments[payment_id],
            cumulative=state.cumulative,
            connectwise_amount=state.applied,
            invoice_total=state.total,
            overage=state.payments[payment_id].overage,
        )
        for payment_id in reported
        if state.payments[payment_id].state == APPLIED
    ]


def failed_outcomes(group: Group, error: str) -> list[PaymentOutcome]:
    return [received_outcome("failed", payment, message_id, error=error) for message_id, payment in group]


def received_outcome(status: str, payment: Payment, message_id: str, error: str = "") -> PaymentOutcome:
    """The outcome of a payment as received (not settled by a ConnectWise call)."""
    return entry_outcome(status, payment, entry_of(payment, message_id, 0), error=error)


def entry_outcome(
    status: str,
    invoice: InvoiceLedger | Payment,  # its connection and number
    entry: Entry,
    error: str = "",
    cumulative: Decimal | None = None,
    connectwise_amount: Decimal | None = None,
    invoice_total: Decimal | None = None,
    overage: Decimal = Decimal("0.00"),
) -> PaymentOutcome:
    return PaymentOutcome(
        status=status,
        connection=invoice.connection,
        invoice_number=invoice.invoice_number,
        payment_id=entry.payment_id,
        paid_amount=str(entry.amount),
        date_paid=entry.date_paid,
        currency=entry.currency,
        kind=entry.kind,
        cumulative="" if cumulative is None else str(cumulative),
        connectwise_amount="" if connectwise_amount is None else str(connectwise_amount),
        invoice_total="" if invoice_total is None else str(invoice_total),
        overage=str(overage),
        error=error,
        message_id=entry.message_id,
    )


def rejected_outcome(item: RejectedPayment, message_id: str, sent_for: str | None) -> PaymentOutcome:
    """Filed under the connection the message was sent for; a name read from the payment only
    when the message named none and it is a connection's name (it becomes an S3 prefix)."""
    fields = item.fields
    claimed = fields.get("connection", "")
    return PaymentOutcome(
        status="failed",
        connection=sent_for or (claimed if is_connection_name(claimed) else ""),
        invoice_number=fields.get("invoice_number", ""),
        payment_id=fields.get("payment_id", ""),
        paid_amount=fields.get("paid_amount", ""),
        date_paid=fields.get("date_paid", ""),
        currency=fields.get("currency", ""),
        kind=fields.get("kind", PAYMENT),
        error=item.error,
        message_id=message_id,
    )
