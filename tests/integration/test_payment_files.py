"""The payment file drop against moto and the sandbox: a file put in the bucket, its "Object
Created" event delivered by the template's EventBridge rule to split_payment_file (its IAM policy
enforced), the messages delivered to upload_invoice_payments, and the results beside the file."""

import json
import re
import threading
from decimal import Decimal
from typing import Any

import pytest

from sandbox.server import SandboxServer
from scripts.harness import LocalEnvironment
from scripts.lambda_local import invoke, poll_sqs
from scripts.object_events import deliver, put_object
from tasks.payments import drop
from tests.integration.test_payments import ledger

FUNCTION = "SplitPaymentFileFunction"


def xml_file(*entries: tuple[str, str, str] | tuple[str, str, str, str]) -> bytes:
    """(invoice, amount, date[, payment id]): without an id, the invoice's paid-to-date amount."""
    rows = "".join(
        f"<UpdateInvoicePayment><InvoiceNumber>{e[0]}</InvoiceNumber><PaidAmount>{e[1]}</PaidAmount>"
        f"<DatePaid>{e[2]}</DatePaid>{f'<PaymentId>{e[3]}</PaymentId>' if len(e) > 3 else ''}"
        "</UpdateInvoicePayment>"
        for e in entries
    )
    return f'<?xml version="1.0" encoding="utf-8"?>\n<ArrayOfUpdateInvoicePayment>{rows}</ArrayOfUpdateInvoicePayment>'.encode()


def json_file(*entries: tuple[str, str, str, str]) -> bytes:
    return json.dumps(
        [{"invoice_number": n, "paid_amount": a, "date_paid": d, "payment_id": p} for n, a, d, p in entries]
    ).encode()


def drop_file(env: LocalEnvironment, name: str, body: bytes, connection: str = "") -> dict[str, Any]:
    """Put the file where finance teams drop them; the rule's functions run; the split's result."""
    event = put_object(env.stack, f"payment-files/{connection or env.connection}/{name}", body)
    results = deliver(env.stack, event)
    assert list(results) == [FUNCTION]
    return dict(results[FUNCTION])


def apply(env: LocalEnvironment) -> list[dict[str, Any]]:
    return poll_sqs(env.stack, "PaymentsQueue", "UploadInvoicePaymentsFunction")


def objects(env: LocalEnvironment, prefix: str) -> dict[str, bytes]:
    s3, bucket = env.stack.client("s3"), env.stack.physical["OutputBucket"]
    listed = s3.list_objects_v2(Bucket=bucket, Prefix=prefix).get("Contents", [])
    return {o["Key"]: s3.get_object(Bucket=bucket, Key=o["Key"])["Body"].read() for o in listed}


def lines(files: dict[str, bytes], suffix: str) -> list[dict[str, Any]]:
    return [
        json.loads(line)
        for key, body in sorted(files.items())
        if key.endswith(suffix)
        for line in body.splitlines()
    ]


def queued(env: LocalEnvironment) -> list[dict[str, Any]]:
    """Every message on the payments queue (left there, invisible for a while, so each is seen once)."""
    sqs, url = env.stack.client("sqs"), env.stack.physical["PaymentsQueue"]
    found: list[dict[str, Any]] = []
    while batch := sqs.receive_message(
        QueueUrl=url, MaxNumberOfMessages=10, MessageAttributeNames=["All"], AttributeNames=["All"]
    ).get("Messages", []):
        found += batch
    return found


def invoices(sandbox: SandboxServer, count: int) -> list[Any]:
    return sorted(sandbox.accounting.site.invoices, key=lambda i: -i.total)[:count]


