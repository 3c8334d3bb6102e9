"""upload_invoice_payments against moto and the sandbox, delivered through SQS."""

import json
import threading
import time
from decimal import Decimal
from typing import Any

import pytest

from connectwise.accounting_interface.client import AccountingClient
from connectwise.rest.client import RestClient
from connectwise.transport import HOLD_AFTER_UNKNOWN
from sandbox.server import SandboxServer
from scripts.harness import LocalEnvironment
from scripts.lambda_local import invoke, poll_sqs, sqs_event
from tasks.payments.outcomes import Message
from tasks.payments.settle import apply_payment_messages
from tasks.platform.errors import InvalidRequestError
from tasks.platform.payment_ledger import PaymentLedger
from tests.conftest import rest_connection, sandbox_connection
from tests.integration.test_gl_life_cycle import paused_until, throttling_passes

QUEUE, FUNCTION = "PaymentsQueue", "UploadInvoicePaymentsFunction"


@pytest.fixture(params=["accounting_interface", "rest"])
def backend(request: pytest.FixtureRequest) -> str:
    """Every test here runs against both backends (the connection's secret chooses)."""
    return str(request.param)


def invoice(sandbox: SandboxServer) -> Any:
    """The sandbox invoice with the largest total, so the amounts below stay under it."""
    return max(sandbox.accounting.site.invoices, key=lambda i: i.total)


def payment(number: str, amount: str, payment_id: str, day: int = 1, **extra: Any) -> dict[str, Any]:
    return {
        "connection": "main",
        "invoice_number": number,
        "paid_amount": amount,
        "date_paid": f"2026-11-{day:02d}T10:00:00+00:00",
        "payment_id": payment_id,
    } | extra


def send(
    env: LocalEnvironment, *bodies: Any, attributes: dict[str, str] | None = None, group: str | None = ""
) -> None:
    """As the accounting system sends payments: in the connection's message group (the fair
    queue's tenant), unless `group` says another one or None."""
    sqs = env.stack.client("sqs")
    for body in bodies:
        sqs.send_message(
            QueueUrl=env.stack.physical[QUEUE],
            MessageBody=body if isinstance(body, str) else json.dumps(body),
            MessageAttributes={
                k: {"DataType": "String", "StringValue": v} for k, v in (attributes or {}).items()
            },
            **({"MessageGroupId": group or env.connection} if group is not None else {}),
        )


def deliver(env: LocalEnvironment) -> list[dict[str, Any]]:
    return poll_sqs(env.stack, QUEUE, FUNCTION)


def ledger(env: LocalEnvironment) -> PaymentLedger:
    return PaymentLedger(env.stack.client("dynamodb"), env.stack.physical["LedgerTable"])


def files(env: LocalEnvironment, suffix: str) -> list[str]:
    s3 = env.stack.client("s3")
    bucket = env.stack.physical["OutputBucket"]
    keys = sorted(o["Key"] for o in s3.list_objects_v2(Bucket=bucket, Prefix="payments/").get("Contents", []))
    return [s3.get_object(Bucket=bucket, Key=k)["Body"].read().decode() for k in keys if k.endswith(suffix)]


def rows(env: LocalEnvironment, suffix: str) -> list[dict[str, Any]]:
    return [json.loads(line) for body in files(env, suffix) for line in body.splitlines()]


def dead_letters(env: LocalEnvironment) -> list[dict[str, Any]]:
    reply = env.stack.client("sqs").receive_message(
        QueueUrl=env.stack.physical["PaymentsDeadLetterQueue"],
        MaxNumberOfMessages=10,
        MessageAttributeNames=["All"],
    )
    return reply.get("Messages", [])


def test_a_payment_is_applied_and_reported(
    env: LocalEnvironment, sandbox: SandboxServer, capsys: Any
) -> None:
    target = invoice(sandbox)
    send(env, payment(target.number, "10.00", "P1", currency="USD"))
    assert deliver(env) == [{"batchItemFailures": []}]
    assert target.paid_amount == Decimal("10.00") and target.paid_date is None  # not fully paid: no date
    state = ledger(env).read("main", target.number)
    assert state.cumulative == Decimal("10.00") and state.applied == Decimal("10.00")
    [success] = rows(env, "success.jsonl")
    assert success["status"] == "applied" and success["connectwise_amount"] == "10.00"
    assert success["invoice_total"] == str(target.total)
    [xml] = files(env, "success.xml")
    assert (
        f"<InvoiceNumber>{target.number}</InvoiceNumber>" in xml and "<PaidAmount>10.00</PaidAmount>" in xml
    )
    assert files(env, "fail.xml") == []
    [event] = env.events()
    assert event["detail-type"] == "InvoicePaymentApplied" and event["detail"]["payment_id"] == "P1"
    metrics = [json.loads(line) for line in capsys.readouterr().out.splitlines() if '"_aws"' in line]
    (counted,) = [m for m in metrics if "PaymentsApplied" in m]
    assert counted["PaymentsApplied"] == [1.0] and counted["connection"] == "main"
    assert counted["PaymentAmountApplied"] == [10.0] and counted["ConnectWiseCalls"][0] >= 1


