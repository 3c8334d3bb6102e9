"""Every SOAP request the client sends and every reply the sandbox gives validate against the
bundled WSDLs' schemas (xmlschema), for each operation the connector uses."""

from collections.abc import Iterator
from functools import cache
from typing import Any
from xml.etree import ElementTree as ET

import pytest
import xmlschema

from connectwise.conditions import render, where
from connectwise.soap.client import ENTITIES, REPORTING, WSDL_DIR, SoapClient
from sandbox import soap as sandbox_soap
from sandbox.server import SandboxServer
from tests.integration.test_soap import login

SOAP_BODY = "{http://schemas.xmlsoap.org/soap/envelope/}Body"
WSDL_OF = {"GetReports": REPORTING.wsdl, "GetReportFields": REPORTING.wsdl, "RunReportQuery": REPORTING.wsdl,
           "RunReportCount": REPORTING.wsdl} | {e.operation: e.api.wsdl for e in ENTITIES.values()}  # fmt: skip


@cache
def schema(wsdl: str) -> xmlschema.XMLSchema:
    """The WSDL's embedded schema, with the namespace prefixes its type references use."""
    text = (WSDL_DIR / wsdl).read_text(encoding="utf-8")
    start, end = text.index("<s:schema"), text.index("</s:schema>") + len("</s:schema>")
    declared = '<s:schema xmlns:s="http://www.w3.org/2001/XMLSchema" xmlns:tns="http://connectwise.com"'
    return xmlschema.XMLSchema(text[start:end].replace("<s:schema", declared, 1))


@pytest.fixture
def exchanges(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[tuple[bytes, int, bytes]]]:
    """(request, status, reply) of every SOAP call the sandbox answers during the test."""
    seen: list[tuple[bytes, int, bytes]] = []
    original = sandbox_soap.handle

    def recording(*arguments: Any) -> Any:
        reply = original(*arguments)
        seen.append((arguments[-1], reply.status, reply.body))
        return reply

    monkeypatch.setattr(sandbox_soap, "handle", recording)
    yield seen


def operation_element(envelope: bytes) -> ET.Element:
    body = ET.fromstring(envelope).find(SOAP_BODY)
    assert body is not None
    return body[0]


def test_requests_and_replies_validate_against_the_wsdls(
    sandbox: SandboxServer, exchanges: list[tuple[bytes, int, bytes]]
) -> None:
    client = SoapClient(login(sandbox), retries=0)
    client.get_reports(include_fields=True)
    client.get_report_fields("Companies")
    list(
        client.run_report("Invoices", render(where("Closed_Flag", "=", False)), "Invoice_Number", page_size=7)
    )
    client.run_report_count("Invoices")
    for entity in ENTITIES:
        list(client.find(entity, order_by="Id", page_size=3))
    client.find_page("invoices", return_fields=["Id", "InvoiceNumber"])  # the rest nil or absent

    operations = set()
    for request, status, reply in exchanges:
        sent, answered = operation_element(request), operation_element(reply)
        operation = sent.tag.removeprefix("{http://connectwise.com}")
        operations.add(operation)
        assert status == 200, reply[:300]
        schema(WSDL_OF[operation]).validate(sent)
        schema(WSDL_OF[operation]).validate(answered)
    assert operations == set(WSDL_OF)


def test_a_reply_that_breaks_the_schema_is_caught() -> None:
    bad = ET.fromstring(
        '<FindInvoicesResponse xmlns="http://connectwise.com"><FindInvoicesResult><InvoiceFindResult>'
        "<Id>not-a-number</Id></InvoiceFindResult></FindInvoicesResult></FindInvoicesResponse>"
    )
    with pytest.raises(xmlschema.XMLSchemaValidationError):
        schema(WSDL_OF["FindInvoices"]).validate(bad)


def test_faults_carry_the_message(sandbox: SandboxServer, exchanges: list[tuple[bytes, int, bytes]]) -> None:
    client = SoapClient(login(sandbox, password="wrong"), retries=0)
    with pytest.raises(Exception, match="Username or password is incorrect"):
        client.get_reports()
    [(_, status, reply)] = exchanges
    assert (
        status == 500
        and operation_element(reply).findtext("faultstring") == "Username or password is incorrect"
    )
