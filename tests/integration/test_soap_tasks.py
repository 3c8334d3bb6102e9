"""The SOAP functions against moto and the sandbox: incremental downloads and reports."""

import csv
import io
import json
from typing import Any

import pytest

from connectwise.accounting_interface.client import AccountingClient
from connectwise.soap.client import SoapClient
from sandbox.server import SandboxServer
from scripts.harness import LocalEnvironment
from scripts.lambda_local import invoke
from tasks.platform.errors import ConfigurationError, InvalidRequestError
from tests.integration.test_records_on_both_apis import body, download, jsonl, pay


def test_downloads_are_incremental_and_full_resyncs_everything(
    env: LocalEnvironment, sandbox: SandboxServer, client: AccountingClient
) -> None:
    first = download(env, "invoices", page_size=2)  # pages of 2: invoices share LastUpdated instants
    invoices = sandbox.accounting.site.invoices
    assert first["count"] == len(invoices)
    rows = jsonl(env, first["files"]["jsonl"])
    assert sorted(r["InvoiceNumber"] for r in rows) == sorted(i.number for i in invoices)
    assert rows[0]["InvoiceAmount"] == str(
        next(i.total for i in invoices if i.number == rows[0]["InvoiceNumber"])
    )
    header = next(csv.reader(io.StringIO(body(env, first["files"]["csv"]))))
    assert header[:3] == ["Id", "BillingTypeIdentifier", "AgreementName"]  # the WSDL's field order

    assert download(env, "invoices")["count"] == 0  # nothing changed since
    pay(client, invoices[4].number)
    changed = download(env, "invoices")
    assert changed["count"] == 1 and jsonl(env, changed["files"]["jsonl"])[0]["PaidAmount"] == "1.00"
    assert download(env, "invoices", full=True)["count"] == len(invoices)
    events = [e for e in env.events() if e["detail-type"] == "RecordsDownloaded"]
    assert [e["detail"]["count"] for e in events] == [len(invoices), 0, 1, len(invoices)]


def test_a_record_updated_while_the_download_pages_is_not_lost(
    env: LocalEnvironment, sandbox: SandboxServer, client: AccountingClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    invoices = sandbox.accounting.site.invoices
    original = SoapClient.find_page
    pages: list[int] = []

    def page_then_update(self: SoapClient, *args: Any, **kwargs: Any) -> list[dict[str, Any]]:
        result = original(self, *args, **kwargs)
        pages.append(len(result))
        if len(pages) == 1:  # after the first page, the oldest invoice changes and moves to the end
            pay(client, result[0]["InvoiceNumber"])
        return result

    monkeypatch.setattr(SoapClient, "find_page", page_then_update)
    first = download(env, "invoices", page_size=3)
    assert len(pages) > 3
    assert {r["InvoiceNumber"] for r in jsonl(env, first["files"]["jsonl"])} == {i.number for i in invoices}


@pytest.mark.parametrize("entity", ["agreements", "opportunities", "purchase_orders"])
def test_every_download_function_writes_its_records(env: LocalEnvironment, entity: str) -> None:
    result = download(env, entity)
    assert result["count"] > 0 and result["files"]["csv"].startswith(f"records/main/{entity}/")
    assert download(env, entity)["count"] == 0


def test_a_report_runs_with_typed_conditions_and_selected_fields(
    env: LocalEnvironment, sandbox: SandboxServer
) -> None:
    request = {
        "connection": "main",
        "report": "Invoices",
        "conditions": {"all": [{"field": "Invoice_Amount", "op": ">", "value": {"decimal": "100"}}]},
        "order_by": "Invoice_Number DESC",
        "fields": ["Invoice_Number", "Invoice_Amount"],
        "limit": 3,
    }
    result = invoke(env.stack, "RunReportFunction", request)
    expected = sorted((i.number for i in sandbox.accounting.site.invoices if i.total > 100), reverse=True)[:3]
    rows = jsonl(env, result["files"]["jsonl"])
    assert [r["Invoice_Number"] for r in rows] == expected and set(rows[0]) == {
        "Invoice_Number",
        "Invoice_Amount",
    }
    assert result["conditions"] == request["conditions"]  # as asked: the same from either API
    assert next(csv.reader(io.StringIO(body(env, result["files"]["csv"])))) == [
        "Invoice_Number",
        "Invoice_Amount",
    ]
    [event] = [e for e in env.events() if e["detail-type"] == "ReportReady"]
    assert event["detail"]["rows"] == 3


def test_hostile_report_input_is_refused_before_reaching_connectwise(env: LocalEnvironment) -> None:
    hostile = {"field": "Company_Name", "op": "=", "value": 'x" OR Company_Name like "%'}
    with pytest.raises(InvalidRequestError, match="cannot be quoted safely"):
        invoke(
            env.stack,
            "RunReportFunction",
            {"connection": "main", "report": "Companies", "conditions": hostile},
        )
    with pytest.raises(InvalidRequestError, match="order_by is a field name"):
        invoke(
            env.stack, "RunReportFunction", {"connection": "main", "report": "Companies", "order_by": "x; y"}
        )


def test_reports_are_listed_into_a_catalog(env: LocalEnvironment) -> None:
    result = invoke(env.stack, "ListReportsFunction", {"connection": "main"})
    assert "Invoices" in result["reports"]
    catalog = json.loads(body(env, result["catalog"]))
    assert {"name": "Invoice_Amount", "type": "Numeric"} in next(
        r for r in catalog if r["name"] == "Invoices"
    )["fields"]


def test_a_secret_without_integrator_login_is_a_clear_error(env: LocalEnvironment) -> None:
    secrets = env.stack.client("secretsmanager")
    value = json.loads(secrets.get_secret_value(SecretId="connectwise/main")["SecretString"])
    del value["integrator"]
    secrets.put_secret_value(SecretId="connectwise/main", SecretString=json.dumps(value))
    from aws_lambda_powertools.utilities import parameters

    parameters.clear_caches()
    with pytest.raises(ConfigurationError, match="connection 'main' cannot run reports or download records"):
        invoke(env.stack, "ListReportsFunction", {"connection": "main"})


def test_a_warm_invocation_does_not_parse_the_wsdl_again(env: LocalEnvironment) -> None:
    from connectwise.soap.client import _document

    _document.cache_clear()
    download(env, "opportunities")
    download(env, "opportunities")
    assert _document.cache_info().misses == 1 and _document.cache_info().hits == 0  # one client, built once
