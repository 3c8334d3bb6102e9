"""Money safety where faults meet: cases an outside review of the fault handling found (each
failed before its fix). Both backends unless the case is one backend's own."""

import dataclasses
import json
import os
import time
from decimal import Decimal
from typing import Any

import pytest
from botocore.exceptions import ClientError

from connectwise.errors import OutcomeUnknownError
from connectwise.rest import payments as rest_payments
from connectwise.rest.client import RestClient
from connectwise.transport import HOLD_AFTER_UNKNOWN
from sandbox.server import SandboxServer
from scripts.harness import LocalEnvironment
from scripts.lambda_local import invoke
from tasks.gl.requests import PostingConfirmation
from tasks.gl.update import update_gl_batch
from tasks.payments.outcomes import Message
from tasks.payments.settle import apply_payment_messages
from tasks.platform.batch_ledger import Ledger
from tests.conftest import rest_connection
from tests.integration.test_gl_life_cycle import batches, confirm, download, stored_batch, throttling_passes
from tests.integration.test_payments import (
    dead_letters,
    deliver,
    fake_clock,
    invoice,
    ledger,
    payment,
    rows,
    send,
)


@pytest.fixture(params=["accounting_interface", "rest"])
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


def impatient(env: LocalEnvironment, sandbox: SandboxServer, read_timeout: float = 0.3) -> Any:
    """The payment function's services with a REST client that gives up on a reply quickly."""
    from tasks.runtime import services

    invoke(env.stack, "UploadInvoicePaymentsFunction", {"Records": []})  # services from its environment
    client = RestClient(rest_connection(sandbox), timeout=(2.0, read_timeout), backoff=0)
    return dataclasses.replace(services(), client_for=lambda _: client)


def test_an_invoice_number_in_another_letter_case_is_the_same_invoice(
    env: LocalEnvironment, sandbox: SandboxServer
) -> None:
    """ConnectWise finds `cw-30007` as `CW-30007`: one ledger, or the second sum overwrites the first."""
    target = invoice(sandbox)
    send(env, payment(target.number, "10.00", "P1"))
    deliver(env)
    send(env, payment(target.number.lower(), "5.00", "P2", day=2))
    deliver(env)
    assert target.paid_amount == Decimal("15.00")
    assert ledger(env).read("main", target.number.lower()).cumulative == Decimal("15.00")
    send(env, payment(f" {target.number}", "1.00", "P3", day=3))
    deliver(env)
    [refused] = rows(env, "fail.jsonl")
    assert refused["payment_id"] == "P3" and "invoice_number: String should match pattern" in refused["error"]


@pytest.mark.parametrize("backend", ["rest"])
def test_a_late_partial_update_decides_what_a_later_full_confirmation_posts(
    env: LocalEnvironment, sandbox: SandboxServer
) -> None:
    """A partial confirmation's create is lost and lands late; the whole batch is then confirmed.
    ConnectWise holds only the partial set (REST cannot add to a batch): the batch is POSTED with
    what ConnectWise holds and the rest of the confirmation is refused loudly, never claimed."""
    first = download(env, {"connection": "main", "kinds": ["invoices"]})
    batch_id = first["batch_id"]
    accepted = stored_batch(env, first["keys"]["glexport"], batch_id).document.Transactions[0]
    ids = accepted.GLEntryRecID + [i for d in accepted.Details for i in d.GLEntryRecID]
    sandbox.faults.set({"hangs": 1, "hang_seconds": 1.0, "methods": ["POST"]})
    with pytest.raises(OutcomeUnknownError):
        update_gl_batch(
            PostingConfirmation(connection="main", batch_id=batch_id, gl_entry_ids=ids),
            impatient(env, sandbox),
        )
    assert batches(env) == {f"batch#main#{batch_id}": "DOWNLOADED"}
    time.sleep(1.2)  # ConnectWise runs the partial create late
    env.events()
    assert confirm(env, {"connection": "main", "batch_id": batch_id}) == [{"batchItemFailures": []}]
    assert batches(env) == {f"batch#main#{batch_id}": "POSTED"}
    posted, refused = env.events()
    assert posted["detail-type"] == "GLBatchPosted" and posted["detail"]["posted"] == len(ids)
    assert posted["detail"]["partial"] is True
    assert refused["detail-type"] == "GLBatchConfirmationRefused"
    assert len(sandbox.accounting.unposted_invoice_numbers()) == 11  # and they come in the next batch
    assert download(env, {"connection": "main", "kinds": ["invoices"]})["counts"]["invoices"] == 11


