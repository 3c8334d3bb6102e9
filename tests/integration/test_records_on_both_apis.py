"""Reports and record downloads through SOAP and REST, the same tests for both: a connection's
secret with an integrator login goes through SOAP, a REST secret without one through REST."""

import csv
import io
import json
from collections.abc import Callable
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any, TypeVar

import pytest
import requests

from connectwise.accounting_interface.client import AccountingClient
from connectwise.rest.records import RestRecords
from connectwise.soap.records import SoapRecords
from sandbox.server import SandboxServer
from scripts.harness import LocalEnvironment
from scripts.lambda_local import invoke
from tasks.platform.errors import InvalidRequestError
from tasks.platform.storage import Store

SOAP, REST = "accounting_interface", "rest"
INVOICE = {  # the invoice fields the tests read, in each API's names
    SOAP: {"number": "InvoiceNumber", "amount": "InvoiceAmount", "paid": "PaidAmount", "id": "Id"},
    REST: {"number": "invoiceNumber", "amount": "total", "paid": "payments", "id": "id"},
}
CLIENTS = {SOAP: SoapRecords, REST: RestRecords}
T = TypeVar("T")


@pytest.fixture(params=[SOAP, REST], ids=["soap", "rest"])
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


def download(env: LocalEnvironment, entity: str, **request: Any) -> dict[str, Any]:
    logical = "Download" + "".join(part.title() for part in entity.split("_")) + "Function"
    result: dict[str, Any] = invoke(env.stack, logical, {"connection": "main"} | request)
    return result


def body(env: LocalEnvironment, key: str) -> str:
    s3 = env.stack.client("s3")
    return s3.get_object(Bucket=env.stack.physical["OutputBucket"], Key=key)["Body"].read().decode()


def jsonl(env: LocalEnvironment, key: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in body(env, key).splitlines()]


def pay(client: AccountingClient, number: str, amount: str = "1.00") -> None:
    client.update_invoice_payment(number, Decimal(amount), datetime(2026, 11, 2, tzinfo=UTC))


def test_downloads_are_incremental_and_a_full_download_resyncs(
    env: LocalEnvironment, sandbox: SandboxServer, client: AccountingClient, backend: str
) -> None:
    names = INVOICE[backend]
    invoices = sandbox.accounting.site.invoices
    first = download(env, "invoices", page_size=2)  # pages of 2: invoices share last-updated instants
    rows = jsonl(env, first["files"]["jsonl"])
    assert sorted(r[names["number"]] for r in rows) == sorted(i.number for i in invoices)
    by_number = {i.number: i for i in invoices}
    assert all(Decimal(r[names["amount"]]) == by_number[r[names["number"]]].total for r in rows)
    assert download(env, "invoices")["count"] == 0
    pay(client, invoices[4].number)
    changed = download(env, "invoices")
    [row] = jsonl(env, changed["files"]["jsonl"])
    assert row[names["number"]] == invoices[4].number and Decimal(row[names["paid"]]) == Decimal("1.00")
    assert download(env, "invoices", full=True)["count"] == len(invoices)


