"""Property: any interleaving, duplication, batching and concurrency of a set of payments, with
faults in the middle of the writes, ends with ConnectWise holding the capped sum of the distinct
payments, the ledger counting each once, and each payment reported applied once.

The faults: ConnectWise unavailable at first; an invocation dying right after its ConnectWise
call; a write whose reply comes back cut short; a write that ConnectWise runs only after the
client gave up on it (it lands late); credentials refused for a while (those payments fail, and
their messages, kept in the DLQ, are re-driven once the secret is fixed). Between rounds the
clock moves by the queue's visibility timeout, as a retried message waits that long in SQS.
"""

import dataclasses
import itertools
import os
import threading
import time
from collections import Counter
from collections.abc import Callable
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from connectwise.accounting_interface.client import AccountingClient
from connectwise.backends import GLBackend
from connectwise.rest.client import RestClient
from connectwise.transport import Deadline
from sandbox.server import SandboxServer
from scripts.harness import LocalEnvironment
from scripts.local_aws import load_template
from tasks.payments.outcomes import Message, PaymentOutcome
from tasks.payments.settle import apply_payment_messages
from tasks.platform.payment_ledger import APPLIED, PaymentLedger, invoice_key
from tasks.platform.services import Services
from tests.conftest import rest_connection, sandbox_connection

INVOICES = 3
READ_TIMEOUT, LATE_BY = (
    0.3,
    0.6,
)  # a late write is run LATE_BY seconds after it came, the client waits READ_TIMEOUT
VISIBILITY_TIMEOUT = float(load_template()["Resources"]["PaymentsQueue"]["Properties"]["VisibilityTimeout"])

payment_sets = st.lists(
    st.tuples(
        st.integers(0, INVOICES - 1),
        st.decimals(min_value=Decimal("0.01"), max_value=Decimal("3000.00"), places=2),
        st.integers(1, 28),
    ),
    min_size=1,
    max_size=8,
)


@pytest.fixture(params=["accounting_interface", "rest"])
def backend(request: pytest.FixtureRequest) -> str:
    """Every test here runs against both backends (the connection's secret chooses)."""
    return str(request.param)


@pytest.fixture
def payment_services(env: LocalEnvironment, backend: str) -> Services:
    os.environ.update(env.stack.function_env("UploadInvoicePaymentsFunction"))
    from tasks.runtime import services

    services.cache_clear()
    return services()


@pytest.mark.slow
@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(payments=payment_sets, data=st.data())
def test_any_delivery_order_and_faults_end_with_the_capped_sum(
    payments: list[tuple[int, Decimal, int]],
    data: st.DataObject,
    payment_services: Services,
    sandbox: SandboxServer,
    backend: str,
) -> None:
    invoices = sandbox.accounting.site.invoices[:INVOICES]
    _reset(invoices, payment_services, sandbox)

    bodies = [_body(invoices[i].number, amount, f"P{n}", day) for n, (i, amount, day) in enumerate(payments)]
    copies = [data.draw(st.integers(1, 3), label=f"copies of P{n}") for n in range(len(bodies))]
    queue = data.draw(
        st.permutations([body for body, count in zip(bodies, copies, strict=True) for _ in range(count)])
    )
    if data.draw(st.booleans(), label="ConnectWise unavailable at first"):
        sandbox.faults.set({"statuses": [503] * 4, "retry_after": 0})
    if backend == "rest" and data.draw(st.booleans(), label="ConnectWise accepts a second payment"):
        sandbox.faults.set({"second_payment": True})
    faults = Faults(
        dies_after=data.draw(
            st.none() | st.integers(1, 6), label="payment call after which an invocation dies"
        ),
        garbled=data.draw(st.none() | st.integers(1, 6), label="payment call whose reply is cut short"),
        late=data.draw(
            st.none() | st.integers(1, 6), label="payment call that lands after the client gave up"
        ),
        refused=data.draw(st.integers(0, 2), label="payment calls refused for bad credentials"),
    )
    concurrent = data.draw(st.booleans(), label="two invocations at once")
    clock = [time.time()]
    services = dataclasses.replace(
        payment_services,
        client_for=faults.clients(backend, sandbox),
        clock=lambda: clock[0],
    )

    # Drawn before any run: how many rounds there are depends on timing (threads, leases), and the
    # data hypothesis draws must not.
    sizes = data.draw(st.lists(st.integers(1, 4), min_size=1, max_size=6), label="batch sizes, in turn")
    outcomes: list[PaymentOutcome] = []
    messages = [Message(f"m{n}", body) for n, body in enumerate(queue)]
    for round_number in range(60):
        if not messages:
            break
        size = sizes[round_number % len(sizes)]
        batches = [messages[:size], messages[size : 2 * size]] if concurrent else [messages[:size]]
        messages = messages[sum(len(b) for b in batches) :]
        messages += _run(batches, services, outcomes)
        if faults.late_fired:
            time.sleep(LATE_BY)  # the late write has landed by now
            faults.late_fired = False
        _settled_invoices_agree(invoices, payment_services.payment_ledger)
        clock[0] += VISIBILITY_TIMEOUT  # what SQS waits before delivering a retried message
    assert not messages, "payments still unsettled after 60 rounds"

    for index, invoice in enumerate(invoices):
        distinct = [amount for (i, amount, _) in payments if i == index]
        assert invoice.paid_amount == min(invoice.total, sum(distinct, Decimal("0.00")))
        assert invoice.extra_payments == []
        state = payment_services.payment_ledger.read("main", invoice.number)
        assert state.cumulative == sum(distinct, Decimal("0.00"))
        assert {e.state for e in state.payments.values()} <= {APPLIED} and not state.lease
    applied = Counter(o.payment_id for o in outcomes if o.status == "applied")
    assert applied == Counter(f"P{n}" for n in range(len(payments)))


