"""Settle invoice payments: bring each ConnectWise invoice to the amount of its payments.

For each invoice touched by a batch of messages (one batched ledger read for all of them):

1. classify the message's payments against the invoice's ledger: new (or failed before: a
   failed payment is tried again), already counted (pending or applied), a conflict (a payment
   id sent again with other fields), a duplicate (applied, reported by another message);
2. take the invoice's lease and write the new payments `pending` in one conditional write;
   if another invocation holds the lease, only add them `pending` (the holder sends them) and
   retry the message later;
3. send ConnectWise the invoice's amount (the sum of its payments, or its latest paid-to-date
   amount), capped at the total;
4. on a readable reply, mark the counted payments `applied` and give the lease up in one
   conditional write; if other invocations added payments meanwhile, send again with them.

What a failed call leaves (see `tasks.platform.payment_ledger`):
* refused (unknown invoice, 4xx): this message's new payments become `failed`, not counted, and
  are tried again when sent again; credentials refused also copies the message to the DLQ;
* not run (429 longer than the time left, no connection): the payments stay `pending` and the
  message is retried;
* outcome unknown (the reply was lost or unreadable): the payments stay `pending` (counted: the
  ledger never holds less than it was given), the lease is held for HOLD_AFTER_UNKNOWN seconds
  so that no other write can be overtaken by a late landing, and the message is retried: its
  next delivery, after the queue's visibility timeout, sends the amount again.

Why not Powertools' BatchProcessor and idempotency utility here: a batch is settled per invoice,
not per message, so that payments of one invoice arriving in one batch cost one ConnectWise call
and different invoices are settled in parallel; and the duplicate check must be by the payment's
own id across messages, which the ledger already does (messageId-keyed idempotency would let a
re-sent payment through). The partial batch response is built from the same outcomes.
"""

import uuid
from collections import defaultdict
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from decimal import Decimal
from typing import Any

from connectwise.errors import AuthenticationError, ConnectWiseError, OutcomeUnknownError
from connectwise.transport import HOLD_AFTER_UNKNOWN, Deadline
from tasks.payments.messages import RejectedPayment, parse_payment_message
from tasks.payments.outcomes import (
    BatchResult,
    Group,
    Message,
    PaymentOutcome,
    applied_outcomes,
    entry_of,
    entry_outcome,
    failed_outcomes,
    received_outcome,
    rejected_outcome,
)
from tasks.platform.errors import ConfigurationError, ConnectorError, InvalidRequestError, is_transient
from tasks.platform.payment_ledger import (
    APPLIED,
    FAILED,
    PAID_TO_DATE,
    PAYMENT,
    PENDING,
    Entry,
    InvoiceLedger,
)
from tasks.platform.secrets import refusal
from tasks.platform.services import Services

MAX_PARALLEL_INVOICES = 8
SYNC_ATTEMPTS = 5  # writes lost to other invocations per invoice before the message is retried later
MAX_LEASE = 900.0  # seconds: Lambda's longest invocation
MAX_ENTRIES = 500  # payments recorded per invoice: the ledger item stays far below DynamoDB's 400 KB


class InvoiceBusyError(ConnectorError):
    """Another invocation holds the invoice (or a write of unknown outcome does): retried later."""

    transient = True


class ConnectionFailedError(ConnectorError):
    """The connection itself failed (credentials refused, secret missing): the payments failed
    and their messages are kept in the DLQ, to be re-driven once the connection is fixed."""

    def __init__(self, message: str, outcomes: list[PaymentOutcome]) -> None:
        super().__init__(message)
        self.outcomes = outcomes


