"""Attack: DynamoDB (the budget's store) fails around a write to ConnectWise.

The Pacer protocol (connectwise.transport) says a pacer refuses only with TransportError (nothing
sent); every caller of `send` decides "not run" vs "outcome unknown" from the ConnectWiseError
types. A DynamoDB error inside `wait_turn` or `throttled` escapes as botocore's ClientError.

Run: PYTHONPATH=layers/connectwise:. /work/main/.venv/bin/python -m pytest -q tests/integration/budget_attack/test_store_failure_client.py
"""

from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest
import requests

from connectwise.accounting_interface.client import AccountingClient
from connectwise.errors import OutcomeUnknownError, TransportError, surely_not_run
from connectwise.rest.client import RestClient
from sandbox.server import SandboxServer
from tests.conftest import rest_connection, sandbox_connection
from tests.integration.budget_attack.conftest import FailingDynamoDB, budget

PAID = datetime(2026, 11, 2, 10, tzinfo=UTC)


def target(sandbox: SandboxServer) -> Any:
    return max(sandbox.accounting.site.invoices, key=lambda i: i.total)


def test_a_429_on_a_payment_write_is_still_not_run_when_the_budget_store_fails(
    sandbox: SandboxServer, dynamodb: Any, table: str
) -> None:
    """ConnectWise answers the payment POST with 429 (surely not run). Telling the budget about
    it fails (DynamoDB throttled): the caller must still learn "not run" (a transient
    TransportError), not an exception the money code treats as unknown."""
    db = FailingDynamoDB(dynamodb)
    session = requests.Session()

    def arm(response: requests.Response, *args: Any, **kwargs: Any) -> None:
        if response.status_code == 429:
            db.armed = True  # DynamoDB fails from the 429 on: in Budget.throttled

    session.hooks["response"].append(arm)
    client = AccountingClient(
        sandbox_connection(sandbox), retries=2, backoff=0.01, session=session, pacer=budget(db, table)
    )
    sandbox.faults.set({"statuses": [429], "retry_after": 0})
    invoice = target(sandbox)
    with pytest.raises(Exception) as raised:
        client.update_invoice_payment(invoice.number, Decimal("10.00"), PAID)
    assert invoice.paid_amount == 0  # ConnectWise did not run it
    assert db.failures >= 1
    assert surely_not_run(raised.value), f"a 429 became {type(raised.value).__name__}: {raised.value}"


def test_a_lost_payment_reply_stays_outcome_unknown_when_the_budget_store_fails(
    sandbox: SandboxServer, dynamodb: Any, table: str
) -> None:
    """REST: the payment POST lands but its reply is cut short (OutcomeUnknownError); the read-back
    needs a turn, and DynamoDB fails. Before the budget, a read-back that could not be made raised
    the OutcomeUnknownError (`raise lost`), which makes settle.py record the payments in doubt."""
    db = FailingDynamoDB(dynamodb)

    class Session(requests.Session):  # RestApi passes its own hooks: arm after the POST here
        def request(self, method: str, url: str, *args: Any, **kwargs: Any) -> Any:  # type: ignore[override]
            try:
                return super().request(method, url, *args, **kwargs)
            finally:
                db.armed = db.armed or method == "POST"

    session = Session()
    # 100 calls a minute: blocks of one call, so the read-back needs a reservation.
    client = RestClient(
        rest_connection(sandbox),
        name="main",
        retries=2,
        backoff=0.01,
        session=session,
        pacer=budget(db, table, per_minute=100),
    )
    sandbox.faults.set({"malformed": 1, "methods": ["POST"]})
    invoice = target(sandbox)
    with pytest.raises(Exception) as raised:
        client.update_invoice_payment(invoice.number, Decimal("10.00"), PAID)
    assert invoice.paid_amount == Decimal("10.00")  # ConnectWise holds it
    assert db.failures >= 1
    assert isinstance(raised.value, OutcomeUnknownError), (
        f"the write's unknown outcome became {type(raised.value).__name__}: {raised.value}"
    )


def test_a_budget_refusal_before_a_write_is_a_transport_error(
    sandbox: SandboxServer, dynamodb: Any, table: str
) -> None:
    """DynamoDB fails when the write waits for its turn (nothing sent): the Pacer contract says
    TransportError (transient), so that the callers know it was not run."""
    db = FailingDynamoDB(dynamodb)
    db.armed = True
    client = AccountingClient(sandbox_connection(sandbox), retries=2, backoff=0.01, pacer=budget(db, table))
    invoice = target(sandbox)
    with pytest.raises(Exception) as raised:
        client.update_invoice_payment(invoice.number, Decimal("10.00"), PAID)
    assert invoice.paid_amount == 0
    assert isinstance(raised.value, TransportError) and raised.value.transient, (
        f"wait_turn raised {type(raised.value).__name__}"
    )