def test_two_payments_in_one_batch_are_summed_in_one_connectwise_call(
    env: LocalEnvironment, sandbox: SandboxServer
) -> None:
    target = invoice(sandbox)
    send(env, payment(target.number, "10.00", "P1"), payment(target.number, "15.50", "P2", day=2))
    deliver(env)
    assert target.paid_amount == Decimal("25.50")
    assert sandbox.accounting.payment_updates == 1
    assert {r["payment_id"] for r in rows(env, "success.jsonl")} == {"P1", "P2"}


def test_payments_in_different_batches_and_out_of_order_accumulate(
    env: LocalEnvironment, sandbox: SandboxServer
) -> None:
    target = invoice(sandbox)
    rest = target.total - Decimal("20.00")
    send(env, payment(target.number, str(rest), "LATE", day=20))
    deliver(env)
    assert target.paid_date is None
    send(env, payment(target.number, "20.00", "EARLY", day=3))
    deliver(env)
    assert target.paid_amount == target.total
    assert target.paid_date is not None and target.paid_date.day == 20  # the latest payment completes it


def test_a_duplicate_payment_id_changes_nothing(env: LocalEnvironment, sandbox: SandboxServer) -> None:
    target = invoice(sandbox)
    send(env, payment(target.number, "10.00", "P1"))
    deliver(env)
    before = ledger(env).read("main", target.number)
    send(env, payment(target.number, "10.00", "P1"), [payment(target.number, "10.00", "P1")])
    assert deliver(env) == [{"batchItemFailures": []}]
    assert target.paid_amount == Decimal("10.00")
    assert ledger(env).read("main", target.number).payments == before.payments
    assert len(rows(env, "success.jsonl")) == 1
    assert [e["detail-type"] for e in env.events()] == ["InvoicePaymentApplied"]


def test_a_redelivered_payment_sends_the_cumulative_amount_again(
    env: LocalEnvironment, sandbox: SandboxServer
) -> None:
    """ConnectWise's amount is repaired if something (a dead invocation, a manual edit) changed it."""
    target = invoice(sandbox)
    send(env, payment(target.number, "10.00", "P1"))
    deliver(env)
    target.paid_amount = Decimal("1.00")
    send(env, payment(target.number, "10.00", "P1"))
    deliver(env)
    assert target.paid_amount == Decimal("10.00")


def test_a_sync_keeps_the_attributes_it_does_not_know(env: LocalEnvironment, sandbox: SandboxServer) -> None:
    target = invoice(sandbox)
    send(env, payment(target.number, "10.00", "P1"))
    deliver(env)
    db, table = env.stack.client("dynamodb"), env.stack.physical["LedgerTable"]
    key = {"pk": {"S": f"invoice#main#{target.number}"}}
    db.update_item(
        TableName=table,
        Key=key,
        UpdateExpression="SET note = :n",
        ExpressionAttributeValues={":n": {"S": "hi"}},
    )
    send(env, payment(target.number, "5.00", "P2"))
    deliver(env)
    item = db.get_item(TableName=table, Key=key)["Item"]
    assert item["note"] == {"S": "hi"} and {"p#P1", "p#P2"} <= set(item)


def test_a_payment_id_cannot_change_its_amount(env: LocalEnvironment, sandbox: SandboxServer) -> None:
    target = invoice(sandbox)
    send(env, payment(target.number, "10.00", "P1"))
    deliver(env)
    send(env, payment(target.number, "99.00", "P1"))
    deliver(env)
    assert target.paid_amount == Decimal("10.00")
    [failed] = rows(env, "fail.jsonl")
    assert "payment P1 for invoice" in failed["error"] and "a payment id cannot change" in failed["error"]


