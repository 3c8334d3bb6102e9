"""Invoice payment uploads: apply the accounting system's payments to ConnectWise invoices.

For each invoice touched by a batch of messages: read its ledger (one batched read for all of
them), send ConnectWise the cumulative amount of its distinct payments including the new ones,
and record the new payments in one conditional write (see `connector.payment_ledger` for why
that is safe without a lock). ConnectWise caps the amount at the invoice total; the discarded part
is reported as overage on the payment that caused it.

Why not Powertools' BatchProcessor and idempotency utility here: a batch is settled per invoice,
not per message, so that payments of one invoice arriving in one batch cost one ConnectWise call
and different invoices are settled in parallel; and the duplicate check must be by the payment's
own id across messages, which the ledger already does (messageId-keyed idempotency would let a
re-sent payment through). The partial batch response is built from the same outcomes.
"""

from collections import defaultdict
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field, replace
from datetime import UTC, datetime
from decimal import Decimal

from connector.errors import ConnectorError, InvalidRequestError
from connector.payment_ledger import FAILED, Entry, InvoiceLedger
from connector.payment_messages import Payment, RejectedPayment, parse_payment_message, payments_document
from connector.services import Services
from connectwise.errors import ConnectWiseError

MAX_PARALLEL_INVOICES = 8
SYNC_ATTEMPTS = 5  # reads and ConnectWise calls per invoice before the message is retried later


class InvoiceContendedError(ConnectorError):
    """Other invocations kept syncing this invoice meanwhile; the message is retried later."""

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


Group = list[tuple[str, Payment]]  # (message id, payment) for one invoice


def apply_payment_messages(messages: list[Message], services: Services) -> BatchResult:
    """Settle every payment of a batch of messages; transient faults mark their messages for retry."""
    result = BatchResult()
    groups: dict[tuple[str, str], Group] = defaultdict(list)
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

    known = services.settings.connection_secrets
    for (connection, _), group in groups.items():
        if connection not in known:
            error = f"unknown connection {connection!r} (configured: {', '.join(sorted(known)) or 'none'})"
            result.outcomes += [_outcome("failed", p, message_id, error=error) for message_id, p in group]
    states = services.payment_ledger.read_many(key for key in groups if key[0] in known)
    with ThreadPoolExecutor(max_workers=max(1, min(MAX_PARALLEL_INVOICES, len(states)))) as pool:
        futures = {
            key: pool.submit(settle_invoice, state, groups[key], services) for key, state in states.items()
        }
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


def settle_invoice(state: InvoiceLedger, group: Group, services: Services) -> list[PaymentOutcome]:
    """Bring ConnectWise to the cumulative amount of the invoice's payments, the group's included."""
    for _ in range(SYNC_ATTEMPTS):
        outcomes = _sync(state, group, services)
        if outcomes is not None:
            return outcomes
        state = services.payment_ledger.read(state.connection, state.invoice_number)  # synced meanwhile
    raise InvoiceContendedError(
        f"invoice {state.invoice_number} was synced by other invocations {SYNC_ATTEMPTS} times meanwhile"
    )


