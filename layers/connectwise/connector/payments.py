"""Invoice payment uploads: apply the accounting system's payments to ConnectWise invoices.

For each invoice touched by a batch of messages: record every payment in the per-invoice ledger
(a duplicate id changes nothing), then, holding the invoice's lease, send ConnectWise the
cumulative amount of the distinct payments until nothing is pending. ConnectWise caps the amount
at the invoice total; the discarded part is reported as overage on the payment that caused it.

Why not Powertools' BatchProcessor and idempotency utility here: a batch is settled per invoice,
not per message, so that payments of one invoice arriving in one batch cost one ConnectWise call
and different invoices are settled in parallel; and the duplicate check must be by the payment's
own id across messages, which the ledger already does (messageId-keyed idempotency would let a
re-sent payment through). The partial batch response is built from the same outcomes.
"""

import uuid
from collections import defaultdict
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from connector.errors import ConnectorError, InvalidRequestError
from connector.payment_ledger import APPLIED, FAILED, PENDING, Entry, InvoiceLedger
from connector.payment_messages import Payment, RejectedPayment, parse_payment_message, payments_document
from connector.services import Services
from connectwise.errors import ConnectWiseError

LEASE_SECONDS = 150  # longer than the function timeout: a lease outlives the invocation holding it
MAX_PARALLEL_INVOICES = 8


class InvoiceBusyError(ConnectorError):
    """Another invocation is syncing this invoice; the message is retried later."""

    transient = True


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
    cumulative: str = ""  # the distinct payments of the invoice, summed
    connectwise_amount: str = ""  # what ConnectWise holds after its cap
    invoice_total: str = ""
    overage: str = "0.00"  # the part of this payment ConnectWise discarded
    error: str = ""
    message_id: str = ""


@dataclass
class Message:
    message_id: str
    body: str
    connection: str | None = None  # from the message attribute `connection`


@dataclass
class BatchResult:
    outcomes: list[PaymentOutcome] = field(default_factory=list)
    retry: list[str] = field(default_factory=list)  # message ids that hit transient faults
    rejected: dict[str, str] = field(default_factory=dict)  # unreadable message id -> error
    errors: list[str] = field(default_factory=list)


def apply_payment_messages(messages: list[Message], services: Services) -> BatchResult:
    """Settle every payment of a batch of messages; transient faults mark their messages for retry."""
    result = BatchResult()
    groups: dict[tuple[str, str], list[tuple[str, Payment]]] = defaultdict(list)
    default_connection = services.settings.default_connection
    for message in messages:
        try:
            parsed = parse_payment_message(message.body, message.connection or default_connection)
        except InvalidRequestError as exc:
            result.rejected[message.message_id] = exc.message
            result.outcomes.append(
                PaymentOutcome(
                    "failed",
                    message.connection or "",
                    "",
                    "",
                    "",
                    "",
                    error=exc.message,
                    message_id=message.message_id,
                )
            )
            continue
        for item in parsed:
            if isinstance(item, RejectedPayment):
                result.outcomes.append(_rejected(item, message.message_id))
            else:
                groups[(item.connection, item.invoice_number)].append((message.message_id, item))

    with ThreadPoolExecutor(max_workers=max(1, min(MAX_PARALLEL_INVOICES, len(groups)))) as pool:
        futures = {key: pool.submit(settle_invoice, key, group, services) for key, group in groups.items()}
    for key, future in futures.items():
        try:
            result.outcomes.extend(future.result())
        except Exception as exc:
            if not _transient(exc):
                raise
            result.errors.append(f"invoice {key[1]}: {exc}")
            result.retry.extend({message_id for message_id, _ in groups[key]})
    result.retry = sorted(set(result.retry))
    return result