def test_overpayment_is_capped_and_the_overage_reported(
    env: LocalEnvironment, sandbox: SandboxServer, capsys: Any
) -> None:
    target = invoice(sandbox)
    send(
        env, payment(target.number, str(target.total - 5), "P1"), payment(target.number, "30.00", "P2", day=2)
    )
    deliver(env)
    assert target.paid_amount == target.total
    state = ledger(env).read("main", target.number)
    assert state.cumulative == target.total + 25 and state.overage == Decimal("25.00")
    [warning] = rows(env, "fail.jsonl")
    assert (
        warning["status"] == "overage" and warning["payment_id"] == "P2" and warning["paid_amount"] == "25.00"
    )
    assert "discarded 25.00" in warning["error"]
    assert "<PaidAmount>25.00</PaidAmount>" in files(env, "fail.xml")[0]
    metrics = [json.loads(line) for line in capsys.readouterr().out.splitlines() if '"_aws"' in line]
    assert [m["PaymentOverages"] for m in metrics if "PaymentOverages" in m] == [[1.0]]
    # Reported once: a duplicate of the overpaying payment adds no new overage.
    send(env, payment(target.number, "30.00", "P2", day=2))
    deliver(env)
    assert len(rows(env, "fail.jsonl")) == 1


def test_unknown_invoice_fails_with_connectwise_message_and_is_not_retried(env: LocalEnvironment) -> None:
    send(env, payment("CW-34251", "346.34", "P1"))
    assert deliver(env) == [{"batchItemFailures": []}]
    [failed] = rows(env, "fail.jsonl")
    assert failed["error"] == "Cannot find Invoice Number CW-34251"
    xml = files(env, "fail.xml")[0]
    assert "<ErrorMessage>Cannot find Invoice Number CW-34251</ErrorMessage>" in xml
    assert [e["detail-type"] for e in env.events()] == ["InvoicePaymentFailed"]
    assert dead_letters(env) == []


def test_malformed_message_is_recorded_in_the_fail_file_and_the_dlq(env: LocalEnvironment) -> None:
    send(env, "garbage{")
    assert deliver(env) == [{"batchItemFailures": []}]
    [failed] = rows(env, "fail.jsonl")
    assert "neither JSON nor XML" in failed["error"]
    [dead] = dead_letters(env)
    assert (
        dead["Body"] == "garbage{"
        and "neither JSON nor XML" in dead["MessageAttributes"]["error"]["StringValue"]
    )


def test_invalid_amount_and_unknown_connection_are_permanent(
    env: LocalEnvironment, sandbox: SandboxServer
) -> None:
    target = invoice(sandbox)
    send(env, payment(target.number, "-3", "P1"))
    send(env, payment(target.number, "3.00", "P2", connection="elsewhere"), group="elsewhere")
    send(env, payment(target.number, "4.00", "P3", connection="elsewhere"))  # in main's group
    assert deliver(env) == [{"batchItemFailures": []}]
    errors = sorted(r["error"] for r in rows(env, "fail.jsonl"))
    assert len(errors) == 3
    assert any("paid_amount: Input should be greater than 0" in e for e in errors)
    assert any(e.startswith("unknown connection 'elsewhere'") for e in errors)
    assert any("names connection 'elsewhere' but was sent for connection 'main'" in e for e in errors)
    assert target.paid_amount == 0
    listed = env.stack.client("s3").list_objects_v2(
        Bucket=env.stack.physical["OutputBucket"], Prefix="payments/"
    )
    keys = [o["Key"] for o in listed["Contents"] if o["Key"].endswith("fail.jsonl")]
    assert sorted(k.split("/")[1] for k in keys) == ["elsewhere", "main"]  # each under its own prefix


def test_xml_message_with_connection_attribute(env: LocalEnvironment, sandbox: SandboxServer) -> None:
    target = invoice(sandbox)
    body = (
        f"<ArrayOfUpdateInvoicePayment><UpdateInvoicePayment><InvoiceNumber>{target.number}</InvoiceNumber>"
        "<PaidAmount>12.34</PaidAmount><DatePaid>2026-11-05T12:05:54+01:00</DatePaid>"
        "</UpdateInvoicePayment></ArrayOfUpdateInvoicePayment>"
    )
    send(env, body, attributes={"connection": "main"}, group=None)
    send(env, body)  # the same document again, only in main's message group: the same payment
    send(env, body, group=None)  # neither: no connection to apply it for
    deliver(env)
    assert target.paid_amount == Decimal("12.34")
    [refused] = rows(env, "fail.jsonl")
    assert refused["error"].endswith("connection: Field required")