def test_an_xml_file_is_split_applied_once_and_reported_beside_it(
    env: LocalEnvironment, sandbox: SandboxServer, capsys: Any
) -> None:
    first, second = invoices(sandbox, 2)
    body = xml_file(
        (first.number, "10.00", "2026-11-02T10:00:00Z"),  # paid to date: 10, then 25
        (first.number, "25.00", "2026-11-05T10:00:00Z"),
        (second.number, "5.00", "2026-11-03T10:00:00Z", "PAY-1"),  # two payments: summed
        (second.number, "7.50", "2026-11-04T10:00:00Z", "PAY-2"),
        ("", "1.00", "2026-11-04T10:00:00Z", "PAY-3"),  # refused while reading
    )
    split = drop_file(env, "november.xml", body)
    assert split["status"] == "split" and (split["queued"], split["refused"]) == (4, 1)
    results = split["results"]
    assert results.startswith("payment-results/main/november.xml/")
    apply(env)
    assert first.paid_amount == Decimal("25.00") and second.paid_amount == Decimal("12.50")

    files = objects(env, results)
    summary = json.loads(files[f"{results}split.json"])
    assert summary | {"split_at": ""} == summary | {
        "file": "payment-files/main/november.xml",
        "status": "split",
        "entries": 5,
        "queued": 4,
        "refused": 1,
        "messages": 1,
        "split_at": "",
    }
    [refused] = lines(files, "split-fail.jsonl")
    assert refused["index"] == 4 and "payment 4" in refused["error"] and "invoice_number" in refused["error"]
    assert b"<ErrorMessage>payment 4" in files[f"{results}split-fail.xml"]
    settled = lines(files, "-success.jsonl")
    assert sorted((r["invoice_number"], r["status"], r["kind"]) for r in settled) == sorted(
        [(first.number, "applied", "paid_to_date")] * 2 + [(second.number, "applied", "payment")] * 2
    )
    assert any(k.startswith(f"{results}settled/") and k.endswith("-success.xml") for k in files)
    metrics = [
        json.loads(line) for line in capsys.readouterr().out.splitlines() if '"PaymentFilesSplit"' in line
    ]
    assert metrics and metrics[0]["PaymentFileEntriesQueued"] == [4.0]
    assert metrics[0]["PaymentFileEntriesRefused"] == [1.0]


def test_a_json_file_uploaded_twice_applies_each_payment_once(
    env: LocalEnvironment, sandbox: SandboxServer
) -> None:
    first, second = invoices(sandbox, 2)
    body = json_file(
        (first.number, "10.00", "2026-11-02T10:00:00+01:00", "J-1"),
        (second.number, "3.25", "2026-11-03T10:00:00+01:00", "J-2"),
    )
    one = drop_file(env, "payments.json", body)
    apply(env)
    before = ledger(env).read("main", first.number).payments
    two = drop_file(env, "payments.json", body)  # a new version: split again, on its own
    assert one["results"] != two["results"] and two["queued"] == 2
    apply(env)
    assert (first.paid_amount, second.paid_amount) == (Decimal("10.00"), Decimal("3.25"))
    assert ledger(env).read("main", first.number).payments == before
    again = lines(objects(env, two["results"]), "-success.jsonl")
    assert sorted((r["payment_id"], r["status"]) for r in again) == [
        ("J-1", "duplicate"),
        ("J-2", "duplicate"),
    ]


def test_a_big_file_is_split_into_small_messages_each_payment_once(
    env: LocalEnvironment, sandbox: SandboxServer
) -> None:
    numbers = [i.number for i in sandbox.accounting.site.invoices]
    entries = [(numbers[i % len(numbers)], "0.01", "2026-11-02T10:00:00Z", f"BIG-{i}") for i in range(5000)]
    split = drop_file(env, "big.xml", xml_file(*entries))
    assert (split["queued"], split["refused"]) == (5000, 0)
    messages = queued(env)
    assert len(messages) == 500
    ids = [
        payment_id
        for m in messages
        for payment_id in re.findall(r"<PaymentId>(BIG-\d+)</PaymentId>", m["Body"])
    ]
    assert sorted(ids) == sorted(e[3] for e in entries)  # each payment in one message, once
    assert max(len(m["Body"].encode()) for m in messages) < 256 * 1024
    [results] = {m["MessageAttributes"]["payment_file"]["StringValue"] for m in messages}
    assert {m["MessageAttributes"]["connection"]["StringValue"] for m in messages} == {"main"}
    assert {m["Attributes"]["MessageGroupId"] for m in messages} == {"main"}
    assert results == split["results"]


