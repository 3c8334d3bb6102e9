"""Outside review of the payment file drop (issue 15)."""

from decimal import Decimal
from typing import Any

import pytest

from sandbox.server import SandboxServer
from scripts.harness import LocalEnvironment
from tests.integration.test_payment_files import apply, drop_file, invoices, lines, objects, xml_file


@pytest.mark.xfail(
    strict=True,
    reason="left alone (issue 15): two uploads' copies of one payment in one SQS batch are settled and "
    "reported once (settle._plan), so the second upload's settled/ files lack that payment; the money is "
    "applied once and the first upload's files report it",
)
def test_a_file_uploaded_twice_reports_every_payment_in_each_uploads_results(
    env: LocalEnvironment, sandbox: SandboxServer
) -> None:
    """docs/payments.md: 'Here the success files also list the duplicates: a file uploaded again
    shows every payment.' Two uploads of one file whose messages reach the payments function in
    one SQS batch (a re-upload a minute later, before the first was settled): settle._plan skips
    the second copy of a payment id in a batch ('twice in this batch: counted and reported
    once'), so the second upload's results folder never mentions the payment at all: neither
    applied, nor duplicate, nor failed. The finance team sees a file with a payment missing."""
    [target] = invoices(sandbox, 1)
    body = xml_file((target.number, "10.00", "2026-11-02T10:00:00Z", "PAY-1"))
    first = drop_file(env, "november.xml", body)
    second = drop_file(env, "november.xml", body)  # the same file again: a new version
    assert first["results"] != second["results"]
    apply(env)  # both messages in one batch of the event source mapping
    assert target.paid_amount == Decimal("10.00")  # money: once (fine)
    for upload in (first, second):
        files = objects(env, upload["results"])
        rows = lines(files, "-success.jsonl") + lines(files, "-fail.jsonl")
        assert [(r["payment_id"], r["status"]) for r in rows] in (
            [("PAY-1", "applied")],
            [("PAY-1", "duplicate")],
        ), f"{upload['results']}: {rows}"


def test_a_corrected_paid_to_date_file_wins_over_the_file_it_corrects_whatever_the_delivery_order(
    env: LocalEnvironment, sandbox: SandboxServer
) -> None:
    """A paid-to-date file (XML without PaymentId) states X = 100.00 at DatePaid D; the finance
    team sees the mistake and uploads the corrected file, X = 150.00 at the same D. The split
    refuses such a tie inside one file ("settled by arrival, which a split file no longer
    keeps"), but across two uploads the ledger settles the tie by arrival (seq): the first
    upload's message, delivered late (a busy invoice, a 429, a retry after the visibility
    timeout), lands after the correction and ConnectWise is set back to 100.00. Uploading the
    corrected file again changes nothing (its entry is applied: `duplicate`), so the documented
    remedy does not work; the wrong amount stays on the invoice."""
    [target] = invoices(sandbox, 1)
    sqs, url = env.stack.client("sqs"), env.stack.physical["PaymentsQueue"]
    drop_file(env, "ptd.xml", xml_file((target.number, "100.00", "2026-11-02T10:00:00Z")))
    [late] = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, VisibilityTimeout=900)["Messages"]
    corrected = xml_file((target.number, "150.00", "2026-11-02T10:00:00Z"))
    drop_file(env, "ptd.xml", corrected)
    apply(env)
    assert target.paid_amount == Decimal("150.00")
    sqs.change_message_visibility(QueueUrl=url, ReceiptHandle=late["ReceiptHandle"], VisibilityTimeout=0)
    apply(env)  # the first upload's message, retried: arrives last
    drop_file(env, "ptd.xml", corrected)  # the remedy docs/payments.md gives: upload it again
    apply(env)
    assert target.paid_amount == Decimal("150.00"), (
        f"invoice {target.number} holds {target.paid_amount}: the superseded upload's amount"
    )


def test_an_entry_padded_out_of_all_proportion_does_not_stop_the_files_other_payments(
    env: LocalEnvironment, sandbox: SandboxServer
) -> None:
    """Validation accepts an amount written with 600,000 leading zeros (or, in JSON, padded
    with whitespace: pydantic strips it): the Decimal is fine, and the entry is sent on 'as
    read', so its message is over 1 MiB (SQS's largest message, and the largest batch). Two such entries put the message (and the
    SendMessageBatch) past SQS's size limit: send_message_batch raises, the split fails on every
    attempt at the same part, and every payment from that part on (valid, ordinary ones) is
    never sent, with no split.json to say so. An entry must either be sent in its normalised
    form or refused with its index, and the other payments still sent."""
    first, second = invoices(sandbox, 2)
    padded = "0" * 600_000 + "1.00"
    body = xml_file(
        (first.number, padded, "2026-11-02T10:00:00Z", "PAD-1"),
        (first.number, padded, "2026-11-02T10:00:00Z", "PAD-2"),
        (second.number, "7.00", "2026-11-03T10:00:00Z", "PAY-OK"),
    )
    try:
        split: dict[str, Any] = drop_file(env, "padded.xml", body)
    except Exception as exc:  # the invocation failed: Lambda retries it twice, the same way
        split = {"status": f"failed: {type(exc).__name__}: {str(exc)[:200]}"}
    apply(env)
    assert split["status"] == "split", split
    assert second.paid_amount == Decimal("7.00")
