"""Payment messages: JSON and XML, Decimal amounts, one bad payment rejected alone."""

from decimal import Decimal

import pytest

from tasks.payments.messages import Payment, RejectedPayment, parse_payment_message
from tasks.platform.errors import InvalidRequestError
from tests.conftest import SAMPLES

ONE = (
    '{"connection": "main", "invoice_number": "CW-1", "paid_amount": 346.34, '
    '"date_paid": "2016-09-22T12:05:54+01:00", "payment_id": "P1", "currency": "GBP"}'
)


def test_json_payment_amount_is_an_exact_decimal() -> None:
    [payment] = parse_payment_message(ONE, None)
    assert isinstance(payment, Payment)
    assert payment.paid_amount == Decimal("346.34") and isinstance(payment.paid_amount, Decimal)
    assert payment.date_paid.utcoffset() is not None


def test_json_list_and_payments_object_carry_many() -> None:
    item = '{"invoice_number": "CW-%d", "paid_amount": "1.00", "date_paid": "2026-01-01T00:00:00Z", "payment_id": "P%d"}'
    many = "[" + ",".join(item % (i, i) for i in range(3)) + "]"
    assert [p.invoice_number for p in parse_payment_message(many, "main")] == ["CW-0", "CW-1", "CW-2"]  # type: ignore[union-attr]
    wrapped = '{"payments": [' + item % (7, 7) + "]}"
    assert parse_payment_message(wrapped, "main")[0].connection == "main"  # type: ignore[union-attr]


def test_reference_xml_document_is_a_paid_to_date_amount_with_a_stable_derived_id() -> None:
    body = (SAMPLES / "invoice_payments_input.xml").read_text()
    [payment] = parse_payment_message(body, "main")
    assert isinstance(payment, Payment)
    assert (payment.invoice_number, payment.paid_amount) == ("CW-34251", Decimal("346.34"))
    assert payment.date_paid.isoformat() == "2016-09-22T12:05:54+01:00"
    assert payment.kind == "paid_to_date" and payment.payment_id.startswith("ptd-")
    assert parse_payment_message(body, "main")[0].payment_id == payment.payment_id  # type: ignore[union-attr]
    other = body.replace("346.34", "346.35")
    assert parse_payment_message(other, "main")[0].payment_id != payment.payment_id  # type: ignore[union-attr]


@pytest.mark.parametrize(
    ("change", "problem"),
    [
        (("346.34", "-5"), "paid_amount: Input should be greater than 0"),
        (("346.34", '"12.345"'), "paid_amount: Decimal input should have no more than 2 decimal places"),
        (("346.34", '"abc"'), "paid_amount: Input should be a valid decimal"),
        (("346.34", '"NaN"'), "paid_amount"),
        (("+01:00", ""), "date_paid: Input should have timezone info"),
        (('"P1"', '""'), "payment_id: String should have at least 1 character"),
        (('"GBP"', '"pounds"'), "currency: String should match pattern"),
    ],
)
def test_a_bad_payment_is_rejected_naming_invoice_and_field(change: tuple[str, str], problem: str) -> None:
    [rejected] = parse_payment_message(ONE.replace(*change), None)
    assert isinstance(rejected, RejectedPayment)
    assert rejected.error.startswith("payment 0 (invoice CW-1): ")
    assert problem in rejected.error


def test_bad_payments_do_not_stop_the_good_ones() -> None:
    good = '{"invoice_number": "CW-1", "paid_amount": "1.00", "date_paid": "2026-01-01T00:00:00Z", "payment_id": "A"}'
    bad = '{"invoice_number": "CW-2", "paid_amount": "x", "date_paid": "2026-01-01T00:00:00Z", "payment_id": "B"}'
    parsed = parse_payment_message(f"[{good}, {bad}, 5]", "main")
    assert [type(p).__name__ for p in parsed] == ["Payment", "RejectedPayment", "RejectedPayment"]
    assert parsed[2].error == "payment 2: expected an object, got int"  # type: ignore[union-attr]


def test_xml_without_a_connection_is_rejected_per_payment() -> None:
    body = (SAMPLES / "invoice_payments_input.xml").read_text()
    [rejected] = parse_payment_message(body, None)
    assert isinstance(rejected, RejectedPayment) and "connection: Field required" in rejected.error


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ("garbage{", "neither JSON nor XML"),
        ("[]", "holds no payment"),
        ("<Other/>", "expected <ArrayOfUpdateInvoicePayment>, got <Other>"),
        ("<ArrayOfUpdateInvoicePayment><Oops/></ArrayOfUpdateInvoicePayment>", "unexpected <Oops>"),
        ('<!DOCTYPE a [<!ENTITY x SYSTEM "file:///etc/passwd">]><ArrayOfUpdateInvoicePayment/>', "refused"),
    ],
)
def test_unreadable_messages_are_invalid_requests(body: str, message: str) -> None:
    with pytest.raises(InvalidRequestError, match=message):
        parse_payment_message(body, "main")


def test_an_xml_entry_with_a_payment_id_is_an_individual_payment() -> None:
    body = (SAMPLES / "invoice_payments_input.xml").read_text()
    with_id = body.replace("</DatePaid>", "</DatePaid><PaymentId>BANK-77</PaymentId>")
    [payment] = parse_payment_message(with_id, "main")
    assert isinstance(payment, Payment) and (payment.kind, payment.payment_id) == ("payment", "BANK-77")


def test_json_payments_are_individual_payments_and_cannot_claim_another_kind() -> None:
    [payment] = parse_payment_message(ONE, None)
    assert isinstance(payment, Payment) and payment.kind == "payment"
    [rejected] = parse_payment_message(ONE.replace('"currency"', '"kind": "paid_to_date", "currency"'), None)
    assert isinstance(rejected, RejectedPayment) and "kind is not taken from JSON" in rejected.error


@pytest.mark.parametrize(
    "body",
    [
        "[" * 100_000 + "]" * 100_000,  # RecursionError in the JSON decoder
        '{"payments": [{"invoice_number": ' + "[" * 5000 + "]" * 5000 + "}]}",
        "<ArrayOfUpdateInvoicePayment>" + "<a>" * 50_000 + "</a>" * 50_000 + "</ArrayOfUpdateInvoicePayment>",
    ],
)
def test_a_hostile_message_is_an_invalid_request_not_a_crash(body: str) -> None:
    """Whatever a message holds, reading it rejects that message only (never another exception)."""
    try:
        parsed = parse_payment_message(body, "main")
    except InvalidRequestError as exc:
        assert exc.message
    else:
        assert all(isinstance(p, RejectedPayment) for p in parsed)