@pytest.mark.parametrize(
    ("name", "body", "problem"),
    [
        (
            "entities.xml",
            b'<?xml version="1.0"?><!DOCTYPE a [<!ENTITY big "x">]>'
            b"<ArrayOfUpdateInvoicePayment>&big;</ArrayOfUpdateInvoicePayment>",
            "declares a DTD or entities",
        ),
        ("external.xml", b'<!DOCTYPE a SYSTEM "http://127.0.0.1:9/x.dtd"><a/>', "declares a DTD"),
        ("deep.json", b'{"payments": [' + b"[" * 100_000, "nests deeper than 256 levels"),
        (
            "deep.xml",
            b"<ArrayOfUpdateInvoicePayment><UpdateInvoicePayment>" + b"<a>" * 5000,
            "not well-formed",
        ),
        ("garbage.json", b"\x00\xff garbage", "not JSON"),
        (
            "garbage.xml",
            b"<ArrayOfUpdateInvoicePayment><UpdateInvoicePayment></Update>",
            "not well-formed XML",
        ),
        ("empty.json", b"[]", "holds no payment"),
    ],
)
def test_a_hostile_or_unreadable_file_sends_nothing_and_says_why(
    env: LocalEnvironment, name: str, body: bytes, problem: str
) -> None:
    split = drop_file(env, name, body)
    assert split["status"] == "refused" and problem in split["error"]
    files = objects(env, split["results"])
    assert json.loads(files[f"{split['results']}split.json"])["status"] == "refused"
    [row] = lines(files, "split-fail.jsonl")
    assert problem in row["error"]
    assert queued(env) == []