def settle_invoice(
    key: tuple[str, str], group: list[tuple[str, Payment]], services: Services
) -> list[PaymentOutcome]:
    """Record the invoice's new payments and bring ConnectWise to their cumulative amount."""
    connection, invoice_number = key
    ledger = services.payment_ledger
    outcomes: list[PaymentOutcome] = []
    if connection not in services.settings.connection_secrets:
        known = ", ".join(sorted(services.settings.connection_secrets)) or "none"
        error = f"unknown connection {connection!r} (configured: {known})"
        return [_outcome("failed", p, message_id, error=error) for message_id, p in group]

    message_ids: dict[str, str] = {}  # payment id -> the first message that carried it here
    entries: dict[str, Entry] = {}
    for message_id, payment in group:
        message_ids.setdefault(payment.payment_id, message_id)
        entries.setdefault(payment.payment_id, _entry(payment))

    token = uuid.uuid4().hex
    now = int(services.clock())
    state = ledger.claim(connection, invoice_number, list(entries.values()), token, now, LEASE_SECONDS)
    if state is None:
        raise InvoiceBusyError(f"invoice {invoice_number} is being settled by another invocation")
    try:
        for message_id, payment in group:
            recorded = state.payments[payment.payment_id]
            if _fields(recorded) != _fields(_entry(payment)):
                error = (
                    f"payment {payment.payment_id} for invoice {invoice_number} was already recorded with amount "
                    f"{recorded.amount} on {recorded.date_paid}; a payment id cannot change"
                )
                outcomes.append(_outcome("failed", payment, message_id, error=error))
            elif recorded.state != PENDING:  # settled before: nothing changes
                outcomes.append(_outcome("duplicate", payment, message_id, error=recorded.error))
        outcomes.extend(_sync(state, token, message_ids, services))
    except BaseException:
        ledger.release(connection, invoice_number, token)
        raise
    return outcomes


def _entry(payment: Payment) -> Entry:
    return Entry(
        payment.payment_id,
        payment.paid_amount,
        payment.date_paid.isoformat(),
        payment.currency or "",
        PENDING,
    )


def _fields(entry: Entry) -> tuple[Decimal, str, str]:
    return entry.amount, entry.date_paid, entry.currency


def _sync(
    state: InvoiceLedger, token: str, message_ids: dict[str, str], services: Services
) -> list[PaymentOutcome]:
    """Send the cumulative amount if anything is pending, then mark and give the lease back."""
    ledger = services.payment_ledger
    pending = state.pending
    if not pending and not state.resync:
        ledger.release(state.connection, state.invoice_number, token)
        return []
    odd, currency_error = _other_currency(state)
    marks: dict[str, tuple[str, str]] = {e.payment_id: (FAILED, currency_error) for e in odd}
    counted = [e for e in state.counted if e.payment_id not in marks]
    cumulative = sum((e.amount for e in counted), Decimal("0.00"))
    reply = None
    if counted:
        last_paid = max(datetime.fromisoformat(e.date_paid) for e in counted)
        try:
            reply = services.client_for(state.connection).update_invoice_payment(
                state.invoice_number, cumulative, last_paid
            )
        except ConnectWiseError as exc:
            if exc.transient:
                raise
            marks |= {e.payment_id: (FAILED, exc.message) for e in pending if e.payment_id not in marks}
    shares: dict[str, Decimal] = {}
    if reply is None:
        ledger.settle(state, token, marks)
    else:
        applied = [e for e in pending if e.payment_id not in marks]
        marks |= {e.payment_id: (APPLIED, "") for e in applied}
        overage = max(Decimal("0.00"), cumulative - reply.paid_amount)
        shares = _overage_shares(applied, overage - state.overage)
        ledger.settle(state, token, marks, applied=reply.paid_amount, total=reply.total, overage=overage)

    outcomes = []
    for entry in pending:
        status, error = marks[entry.payment_id]
        if status == FAILED or reply is None:
            outcomes.append(
                _entry_outcome(
                    "failed", state.connection, state.invoice_number, entry, message_ids, error=error
                )
            )
            continue
        outcomes.append(
            _entry_outcome(
                "applied",
                state.connection,
                state.invoice_number,
                entry,
                message_ids,
                cumulative=cumulative,
                connectwise_amount=reply.paid_amount,
                invoice_total=reply.total,
                overage=shares[entry.payment_id],
            )
        )
    return outcomes


def _other_currency(state: InvoiceLedger) -> tuple[list[Entry], str]:
    """Pending payments in another currency than the invoice's first payment that names one."""
    named = sorted((e for e in state.counted if e.currency), key=lambda e: (e.state != APPLIED, e.date_paid))
    odd = [e for e in state.pending if named and e.currency and e.currency != named[0].currency]
    if not odd:
        return [], ""
    return odd, (
        f"invoice {state.invoice_number} is paid in {named[0].currency}; "
        f"a payment in {odd[0].currency} cannot be added"
    )


