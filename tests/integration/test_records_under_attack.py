"""Attacks on reports and record downloads through SOAP and REST, from an outside review: each
test states what must hold."""

import contextlib
import json
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest

from connectwise.rest.api import RestApi
from connectwise.rest.records import RestRecords
from connectwise.soap.client import SoapClient
from connectwise.soap.records import SoapRecords
from sandbox.server import SandboxServer
from scripts.harness import LocalEnvironment
from scripts.lambda_local import invoke
from tasks.platform.errors import InvalidRequestError
from tasks.platform.notices import Notices
from tests.integration.test_records_on_both_apis import INVOICE, body, download, jsonl, on_both_apis

SOAP, REST = "accounting_interface", "rest"
CLIENTS = {SOAP: SoapRecords, REST: RestRecords}


@pytest.fixture(params=[SOAP, REST], ids=["soap", "rest"])
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


def small_instant_pages(monkeypatch: pytest.MonkeyPatch, backend: str, size: int = 2) -> None:
    """`records_at` reads an instant in pages of `size` (as it would with more than 500 / 1000
    records at one instant, the clients' real page sizes)."""
    if backend == SOAP:
        find = SoapClient.find

        def small_find(self: SoapClient, *args: Any, **kwargs: Any) -> Any:
            return find(self, *args, **(kwargs | {"page_size": size}))

        monkeypatch.setattr(SoapClient, "find", small_find)
    else:
        pages = RestApi.pages

        def small_pages(self: RestApi, *args: Any, **kwargs: Any) -> Any:
            self.page_size = size
            return pages(self, *args, **kwargs)

        monkeypatch.setattr(RestApi, "pages", small_pages)


# F1 ------------------------------------------------------------------------------------------


