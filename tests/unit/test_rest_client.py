"""The REST client against the sandbox: the operations, paging, retries, typed errors, and the
mapping onto the same models as the Accounting Interface's document."""

import logging
import time
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

import pytest
import requests

from connectwise import jsonmoney
from connectwise.accounting_interface.client import AccountingClient
from connectwise.errors import (
    AuthenticationError,
    BatchExistsError,
    DocumentError,
    OutcomeUnknownError,
    PsaError,
    UnknownBatchError,
    UnknownInvoiceError,
)
from connectwise.glexport.rest_json import MAPPING, mapping_table
from connectwise.models import KINDS, RecreateFilters
from connectwise.rest.client import RestClient
from sandbox.server import SandboxServer, start_sandbox
from tests.conftest import ROOT, rest_connection
from tests.glexport_kept import keep

NOW = datetime(2026, 11, 29, 9, 0, tzinfo=UTC)


def test_download_update_and_recreate(rest_client: RestClient, sandbox: SandboxServer) -> None:
    batch = rest_client.download_gl_batch(KINDS)
    assert batch.counts() == {"invoices": 12, "expenses": 4, "procurement": 3}
    assert batch.media_type == "application/json" and batch.raw_name == "glexport.json"
    assert sandbox.accounting.unposted_invoice_numbers() != []  # an export marks nothing
    rest_client.update_gl_batch(batch.batch_id, batch.gl_entry_ids(), kinds=["invoices"])
    assert sandbox.accounting.unposted_invoice_numbers() == []
    assert rest_client.download_gl_batch(KINDS).is_empty
    again = rest_client.recreate_gl_batch(batch.batch_id)
    assert again.batch_id == batch.batch_id and again.summary() == batch.summary()


def test_both_backends_see_one_site(rest_client: RestClient, client: AccountingClient) -> None:
    """A batch posted through REST leaves the legacy unposted lists, and the other way round."""
    rest_batch = rest_client.download_gl_batch(["invoices"])
    rest_client.update_gl_batch(rest_batch.batch_id, rest_batch.gl_entry_ids(), kinds=["invoices"])
    assert client.download_gl_batch(["invoices"]).is_empty
    assert client.recreate_gl_batch(rest_batch.batch_id).counts()["invoices"] == 12

    legacy = client.download_gl_batch(["expenses"])
    client.update_gl_batch(legacy.batch_id, legacy.gl_entry_ids())
    assert rest_client.download_gl_batch(["expenses"]).is_empty
    assert rest_client.recreate_gl_batch(legacy.batch_id).counts()["expenses"] == 4


def test_the_rest_document_maps_onto_the_legacy_models(
    rest_client: RestClient, client: AccountingClient
) -> None:
    """Every mapped attribute of every record equals what the Accounting Interface says."""
    legacy, rest = keep(client.download_gl_batch, KINDS), keep(rest_client.download_gl_batch, KINDS)
    assert rest.gl_entry_ids() == legacy.gl_entry_ids() and rest.totals() == legacy.totals()
    compared = 0
    for attribute in ("Vendors", "Customers", "Transactions", "PurchaseTransactions"):
        pairs = list(zip(getattr(legacy.document, attribute), getattr(rest.document, attribute), strict=True))
        compared += sum(_same_mapped(a, b) for a, b in pairs)
    pairs = list(zip(legacy.expense_transactions, rest.expense_transactions, strict=True))
    compared += sum(_same_mapped(a, b) for a, b in pairs)
    assert compared > 1000


def _same_mapped(legacy: Any, rest: Any) -> int:
    count = 0
    for attribute in MAPPING[type(legacy)]:
        assert getattr(rest, attribute) == getattr(legacy, attribute), (type(legacy).__name__, attribute)
        count += 1
    for lines in ("Details", "ExpenseDetails", "PurchaseDetails"):
        if hasattr(legacy, lines):
            pairs = zip(getattr(legacy, lines), getattr(rest, lines), strict=True)
            count += sum(_same_mapped(a, b) for a, b in pairs)
    return count


def test_the_mapping_document_is_current() -> None:
    assert (ROOT / "docs" / "rest-glexport-mapping.md").read_text() == mapping_table()


def test_records_are_listed_in_forward_only_pages(sandbox: SandboxServer) -> None:
    small = RestClient(rest_connection(sandbox), page_size=5, backoff=0)
    batch = small.download_gl_batch(["invoices"])
    assert batch.counts()["invoices"] == 12
    calls = sandbox.rest.calls
    assert calls["GET /finance/accounting/unpostedinvoices"] == 3  # 5 + 5 + 2, by pageId
    assert calls["POST /finance/accounting/export"] == 1
    assert small.calls == 4  # three pages and the export (the codebase lookup is not an API call)
    with pytest.raises(ValueError, match="page_size"):
        RestClient(rest_connection(sandbox), page_size=1001)