def test_an_update_in_doubt_holds_off_a_different_confirmation_until_it_cannot_land(
    env: LocalEnvironment, sandbox: SandboxServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    from tasks.runtime import services

    first = download(env, {"connection": "main", "kinds": ["invoices"]})
    batch_id = first["batch_id"]
    accepted = stored_batch(env, first["keys"]["glexport"], batch_id).document.Transactions[0]
    ids = accepted.GLEntryRecID + [i for d in accepted.Details for i in d.GLEntryRecID]
    os.environ.update(env.stack.function_env("UpdateGLBatchFunction"))
    services.cache_clear()
    svc = services()
    now = [time.time()]
    monkeypatch.setattr(svc, "clock", lambda: now[0])
    sandbox.faults.set({"statuses": [502], "methods": ["POST"]})  # did it run? (here: no)
    with pytest.raises(OutcomeUnknownError):
        update_gl_batch(PostingConfirmation(connection="main", batch_id=batch_id, gl_entry_ids=ids), svc)
    whole = PostingConfirmation(connection="main", batch_id=batch_id)
    with pytest.raises(Exception, match="may still reach ConnectWise"):
        update_gl_batch(whole, svc)
    now[0] += 301
    assert update_gl_batch(whole, svc)["status"] == "posted"
    assert sandbox.accounting.unposted_invoice_numbers() == []


@pytest.mark.parametrize("fault", [{"statuses": [503] * 4, "retry_after": 0}, {"malformed": 1}])
@pytest.mark.parametrize("backend", ["rest"])
def test_a_lost_write_whose_read_back_fails_stays_unknown(
    env: LocalEnvironment, sandbox: SandboxServer, monkeypatch: pytest.MonkeyPatch, fault: dict[str, Any]
) -> None:
    """The read-back after a lost payment write cannot be made: the outcome is still unknown, so
    the payment stays counted and the invoice held; nothing newer is overtaken by the late write."""
    target = invoice(sandbox)
    clock = fake_clock(env, monkeypatch)
    svc = impatient(env, sandbox, read_timeout=1.0)
    assert apply_payment_messages(
        [Message("A0", json.dumps(payment(target.number, "1.00", "P0")))], svc
    ).outcomes
    original = rest_payments._write_payment

    def then_the_read_back_fails(self: Any, *args: Any) -> Any:
        try:
            return original(self, *args)
        except OutcomeUnknownError:
            sandbox.faults.set(fault | {"methods": ["GET"]})
            raise

    monkeypatch.setattr(rest_payments, "_write_payment", then_the_read_back_fails)
    sandbox.faults.set({"hangs": 1, "hang_seconds": 1.5, "methods": ["PUT"]})
    lost = apply_payment_messages(
        [Message("A", json.dumps(payment(target.number, "10.00", "P1", day=2)))], svc
    )
    assert lost.retry == ["A"] and lost.outcomes == []
    entry = ledger(env).read("main", target.number).payments["P1"]
    assert (entry.state, entry.doubt) == ("pending", True)
    sandbox.faults.set({"statuses": [], "malformed": 0, "methods": []})
    monkeypatch.setattr(rest_payments, "_write_payment", original)
    held = apply_payment_messages(
        [Message("B", json.dumps(payment(target.number, "5.00", "P2", day=3)))], svc
    )
    assert held.retry == ["B"]  # held: the late write may still land
    time.sleep(1.6)  # it lands: 11.00
    clock[0] += HOLD_AFTER_UNKNOWN + 1
    apply_payment_messages([Message("B", json.dumps(payment(target.number, "5.00", "P2", day=3)))], svc)
    assert target.paid_amount == Decimal("16.00")


def test_a_payment_applied_by_another_messages_sync_is_reported_when_it_comes_again(
    env: LocalEnvironment, sandbox: SandboxServer
) -> None:
    """P1's message ends in the DLQ (ConnectWise throttled for hours): P1 stays counted and P2's
    sync applies it. When P1 comes again (a re-drive, a re-send) it is reported applied, once."""
    target = invoice(sandbox)
    send(env, payment(target.number, "10.00", "P1"))
    for _ in range(int(env.stack.parameters["PaymentsMaxReceiveCount"])):
        sandbox.faults.set({"statuses": [429], "retry_after": 3600})
        [response] = deliver(env)
        assert len(response["batchItemFailures"]) == 1
        throttling_passes(env)  # the queue's redelivery comes after the Retry-After
    assert deliver(env) == [] and len(dead_letters(env)) == 1
    sandbox.faults.set({"statuses": []})
    send(env, payment(target.number, "5.00", "P2", day=2))
    deliver(env)
    assert target.paid_amount == Decimal("15.00")
    assert [r["payment_id"] for r in rows(env, "success.jsonl")] == ["P2"]
    send(env, payment(target.number, "10.00", "P1"))  # the accounting system re-sends P1
    deliver(env)
    send(env, payment(target.number, "10.00", "P1"))  # and once more
    deliver(env)
    assert sorted(r["payment_id"] for r in rows(env, "success.jsonl")) == ["P1", "P2"]
    assert target.paid_amount == Decimal("15.00")


def test_a_failure_giving_back_empty_kinds_keeps_the_recorded_batch_held(
    env: LocalEnvironment, monkeypatch: pytest.MonkeyPatch
) -> None:
    expenses = download(env, {"connection": "main", "kinds": ["expenses"]})
    confirm(env, {"connection": "main", "batch_id": expenses["batch_id"]})  # no expenses left
    original = Ledger.release
    calls: list[list[str]] = []

    def release(self: Ledger, connection: str, kinds: Any, token: str) -> None:
        calls.append(list(kinds))
        if len(calls) == 1:  # DynamoDB throttles giving back the empty kind
            raise ClientError(
                {"Error": {"Code": "ThrottlingException", "Message": "slow down"}}, "DeleteItem"
            )
        original(self, connection, kinds, token)

    monkeypatch.setattr(Ledger, "release", release)
    with pytest.raises(ClientError):
        download(env, {"connection": "main", "kinds": ["invoices", "expenses"]})
    monkeypatch.undo()
    assert download(env, {"connection": "main", "kinds": ["invoices"]})["status"] == "reannounced"


def test_an_applied_payment_is_not_reported_failed_when_the_secret_cannot_be_read(
    env: LocalEnvironment, sandbox: SandboxServer
) -> None:
    from aws_lambda_powertools.utilities import parameters

    target = invoice(sandbox)
    send(env, payment(target.number, "10.00", "P1"))
    deliver(env)
    env.events()
    env.stack.client("secretsmanager").put_secret_value(SecretId="connectwise/main", SecretString="not json")
    parameters.clear_caches()
    send(env, payment(target.number, "10.00", "P1"), payment(target.number, "2.00", "P2", day=2))
    deliver(env)
    reported = sorted((e["detail-type"], e["detail"]["payment_id"]) for e in env.events())
    assert reported == [("InvoicePaymentFailed", "P2")]  # P1, applied before, is a duplicate: not failed
    [failed] = rows(env, "fail.jsonl")
    assert "is not valid JSON" in failed["error"]


def test_an_invoice_keeps_a_bounded_number_of_payments(
    env: LocalEnvironment, sandbox: SandboxServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A producer sending ever new payment ids for one invoice cannot grow its ledger item past
    DynamoDB's item size: beyond the limit a payment is refused, clearly, and nothing is lost."""
    monkeypatch.setattr("tasks.payments.settle.MAX_ENTRIES", 3)
    target = invoice(sandbox)
    send(env, [payment(target.number, "1.00", f"P{n}", day=n + 1) for n in range(4)])
    deliver(env)
    assert target.paid_amount == Decimal("3.00")
    [refused] = rows(env, "fail.jsonl")
    assert refused["payment_id"] == "P3" and "already has 3 payments recorded" in refused["error"]


def test_a_payment_applied_by_another_sync_is_reported_once_even_while_the_invoice_is_held(
    env: LocalEnvironment, sandbox: SandboxServer
) -> None:
    """Found by the property test: P1's message came while the invoice was held, and reported
    P1 (applied by another sync) without recording that; P1's own message then reported it again."""
    from tasks.runtime import services

    target = invoice(sandbox)
    invoke(env.stack, "UploadInvoicePaymentsFunction", {"Records": []})
    svc = services()
    p1, p0 = (json.dumps(payment(target.number, "0.01", pid)) for pid in ("P1", "P0"))
    sandbox.faults.set({"statuses": [503] * 4, "retry_after": 0})  # P1's first sync is not run
    assert apply_payment_messages([Message("m0", p1)], svc).retry == ["m0"]
    assert [o.payment_id for o in apply_payment_messages([Message("m1", p0)], svc).outcomes] == ["P0"]
    state = ledger(env).read("main", target.number)
    assert state.payments["P1"].state == "applied" and not state.payments["P1"].reported
    holder = ledger(env).write(state, lease=("another-invocation", time.time() + 60))  # held elsewhere
    assert holder is not None
    assert apply_payment_messages([Message("m2", p1)], svc).retry == ["m2"]  # cannot record it: later
    assert ledger(env).write(holder, keep_lease=False) is not None
    reported = [
        o.payment_id
        for m in ("m2", "m0")
        for o in apply_payment_messages([Message(m, p1)], svc).outcomes
        if o.status == "applied"
    ]
    assert reported == ["P1"]
