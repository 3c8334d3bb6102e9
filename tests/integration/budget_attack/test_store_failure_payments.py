"""Attack: the budget's DynamoDB fails on the read-back of a payment whose reply was lost.

Before the budget, a REST payment write whose reply was lost and could not be read back raised
OutcomeUnknownError, and settle.py recorded the payment `doubt=True`: a later refusal then keeps
it pending instead of failing it (it may be in ConnectWise). With the budget, the read-back's
wait_turn raises botocore's ClientError, settle.py skips the doubt marking, and a later refusal
reports the payment FAILED although ConnectWise holds it.

Run: PYTHONPATH=layers/connectwise:. /work/main/.venv/bin/python -m pytest -q tests/integration/budget_attack/test_store_failure_payments.py
"""

import dataclasses
import json
from decimal import Decimal
from typing import Any

import pytest
import requests

from connectwise.rest.client import RestClient
from sandbox.server import SandboxServer
from scripts.harness import LocalEnvironment
from tasks.payments.outcomes import Message
from tasks.payments.settle import apply_payment_messages
from tests.conftest import rest_connection
from tests.integration.budget_attack.conftest import FailingDynamoDB, budget
from tests.integration.test_payments import fake_clock, invoice, ledger, payment


@pytest.fixture
def backend() -> str:
    return "rest"


def test_a_payment_connectwise_holds_is_never_reported_failed_after_a_budget_store_failure(
    env: LocalEnvironment, sandbox: SandboxServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    from tasks.runtime import services

    target = invoice(sandbox)
    clock = fake_clock(env, monkeypatch)
    db = FailingDynamoDB(env.stack.client("dynamodb"))

    class Session(requests.Session):
        def request(self, method: str, url: str, *args: Any, **kwargs: Any) -> Any:  # type: ignore[override]
            try:
                return super().request(method, url, *args, **kwargs)
            finally:
                db.armed = db.armed or method == "POST"  # DynamoDB throttles from the write on

    pacer = budget(db, env.stack.physical["LedgerTable"], per_minute=100, connection="main")
    client = RestClient(
        rest_connection(sandbox), name="main", retries=1, backoff=0.01, session=Session(), pacer=pacer
    )
    svc = dataclasses.replace(services(), client_for=lambda _: client)

    sandbox.faults.set({"malformed": 1, "methods": ["POST"]})  # applied, reply cut short
    first = apply_payment_messages([Message("A", json.dumps(payment(target.number, "10.00", "P1")))], svc)
    assert first.retry == ["A"] and target.paid_amount == Decimal("10.00")
    entry = ledger(env).read("main", target.number).payments["P1"]
    in_doubt = entry.doubt

    # Later (the lease has run out, DynamoDB is fine again) ConnectWise refuses the next sync.
    db.armed = False
    clock[0] += 900 + 300 + 60
    sandbox.faults.set({"statuses": [400], "methods": ["GET"]})
    again = apply_payment_messages([Message("A", json.dumps(payment(target.number, "10.00", "P1")))], svc)
    failed = [o.payment_id for o in again.outcomes if o.status == "failed"]
    assert target.paid_amount == Decimal("10.00")  # ConnectWise holds P1 all along
    assert failed == [], (
        f"P1 reported failed while ConnectWise holds it (after the DynamoDB error it was recorded "
        f"doubt={in_doubt})"
    )