def _sync(state: InvoiceLedger, group: Group, services: Services) -> list[PaymentOutcome] | None:
    """One attempt on the ledger as read: the outcomes, or None if the invoice changed meanwhile.

    Every attempt with payments to count sends ConnectWise the cumulative amount, duplicates
    included: after an invocation died between its call and its write, the redelivered message
    must repair ConnectWise even if its payments were meanwhile recorded by another invocation.
    A payment recorded by an earlier delivery of the same message is reported again, as that
    delivery's invocation may have died before writing its results.
    """
    outcomes: list[PaymentOutcome] = []
    new: dict[str, Entry] = {}
    again: dict[str, Entry] = {}
    for message_id, payment in group:
        entry = _entry(payment, message_id)
        known = state.payments.get(payment.payment_id) or new.get(payment.payment_id)
        if known is None:
            new[payment.payment_id] = entry
        elif _fields(known) != _fields(entry):
            error = (
                f"payment {payment.payment_id} for invoice {state.invoice_number} was already recorded with "
                f"amount {known.amount} on {known.date_paid}; a payment id cannot change"
            )
            outcomes.append(_outcome("failed", payment, message_id, error=error))
        elif payment.payment_id not in state.payments:
            continue  # twice in this batch: counted and reported once
        elif known.message_id == message_id:
            again[payment.payment_id] = known
        else:  # settled before: nothing changes
            outcomes.append(_outcome("duplicate", payment, message_id, error=known.error))
    adding = sorted(new.values(), key=lambda e: (e.date_paid, e.payment_id))
    currency = _invoice_currency(state, adding)
    odd = [e for e in adding if currency and e.currency and e.currency != currency]
    error = f"invoice {state.invoice_number} is paid in {currency}; a payment in {{}} cannot be added"
    failed = [replace(e, state=FAILED, error=error.format(e.currency)) for e in odd]
    adding = [e for e in adding if e not in odd]

    counted = state.counted + adding
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
            failed += [replace(e, state=FAILED, error=exc.message) for e in adding]
            adding = []

    ledger = services.payment_ledger
    if reply is not None:
        overage = max(Decimal("0.00"), cumulative - reply.paid_amount)
        shares = _overage_shares(adding, overage - state.overage)
        adding = [replace(e, overage=shares[e.payment_id]) for e in adding]
        if not ledger.record(state, adding + failed, reply.paid_amount, reply.total, overage):
            return None
    elif failed and not ledger.record(state, failed):
        return None
    amount, total = (reply.paid_amount, reply.total) if reply else (state.applied, state.total)
    return outcomes + [
        _recorded_outcome(entry, state, cumulative, amount, total)
        for entry in [*again.values(), *failed, *adding]
    ]


def _recorded_outcome(
    entry: Entry, state: InvoiceLedger, cumulative: Decimal, amount: Decimal, total: Decimal | None
) -> PaymentOutcome:
    if entry.state == FAILED:
        return _entry_outcome("failed", state.connection, state.invoice_number, entry, error=entry.error)
    return _entry_outcome(
        "applied",
        state.connection,
        state.invoice_number,
        entry,
        cumulative=cumulative,
        connectwise_amount=amount,
        invoice_total=total,
        overage=entry.overage,
    )


def _entry(payment: Payment, message_id: str) -> Entry:
    return Entry(
        payment.payment_id,
        payment.paid_amount,
        payment.date_paid.isoformat(),
        payment.currency or "",
        message_id=message_id,
    )


def _fields(entry: Entry) -> tuple[Decimal, str, str]:
    return entry.amount, entry.date_paid, entry.currency


def _invoice_currency(state: InvoiceLedger, adding: list[Entry]) -> str:
    """The currency of the invoice's first recorded payment naming one, else of its first new one."""
    named = [e for e in state.counted if e.currency] or [e for e in adding if e.currency]
    return min(named, key=lambda e: e.date_paid).currency if named else ""


def _overage_shares(adding: list[Entry], new_overage: Decimal) -> dict[str, Decimal]:
    """What this sync newly discarded, charged to its latest payments first."""
    shares = {}
    remaining = max(new_overage, Decimal("0.00"))
    for entry in reversed(adding):
        shares[entry.payment_id] = min(entry.amount, remaining)
        remaining -= shares[entry.payment_id]
    return shares


def _outcome(status: str, payment: Payment, message_id: str, error: str = "") -> PaymentOutcome:
    """The outcome of a payment as received (not settled by a ConnectWise call)."""
    return _entry_outcome(
        status,
        payment.connection,
        payment.invoice_number,
        _entry(payment, message_id),
        error=error,
    )


def _entry_outcome(
    status: str,
    connection: str,
    invoice_number: str,
    entry: Entry,
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
        message_id=entry.message_id,
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