def apply_payment_messages(
    messages: list[Message], services: Services, deadline: Deadline | None = None
) -> BatchResult:
    """Settle every payment of a batch of messages; transient faults mark their messages for retry."""
    deadline = deadline or Deadline()
    result = BatchResult()
    groups: dict[tuple[str, str], Group] = defaultdict(list)
    for message in messages:
        try:
            if message.refused:
                raise InvalidRequestError(message.refused)
            parsed = parse_payment_message(message.body, message.connection)
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
                result.outcomes.append(rejected_outcome(item, message.message_id, message.connection))
            else:
                groups[(item.connection, item.invoice_number.upper())].append((message.message_id, item))

    refused = {connection: _refusal(connection, services) for connection in {c for c, _ in groups}}
    for (connection, _), group in groups.items():
        error = refused[connection]
        if error:  # kept in the DLQ with the reason, to be re-driven once the connection is served
            _connection_failed(result, ConnectionFailedError(error, failed_outcomes(group, error)), group)
    states = services.payment_ledger.read_many(key for key in groups if not refused[key[0]])
    with ThreadPoolExecutor(max_workers=max(1, min(MAX_PARALLEL_INVOICES, len(states)))) as pool:
        futures = {  # each invoice under the number as its first payment gives it
            key: pool.submit(
                settle_invoice,
                replace(state, invoice_number=groups[key][0][1].invoice_number),
                groups[key],
                services,
                deadline,
            )
            for key, state in states.items()
        }
    for key, future in futures.items():
        try:
            result.outcomes.extend(future.result())
        except ConnectionFailedError as exc:
            _connection_failed(result, exc, groups[key])
        except Exception as exc:
            if not is_transient(exc):
                services.log.exception(
                    "unexpected failure settling an invoice; its messages are retried",
                    extra={"invoice": key[1]},
                )
            result.errors.append(f"invoice {key[1]}: {exc}")
            result.retry.extend({message_id for message_id, _ in groups[key]})
    result.retry = sorted(set(result.retry))
    for message_id in result.retry:
        result.rejected.pop(message_id, None)  # it comes back anyway: no copy in the DLQ
    return result


def _refusal(connection: str, services: Services) -> str | None:
    """Why a connection's payments cannot be applied now (an unreadable entry refuses its own
    payments, never the others' in the batch)."""
    try:
        return refusal(connection, services.entry(connection))
    except ConfigurationError as exc:
        return exc.message


def _unusable(state: InvoiceLedger, plan: "Plan", error: str) -> Exception:
    """The connection cannot be used (its secret unreadable or invalid): only what is new fails;
    what is applied is reported as it is, and what may be in ConnectWise waits for a retry."""
    waiting = [p for p in plan.ours if p in state.payments] + [
        p
        for p in plan.again
        if not state.payments[p].reported  # its report must be recorded
    ]
    if waiting:
        return InvoiceBusyError(f"invoice {state.invoice_number}: {error}; payment {waiting[0]} is retried")
    failed = [entry_outcome("failed", state, e, error=error) for e in plan.adding]
    return ConnectionFailedError(error, plan.outcomes + failed + applied_outcomes(state, plan.again))


def _connection_failed(result: BatchResult, exc: ConnectionFailedError, group: Group) -> None:
    result.outcomes.extend(exc.outcomes)
    for message_id, _ in group:
        result.rejected.setdefault(message_id, exc.message)


def settle_invoice(
    state: InvoiceLedger, group: Group, services: Services, deadline: Deadline
) -> list[PaymentOutcome]:
    """Bring ConnectWise to the amount of the invoice's payments, the group's included."""
    try:
        client = services.client_for(state.connection).within(deadline)
    except ConfigurationError as exc:
        raise _unusable(state, _plan(state, group), exc.message) from None
    ledger, token = services.payment_ledger, uuid.uuid4().hex
    for _ in range(SYNC_ATTEMPTS):
        plan = _plan(state, group)
        now = services.clock()
        if state.leased_by_another(token, now):
            if plan.writes and ledger.write(state, plan.writes) is None:
                state = ledger.read(state.connection, state.invoice_number)
                continue
            # Reporting a payment another sync applied must be recorded with it: only the holder can.
            if plan.ours or any(not state.payments[p].reported for p in plan.again):
                raise InvoiceBusyError(
                    f"invoice {state.invoice_number} is being synced by another invocation; retried later"
                )
            return plan.outcomes + applied_outcomes(state, plan.again)
        if not state.counted and not plan.adding:  # nothing to send ConnectWise: only failures
            if plan.writes and ledger.write(state, plan.writes) is None:
                state = ledger.read(state.connection, state.invoice_number)
                continue
            return plan.outcomes
        life = min(deadline.left(), MAX_LEASE)  # past it, this invocation is no more
        leased = ledger.write(state, plan.writes, lease=(token, now + life + HOLD_AFTER_UNKNOWN))
        if leased is None:
            state = ledger.read(state.connection, state.invoice_number)
            continue
        return _sync(leased, plan, token, client, services)
    raise InvoiceBusyError(
        f"invoice {state.invoice_number} was changed by other invocations {SYNC_ATTEMPTS} times meanwhile"
    )


@dataclass
class Plan:
    """What a group of payments means for an invoice as read."""

    outcomes: list[PaymentOutcome] = field(default_factory=list)  # settled without ConnectWise
    adding: list[Entry] = field(default_factory=list)  # new (or failed before): pending from now
    refused: list[Entry] = field(default_factory=list)  # new but not addable (currency, kind)
    ours: dict[str, str] = field(default_factory=dict)  # payment id -> message that reports it
    again: dict[str, str] = field(default_factory=dict)  # applied, reported again to its message

    @property
    def writes(self) -> list[Entry]:
        return self.adding + self.refused