def test_transient_faults_are_retried_until_applied(env: LocalEnvironment, sandbox: SandboxServer) -> None:
    target = invoice(sandbox)
    sandbox.faults.set({"statuses": [503] * 4, "retry_after": 0})  # one try + three client retries
    send(env, payment(target.number, "10.00", "P1"))
    [first] = deliver(env)
    assert len(first["batchItemFailures"]) == 1
    assert target.paid_amount == 0
    [pending] = ledger(env).read("main", target.number).payments.values()  # counted, not yet applied
    assert pending.state == "pending" and files(env, "fail.jsonl") == [] and files(env, "success.jsonl") == []
    assert deliver(env) == [{"batchItemFailures": []}]
    assert target.paid_amount == Decimal("10.00")
    assert len(rows(env, "success.jsonl")) == 1


def test_429_retry_after_is_honoured(
    env: LocalEnvironment, sandbox: SandboxServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    waits: list[float] = []
    monkeypatch.setattr("connectwise.transport.time.sleep", waits.append)  # record the waits, do not sleep
    target = invoice(sandbox)
    sandbox.faults.set({"statuses": [429], "retry_after": 3})
    send(env, payment(target.number, "10.00", "P1"))
    assert deliver(env) == [{"batchItemFailures": []}]
    assert 3 in waits  # the client waited as ConnectWise said, then succeeded
    assert target.paid_amount == Decimal("10.00")


def test_after_the_redrive_limit_the_message_is_in_the_dlq(
    env: LocalEnvironment, sandbox: SandboxServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    target = invoice(sandbox)
    # Other invocations keep syncing the invoice first: every delivery is a transient failure.
    monkeypatch.setattr(PaymentLedger, "write", lambda *args, **kwargs: None)
    send(env, payment(target.number, "10.00", "P1"))
    for _ in range(int(env.stack.parameters["PaymentsMaxReceiveCount"])):
        [response] = deliver(env)
        assert len(response["batchItemFailures"]) == 1
    assert deliver(env) == []
    [dead] = dead_letters(env)
    assert json.loads(dead["Body"])["payment_id"] == "P1"


def test_concurrent_invocations_end_with_the_sum(env: LocalEnvironment, sandbox: SandboxServer) -> None:
    target = invoice(sandbox)
    sandbox.faults.set({"latency_ms": 200})
    events = [
        sqs_event([_message(f"m{i}", payment(target.number, "7.00", f"P{i}", day=i + 1))], "arn:aws:sqs:q")
        for i in range(4)
    ]
    pending = list(events)
    while pending:
        results: dict[int, Any] = {}

        def run(index: int, event: dict[str, Any], into: dict[int, Any] = results) -> None:
            into[index] = invoke(env.stack, FUNCTION, event)

        threads = [threading.Thread(target=run, args=(i, e)) for i, e in enumerate(pending)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        pending = [pending[i] for i, r in results.items() if r["batchItemFailures"]]
    assert target.paid_amount == Decimal("28.00")
    assert ledger(env).read("main", target.number).cumulative == Decimal("28.00")
    assert sorted(r["payment_id"] for r in rows(env, "success.jsonl")) == ["P0", "P1", "P2", "P3"]


def _message(message_id: str, body: dict[str, Any]) -> dict[str, Any]:
    text = json.dumps(body)
    return {"MessageId": message_id, "ReceiptHandle": message_id, "Body": text, "MD5OfBody": "x"}


def test_a_payment_in_another_currency_fails_alone(env: LocalEnvironment, sandbox: SandboxServer) -> None:
    target = invoice(sandbox)
    send(env, payment(target.number, "10.00", "P1", currency="USD"))
    deliver(env)
    send(
        env,
        payment(target.number, "5.00", "P2", day=2, currency="EUR"),
        payment(target.number, "2.00", "P3", day=3),
    )
    deliver(env)
    assert target.paid_amount == Decimal("12.00")
    [failed] = rows(env, "fail.jsonl")
    assert (
        failed["payment_id"] == "P2" and "is paid in USD; a payment in EUR cannot be added" in failed["error"]
    )


def test_a_payment_arriving_while_another_invocation_holds_the_invoice_is_sent_by_the_holder(
    env: LocalEnvironment, sandbox: SandboxServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    from tasks.runtime import services

    target = invoice(sandbox)
    p2 = payment(target.number, "5.00", "P2")
    others: list[Any] = []
    sent = on_connectwise_call(
        env,
        monkeypatch,
        before=lambda n: (
            others.append(apply_payment_messages([Message("B", json.dumps(p2))], services()))
            if n == 1
            else None
        ),
    )
    send(env, payment(target.number, "10.00", "P1"))
    assert deliver(env) == [{"batchItemFailures": []}]
    # B came while A held the invoice: it only added P2 (pending) and is retried later.
    [other] = others
    assert other.retry == ["B"] and other.outcomes == []
    assert sent == [Decimal("10.00"), Decimal("15.00")]  # A saw the item change and sent again with P2
    assert target.paid_amount == Decimal("15.00")
    state = ledger(env).read("main", target.number)
    assert {p: e.state for p, e in state.payments.items()} == {"P1": "applied", "P2": "applied"}
    assert state.lease == "" and state.applied == Decimal("15.00")
    [applied] = rows(env, "success.jsonl")
    assert applied["payment_id"] == "P1" and applied["connectwise_amount"] == "15.00"
    again = apply_payment_messages([Message("B", json.dumps(p2))], services())  # B's message comes back
    assert [(o.payment_id, o.status) for o in again.outcomes] == [("P2", "applied")]
    assert target.paid_amount == Decimal("15.00")


def test_an_invocation_that_dies_after_its_call_holds_the_invoice_until_its_time_is_up(
    env: LocalEnvironment, sandbox: SandboxServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """It may have died with its write in flight: nobody writes the invoice until that write
    can no longer land; then the next delivery sends the whole amount."""
    target = invoice(sandbox)
    clock = fake_clock(env, monkeypatch)
    sent = on_connectwise_call(env, monkeypatch, after=lambda n: _die() if n == 1 else None)
    event = sqs_event([_message("A", payment(target.number, "10.00", "P1"))], "arn:aws:sqs:q")
    with pytest.raises(InvocationDied):
        invoke(env.stack, FUNCTION, event)
    assert target.paid_amount == Decimal("10.00")
    assert ledger(env).read("main", target.number).payments["P1"].state == "pending"
    send(env, payment(target.number, "5.00", "P2"))
    [busy] = deliver(env)  # P2 is added, the message comes back later
    assert len(busy["batchItemFailures"]) == 1 and sent == [Decimal("10.00")]
    assert ledger(env).read("main", target.number).cumulative == Decimal("15.00")
    clock[0] += 120 + HOLD_AFTER_UNKNOWN + 1  # A's invocation time and the hold are over
    assert invoke(env.stack, FUNCTION, event) == {"batchItemFailures": []}  # SQS delivers A's message again
    assert target.paid_amount == Decimal("15.00") and sent[-1] == Decimal("15.00")
    assert deliver(env) == [{"batchItemFailures": []}]  # and P2's
    assert sorted(r["payment_id"] for r in rows(env, "success.jsonl")) == ["P1", "P2"]


class InvocationDied(BaseException):
    """Lambda ended the invocation (a timeout, the process killed): nothing of it runs on."""


def _die() -> None:
    raise InvocationDied("died between the ConnectWise call and the ledger write")


def test_a_message_delivered_again_after_its_invocation_died_reports_its_payments(
    env: LocalEnvironment, sandbox: SandboxServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    target = invoice(sandbox)

    def die(*args: Any) -> None:
        raise RuntimeError("died after the ledger write, before writing results")

    monkeypatch.setattr("tasks.payments.upload.write_result_files", die)
    event = sqs_event([_message("A", payment(target.number, "10.00", "P1"))], "arn:aws:sqs:q")
    with pytest.raises(RuntimeError, match="died"):
        invoke(env.stack, FUNCTION, event)
    monkeypatch.undo()
    assert invoke(env.stack, FUNCTION, event) == {"batchItemFailures": []}  # delivered again
    [applied] = rows(env, "success.jsonl")
    assert applied["payment_id"] == "P1" and applied["connectwise_amount"] == "10.00"
    send(env, payment(target.number, "10.00", "P1"))  # another message with it: a duplicate
    deliver(env)
    assert len(rows(env, "success.jsonl")) == 1
    assert target.paid_amount == Decimal("10.00")


def on_connectwise_call(
    env: LocalEnvironment,
    monkeypatch: pytest.MonkeyPatch,
    before: Any = lambda n: None,
    after: Any = lambda n: None,
) -> list[Decimal]:
    """Run `before(n)` and `after(n)` around the n-th payment call to ConnectWise (1-based);
    returns the amounts sent, in order."""
    client_class: Any = RestClient if env.backend == "rest" else AccountingClient
    original = client_class.update_invoice_payment
    sent: list[Decimal] = []

    def call(self: Any, number: str, amount: Decimal, date_paid: Any) -> Any:
        sent.append(amount)
        before(len(sent))
        reply = original(self, number, amount, date_paid)
        after(len(sent))
        return reply

    monkeypatch.setattr(client_class, "update_invoice_payment", call)
    return sent


def fake_clock(env: LocalEnvironment, monkeypatch: pytest.MonkeyPatch) -> list[float]:
    """The payment function's wall clock, moved by the test (leases expire by it)."""
    from tasks.runtime import services

    invoke(env.stack, FUNCTION, {"Records": []})  # its services, built from its environment
    now = [time.time()]
    monkeypatch.setattr(services(), "clock", lambda: now[0])
    return now


# --- money safety under faults (issue 10) ----------------------------------------------------

WRITES = {"accounting_interface": ["POST"], "rest": ["POST", "PUT"]}


def test_a_payment_failed_for_refused_credentials_is_applied_once_the_secret_is_fixed(
    env: LocalEnvironment, sandbox: SandboxServer
) -> None:
    from aws_lambda_powertools.utilities import parameters

    target = invoice(sandbox)
    secrets = env.stack.client("secretsmanager")
    good = secrets.get_secret_value(SecretId="connectwise/main")["SecretString"]
    wrong = json.loads(good) | (
        {"private_key": "rotated"} if env.backend == "rest" else {"password": "rotated"}
    )
    secrets.put_secret_value(SecretId="connectwise/main", SecretString=json.dumps(wrong))
    parameters.clear_caches()  # a container that read the rotated secret
    send(env, payment(target.number, "10.00", "P1"))
    assert deliver(env) == [{"batchItemFailures": []}]
    [failed] = rows(env, "fail.jsonl")
    assert failed["payment_id"] == "P1" and failed["status"] == "failed"
    [dead] = dead_letters(env)  # kept, to be re-driven once the secret is fixed
    assert "rotated" not in json.dumps(dead) and dead["MessageAttributes"]["error"]["StringValue"]
    assert ledger(env).read("main", target.number).payments["P1"].state == "failed"
    assert target.paid_amount == 0

    secrets.put_secret_value(SecretId="connectwise/main", SecretString=good)  # the operator's fix
    send(env, dead["Body"])  # the DLQ re-driven (within the secret's cache time: it is read afresh)
    assert deliver(env) == [{"batchItemFailures": []}]
    assert target.paid_amount == Decimal("10.00")
    assert [r["payment_id"] for r in rows(env, "success.jsonl")] == ["P1"]
    send(env, payment(target.number, "10.00", "P1"))  # the accounting system re-sends it too
    deliver(env)
    assert target.paid_amount == Decimal("10.00") and len(rows(env, "success.jsonl")) == 1


def test_a_payment_refused_by_connectwise_is_tried_again_when_sent_again(
    env: LocalEnvironment, sandbox: SandboxServer
) -> None:
    target = invoice(sandbox)
    sandbox.faults.set({"statuses": [400], "methods": WRITES[env.backend]})
    send(env, payment(target.number, "10.00", "P1"))
    deliver(env)
    assert [r["payment_id"] for r in rows(env, "fail.jsonl")] == ["P1"] and target.paid_amount == 0
    send(env, payment(target.number, "10.00", "P1"))
    assert deliver(env) == [{"batchItemFailures": []}]
    assert target.paid_amount == Decimal("10.00")
    assert [r["payment_id"] for r in rows(env, "success.jsonl")] == ["P1"]
    assert [e["detail-type"] for e in env.events()] == ["InvoicePaymentFailed", "InvoicePaymentApplied"]


def test_a_payment_applied_behind_an_unreadable_reply_stays_counted(
    env: LocalEnvironment, sandbox: SandboxServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    target = invoice(sandbox)
    clock = fake_clock(env, monkeypatch)
    sandbox.faults.set({"malformed": 1, "methods": WRITES[env.backend]})  # applied, reply cut short
    send(env, payment(target.number, "10.00", "P1"))
    [first] = deliver(env)
    assert target.paid_amount == Decimal("10.00")
    assert rows(env, "fail.jsonl") == []  # never reported failed
    if env.backend == "rest":  # REST reads the payment back: it holds the amount, so applied
        assert first == {"batchItemFailures": []}
    else:  # the Accounting Interface cannot read back: unknown, counted, held, retried later
        assert len(first["batchItemFailures"]) == 1
        entry = ledger(env).read("main", target.number).payments["P1"]
        assert (entry.state, entry.doubt) == ("pending", True)
    send(env, payment(target.number, "5.00", "P2"))
    deliver(env)
    clock[0] += HOLD_AFTER_UNKNOWN + 1
    deliver(env)
    assert target.paid_amount == Decimal("15.00")  # P1 was never dropped from the sum
    assert sorted(r["payment_id"] for r in rows(env, "success.jsonl")) == ["P1", "P2"]


def test_a_write_landing_late_cannot_overwrite_a_newer_amount(
    env: LocalEnvironment, sandbox: SandboxServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A write ConnectWise runs after the client gave up on it holds the invoice for a while:
    nothing newer is written until it can no longer land."""
    import dataclasses

    from tasks.runtime import services

    target = invoice(sandbox)
    clock = fake_clock(env, monkeypatch)
    impatient = RestClient if env.backend == "rest" else AccountingClient
    login = rest_connection(sandbox) if env.backend == "rest" else sandbox_connection(sandbox)
    client = impatient(login, timeout=(2.0, 0.3), backoff=0)  # type: ignore[arg-type]
    svc = dataclasses.replace(services(), client_for=lambda _: client)
    sandbox.faults.set({"hangs": 1, "hang_seconds": 0.8, "methods": WRITES[env.backend]})
    first = apply_payment_messages([Message("A", json.dumps(payment(target.number, "10.00", "P1")))], svc)
    assert first.retry == ["A"] and first.outcomes == []  # unknown: counted, held, retried later
    second = apply_payment_messages([Message("B", json.dumps(payment(target.number, "5.00", "P2")))], svc)
    assert second.retry == ["B"]  # held: P2 is added, not sent
    time.sleep(0.8)  # the late write lands
    assert target.paid_amount == Decimal("10.00")
    clock[0] += HOLD_AFTER_UNKNOWN + 1
    again = apply_payment_messages([Message("B", json.dumps(payment(target.number, "5.00", "P2")))], svc)
    assert [(o.payment_id, o.status) for o in again.outcomes] == [("P2", "applied")]
    assert target.paid_amount == Decimal("15.00")
    last = apply_payment_messages([Message("A", json.dumps(payment(target.number, "10.00", "P1")))], svc)
    assert [(o.payment_id, o.status) for o in last.outcomes] == [("P1", "applied")]


def test_two_invocations_paying_an_invoice_for_the_first_time_make_one_payment(
    env: LocalEnvironment, sandbox: SandboxServer
) -> None:
    """ConnectWise may accept a second POST for an invoice: the ledger decides who creates."""
    target = invoice(sandbox)
    sandbox.faults.set({"latency_ms": 150, "second_payment": True})
    pending = [
        sqs_event([_message(f"m{i}", payment(target.number, "7.00", f"P{i}", day=i + 1))], "arn:aws:sqs:q")
        for i in range(2)
    ]
    while pending:
        pending = [event for event, result in zip(pending, _at_once(env, pending), strict=True) if result]
    assert target.extra_payments == [] and target.payment_id is not None
    assert target.paid_amount == Decimal("14.00")


def _at_once(env: LocalEnvironment, events: list[dict[str, Any]]) -> list[list[Any]]:
    """Invoke the function once per event, all at the same time; each one's failed items."""
    results: dict[int, Any] = {}

    def run(index: int) -> None:
        results[index] = invoke(env.stack, FUNCTION, events[index])["batchItemFailures"]

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(events))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return [results[i] for i in range(len(events))]


def test_xml_without_payment_id_is_the_invoices_paid_to_date_amount(
    env: LocalEnvironment, sandbox: SandboxServer
) -> None:
    target = invoice(sandbox)

    def paid_to_date(amount: str, day: int, payment_id: str = "") -> str:
        extra = f"<PaymentId>{payment_id}</PaymentId>" if payment_id else ""
        return (
            "<ArrayOfUpdateInvoicePayment><UpdateInvoicePayment>"
            f"<InvoiceNumber>{target.number}</InvoiceNumber><PaidAmount>{amount}</PaidAmount>"
            f"<DatePaid>2026-11-{day:02d}T12:00:00+00:00</DatePaid>{extra}"
            "</UpdateInvoicePayment></ArrayOfUpdateInvoicePayment>"
        )

    send(env, paid_to_date("50.00", 1))
    deliver(env)
    assert target.paid_amount == Decimal("50.00")
    send(env, paid_to_date("100.00", 5))  # paid to date: replaces, does not add
    deliver(env)
    assert target.paid_amount == Decimal("100.00")
    send(env, paid_to_date("50.00", 1), paid_to_date("80.00", 3))  # an old one again, an older one late
    deliver(env)
    assert target.paid_amount == Decimal("100.00")  # the latest by date paid stands
    success = rows(env, "success.jsonl")
    assert {r["kind"] for r in success} == {"paid_to_date"}
    assert {r["paid_amount"]: r["cumulative"] for r in success} == {
        "50.00": "50.00",
        "100.00": "100.00",
        "80.00": "100.00",
    }
    assert "<PaymentId>" not in files(env, "success.xml")[0]
    send(env, paid_to_date("10.00", 6, payment_id="BANK-1"), payment(target.number, "10.00", "P1", day=7))
    deliver(env)  # individual payments cannot be mixed in
    assert target.paid_amount == Decimal("100.00")
    failed = rows(env, "fail.jsonl")
    assert len(failed) == 2 and all("is paid by paid-to-date amounts" in r["error"] for r in failed)
    assert "<PaymentId>BANK-1</PaymentId>" in files(env, "fail.xml")[0]


def test_a_poison_message_fails_alone(env: LocalEnvironment, sandbox: SandboxServer) -> None:
    target = invoice(sandbox)
    send(env, "[" * 100_000 + "]" * 100_000, payment(target.number, "10.00", "P1"))
    assert deliver(env) == [{"batchItemFailures": []}]
    assert target.paid_amount == Decimal("10.00")
    [dead] = dead_letters(env)
    assert (
        "payment message is unreadable: RecursionError" in dead["MessageAttributes"]["error"]["StringValue"]
    )


def test_a_retry_after_longer_than_the_invocation_can_wait_returns_the_message(
    env: LocalEnvironment, sandbox: SandboxServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    waits: list[float] = []
    monkeypatch.setattr("connectwise.transport.time.sleep", waits.append)
    target = invoice(sandbox)
    sandbox.faults.set({"statuses": [429], "retry_after": 3600})
    send(env, payment(target.number, "10.00", "P1"))
    [first] = deliver(env)
    assert len(first["batchItemFailures"]) == 1 and waits == []  # not slept: retried by the queue
    # Every invocation of the connection waits the hour: the next delivery sends nothing either.
    assert paused_until(env) > time.time() + 3000
    assert len(deliver(env)[0]["batchItemFailures"]) == 1 and target.paid_amount == 0
    throttling_passes(env)
    assert deliver(env) == [{"batchItemFailures": []}] and target.paid_amount == Decimal("10.00")


@pytest.mark.parametrize(
    "event", [None, {}, {"Records": [{"messageId": "m1", "receiptHandle": "r"}]}, {"Records": "x"}]
)
def test_a_malformed_sqs_event_is_a_clear_error(env: LocalEnvironment, event: Any) -> None:
    with pytest.raises(InvalidRequestError, match="not an SQS event"):
        invoke(env.stack, FUNCTION, event)


def test_a_second_paid_to_date_amount_with_the_same_date_is_refused_whatever_the_order(
    env: LocalEnvironment, sandbox: SandboxServer
) -> None:
    """Two amounts for one instant could only be ordered by arrival, which a redelivery turns
    round: the one that comes second is refused, in another batch or in the same one, and a
    correction with a later date is applied."""
    target = invoice(sandbox)

    def paid_to_date(amount: str, day: int) -> str:
        return (
            "<ArrayOfUpdateInvoicePayment><UpdateInvoicePayment>"
            f"<InvoiceNumber>{target.number}</InvoiceNumber><PaidAmount>{amount}</PaidAmount>"
            f"<DatePaid>2026-11-{day:02d}T12:00:00+00:00</DatePaid>"
            "</UpdateInvoicePayment></ArrayOfUpdateInvoicePayment>"
        )

    send(env, paid_to_date("150.00", 2))
    deliver(env)
    send(env, paid_to_date("100.00", 2))  # the superseded amount, delivered late
    deliver(env)
    assert target.paid_amount == Decimal("150.00")
    send(env, paid_to_date("60.00", 4), paid_to_date("70.00", 4))  # a tie within one batch
    deliver(env)
    assert target.paid_amount in (Decimal("60.00"), Decimal("70.00"))
    refused = [r for r in rows(env, "fail.jsonl") if "cannot be put in order" in r["error"]]
    assert sorted(r["paid_amount"] for r in refused) in (["100.00", "70.00"], ["100.00", "60.00"])
    send(env, paid_to_date("100.00", 2))  # sent again: still refused, nothing changes
    send(env, paid_to_date("120.00", 5))  # the correction, with its own later date
    deliver(env)
    assert target.paid_amount == Decimal("120.00")
