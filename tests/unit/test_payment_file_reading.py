"""Reading and cutting payment files (tasks.payments.files), the queue sender's partial
failures, and the results folder keys."""

import json
import tracemalloc
from collections.abc import Iterator
from typing import Any

import pytest

from connectwise.errors import DocumentError
from tasks.payments.drop import PaymentQueue, SplitUnfinishedError
from tasks.payments.files import message_body, messages, read_entries
from tasks.payments.messages import Payment, RejectedPayment, parse_payment_message
from tasks.platform.keys import is_payment_file_results, payment_file, payment_file_results

ENTRY = (
    "<UpdateInvoicePayment><InvoiceNumber>CW-{i}</InvoiceNumber><PaidAmount>1.00</PaidAmount>"
    "<DatePaid>2026-11-02T10:00:00Z</DatePaid><PaymentId>P-{i}</PaymentId></UpdateInvoicePayment>"
)


def xml_chunks(count: int, size: int = 7000) -> Iterator[bytes]:
    """A file of `count` entries, in chunks cut anywhere (mid-tag too), made as it is read."""
    yield b"<ArrayOfUpdateInvoicePayment>"
    pending = b""
    for i in range(count):
        pending += ENTRY.format(i=i).encode()
        if len(pending) >= size:
            yield pending[:size]
            pending = pending[size:]
    yield pending + b"</ArrayOfUpdateInvoicePayment>"


def test_an_xml_file_in_chunks_cut_anywhere_reads_as_the_same_message_would() -> None:
    whole = b"".join(xml_chunks(25))
    from_file = [e.payment for e in read_entries(xml_chunks(25, size=13), "xml", "main")]
    assert from_file == parse_payment_message(whole.decode(), "main")


def test_each_message_body_reads_back_as_its_entries_paid_to_date_ids_included() -> None:
    text = (
        "<ArrayOfUpdateInvoicePayment><UpdateInvoicePayment><InvoiceNumber> A&amp;B </InvoiceNumber>"
        "<PaidAmount>5.0</PaidAmount><DatePaid>2026-11-02T10:00:00+02:00</DatePaid><Currency>EUR</Currency>"
        "<Note><b>ignored</b></Note></UpdateInvoicePayment>"
        + ENTRY.format(i=1)
        + "</ArrayOfUpdateInvoicePayment>"
    )
    entries = list(read_entries([text.encode()], "xml", "main"))
    body = message_body(entries, "xml")
    assert parse_payment_message(body, "main") == [e.payment for e in entries]
    assert parse_payment_message(body, "main") == parse_payment_message(text, "main")
    assert "<PaymentId>" not in body.split("</UpdateInvoicePayment>")[0]  # still paid to date


def test_a_json_file_list_or_object_reads_as_a_message_would() -> None:
    items = [
        {
            "invoice_number": "CW-1",
            "paid_amount": 10.25,
            "date_paid": "2026-11-02T10:00:00Z",
            "payment_id": "J1",
        },
        {"invoice_number": "CW-2", "paid_amount": "1e400", "date_paid": "2026-11-02", "payment_id": "J2"},
        {
            "invoice_number": "CW-3",
            "kind": "paid_to_date",
            "paid_amount": 1,
            "date_paid": "x",
            "payment_id": "J3",
        },
    ]
    text = json.dumps(items)
    for body in (text, json.dumps({"payments": items}), "\ufeff \n" + text):
        entries = list(read_entries([body.encode()[:5], body.encode()[5:]], "json", "main"))
        assert [e.payment for e in entries] == parse_payment_message(text, "main")
    valid = [e for e in read_entries([text.encode()], "json", "main") if isinstance(e.payment, Payment)]
    assert parse_payment_message(message_body(valid, "json"), "main") == [e.payment for e in valid]
    [single] = read_entries([json.dumps(items[0]).encode()], "json", "main")
    assert isinstance(single.payment, Payment) and single.payment.payment_id == "J1"


@pytest.mark.parametrize(
    ("body", "problem"),
    [
        (b'{"payments": []}', "holds no payment"),
        (b'{"x": 1, "payments": [{}]}', "unexpected member 'x' beside payments"),
        (b'{"payments": [{}], "x": 1}', "unexpected member 'x' beside payments"),
        (b'{"payments": 3}', "payments is not a list"),
        (b"[" * 300, "nests deeper than 256"),
        (b'{"payments": [{"a": 1}', "cut short"),
        (b'[{"a": 1}', "not JSON"),
        (b"   ", "not JSON"),
    ],
)
def test_an_unreadable_json_file_is_refused_whole(body: bytes, problem: str) -> None:
    with pytest.raises(DocumentError, match=problem):
        list(read_entries([body], "json", "main"))