def _plan(state: InvoiceLedger, group: Group) -> Plan:
    """Classify the group's payments. A payment recorded by an earlier delivery of the same
    message is reported again, as that delivery's invocation may have died before its results."""
    plan = Plan()
    new: dict[str, Entry] = {}
    seq = state.next_seq
    for message_id, payment in group:
        entry = entry_of(payment, message_id, seq)
        known = new.get(payment.payment_id) or state.payments.get(payment.payment_id)
        if known is not None and known.state != FAILED and not _same(known, entry):
            error = (
                f"payment {payment.payment_id} for invoice {state.invoice_number} was already recorded with "
                f"amount {known.amount} on {known.date_paid}; a payment id cannot change"
            )
            plan.outcomes.append(received_outcome("failed", payment, message_id, error=error))
        elif payment.payment_id in new:
            continue  # twice in this batch: counted and reported once
        elif known is None and len(state.payments) + len(new) >= MAX_ENTRIES:
            error = (
                f"invoice {state.invoice_number} already has {MAX_ENTRIES} payments recorded, as many as "
                "the connector keeps for one invoice; this one is not recorded"
            )
            plan.outcomes.append(received_outcome("failed", payment, message_id, error=error))
        elif known is None or known.state == FAILED:
            new[payment.payment_id] = entry
            seq += 1
        elif known.state == PENDING:
            plan.ours[payment.payment_id] = message_id
        elif known.message_id == message_id or not known.reported:
            plan.again[payment.payment_id] = message_id
        else:  # applied and reported before: nothing changes
            plan.outcomes.append(received_outcome("duplicate", payment, message_id, error=known.error))

    kind = state.kind or next((e.kind for e in new.values()), None)
    currency = _invoice_currency(state, list(new.values()))
    # Paid-to-date amounts are ordered by their date; two on one date would be ordered by
    # arrival, which a redelivery or a late retry can turn round: the second is refused.
    dated = {e.paid_at: e for e in state.counted if e.kind == PAID_TO_DATE}
    for entry in new.values():
        error = ""
        same_day = dated.get(entry.paid_at) if entry.kind == PAID_TO_DATE else None
        if entry.kind != kind:
            error = MIXED[kind or PAYMENT].format(invoice=state.invoice_number)
        elif currency and entry.currency and entry.currency != currency:
            error = f"invoice {state.invoice_number} is paid in {currency}; a payment in {entry.currency} cannot be added"
        elif same_day is not None and same_day.amount != entry.amount:
            error = (
                f"invoice {state.invoice_number} already has the paid-to-date amount {same_day.amount} dated "
                f"{same_day.date_paid}; another amount with the same date cannot be put in order (a late "
                "delivery could end either last): send the correction with its own, later DatePaid"
            )
        elif entry.kind == PAID_TO_DATE:
            dated.setdefault(entry.paid_at, entry)
        if error:
            plan.refused.append(replace(entry, state=FAILED, error=error))
            plan.outcomes.append(entry_outcome("failed", state, plan.refused[-1], error=error))
        else:
            plan.adding.append(entry)
            plan.ours[entry.payment_id] = entry.message_id
    return plan


MIXED = {
    PAYMENT: (
        "invoice {invoice} is paid by individual payments (each with its PaymentId); a paid-to-date "
        "amount (an XML entry without PaymentId) cannot be mixed with them"
    ),
    PAID_TO_DATE: (
        "invoice {invoice} is paid by paid-to-date amounts (XML entries without PaymentId); an "
        "individual payment (with a payment id) cannot be mixed with them"
    ),
}