def test_a_file_cut_short_halfway_sends_nothing(env: LocalEnvironment, sandbox: SandboxServer) -> None:
    [target] = invoices(sandbox, 1)
    body = xml_file(*[(target.number, "0.01", "2026-11-02T10:00:00Z", f"C-{i}") for i in range(300)])
    split = drop_file(env, "cut.xml", body[: len(body) // 2])
    assert split["status"] == "refused" and queued(env) == []


def test_an_unknown_connection_or_a_bad_name_is_refused_with_a_fail_file(env: LocalEnvironment) -> None:
    body = json_file(("CW-1", "1.00", "2026-11-02T10:00:00Z", "U-1"))
    split = drop_file(env, "p.json", body, connection="nobody")
    assert "unknown connection 'nobody'" in split["error"]
    assert split["results"].startswith("payment-results/nobody/p.json/")
    odd = drop_file(env, "deeper/p.json", body)
    assert odd["status"] == "refused" and odd["results"].startswith("payment-results/_unknown/")
    assert "payment-files/<connection>/<name>.xml or .json" in odd["error"]
    assert queued(env) == []


def test_results_never_trigger_the_split(env: LocalEnvironment, sandbox: SandboxServer) -> None:
    [target] = invoices(sandbox, 1)
    split = drop_file(env, "p.xml", xml_file((target.number, "1.00", "2026-11-02T10:00:00Z", "R-1")))
    apply(env)
    written = objects(env, "payment-results/")
    assert written and all(key.startswith(split["results"]) for key in written)
    assert list(objects(env, "payment-files/")) == ["payment-files/main/p.xml"]
    for key, body in written.items():  # as if each result were an upload: no rule matches
        event = put_object(env.stack, key, body)
        assert deliver(env.stack, event) == {}


def test_a_split_that_dies_midway_is_retried_after_what_it_sent(
    env: LocalEnvironment, sandbox: SandboxServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    numbers = [i.number for i in invoices(sandbox, 4)]
    entries = [(numbers[i % 4], "0.01", "2026-11-02T10:00:00Z", f"D-{i}") for i in range(350)]  # 4 parts
    event = put_object(env.stack, "payment-files/main/dies.xml", xml_file(*entries))
    sends = 0
    real_send = drop.PaymentQueue.send

    def dies_at_third(queue: drop.PaymentQueue, *args: Any) -> None:
        nonlocal sends
        sends += 1
        if sends == 3:
            raise RuntimeError("the invocation died")
        real_send(queue, *args)

    monkeypatch.setattr(drop.PaymentQueue, "send", dies_at_third)
    with pytest.raises(RuntimeError, match="died"):
        invoke(env.stack, FUNCTION, event)
    assert len(queued(env)) == 20  # two parts of ten messages
    monkeypatch.setattr(drop.PaymentQueue, "send", real_send)
    result = invoke(env.stack, FUNCTION, event)  # Lambda's retry of the same event
    assert result["queued"] == 350 and sends == 3
    assert len(queued(env)) == 15  # the two other parts only (350 payments are 35 messages)
    assert invoke(env.stack, FUNCTION, event)["status"] == "already split"
    assert queued(env) == []


def test_a_part_sent_but_not_recorded_is_sent_again_and_applied_once(
    env: LocalEnvironment, sandbox: SandboxServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The invocation dies between SendMessageBatch and the progress write: the part goes twice."""
    numbers = [i.number for i in invoices(sandbox, 3)]
    entries = [(numbers[i % 3], "0.01", "2026-11-02T10:00:00Z", f"T-{i}") for i in range(150)]
    event = put_object(env.stack, "payment-files/main/twice.xml", xml_file(*entries))
    real_record = drop.Progress.record

    def dies_after_first_part(
        progress: drop.Progress, key: str, upload: Any, parts: int, done: bool = False
    ) -> None:
        if parts == 1:
            raise RuntimeError("the invocation died")
        real_record(progress, key, upload, parts, done)

    monkeypatch.setattr(drop.Progress, "record", dies_after_first_part)
    with pytest.raises(RuntimeError):
        invoke(env.stack, FUNCTION, event)
    monkeypatch.setattr(drop.Progress, "record", real_record)
    assert invoke(env.stack, FUNCTION, event)["queued"] == 150
    apply(env)
    for number in numbers:  # 50 payments of 0.01 each, once, though ten messages came twice
        assert next(i for i in sandbox.accounting.site.invoices if i.number == number).paid_amount == Decimal(
            "0.50"
        )
        assert len(ledger(env).read("main", number).payments) == 50


def test_two_copies_of_the_split_at_once_apply_each_payment_once(
    env: LocalEnvironment, sandbox: SandboxServer
) -> None:
    numbers = [i.number for i in invoices(sandbox, 2)]
    entries = [(numbers[i % 2], "0.01", "2026-11-02T10:00:00Z", f"X-{i}") for i in range(220)]
    event = put_object(env.stack, "payment-files/main/copies.xml", xml_file(*entries))
    results: list[Any] = []
    copies = [
        threading.Thread(target=lambda: results.append(invoke(env.stack, FUNCTION, event))) for _ in range(2)
    ]
    for copy in copies:
        copy.start()
    for copy in copies:
        copy.join()
    assert len(results) == 2 and {r["status"] for r in results} <= {"split", "already split"}
    apply(env)
    for number in numbers:
        assert next(i for i in sandbox.accounting.site.invoices if i.number == number).paid_amount == Decimal(
            "1.10"
        )


def test_paid_to_date_entries_keep_their_meaning_across_messages(
    env: LocalEnvironment, sandbox: SandboxServer
) -> None:
    """The latest by DatePaid wins whichever message carries it; a second amount for one instant
    of one invoice is refused, as its order against the first is not kept across messages."""
    target, other = invoices(sandbox, 2)
    filler = [(other.number, f"{i}.00", f"2026-11-{i:02d}T10:00:00Z") for i in range(1, 21)]
    split = drop_file(
        env,
        "ptd.xml",
        xml_file(
            (target.number, "40.00", "2026-11-28T10:00:00Z"),  # the latest: in the first message
            *filler,
            (target.number, "15.00", "2026-11-03T10:00:00Z"),  # older, in the third message
            (target.number, "41.00", "2026-11-28T10:00:00Z"),  # the same instant again: refused
        ),
    )
    assert (split["queued"], split["refused"]) == (22, 1)
    [refused] = lines(objects(env, split["results"]), "split-fail.jsonl")
    assert refused["index"] == 22 and "same DatePaid as amount 40.00 (payment 0)" in refused["error"]
    apply(env)
    assert target.paid_amount == Decimal("40.00") and other.paid_amount == Decimal("20.00")