@pytest.mark.parametrize(
    ("body", "problem"),
    [
        (b'<!DOCTYPE x [<!ENTITY a "b">]><ArrayOfUpdateInvoicePayment/>', "declares a DTD"),
        (b"<ArrayOfUpdateInvoicePayment>&undefined;</ArrayOfUpdateInvoicePayment>", "not well-formed"),
        (b"<GLExport/>", "expected <ArrayOfUpdateInvoicePayment>, got <GLExport>"),
        (b"<ArrayOfUpdateInvoicePayment><Other/></ArrayOfUpdateInvoicePayment>", "unexpected <Other>"),
        (b"<ArrayOfUpdateInvoicePayment/>", "holds no payment"),
        (b"<ArrayOfUpdateInvoicePayment><UpdateInvoicePayment>" + b"<a>" * 3000, "not well-formed"),
    ],
)
def test_an_unreadable_xml_file_is_refused_whole(body: bytes, problem: str) -> None:
    with pytest.raises(DocumentError, match=problem):
        list(read_entries([body], "xml", "main"))


def test_an_empty_list_beside_another_member_is_one_refused_payment() -> None:
    """The stream does not say an empty list was there: the object is read as one payment."""
    [entry] = read_entries([b'{"payments": [], "x": 1}'], "json", "main")
    assert (
        isinstance(entry.payment, RejectedPayment)
        and "x: Extra inputs are not permitted" in entry.payment.error
    )


def test_a_big_file_is_read_as_a_stream_not_held() -> None:
    count = 40_000  # about 7 MB of XML
    size = sum(len(chunk) for chunk in xml_chunks(count))
    tracemalloc.start()
    try:
        sent = sum(len(m) for m in messages(read_entries(xml_chunks(count), "xml", "main")))
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert sent == count and peak < size / 10, (peak, size)


def test_valid_entries_go_ten_to_a_message_in_file_order() -> None:
    text = "<ArrayOfUpdateInvoicePayment>" + "".join(ENTRY.format(i=i) for i in range(23))
    text += "<UpdateInvoicePayment><PaidAmount>x</PaidAmount></UpdateInvoicePayment></ArrayOfUpdateInvoicePayment>"
    entries = list(read_entries([text.encode()], "xml", "main"))
    assert isinstance(entries[-1].payment, RejectedPayment) and entries[-1].index == 23
    cut = [[e.index for e in m] for m in messages(entries)]
    assert cut == [list(range(10)), list(range(10, 20)), [20, 21, 22]]


class FakeSqs:
    """send_message_batch failing the entries named in `failures`, one list per call."""

    def __init__(self, failures: list[list[dict[str, Any]]]) -> None:
        self.failures, self.sent = failures, list[str]()

    def send_message_batch(self, QueueUrl: str, Entries: list[dict[str, Any]]) -> dict[str, Any]:
        failed = self.failures.pop(0) if self.failures else []
        ids = {f["Id"] for f in failed}
        self.sent += [e["MessageBody"] for e in Entries if e["Id"] not in ids]
        assert all(e["MessageGroupId"] == "main" for e in Entries)
        return {"Failed": failed}


def test_a_batch_partly_failed_by_sqs_sends_the_failed_entries_again_only() -> None:
    sqs = FakeSqs(
        [[{"Id": "1", "SenderFault": False, "Code": "InternalError"}], [{"Id": "1", "SenderFault": False}]]
    )
    PaymentQueue(sqs, "url", sleep=lambda _: None).send(["a", "b", "c"], "main", "folder/")
    assert sorted(sqs.sent) == ["a", "b", "c"]


def test_a_batch_still_failing_or_refused_by_sqs_stops_the_split_for_a_retry() -> None:
    failing = FakeSqs([[{"Id": "0", "SenderFault": False, "Code": "ServiceUnavailable"}]] * 9)
    with pytest.raises(
        SplitUnfinishedError, match=r"SQS did not take 1 of 2 messages \(ServiceUnavailable\)"
    ):
        PaymentQueue(failing, "url", sleep=lambda _: None).send(["a", "b"], "main", "folder/")
    refused = FakeSqs([[{"Id": "0", "SenderFault": True, "Code": "InvalidMessageContents"}]])
    with pytest.raises(SplitUnfinishedError, match="InvalidMessageContents"):
        PaymentQueue(refused, "url", sleep=lambda _: None).send(["a"], "main", "folder/")
    assert refused.failures == []  # not sent again: it cannot succeed


def test_results_folders_are_built_and_recognised_only_for_their_connection() -> None:
    assert payment_file("payment-files/acme/March 2026.XML") == ("acme", "March 2026.XML")
    for key in ("payment-files/acme/a/b.xml", "payment-files/acme/b.csv", "payment-results/acme/b.xml"):
        assert payment_file(key) is None
    folder = payment_file_results("acme", "b.xml", "20261130T091502Z-0123456789ab")
    assert is_payment_file_results(folder, "acme") and not is_payment_file_results(folder, "globex")
    for forged in ("payments/acme/", "payment-results/acme/../x/", folder + "x/", "payment-files/acme/b.xml"):
        assert not is_payment_file_results(forged, "acme")