def _sync(
    state: InvoiceLedger, plan: Plan, token: str, client: Any, services: Services
) -> list[PaymentOutcome]:
    """Holding the lease: send the invoice's amount until the ledger records it unchanged."""
    ledger = services.payment_ledger
    for _ in range(SYNC_ATTEMPTS):
        amount, paid_at = state.cumulative, state.last_paid
        assert paid_at is not None  # something is counted: the caller checked
        try:
            reply = client.update_invoice_payment(state.invoice_number, amount, paid_at)
        except OutcomeUnknownError:
            # ConnectWise may hold the amount, or apply it late and overwrite any write made
            # meanwhile: the payments stay counted, in doubt, and the invoice is held a while.
            doubt = [replace(e, doubt=True) for e in state.counted if e.state == PENDING]
            until = services.clock() + HOLD_AFTER_UNKNOWN
            _rewrite(ledger, state, entries=doubt, lease=(token, until))
            raise
        except ConnectWiseError as exc:
            doubted = [p for p in plan.ours if state.payments[p].doubt]
            if exc.transient or doubted:  # not run, or an earlier write may hold them: retried later
                _rewrite(ledger, state, keep_lease=False)
                if exc.transient:
                    raise
                raise InvoiceBusyError(
                    f"invoice {state.invoice_number}: {exc.message}; an earlier write of payment "
                    f"{doubted[0]} may have reached ConnectWise, so it is not failed but retried"
                ) from None
            error = exc.message
            failed = _rewrite(ledger, state, **_fail(state, plan, error))
            outcomes = plan.outcomes + [
                entry_outcome("failed", failed, failed.payments[p], error=error)
                for p in plan.ours
                if failed.payments[p].state == FAILED
            ]
            if isinstance(exc, AuthenticationError):
                services.refresh_login(state.connection)  # the operator may fix the secret now
                raise ConnectionFailedError(error, outcomes) from None
            return outcomes
        written = ledger.write(
            state, **_applied(state, plan, reply.paid_amount), total=reply.total, keep_lease=False
        )
        if written is not None:
            return plan.outcomes + applied_outcomes(written, {**plan.ours, **plan.again})
        state = ledger.read(state.connection, state.invoice_number)  # payments were added meanwhile
        if state.lease != token:
            raise InvoiceBusyError(f"invoice {state.invoice_number}: the lease was lost; retried later")
    _rewrite(ledger, state, keep_lease=False)
    raise InvoiceBusyError(
        f"invoice {state.invoice_number}: other invocations kept adding payments {SYNC_ATTEMPTS} times"
    )


def _rewrite(ledger: Any, state: InvoiceLedger, **change: Any) -> InvoiceLedger:
    """A write the lease holder must make: others may only have added pending payments of their
    own meanwhile, so the same change is made on a fresh read until it lands."""
    while True:
        written: InvoiceLedger | None = ledger.write(state, **change)
        if written is not None:
            return written
        state = ledger.read(state.connection, state.invoice_number)


def _fail(state: InvoiceLedger, plan: Plan, error: str) -> dict[str, Any]:
    """ConnectWise refused the amount: this group's pending payments fail (others stay pending
    for their own messages), and the lease goes."""
    entries = [
        replace(e, state=FAILED, error=error, message_id=plan.ours[e.payment_id])
        for e in state.payments.values()
        if e.payment_id in plan.ours and e.state == PENDING
    ]
    return {"entries": entries, "keep_lease": False}


def _applied(state: InvoiceLedger, plan: Plan, held: Decimal) -> dict[str, Any]:
    """ConnectWise holds `held` for the amount sent: every counted payment is applied; the part
    above the total it discarded is charged to the newly applied payments, latest first."""
    counted = state.counted
    overage = max(Decimal("0.00"), state.cumulative - held)
    newly = [e for e in counted if e.state == PENDING]
    shares: dict[str, Decimal] = {}
    if counted and counted[0].kind == PAID_TO_DATE:
        if counted[-1].state == PENDING:
            shares[counted[-1].payment_id] = overage
    else:
        remaining = max(overage - state.overage, Decimal("0.00"))
        for entry in reversed(newly):
            shares[entry.payment_id] = min(entry.amount, remaining)
            remaining -= shares[entry.payment_id]
    reporting = {**plan.ours, **plan.again}
    entries = [
        replace(
            e,
            state=APPLIED,
            doubt=False,
            overage=shares.get(e.payment_id, Decimal("0.00")),
            message_id=reporting.get(e.payment_id, e.message_id),
            reported=e.payment_id in reporting,  # others are reported when their payment comes again
        )
        for e in newly
    ] + [
        replace(state.payments[p], message_id=m, reported=True)
        for p, m in plan.again.items()
        if not state.payments[p].reported
    ]
    return {"entries": entries, "applied": held, "overage": overage}


def _same(known: Entry, entry: Entry) -> bool:
    """The same payment sent again: same amount and instant (whatever the offset written), and no
    other currency named."""
    currencies = {known.currency, entry.currency} - {""}
    return known.amount == entry.amount and known.paid_at == entry.paid_at and len(currencies) <= 1


def _invoice_currency(state: InvoiceLedger, adding: list[Entry]) -> str:
    """The currency of the invoice's first counted payment naming one, else of its first new one."""
    named = [e for e in state.counted if e.currency] or [e for e in adding if e.currency]
    return min(named, key=lambda e: (e.paid_at, e.seq)).currency if named else ""