def test_thru_date_and_location_id_narrow_the_export(
    rest_client: RestClient, client: AccountingClient
) -> None:
    thru = date(2026, 8, 20)
    rest = keep(rest_client.download_gl_batch, ["invoices"], thru_date=thru, owner_level="2")
    legacy = keep(client.download_gl_batch, ["invoices"], thru_date=thru, owner_level="London")
    assert 0 < rest.counts()["invoices"] < 12
    assert [t.DocumentNumber for t in rest.document.Transactions] == [
        t.DocumentNumber for t in legacy.document.Transactions
    ]
    with pytest.raises(ValueError, match="location id"):
        rest_client.download_gl_batch(["invoices"], owner_level="London")


def test_recreate_filters_take_record_ids(rest_client: RestClient) -> None:
    batch = keep(rest_client.download_gl_batch, KINDS)
    rest_client.update_gl_batch(batch.batch_id, batch.gl_entry_ids(), kinds=list(KINDS))
    numbers = [int(t.DocumentNumber.removeprefix("CW-")) for t in batch.document.Transactions]
    excluded = rest_client.recreate_gl_batch(
        batch.batch_id, filters=RecreateFilters(exclude_invoice_ids=numbers[:2], include_inventory_ids=[700])
    )
    assert excluded.counts() == {"invoices": 10, "expenses": 4, "procurement": 1}