def _settled_invoices_agree(invoices: list[Any], ledger: PaymentLedger) -> None:
    """At any time: where the ledger has nothing pending, ConnectWise holds its capped amount
    (a write landing late after a newer one would break this)."""
    for invoice in invoices:
        state = ledger.read("main", invoice.number)
        if state.counted and all(e.state == APPLIED for e in state.counted):
            held = invoice.paid_amount + sum(a for _, a, _ in invoice.extra_payments)
            assert held == min(invoice.total, state.cumulative), f"invoice {invoice.number}"


def _run(batches: list[list[Message]], services: Services, outcomes: list[PaymentOutcome]) -> list[Message]:
    """Run batches as concurrent invocations; return the messages to deliver again (retried by
    SQS, or re-driven from the DLQ once the connection is fixed)."""
    results: list[Any] = [None] * len(batches)

    def invoke(index: int) -> None:
        try:
            results[index] = apply_payment_messages(batches[index], services, Deadline(60))
        except InvocationDied:
            results[index] = InvocationDied  # Lambda retries the whole batch of a failed invocation

    threads = [threading.Thread(target=invoke, args=(i,)) for i in range(len(batches)) if batches[i]]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    again = []
    for batch, result in zip(batches, results, strict=True):
        if result is None:
            continue
        if result is InvocationDied:
            again += batch
            continue
        outcomes.extend(result.outcomes)
        again += [m for m in batch if m.message_id in result.retry or m.message_id in result.rejected]
    return again


class InvocationDied(BaseException):
    """Lambda ended the invocation: nothing of it runs on."""


@dataclasses.dataclass
class Faults:
    """Faults on the n-th payment call to ConnectWise (counted over every invocation)."""

    dies_after: int | None
    garbled: int | None
    late: int | None
    refused: int
    late_fired: bool = False

    def clients(self, backend: str, sandbox: SandboxServer) -> Callable[[str], GLBackend]:
        calls = itertools.count(1)
        lock = threading.Lock()
        writes = ["POST", "PUT"] if backend == "rest" else ["POST"]

        def make(password: str = "") -> Any:
            if backend == "rest":
                login = rest_connection(sandbox, **({"private_key": password} if password else {}))
                return RestClient(login, timeout=(2.0, READ_TIMEOUT), backoff=0)
            login = sandbox_connection(sandbox, **({"password": password} if password else {}))
            return AccountingClient(login, timeout=(2.0, READ_TIMEOUT), backoff=0)

        good, bad = make(), make("rotated-and-wrong")

        def client_for(connection: str) -> GLBackend:
            client = good.within(Deadline(60))
            update = client.update_invoice_payment

            def update_invoice_payment(*args: Any) -> Any:
                with lock:  # the sandbox's switches are set for this call alone
                    n = next(calls)
                    if n <= self.refused:
                        return bad.update_invoice_payment(*args)
                    if n == self.garbled:
                        sandbox.faults.set({"malformed": 1, "methods": writes})
                    if n == self.late:  # the round waits for it to land before time moves on
                        sandbox.faults.set({"hangs": 1, "hang_seconds": LATE_BY, "methods": writes})
                        self.late_fired = True
                    try:
                        reply = update(*args)
                    finally:
                        sandbox.faults.set({"malformed": 0, "hangs": 0, "methods": []})
                if n == self.dies_after:
                    raise InvocationDied("died between the ConnectWise call and the ledger write")
                return reply

            client.update_invoice_payment = update_invoice_payment  # type: ignore[method-assign]
            client.within = lambda deadline: client  # type: ignore[method-assign]
            return client

        return client_for


def _body(number: str, amount: Decimal, payment_id: str, day: int) -> str:
    return (
        f'{{"connection": "main", "invoice_number": "{number}", "paid_amount": "{amount}", '
        f'"date_paid": "2026-11-{day:02d}T09:30:00+00:00", "payment_id": "{payment_id}"}}'
    )


def _reset(invoices: list[Any], services: Services, sandbox: SandboxServer) -> None:
    """Each example starts from unpaid invoices, an empty payment ledger and no faults."""
    sandbox.faults.set({"statuses": [], "malformed": 0, "hangs": 0, "methods": [], "second_payment": False})
    ledger: PaymentLedger = services.payment_ledger
    for invoice in invoices:
        invoice.paid_amount = Decimal("0.00")
        invoice.paid_date = None
        invoice.payment_id = None
        invoice.extra_payments = []
        ledger.db.delete_item(TableName=ledger.table, Key=invoice_key("main", invoice.number))