def test_a_record_updated_while_its_instant_is_read_does_not_make_another_one_lost(
    env: LocalEnvironment, sandbox: SandboxServer, backend: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Seven invoices share one instant (more than a page); while `records_at` pages through
    them, the first one read is updated (moves to a later instant). Every invoice must still
    be downloaded, now or by the next run."""
    site = sandbox.accounting.site
    tie = datetime(2026, 10, 1, tzinfo=UTC)
    for invoice in site.invoices[:7]:
        invoice.updated_at = tie
    by_id = {i.id: i for i in site.invoices}
    small_instant_pages(monkeypatch, backend)
    original = CLIENTS[backend].records_at
    moved: list[int] = []

    def records_at_with_an_update(self: Any, entity: str, instant: datetime, query: Any) -> Any:
        for record in original(self, entity, instant, query):
            if not moved:  # the first record of the instant changes while the rest are read
                moved.append(record.id)
                by_id[record.id].updated_at = datetime(2027, 1, 1, tzinfo=UTC)
            yield record

    monkeypatch.setattr(CLIENTS[backend], "records_at", records_at_with_an_update)
    first = download(env, "invoices", page_size=2)
    monkeypatch.undo()
    second = download(env, "invoices", page_size=2)
    numbers = {r[INVOICE[backend]["number"]] for r in jsonl(env, first["files"]["jsonl"])}
    if second["files"]:
        numbers |= {r[INVOICE[backend]["number"]] for r in jsonl(env, second["files"]["jsonl"])}
    assert moved
    assert sorted(i.number for i in site.invoices if i.number not in numbers) == []


# F2 ------------------------------------------------------------------------------------------


def test_a_download_narrowed_to_some_fields_does_not_take_records_from_the_nightly_feed(
    env: LocalEnvironment, sandbox: SandboxServer, backend: str
) -> None:
    """An ad-hoc download of two columns, then the nightly download (`{"connection": "main"}`):
    the nightly files must carry every invoice with its amounts."""
    names = INVOICE[backend]
    narrow = download(env, "invoices", fields=[names["number"]])
    assert narrow["count"] == len(sandbox.accounting.site.invoices)
    nightly = download(env, "invoices")
    assert nightly["feed"] != narrow["feed"]  # a watermark of its own
    assert nightly["count"] == len(sandbox.accounting.site.invoices)
    [row] = jsonl(env, nightly["files"]["jsonl"])[:1]
    assert row[names["amount"]] is not None


# F3 ------------------------------------------------------------------------------------------


def test_when_the_event_is_not_published_the_next_run_still_announces_the_records(
    env: LocalEnvironment, sandbox: SandboxServer, backend: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """RecordsDownloaded is published before the watermark moves: if EventBridge refuses it, the
    invocation fails, the watermark stays, and the retry writes and announces the records."""
    publish = Notices.publish

    def down(self: Notices, kind: str, detail: dict[str, Any]) -> None:
        raise RuntimeError("EventBridge refused 1 events: ThrottlingException")

    monkeypatch.setattr(Notices, "publish", down)
    with pytest.raises(RuntimeError, match="EventBridge"):
        download(env, "companies")
    monkeypatch.setattr(Notices, "publish", publish)
    retry = download(env, "companies")
    site = sandbox.accounting.site
    announced = [e for e in env.events() if e.get("detail-type") == "RecordsDownloaded"]
    assert announced and announced[-1]["detail"]["count"] == len(site.customers) + len(site.vendors), (
        f"retry announced {retry['count']} companies"
    )


# F4 ------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "asked, column",
    [
        ({REST: "company/name", SOAP: "CompanyName"}, {REST: "company.name", SOAP: "CompanyName"}),
        ({REST: "InvoiceNumber", SOAP: "invoicenumber"}, {REST: "invoiceNumber", SOAP: "InvoiceNumber"}),
    ],
    ids=["slash", "case"],
)
def test_fields_that_connectwise_answers_are_not_written_as_empty_columns(
    env: LocalEnvironment, backend: str, asked: dict[str, str], column: dict[str, str]
) -> None:
    """A field ConnectWise accepts and answers is written in the API's spelling, never as a
    column of nulls; a field the record type lacks is refused."""
    result = download(
        env,
        "invoices",
        conditions={"field": INVOICE[backend]["id"], "op": ">", "value": 0},
        fields=[asked[backend]],
    )
    rows = jsonl(env, result["files"]["jsonl"])
    assert rows and all(row.get(column[backend]) is not None for row in rows), rows[0]
    with pytest.raises(InvalidRequestError, match="has no field 'NoSuchField'"):
        download(env, "invoices", fields=["NoSuchField"])


# F5 ------------------------------------------------------------------------------------------


def test_both_apis_write_the_same_report_for_fields_named_in_another_case(
    moto_endpoint: str, sandbox: SandboxServer
) -> None:
    """RunReport with `fields` spelled in another case than the report's columns (ConnectWise
    matches names without case): both APIs must write the same files, with the values."""
    request = {"connection": "main", "report": "Invoices", "fields": ["invoice_number", "INVOICE_AMOUNT"]}

    def first_row(env: LocalEnvironment) -> str:
        report = invoke(env.stack, "RunReportFunction", request)
        return body(env, report["files"]["jsonl"]).splitlines()[0]

    outputs = on_both_apis(moto_endpoint, sandbox, first_row)
    assert outputs[0] == outputs[1]


def test_both_apis_write_the_same_report_numbers(moto_endpoint: str, sandbox: SandboxServer) -> None:
    """A Numeric cell with one or three decimals (a quantity, a rate, a 3-decimal price)."""
    sandbox.accounting.site.invoices[0].total = Decimal("7.5")
    sandbox.accounting.site.invoices[1].total = Decimal("12.125")
    request = {"connection": "main", "report": "Invoices", "fields": ["Invoice_Number", "Invoice_Amount"]}

    def first_rows(env: LocalEnvironment) -> list[Any]:
        report = invoke(env.stack, "RunReportFunction", request)
        return [json.loads(x) for x in body(env, report["files"]["jsonl"]).splitlines()[:2]]

    outputs = on_both_apis(moto_endpoint, sandbox, first_rows)
    assert outputs[0] == outputs[1]


# Report paging arithmetic (no finding expected) ----------------------------------------------


def test_report_skip_limit_page_size_arithmetic(sandbox: SandboxServer) -> None:
    from connectwise.records import ReportQuery
    from connectwise.soap.client import IntegratorLogin
    from tests.conftest import rest_connection

    soap = SoapRecords(
        SoapClient(
            IntegratorLogin(
                company="sandbox",
                integrator_login_id="integrator",
                integrator_password="sandbox-integrator",
                site=sandbox.site_address,
                use_ssl=False,
            )
        )
    )
    rest = RestRecords(RestApi(rest_connection(sandbox)))
    every = [
        r["Invoice_Number"] for r in rest.report_rows("Invoices", ReportQuery(order_by="Invoice_Number"))
    ]
    assert every == [
        r["Invoice_Number"] for r in soap.report_rows("Invoices", ReportQuery(order_by="Invoice_Number"))
    ]
    n = len(every)
    for skip in (0, 1, 2, 3, 5, n - 1, n, n + 4):
        for limit in (None, 1, 2, 3, 7):
            for size in (1, 2, 3, 5, 1000):
                q = ReportQuery(order_by="Invoice_Number", skip=skip, limit=limit, page_size=size)
                expected = every[skip : None if limit is None else skip + limit]
                for client in (soap, rest):
                    got = [r["Invoice_Number"] for r in client.report_rows("Invoices", q)]
                    assert got == expected, (type(client).__name__, skip, limit, size)


# F6 ------------------------------------------------------------------------------------------


def test_a_second_change_in_the_same_second_as_the_watermark_is_downloaded(
    env: LocalEnvironment, sandbox: SandboxServer, backend: str
) -> None:
    """An invoice is paid, the download runs, the invoice is paid again within the same second
    (ConnectWise's last-updated has whole seconds; the sandbox rounds them the same way). The
    second payment must reach the accounting system."""
    from connectwise.accounting_interface.client import AccountingClient
    from tests.conftest import sandbox_connection
    from tests.integration.test_records_on_both_apis import pay

    client = AccountingClient(sandbox_connection(sandbox), retries=2, backoff=0.01)
    invoice = sandbox.accounting.site.invoices[4]
    download(env, "invoices")  # everything so far
    pay(client, invoice.number, "1.00")
    stamp = invoice.updated_at
    first = download(env, "invoices")
    assert first["count"] == 1
    pay(client, invoice.number, "2.00")  # ConnectWise records this second payment ...
    invoice.updated_at = stamp  # ... within the same second as the first
    second = download(env, "invoices")
    assert second["count"] == 1, "the second payment is never downloaded"
    [row] = jsonl(env, second["files"]["jsonl"])
    assert Decimal(row[INVOICE[backend]["paid"]]) == invoice.paid_amount


# F8 ------------------------------------------------------------------------------------------


def test_a_download_longer_than_one_invocation_still_makes_progress(
    env: LocalEnvironment, sandbox: SandboxServer, backend: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A site whose changes take longer to read than the function's timeout (a first download of
    a large site, a slow ConnectWise): every run fails at the same point and the watermark
    never moves, so no record is ever delivered. (Here: 4 s of calls per invocation, pages that
    take 0.5 s; in AWS: 600 s and a large site.)"""
    import time

    from connectwise.errors import TransportError
    from connectwise.transport import RESERVE

    env.stack.functions["DownloadInvoicesFunction"]["timeout"] = RESERVE + 4
    original = CLIENTS[backend].records_from

    def slow(self: Any, *args: Any, **kwargs: Any) -> Any:
        time.sleep(0.5)
        return original(self, *args, **kwargs)

    monkeypatch.setattr(CLIENTS[backend], "records_from", slow)
    delivered = 0
    for _ in range(3):  # three nightly runs
        with contextlib.suppress(TransportError):  # a run whose time ran out in a call
            delivered += download(env, "invoices", page_size=1)["count"]
    assert delivered > 0, "three runs, no record delivered, the watermark has not moved"


# F9 ------------------------------------------------------------------------------------------


def test_a_report_condition_beside_a_group_is_applied(env: LocalEnvironment, sandbox: SandboxServer) -> None:
    """{"field", "op", "value"} and "all" in one object: the report must not come back with the
    rows the amount condition excluded (today the amount condition is silently dropped, and
    the ReportReady event still shows it)."""
    conditions = {
        "field": "Invoice_Amount",
        "op": ">",
        "value": {"decimal": "500"},
        "all": [{"field": "Closed_Flag", "op": "=", "value": False}],
    }
    with pytest.raises(InvalidRequestError, match="one of field/op/value, all or any"):
        invoke(
            env.stack,
            "RunReportFunction",
            {"connection": "main", "report": "Invoices", "conditions": conditions},
        )


# No finding expected ------------------------------------------------------------------------


def test_page_size_one_with_ties_downloads_each_record_once(
    env: LocalEnvironment, sandbox: SandboxServer, backend: str
) -> None:
    site = sandbox.accounting.site
    for invoice in site.invoices[2:6]:
        invoice.updated_at = datetime(2026, 10, 1, tzinfo=UTC)
    result = download(env, "invoices", page_size=1)
    numbers = [r[INVOICE[backend]["number"]] for r in jsonl(env, result["files"]["jsonl"])]
    assert sorted(numbers) == sorted(i.number for i in site.invoices)
    assert download(env, "invoices", page_size=1)["count"] == 0


@pytest.mark.parametrize("backend", [REST])
def test_rest_fields_naming_a_reference(env: LocalEnvironment, backend: str) -> None:
    result = download(env, "invoices", conditions={"field": "id", "op": ">", "value": 0}, fields=["company"])
    rows = jsonl(env, result["files"]["jsonl"])
    assert any(r.get("company") is not None or r.get("company.name") for r in rows), rows[0]


# F10 -----------------------------------------------------------------------------------------


def test_a_like_condition_on_a_report_means_the_same_on_both_apis(
    moto_endpoint: str, sandbox: SandboxServer
) -> None:
    """Report columns are named alike on both APIs, so one RunReport request (the template's
    ScheduledReport) runs on either, and a connection moves from SOAP to REST by losing its
    `integrator`. A `like` wildcard is `*` in the request: SOAP is sent `%`, REST `*`."""
    request = {
        "connection": "main",
        "report": "Companies",
        "conditions": {"field": "Company_Name", "op": "like", "value": "Vandelay*"},
    }
    outputs = on_both_apis(
        moto_endpoint, sandbox, lambda env: invoke(env.stack, "RunReportFunction", request)["rows"]
    )
    assert outputs[0] > 0 and outputs[0] == outputs[1], f"SOAP {outputs[0]} rows, REST {outputs[1]} rows"