def test_an_export_short_of_the_listed_invoices_is_refused(
    rest_client: RestClient, sandbox: SandboxServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    original = sandbox.rest._export

    def short(request: dict[str, Any], batch: Any) -> dict[str, Any]:
        document = original(request, batch)
        document["transactions"] = document["transactions"][1:]
        return document

    monkeypatch.setattr(sandbox.rest, "_export", short)
    with pytest.raises(DocumentError, match="holds 11 invoices, but 12 were listed"):
        rest_client.download_gl_batch(["invoices"])


def test_an_existing_batch_is_refused_not_taken_and_refusals_are_typed(
    rest_client: RestClient, sandbox: SandboxServer
) -> None:
    batch = rest_client.download_gl_batch(["invoices"])
    ids = batch.gl_entry_ids()
    assert rest_client.update_gl_batch(batch.batch_id, ids, kinds=["invoices"]).endswith("created")
    # A redelivery, or another connector's batch: what the batch holds decides, not its name.
    with pytest.raises(BatchExistsError, match="already exists"):
        rest_client.update_gl_batch(batch.batch_id, ids)
    assert sandbox.rest.calls["POST /finance/accounting/batches"] == 1
    assert rest_client.posted_entries(batch.batch_id) == set(ids)
    assert rest_client.find_batch(batch.batch_id.upper()) is None  # only this identifier, exactly
    with pytest.raises(PsaError, match=r"already in batch .*processedRecordIds"):
        rest_client.update_gl_batch("another-batch", ids[:1], kinds=["invoices"])
    with pytest.raises(UnknownBatchError, match="Cannot find GL batch nope"):
        rest_client.recreate_gl_batch("nope")
    with pytest.raises(UnknownBatchError):
        rest_client.recreate_gl_batch('quote"s')  # cannot be a condition value, so no such batch


def test_payments_create_then_replace_the_one_payment(
    rest_client: RestClient, sandbox: SandboxServer
) -> None:
    invoice = sandbox.accounting.site.invoices[0]
    first = rest_client.update_invoice_payment(invoice.number, Decimal("10.00"), NOW)
    assert first.paid_amount == Decimal("10.00") and first.total == invoice.total and first.date_paid is None
    full = rest_client.update_invoice_payment(invoice.number, invoice.total + 5, NOW)
    assert full.paid_amount == invoice.total and full.date_paid == NOW  # capped here, as the legacy side caps
    assert invoice.paid_amount == invoice.total
    calls = sandbox.rest.calls
    assert (
        calls["POST /finance/invoices/{id}/payments"] == 1
        and calls["PUT /finance/invoices/{id}/payments/{id}"] == 1
    )
    with pytest.raises(UnknownInvoiceError, match="Cannot find Invoice Number CW-0"):
        rest_client.update_invoice_payment("CW-0", Decimal("1.00"), NOW)
    with pytest.raises(ValueError, match="time zone"):
        rest_client.update_invoice_payment(invoice.number, Decimal("1.00"), datetime(2026, 1, 1))


def test_a_payment_created_meanwhile_is_replaced_not_duplicated(
    rest_client: RestClient, sandbox: SandboxServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    invoice = sandbox.accounting.site.invoices[1]
    original = rest_client.pages
    seen = []

    def racing(path: str, **params: Any) -> Any:
        rows = list(original(path, **params))
        if path.endswith("/payments") and not seen:
            seen.append(path)
            other = RestClient(rest_connection(sandbox), backoff=0)  # another invocation gets there first
            other.update_invoice_payment(invoice.number, Decimal("3.00"), NOW)
        return iter(rows)

    monkeypatch.setattr(rest_client, "pages", racing)
    assert rest_client.update_invoice_payment(invoice.number, Decimal("7.00"), NOW).paid_amount == Decimal(
        "7.00"
    )
    assert invoice.paid_amount == Decimal("7.00") and invoice.payment_id is not None


def test_wrong_keys_missing_client_id_and_unknown_company_name_the_connection(sandbox: SandboxServer) -> None:
    cases = [
        ({"private_key": "Wr0ng-Key-123"}, "refused the API keys or clientId"),
        ({"client_id": "00000000-0000-4000-8000-000000000000"}, "refused the API keys or clientId"),
        ({"company": "nobody"}, "knows no company"),
    ]
    for change, message in cases:
        client = RestClient(rest_connection(sandbox, **change), name="acme", backoff=0)
        with pytest.raises(AuthenticationError, match=message) as caught:
            client.download_gl_batch(["invoices"])
        text = str(caught.value)
        assert "connection 'acme'" in text
        assert not any(
            secret in text for secret in ("Wr0ng-Key-123", "00000000-0000", "sandbox-private", "nobody")
        )


def test_a_forbidden_call_names_the_security_role_not_the_keys(
    rest_client: RestClient, sandbox: SandboxServer
) -> None:
    sandbox.faults.set({"statuses": [403]})
    with pytest.raises(AuthenticationError, match="security role may not do this") as caught:
        rest_client.download_gl_batch(["invoices"])
    assert "refused the API keys" not in str(caught.value)


def test_429_waits_retry_after_even_for_a_create(
    rest_client: RestClient, sandbox: SandboxServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    waits: list[float] = []
    monkeypatch.setattr("connectwise.transport.time.sleep", waits.append)
    invoice = sandbox.accounting.site.invoices[2]
    rest_client.codebase()
    sandbox.faults.set({"statuses": [429, 429], "retry_after": 7})
    rest_client.update_invoice_payment(invoice.number, Decimal("4.00"), NOW)
    assert waits == [7.0, 7.0]
    assert invoice.paid_amount == Decimal("4.00")


def test_5xx_is_retried_only_where_repeating_is_safe(
    rest_client: RestClient, sandbox: SandboxServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("connectwise.transport.time.sleep", lambda seconds: None)
    batch = rest_client.download_gl_batch(["invoices"])
    sandbox.faults.set({"statuses": [502]})
    assert rest_client.download_gl_batch(["invoices"]).counts()["invoices"] == 12  # GET retried
    invoice = sandbox.accounting.site.invoices[3]
    sandbox.faults.set({"statuses": [502], "methods": ["POST"]})  # the create: a gateway gave up on it
    with pytest.raises(OutcomeUnknownError) as caught:
        rest_client.update_invoice_payment(invoice.number, Decimal("1.00"), NOW)
    assert caught.value.transient and caught.value.status == 502
    assert sandbox.rest.calls.get("POST /finance/invoices/{id}/payments", 0) == 0  # not repeated
    # 503 (the site unavailable) and 429 were not run: repeated even for a create.
    sandbox.faults.set({"statuses": [503, 429], "methods": ["POST"], "retry_after": 0})
    assert rest_client.update_invoice_payment(invoice.number, Decimal("1.00"), NOW).paid_amount == Decimal(
        "1.00"
    )
    assert sandbox.rest.calls["POST /finance/invoices/{id}/payments"] == 1
    assert batch.counts()["invoices"] == 12


def test_a_next_page_on_another_host_is_refused(
    rest_client: RestClient, sandbox: SandboxServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    original = sandbox.rest.handle

    def elsewhere(*args: Any) -> Any:
        reply = original(*args)
        if "Link" in reply.headers:
            reply.headers["Link"] = reply.headers["Link"].replace(sandbox.site_address, "evil.example:80")
        return reply

    monkeypatch.setattr(sandbox.rest, "handle", elsewhere)
    small = RestClient(rest_connection(sandbox), page_size=5)
    with pytest.raises(DocumentError, match="next page is on another site"):
        small.download_gl_batch(["invoices"])


def test_money_is_exact_both_ways() -> None:
    assert jsonmoney.loads(b'{"total": 1234567.89}') == {"total": Decimal("1234567.89")}
    assert jsonmoney.dumps({"amount": Decimal("0.10")}) == b'{"amount":0.1}'
    with pytest.raises(ValueError, match="exact JSON number"):
        jsonmoney.dumps({"amount": Decimal("12345678901234567.01")})
    read = jsonmoney.loads(b"[15.0, 1.005, 2.5e3, 7]")  # a double's one decimal place reads as cents
    assert [str(v) for v in read] == ["15.00", "1.005", "2.5E+3", "7"]


def test_keys_never_reach_the_logs(
    rest_client: RestClient, sandbox: SandboxServer, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.DEBUG):
        rest_client.download_gl_batch(["invoices"])
        rest_client.update_invoice_payment(sandbox.accounting.site.invoices[0].number, Decimal("1.00"), NOW)
    text = caplog.text + repr(rest_client.connection)
    assert caplog.records  # urllib3 logged the calls
    assert "sandbox-private" not in text and "8c4b2f4e" not in text


def test_the_codebase_lookup_sends_no_keys(rest_client: RestClient, monkeypatch: pytest.MonkeyPatch) -> None:
    sent: list[requests.PreparedRequest] = []
    original = rest_client.session.send

    def spy(request: requests.PreparedRequest, **kwargs: Any) -> Any:
        sent.append(request)
        return original(request, **kwargs)

    monkeypatch.setattr(rest_client.session, "send", spy)
    assert rest_client.codebase() == "v4_6_release/"
    rest_client.codebase()
    [lookup] = sent  # looked up once
    assert "/login/companyinfo/sandbox" in str(lookup.url)
    assert "Authorization" not in lookup.headers and "clientId" not in lookup.headers


def test_timeouts_repeat_reads_but_not_a_create(
    sandbox: SandboxServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    RestClient(rest_connection(sandbox)).list_batches()  # the first exchange builds the contract validator
    client = RestClient(rest_connection(sandbox), timeout=(2.0, 0.5), backoff=0)
    sandbox.faults.set({"hangs": 1, "hang_seconds": 1.0})
    assert client.download_gl_batch(["invoices"]).counts()["invoices"] == 12  # the listing's GET repeated

    invoice = sandbox.accounting.site.invoices[4]
    original = client.pages

    def then_hang(path: str, **params: Any) -> Any:
        rows = list(original(path, **params))
        if path.endswith("/payments"):
            sandbox.faults.set({"hangs": 1})  # the POST: ConnectWise applies it after the client gave up
        return iter(rows)

    monkeypatch.setattr(client, "pages", then_hang)
    with pytest.raises(OutcomeUnknownError, match=r"did not answer within 0\.5 s") as caught:
        client.update_invoice_payment(invoice.number, Decimal("6.00"), NOW)
    assert caught.value.transient  # read back at once: not there yet, so the outcome is unknown
    monkeypatch.undo()
    time.sleep(1.0)  # the lost POST lands
    assert sandbox.rest.calls["POST /finance/invoices/{id}/payments"] == 1  # sent once, not repeated
    client = RestClient(rest_connection(sandbox), backoff=0)  # the message's retry
    assert client.update_invoice_payment(invoice.number, Decimal("6.00"), NOW).paid_amount == Decimal("6.00")
    # It found the payment the lost POST made, already holding the amount: nothing written again.
    assert sandbox.rest.calls["POST /finance/invoices/{id}/payments"] == 1
    assert sandbox.rest.calls.get("PUT /finance/invoices/{id}/payments/{id}", 0) == 0


def test_the_sandbox_pages_as_connectwise_does(rest_client: RestClient) -> None:
    url = rest_client._url("/finance/accounting/unpostedinvoices")

    def get(params: dict[str, Any], **headers: str) -> requests.Response:
        return rest_client.session.get(url, params=params, headers=headers, timeout=10)

    first = get({"pageSize": 5})
    assert [r["billingLogId"] for r in first.json()] == list(range(30001, 30006))
    assert set(first.links) == {"first", "last", "next"} and "page=3" in first.links["last"]["url"]
    third = get({"pageSize": 5, "page": 3})
    assert len(third.json()) == 2 and "next" not in third.links and "prev" in third.links
    assert len(get({"pageSize": 5000}).json()) == 12  # above 1000 is not refused ...
    forward = get({"pageSize": 10}, **{"pagination-type": "forward-only"})
    assert "pageId=500009" in forward.links["next"]["url"]
    refused = get({"orderBy": "id desc"}, **{"pagination-type": "forward-only"})
    assert refused.status_code == 400 and refused.json()["code"] == "InvalidObject"


def test_a_page_size_above_1000_is_capped() -> None:
    large = start_sandbox(seed=2, invoices=1005, expenses=0, purchases=0)
    try:
        client = RestClient(rest_connection(large))
        url = client._url("/finance/accounting/unpostedinvoices")
        reply = client.session.get(url, params={"pageSize": 5000}, timeout=30)
        assert len(reply.json()) == 1000 and "next" in reply.links  # ... but capped
    finally:
        large.stop()