def _overage_shares(pending: list[Any], new_overage: Decimal) -> dict[str, Decimal]:
    """What this sync newly discarded, charged to its latest payments first."""
    shares = {}
    remaining = max(new_overage, Decimal("0.00"))
    for entry in reversed(pending):
        shares[entry.payment_id] = min(entry.amount, remaining)
        remaining -= shares[entry.payment_id]
    return shares


def _outcome(status: str, payment: Payment, message_id: str, error: str = "") -> PaymentOutcome:
    """The outcome of a payment as received (not settled by a ConnectWise call)."""
    return _entry_outcome(
        status,
        payment.connection,
        payment.invoice_number,
        _entry(payment),
        {payment.payment_id: message_id},
        error=error,
    )


def _entry_outcome(
    status: str,
    connection: str,
    invoice_number: str,
    entry: Entry,
    message_ids: dict[str, str],
    error: str = "",
    cumulative: Decimal | None = None,
    connectwise_amount: Decimal | None = None,
    invoice_total: Decimal | None = None,
    overage: Decimal = Decimal("0.00"),
) -> PaymentOutcome:
    return PaymentOutcome(
        status=status,
        connection=connection,
        invoice_number=invoice_number,
        payment_id=entry.payment_id,
        paid_amount=str(entry.amount),
        date_paid=entry.date_paid,
        currency=entry.currency,
        cumulative="" if cumulative is None else str(cumulative),
        connectwise_amount="" if connectwise_amount is None else str(connectwise_amount),
        invoice_total="" if invoice_total is None else str(invoice_total),
        overage=str(overage),
        error=error,
        message_id=message_ids.get(entry.payment_id, ""),  # empty: recorded by another invocation
    )


def _rejected(item: RejectedPayment, message_id: str) -> PaymentOutcome:
    fields = item.fields
    return PaymentOutcome(
        status="failed",
        connection=fields.get("connection", ""),
        invoice_number=fields.get("invoice_number", ""),
        payment_id=fields.get("payment_id", ""),
        paid_amount=fields.get("paid_amount", ""),
        date_paid=fields.get("date_paid", ""),
        currency=fields.get("currency", ""),
        error=item.error,
        message_id=message_id,
    )


def _transient(exc: BaseException) -> bool:
    return isinstance(exc, ConnectorError | ConnectWiseError) and exc.transient


def overage_warning(outcome: PaymentOutcome) -> str:
    return (
        f"Paid amount exceeds the invoice total: ConnectWise capped invoice {outcome.invoice_number} at "
        f"{outcome.invoice_total} and discarded {outcome.overage}"
    )


def write_result_files(result: BatchResult, services: Services, request_id: str) -> dict[str, str]:
    """Success and fail files (reference XML shape + JSON Lines) for this invocation, in S3.

    The fail file lists failed payments and, as warnings, the overage ConnectWise discarded.
    """
    applied = [o for o in result.outcomes if o.status == "applied"]
    failed = [o for o in result.outcomes if o.status == "failed"]
    overages = [o for o in applied if Decimal(o.overage) > 0]
    fail_rows = [asdict(o) for o in failed] + [
        asdict(o) | {"status": "overage", "paid_amount": o.overage, "error": overage_warning(o)}
        for o in overages
    ]
    now = datetime.fromtimestamp(services.clock(), UTC)
    prefix = f"payments/{now:%Y/%m/%d}/{now:%H%M%S}-{request_id}"
    keys: dict[str, str] = {}
    store = services.store
    if applied:
        rows = [asdict(o) for o in applied]
        keys["success_xml"] = store.put(
            f"{prefix}-success.xml", payments_document(rows, with_errors=False), "application/xml"
        )
        keys["success_jsonl"] = store.put_json_lines(f"{prefix}-success.jsonl", rows)
    if fail_rows:
        keys["fail_xml"] = store.put(
            f"{prefix}-fail.xml", payments_document(fail_rows, with_errors=True), "application/xml"
        )
        keys["fail_jsonl"] = store.put_json_lines(f"{prefix}-fail.jsonl", fail_rows)
    return keys


def publish_outcomes(result: BatchResult, services: Services) -> None:
    entries = []
    for outcome in result.outcomes:
        if outcome.status == "applied":
            entries.append(("InvoicePaymentApplied", asdict(outcome)))
        elif outcome.status == "failed":
            entries.append(("InvoicePaymentFailed", asdict(outcome)))
    services.notices.publish_many(entries)