def test_a_record_updated_while_the_download_pages_is_not_lost(
    env: LocalEnvironment,
    sandbox: SandboxServer,
    client: AccountingClient,
    backend: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    cls = CLIENTS[backend]
    original = cls.records_from
    pages: list[int] = []

    def page_then_update(self: Any, entity: str, *args: Any, **kwargs: Any) -> Any:
        page = original(self, entity, *args, **kwargs)
        pages.append(len(page))
        if len(pages) == 1:  # after the first page its oldest invoice changes and moves to the end
            pay(client, page[0].row[INVOICE[backend]["number"]], "2.00")
        return page

    monkeypatch.setattr(cls, "records_from", page_then_update)
    first = download(env, "invoices", page_size=3)
    assert len(pages) > 3
    rows = jsonl(env, first["files"]["jsonl"])
    assert {r[INVOICE[backend]["number"]] for r in rows} == {
        i.number for i in sandbox.accounting.site.invoices
    }
    assert sum(Decimal(r[INVOICE[backend]["paid"]] or 0) for r in rows) == Decimal(
        "2.00"
    )  # its newest version


def test_a_page_of_one_instant_is_read_whole_and_the_download_goes_on_after_it(
    env: LocalEnvironment, sandbox: SandboxServer, backend: str
) -> None:
    site = sandbox.accounting.site
    for invoice in site.invoices[:7]:  # seven invoices share one instant: more than a page of 2
        invoice.updated_at = datetime(2026, 10, 1, tzinfo=UTC)
    result = download(env, "invoices", page_size=2)
    numbers = [r[INVOICE[backend]["number"]] for r in jsonl(env, result["files"]["jsonl"])]
    assert sorted(numbers) == sorted(i.number for i in site.invoices) and len(numbers) == len(set(numbers))
    assert download(env, "invoices", page_size=2)["count"] == 0


def test_the_watermark_moves_only_after_the_files_are_written(
    env: LocalEnvironment, sandbox: SandboxServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    def s3_down(*args: Any) -> str:
        raise RuntimeError("S3 is down")

    monkeypatch.setattr(Store, "put_json_lines", s3_down)
    with pytest.raises(RuntimeError, match="S3 is down"):
        download(env, "companies")
    monkeypatch.undo()
    site = sandbox.accounting.site
    assert download(env, "companies")["count"] == len(site.customers) + len(site.vendors)


def test_conditions_narrow_a_download_under_a_watermark_of_its_own(
    env: LocalEnvironment, sandbox: SandboxServer, backend: str
) -> None:
    names = INVOICE[backend]
    big = {"field": names["amount"], "op": ">", "value": {"decimal": "500"}}
    narrowed = download(env, "invoices", conditions=big, fields=[names["number"], names["amount"]])
    expected = {i.number for i in sandbox.accounting.site.invoices if i.total > 500}
    rows = jsonl(env, narrowed["files"]["jsonl"])
    assert {r[names["number"]] for r in rows} == expected and narrowed["feed"] != "invoices"
    assert set(rows[0]) == {
        names["id"],
        names["number"],
        names["amount"],
        next(n for n in rows[0] if "ast" in n),
    }
    everything = download(env, "invoices")  # the unnarrowed feed still has every invoice to give
    assert everything["count"] == len(sandbox.accounting.site.invoices)
    again = download(env, "invoices", conditions=big, fields=[names["number"], names["amount"]])
    assert again["count"] == 0 and again["feed"] == narrowed["feed"]
    assert download(env, "invoices", conditions=big)["count"] == len(expected)  # other fields: its own feed


def test_order_by_orders_the_files(env: LocalEnvironment, backend: str) -> None:
    names = INVOICE[backend]
    result = download(env, "invoices", order_by=f"{names['amount'].lower()} DESC")  # any case
    amounts = [Decimal(r[names["amount"]]) for r in jsonl(env, result["files"]["jsonl"])]
    assert amounts == sorted(amounts, reverse=True)
    narrowed = download(env, "invoices", fields=[names["number"]], order_by=f"{names['amount']} ASC")
    written = [Decimal(r[names["amount"]]) for r in jsonl(env, narrowed["files"]["jsonl"])]
    assert written == sorted(written)  # the field the files are ordered by is written with them
    with pytest.raises(InvalidRequestError, match="order_by: companies has no field 'NoSuchField'"):
        download(env, "companies", order_by="NoSuchField")


def test_a_report_runs_with_conditions_order_fields_skip_and_limit(
    env: LocalEnvironment, sandbox: SandboxServer
) -> None:
    request = {
        "connection": "main",
        "report": "Invoices",
        "conditions": {"all": [{"field": "Invoice_Amount", "op": ">", "value": {"decimal": "100"}}]},
        "order_by": "Invoice_Number DESC",
        "fields": ["Invoice_Amount", "Invoice_Number"],
        "skip": 2,
        "limit": 3,
        "page_size": 2,
    }
    result = invoke(env.stack, "RunReportFunction", request)
    numbers = sorted((i.number for i in sandbox.accounting.site.invoices if i.total > 100), reverse=True)
    rows = jsonl(env, result["files"]["jsonl"])
    assert [r["Invoice_Number"] for r in rows] == numbers[2:5]
    assert next(csv.reader(io.StringIO(body(env, result["files"]["csv"])))) == [
        "Invoice_Amount",
        "Invoice_Number",
    ]
    counted = invoke(env.stack, "RunReportFunction", request | {"count": True})
    assert counted["count"] == len(numbers) and "files" not in counted
    with pytest.raises(InvalidRequestError, match="report Invoices has no field 'Nope'"):
        invoke(env.stack, "RunReportFunction", request | {"fields": ["invoice_number", "Nope"]})


def on_both_apis(moto_endpoint: str, sandbox: SandboxServer, run: Callable[[LocalEnvironment], T]) -> list[T]:
    """`run` on a connection of each API (SOAP, then REST) to the same site, each on fresh local AWS."""
    from scripts.harness import local_environment

    results = []
    for backend in (SOAP, REST):
        requests.post(f"{moto_endpoint}/moto-api/reset", timeout=10).raise_for_status()
        with local_environment(
            sandbox_site=sandbox.site_address, endpoint=moto_endpoint, backend=backend
        ) as env:
            results.append(run(env))
    return results


def test_both_apis_write_the_same_report_and_catalog(moto_endpoint: str, sandbox: SandboxServer) -> None:
    def report_and_catalog(env: LocalEnvironment) -> tuple[str, str, str]:
        report = invoke(env.stack, "RunReportFunction", {"connection": "main", "report": "Invoices"})
        catalog = invoke(env.stack, "ListReportsFunction", {"connection": "main"})
        return (
            body(env, report["files"]["jsonl"]),
            body(env, report["files"]["csv"]),
            body(env, catalog["catalog"]),
        )

    outputs = on_both_apis(moto_endpoint, sandbox, report_and_catalog)
    assert outputs[0] == outputs[1]
    assert '"Invoice_Amount":"' in outputs[0][0]  # numbers exact, as text


def test_hostile_conditions_are_refused_before_reaching_connectwise(
    env: LocalEnvironment, sandbox: SandboxServer
) -> None:
    def asked() -> int:  # SOAP requests and REST calls the sandbox answered
        return sandbox.requests_seen + sum(sandbox.rest.calls.values())

    before = asked()
    hostile = {"field": "Company_Name", "op": "=", "value": 'x" OR Company_Name like "%'}
    with pytest.raises(InvalidRequestError, match="cannot be quoted safely"):
        invoke(
            env.stack,
            "RunReportFunction",
            {"connection": "main", "report": "Companies", "conditions": hostile},
        )
    with pytest.raises(InvalidRequestError, match="cannot be quoted safely"):
        download(env, "companies", conditions={"field": "name", "op": "=", "value": "a\\b"})
    assert asked() == before


def test_transient_faults_are_retried_and_a_refusal_moves_nothing(
    env: LocalEnvironment, sandbox: SandboxServer, backend: str
) -> None:
    site = sandbox.accounting.site
    sandbox.faults.set({"statuses": [502, 429], "retry_after": 0})  # a gateway, then throttling
    assert download(env, "companies")["count"] == len(site.customers) + len(site.vendors)
    assert download(env, "companies")["count"] == 0
    sandbox.faults.set({"statuses": [400]})  # ConnectWise refuses a page outright: never retried
    with pytest.raises(Exception, match="400"):
        download(env, "invoices", full=True)
    assert [e for e in env.events() if e["detail"].get("entity") == "invoices"] == []
    assert download(env, "invoices")["count"] == len(site.invoices)  # the refused run moved nothing


def test_a_run_overtaken_by_another_leaves_the_watermark_alone(
    env: LocalEnvironment, backend: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    cls = CLIENTS[backend]
    original = cls.records_from
    inner: list[dict[str, Any]] = []

    def overtaken(self: Any, *args: Any, **kwargs: Any) -> Any:
        if not inner:
            inner.append({})
            inner[0] = download(env, "companies")  # another run starts and finishes meanwhile
        return original(self, *args, **kwargs)

    monkeypatch.setattr(cls, "records_from", overtaken)
    outer = download(env, "companies")
    monkeypatch.undo()
    assert inner[0]["watermark_moved_by_another_run"] is False
    assert outer["watermark_moved_by_another_run"] is True and outer["count"] == inner[0]["count"]
    assert download(env, "companies")["count"] == 0  # the watermark the other run left stands
