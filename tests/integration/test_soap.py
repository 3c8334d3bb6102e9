"""The SOAP client (zeep, bundled WSDLs) against the sandbox's SOAP side."""

from datetime import UTC, datetime
from decimal import Decimal

import pytest

from connectwise.conditions import all_of, render, where
from connectwise.errors import AuthenticationError
from connectwise.soap.client import IntegratorLogin, SoapClient, SoapFaultError
from sandbox.server import SandboxServer


def login(sandbox: SandboxServer, password: str = "sandbox-integrator") -> IntegratorLogin:
    return IntegratorLogin(
        company="sandbox",
        integrator_login_id="integrator",
        integrator_password=password,
        site=sandbox.site_address,
        use_ssl=False,
    )


@pytest.fixture
def soap(sandbox: SandboxServer) -> SoapClient:
    return SoapClient(login(sandbox), retries=0)


def test_reports_are_listed_with_their_fields(soap: SoapClient) -> None:
    reports = {r["Name"]: r for r in soap.get_reports(include_fields=True)}
    assert {"Invoices", "Companies", "Purchase Orders"} <= set(reports)
    fields = {f["Name"]: f["Type"] for f in reports["Invoices"]["Field"]}
    assert fields["Invoice_Amount"] == "Numeric" and fields["Invoice_Date"] == "DateTime"
    assert [f["Name"] for f in soap.get_report_fields("Invoices")] == list(fields)


def test_a_report_runs_page_by_page_with_conditions(soap: SoapClient, sandbox: SandboxServer) -> None:
    conditions = render(where("Invoice_Amount", ">", Decimal("100")))
    rows = list(soap.run_report("Invoices", conditions, order_by="Invoice_Number", page_size=5))
    expected = sorted(i.number for i in sandbox.accounting.site.invoices if i.total > 100)
    assert [r["Invoice_Number"] for r in rows] == expected and len(expected) > 5
    assert all(isinstance(r["Invoice_Amount"], Decimal) and r["Closed_Flag"] is False for r in rows)
    assert soap.run_report_count("Invoices", conditions) == len(expected)


def test_find_is_incremental_by_last_updated(
    soap: SoapClient, sandbox: SandboxServer, client: object
) -> None:
    invoices = list(soap.find("invoices", order_by="LastUpdated", page_size=4))
    assert len(invoices) == len(sandbox.accounting.site.invoices)
    watermark = max(i["LastUpdated"] for i in invoices)
    since = render(where("LastUpdated", ">", watermark))
    assert list(soap.find("invoices", since)) == []
    target = sandbox.accounting.site.invoices[3]
    client.update_invoice_payment(target.number, Decimal("1.00"), datetime(2026, 11, 2, tzinfo=UTC))  # type: ignore[attr-defined]
    [changed] = soap.find("invoices", since)
    assert changed["InvoiceNumber"] == target.number and changed["PaidAmount"] == Decimal("1.00")


def test_return_fields_limit_the_record(soap: SoapClient) -> None:
    [company, *_] = soap.find("companies", return_fields=["Id", "CompanyName"])
    assert company["Id"] and company["CompanyName"] and company["City"] is None


@pytest.mark.parametrize("entity", ["agreements", "companies", "opportunities", "purchase_orders"])
def test_every_entity_can_be_found(soap: SoapClient, entity: str) -> None:
    found = list(soap.find(entity, render(all_of(where("Id", ">", 0))), page_size=3))
    assert found and all(isinstance(r["Id"], int) for r in found)


def test_faults_become_typed_errors_with_connectwise_message(
    soap: SoapClient, sandbox: SandboxServer
) -> None:
    with pytest.raises(SoapFaultError, match="Report 'Nope' was not found"):
        list(soap.run_report("Nope"))
    with pytest.raises(SoapFaultError, match="Invalid conditions"):
        list(soap.find("invoices", 'InvoiceNumber = "unterminated'))
    bad = SoapClient(login(sandbox, password="wrong-password"), retries=3, backoff=0)
    asked = sandbox.requests_seen
    with pytest.raises(AuthenticationError, match="Username or password is incorrect") as caught:
        bad.get_reports()
    assert "wrong-password" not in str(caught.value)
    assert sandbox.requests_seen == asked + 1  # a fault is an answer: never sent again


def test_the_sandbox_serves_the_bundled_wsdls(sandbox: SandboxServer) -> None:
    import requests

    from connectwise.soap.client import WSDL_DIR

    base = f"http://{sandbox.site_address}/v4_6_release/apis"
    served = requests.get(f"{base}/2.0/InvoiceApi.asmx?wsdl", timeout=10)
    bundled = (WSDL_DIR / "InvoiceApi_2.0.authored.wsdl").read_bytes()
    sandbox_address = f"{base}/2.0/InvoiceApi.asmx".encode()
    assert served.content == bundled.replace(
        b"https://cw.example.invalid/v4_6_release/apis/2.0/InvoiceApi.asmx", sandbox_address
    )
    assert requests.get(f"{base}/1.5/ReportingApi.asmx?wsdl", timeout=10).status_code == 200
    assert requests.get(f"{base}/2.0/ServiceTicketApi.asmx?wsdl", timeout=10).status_code == 404


def test_transient_http_faults_are_retried_then_reported_as_transient(sandbox: SandboxServer) -> None:
    from connectwise.errors import TransportError

    sandbox.faults.set({"statuses": [503, 429], "retry_after": 0})
    patient = SoapClient(login(sandbox), retries=3, backoff=0)
    assert patient.run_report_count("Companies") > 0
    sandbox.faults.set({"statuses": [503] * 5, "retry_after": 0})
    impatient = SoapClient(login(sandbox), retries=1, backoff=0)
    with pytest.raises(TransportError) as caught:
        impatient.get_reports()
    assert caught.value.transient and caught.value.status == 503


def test_the_integrator_password_never_reaches_the_logs(
    soap: SoapClient, caplog: pytest.LogCaptureFixture
) -> None:
    import logging

    with caplog.at_level(logging.DEBUG):  # everything at DEBUG, as an operator chasing a problem might set it
        soap.get_reports()
        list(soap.find("companies", page_size=50))
    assert caplog.records  # the HTTP layer did log at DEBUG
    assert "sandbox-integrator" not in caplog.text
