"""Property: any interleaving, duplication, batching and concurrency of a set of payments, with
ConnectWise failing or an invocation dying after its ConnectWise call, ends with ConnectWise
holding the capped sum of the distinct payments, and each payment applied once."""

import dataclasses
import itertools
import os
import threading
from collections import Counter
from collections.abc import Callable
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from connector.payment_ledger import PaymentLedger, invoice_key
from connector.payments import Message, PaymentOutcome, apply_payment_messages
from connector.services import Services
from connectwise.accounting import AccountingClient
from connectwise.backends import GLBackend
from connectwise.rest import RestClient
from sandbox.server import SandboxServer
from scripts.local_run import LocalEnvironment
from tests.conftest import rest_connection, sandbox_connection

INVOICES = 3

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
def payment_services(env: LocalEnvironment, sandbox: SandboxServer, backend: str) -> Services:
    os.environ.update(env.stack.function_env("UploadInvoicePaymentsFunction"))
    from connector.runtime import services

    services.cache_clear()
    # Same services as the function, with no backoff between client retries to keep the test fast.
    if backend == "rest":
        rest = rest_connection(sandbox)
        return dataclasses.replace(services(), client_for=lambda _: RestClient(rest, backoff=0))
    connection = sandbox_connection(sandbox)
    return dataclasses.replace(services(), client_for=lambda _: AccountingClient(connection, backoff=0))


@pytest.mark.slow
@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(payments=payment_sets, data=st.data())
def test_any_delivery_order_ends_with_the_capped_sum(
    payments: list[tuple[int, Decimal, int]],
    data: st.DataObject,
    payment_services: Services,
    sandbox: SandboxServer,
) -> None:
    invoices = sandbox.accounting.site.invoices[:INVOICES]
    _reset(invoices, payment_services)

    bodies = [_body(invoices[i].number, amount, f"P{n}", day) for n, (i, amount, day) in enumerate(payments)]
    copies = [data.draw(st.integers(1, 3), label=f"copies of P{n}") for n in range(len(bodies))]
    queue = data.draw(
        st.permutations([body for body, count in zip(bodies, copies, strict=True) for _ in range(count)])
    )
    if data.draw(st.booleans(), label="ConnectWise fails at first"):
        sandbox.faults.set({"statuses": [503] * 4, "retry_after": 0})
    concurrent = data.draw(st.booleans(), label="two invocations at once")
    dies_after = data.draw(
        st.none() | st.integers(1, 6), label="ConnectWise call after which an invocation dies"
    )
    services = dataclasses.replace(payment_services, client_for=_dying_client(payment_services, dies_after))

    outcomes: list[PaymentOutcome] = []
    messages = [Message(f"m{n}", body) for n, body in enumerate(queue)]
    for _round in range(60):
        if not messages:
            break
        size = data.draw(st.integers(1, 4), label="batch size")
        batches = [messages[:size], messages[size : 2 * size]] if concurrent else [messages[:size]]
        messages = messages[sum(len(b) for b in batches) :]
        for retry in _run(batches, services, outcomes):
            messages.append(retry)
    assert not messages, "payments still unsettled after 60 rounds"

    for index, invoice in enumerate(invoices):
        distinct = [amount for (i, amount, _) in payments if i == index]
        expected = min(invoice.total, sum(distinct, Decimal("0.00")))
        assert invoice.paid_amount == expected
        state = payment_services.payment_ledger.read("main", invoice.number)
        assert state.cumulative == sum(distinct, Decimal("0.00"))
    applied = Counter(o.payment_id for o in outcomes if o.status == "applied")
    assert applied == Counter(f"P{n}" for n in range(len(payments)))


def _run(batches: list[list[Message]], services: Services, outcomes: list[PaymentOutcome]) -> list[Message]:
    """Run batches as concurrent invocations; return the messages to deliver again."""
    results: list[Any] = [None] * len(batches)

    def invoke(index: int) -> None:
        try:
            results[index] = apply_payment_messages(batches[index], services)
        except InvocationDied:
            results[index] = InvocationDied  # Lambda retries the whole batch of a failed invocation

    threads = [threading.Thread(target=invoke, args=(i,)) for i in range(len(batches)) if batches[i]]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    retry = []
    for batch, result in zip(batches, results, strict=True):
        if result is None:
            continue
        if result is InvocationDied:
            retry += batch
            continue
        outcomes.extend(result.outcomes)
        retry += [m for m in batch if m.message_id in result.retry]
    return retry


class InvocationDied(Exception):
    pass


def _dying_client(services: Services, dies_after: int | None) -> Callable[[str], GLBackend]:
    """Clients whose `dies_after`-th payment call reaches ConnectWise, then kills its invocation."""
    calls = itertools.count(1)
    make_client = services.client_for

    def client_for(connection: str) -> GLBackend:
        client = make_client(connection)
        update = client.update_invoice_payment

        def update_invoice_payment(*args: Any) -> Any:
            reply = update(*args)
            if next(calls) == dies_after:
                raise InvocationDied("died between the ConnectWise call and the ledger write")
            return reply

        client.update_invoice_payment = update_invoice_payment  # type: ignore[method-assign]
        return client

    return client_for


def _body(number: str, amount: Decimal, payment_id: str, day: int) -> str:
    return (
        f'{{"connection": "main", "invoice_number": "{number}", "paid_amount": "{amount}", '
        f'"date_paid": "2026-11-{day:02d}T09:30:00+00:00", "payment_id": "{payment_id}"}}'
    )


def _reset(invoices: list[Any], services: Services) -> None:
    """Each example starts from unpaid invoices and an empty payment ledger."""
    ledger: PaymentLedger = services.payment_ledger
    for invoice in invoices:
        invoice.paid_amount = Decimal("0.00")
        invoice.paid_date = None
        invoice.payment_id = None
        ledger.db.delete_item(TableName=ledger.table, Key=invoice_key("main", invoice.number))
