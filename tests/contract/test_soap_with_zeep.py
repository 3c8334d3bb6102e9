"""The sandbox's SOAP side as an independent client sees it.

zeep is built the way a user builds it: from the sandbox's own `?wsdl` URL, a binding picked by
name (the SOAP 1.1 `<Api>Soap` or the SOAP 1.2 `<Api>Soap12` port), operations called by name. zeep's
default strict mode parses every reply against the WSDL, and each reply body is also validated
against the WSDL's schema. Hand-built requests then attack the envelope reading: each gets a fault
the caller can read, in the SOAP version it speaks.
"""

import re
from pathlib import Path
from typing import Any, NamedTuple
from xml.etree import ElementTree as ET

import pytest
import requests
import zeep
import zeep.exceptions
import zeep.helpers
from lxml import etree
from zeep.plugins import HistoryPlugin

from connectwise.safexml import parse_xml
from connectwise.soap.client import ENTITIES, REPORTING, WSDL_DIR, Api
from sandbox import soap
from sandbox.server import SandboxServer
from tests.contract.test_soap_contract import schema

SERVED = [REPORTING, *(entity.api for entity in ENTITIES.values())]
BINDINGS = {"SOAP 1.1": "Soap", "SOAP 1.2": "Soap12"}
ENVELOPE = {
    "SOAP 1.1": "http://schemas.xmlsoap.org/soap/envelope/",
    "SOAP 1.2": "http://www.w3.org/2003/05/soap-envelope",
}
MEDIA_TYPE = {"SOAP 1.1": "text/xml", "SOAP 1.2": "application/soap+xml"}
CREDENTIALS = {
    "CompanyId": "sandbox",
    "IntegratorLoginId": "integrator",
    "IntegratorPassword": "sandbox-integrator",
}
# What a user passes for each request element the served WSDLs declare (credentials aside).
SAMPLE_ARGUMENTS: dict[str, Any] = {
    "includeFields": True, "reportName": "Invoices", "conditions": "", "orderBy": "", "limit": 3, "skip": 0,
    "isOpen": None, "returnFields": None,
}  # fmt: skip
# Declared by a WSDL, refused by name: the sandbox publishes no portal reports to run.
NOT_SUPPORTED = {"RunPortalReport"}


def api_url(sandbox: SandboxServer, api: Api) -> str:
    return f"http://{sandbox.site_address}/v4_6_release/apis/{api.version}/{api.name}.asmx"


@pytest.fixture
def history() -> HistoryPlugin:
    return HistoryPlugin()


def zeep_client(sandbox: SandboxServer, api: Api, history: HistoryPlugin) -> zeep.Client:
    """A zeep client as a user makes one: from the published `?wsdl` address, zeep's defaults."""
    transport = zeep.Transport(timeout=10, operation_timeout=10)
    client = zeep.Client(api_url(sandbox, api) + "?wsdl", transport=transport, plugins=[history])
    assert client.settings.strict  # zeep's default: a reply that strays from the WSDL raises
    return client


def call(client: zeep.Client, api: Api, version: str, operation: str, **arguments: Any) -> Any:
    service = client.bind(api.name, api.name + BINDINGS[version])
    return getattr(service, operation)(credentials=CREDENTIALS, **arguments)


def sample_arguments(operation: Any) -> dict[str, Any]:
    names = [name for name, _ in operation.input.body.type.elements if name != "credentials"]
    missing = [name for name in names if name not in SAMPLE_ARGUMENTS]
    assert not missing, f"{operation.name} takes {missing}: add a sample argument for it"
    return {name: SAMPLE_ARGUMENTS[name] for name in names}


def received(history: HistoryPlugin, version: str) -> ET.Element:
    """The last reply's body element, after checking it speaks `version`."""
    content_type = history.last_received["http_headers"]["Content-Type"]
    assert content_type.split(";")[0] == MEDIA_TYPE[version], content_type
    envelope = parse_xml(etree.tostring(history.last_received["envelope"]))
    body = envelope.find(f"{{{ENVELOPE[version]}}}Body")
    assert body is not None, envelope.tag
    return body[0]


@pytest.mark.parametrize("api", SERVED, ids=lambda api: f"{api.version}/{api.name}")
def test_every_declared_operation_is_answered_or_refused_by_name_on_both_bindings(
    sandbox: SandboxServer, api: Api, history: HistoryPlugin
) -> None:
    client = zeep_client(sandbox, api, history)
    ports = client.wsdl.services[api.name].ports
    declared = set(ports[api.name + "Soap"].binding.all())
    answers: dict[str, dict[str, Any]] = {}
    for version, suffix in BINDINGS.items():
        operations = ports[api.name + suffix].binding.all()
        assert set(operations) == declared
        for name, operation in operations.items():
            try:
                result = call(client, api, version, name, **sample_arguments(operation))
            except zeep.exceptions.Fault as fault:
                assert (name, fault.message) == (name, f"{name} is not supported by the sandbox")
                continue
            reply = received(history, version)
            assert reply.tag == f"{{http://connectwise.com}}{name}Response"
            schema(api.wsdl).validate(reply)
            assert result or name == "GetPortalReports", f"{name} answered nothing"
            answers.setdefault(name, {})[version] = zeep.helpers.serialize_object(result)
    assert declared - set(answers) == NOT_SUPPORTED & declared
    for name, by_version in answers.items():
        assert by_version["SOAP 1.1"] == by_version["SOAP 1.2"], name


@pytest.mark.parametrize("version", BINDINGS)
def test_a_reply_that_strays_from_the_wsdl_is_caught(
    sandbox: SandboxServer, version: str, history: HistoryPlugin, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The check above can fail: zeep's strict parse refuses an element the WSDL does not declare."""

    def straying(site: Any, fields: Any) -> ET.Element:
        result = ET.Element("{http://connectwise.com}GetReportsResult")
        ET.SubElement(result, "{http://connectwise.com}Surprise").text = "not in the WSDL"
        return result

    monkeypatch.setitem(soap._OPERATIONS, "GetReports", straying)
    client = zeep_client(sandbox, REPORTING, history)
    with pytest.raises(zeep.exceptions.XMLParseError, match="Surprise"):
        call(client, REPORTING, version, "GetReports", includeFields=False)


@pytest.mark.parametrize("version", BINDINGS)
def test_faults_reach_a_zeep_user_in_the_version_called(
    sandbox: SandboxServer, version: str, history: HistoryPlugin
) -> None:
    client = zeep_client(sandbox, REPORTING, history)
    sender = {"SOAP 1.1": "soap:Client", "SOAP 1.2": "soap:Sender"}[version]
    with pytest.raises(zeep.exceptions.Fault) as caught:
        call(client, REPORTING, version, "RunReportCount", reportName="Nope", conditions="")
    assert (caught.value.message, caught.value.code) == ("Report 'Nope' was not found", sender)
    service = client.bind(REPORTING.name, REPORTING.name + BINDINGS[version])
    wrong = CREDENTIALS | {"IntegratorPassword": "wrong-password"}
    with pytest.raises(zeep.exceptions.Fault) as caught:
        service.GetReports(credentials=wrong, includeFields=False)
    assert (caught.value.message, caught.value.code) == ("Username or password is incorrect", sender)
    assert b"wrong-password" not in etree.tostring(history.last_received["envelope"])


# The WSDLs, as served


@pytest.mark.parametrize("api", SERVED, ids=lambda api: f"{api.version}/{api.name}")
def test_each_wsdl_is_served_where_the_connector_calls_it_with_the_sandbox_as_address(
    sandbox: SandboxServer, api: Api, history: HistoryPlugin
) -> None:
    served = requests.get(api_url(sandbox, api) + "?wsdl", timeout=10)
    assert served.status_code == 200 and served.headers["Content-Type"].startswith("text/xml")
    address = re.compile(rb'(<soap(?:12)?:address location=)"[^"]*"')
    bundled = (WSDL_DIR / api.wsdl).read_bytes()
    assert address.sub(rb"\1", served.content) == address.sub(rb"\1", bundled)  # only the addresses change
    ports = zeep_client(sandbox, api, history).wsdl.services[api.name].ports
    assert set(ports) == {api.name + "Soap", api.name + "Soap12"}
    assert {port.binding_options["address"] for port in ports.values()} == {api_url(sandbox, api)}


def test_the_wsdl_address_follows_the_host_asked_for_and_ignores_case(sandbox: SandboxServer) -> None:
    port = sandbox.site_address.rsplit(":", 1)[1]
    url = f"http://{sandbox.site_address}/v4_6_release/APIS/2.0/agreementapi.asmx?WSDL"
    served = requests.get(url, headers={"Host": f"localhost:{port}"}, timeout=10)
    locations = re.findall(rb'address location="([^"]*)"', served.content)
    assert locations == [f"http://localhost:{port}/v4_6_release/APIS/2.0/agreementapi.asmx".encode()] * 2


@pytest.mark.parametrize(
    "path",
    [
        "2.0/ReportingApi.asmx",  # the connector reports through 1.5; no 2.0 Reporting WSDL is bundled
        "1.5/InvoiceApi.asmx",
        "1.5/CompanyApi.asmx",  # CompanyAPI_1.5.wsdl is bundled as published, but the connector never calls it
        "2.0/ServiceTicketApi.asmx",
        "2.0/InvoiceApi.asmx/FindInvoices",
    ],
)
def test_an_api_the_sandbox_does_not_serve_is_a_clear_404(sandbox: SandboxServer, path: str) -> None:
    url = f"http://{sandbox.site_address}/v4_6_release/apis/{path}"
    for answer in (
        requests.get(url + "?wsdl", timeout=10),
        requests.post(url, data=b"<x/>", headers={"Content-Type": "text/xml"}, timeout=10),
    ):
        assert answer.status_code == 404 and answer.headers["Content-Type"].startswith("text/plain")
        assert answer.text.startswith(f"no SOAP API at /v4_6_release/apis/{path};")
        assert "1.5/ReportingApi.asmx, 2.0/AgreementApi.asmx" in answer.text


# Hand-built requests: every one gets a fault its sender can read


def envelope(
    version: str, operation: str = "GetReports", password: str = "sandbox-integrator", header: str = ""
) -> bytes:
    return (
        f'<e:Envelope xmlns:e="{ENVELOPE[version]}">{header}<e:Body><{operation} xmlns="http://connectwise.com">'
        "<credentials><CompanyId>sandbox</CompanyId><IntegratorLoginId>integrator</IntegratorLoginId>"
        f"<IntegratorPassword>{password}</IntegratorPassword></credentials>"
        f"<includeFields>false</includeFields></{operation}></e:Body></e:Envelope>"
    ).encode()


def post(
    sandbox: SandboxServer, body: bytes, content_type: str | None, soap_action: str | None = None
) -> requests.Response:
    headers = {} if content_type is None else {"Content-Type": content_type}
    if soap_action is not None:
        headers["SOAPAction"] = soap_action
    return requests.post(api_url(sandbox, REPORTING), data=body, headers=headers, timeout=10)


def read_fault(answer: requests.Response, version: str) -> tuple[str, str]:
    """(fault code as {namespace}name, message), after checking the reply is a `version` fault."""
    assert answer.headers["Content-Type"] == f"{MEDIA_TYPE[version]}; charset=utf-8"
    parser = etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False)
    root = etree.fromstring(answer.content, parser)
    ns = {"env": ENVELOPE[version]}
    assert root.tag == f"{{{ENVELOPE[version]}}}Envelope"
    [fault] = root.findall("env:Body/env:Fault", ns)
    code_path, text_path = (
        ("faultcode", "faultstring")
        if version == "SOAP 1.1"
        else ("env:Code/env:Value", "env:Reason/env:Text")
    )
    [code] = fault.findall(code_path, ns)
    prefix, _, name = (code.text or "").rpartition(":")
    # A strict client resolves the code as a QName: its prefix must be declared where it is used.
    assert prefix in code.nsmap, f"the fault code's prefix {prefix!r} is not declared"
    if version == "SOAP 1.2":
        assert fault.find(text_path, ns).get("{http://www.w3.org/XML/1998/namespace}lang") == "en"
    return f"{{{code.nsmap[prefix]}}}{name}", fault.findtext(text_path, namespaces=ns) or ""


def code(version: str, name: str) -> str:
    soap11 = {"Sender": "Client", "Receiver": "Server"}
    return f"{{{ENVELOPE[version]}}}{soap11.get(name, name) if version == 'SOAP 1.1' else name}"


OTHER = {"SOAP 1.1": "SOAP 1.2", "SOAP 1.2": "SOAP 1.1"}


@pytest.mark.parametrize("version", BINDINGS)
def test_the_binding_speaks_its_own_version(sandbox: SandboxServer, version: str) -> None:
    answer = post(sandbox, envelope(version), MEDIA_TYPE[version] + "; charset=utf-8")
    assert answer.status_code == 200 and answer.headers["Content-Type"].startswith(MEDIA_TYPE[version])
    assert parse_xml(answer.content).tag == f"{{{ENVELOPE[version]}}}Envelope"


class Attack(NamedTuple):
    body: bytes
    content_type: str | None
    cause: str  # the fault's cause, in SOAP 1.2's words
    message: str  # a part of the fault's text
    soap_action: str | None = None
    status: int | None = None  # unless the content type is refused: 400 for a SOAP 1.2 Sender fault, else 500


def attacks(version: str, secret_file: str) -> dict[str, Attack]:
    media, other = MEDIA_TYPE[version], MEDIA_TYPE[OTHER[version]]
    dtd = "declares a DTD or entities"
    internal = b'<!DOCTYPE e:Envelope [<!ENTITY p "EXPANDED-ENTITY">]>'
    external = f'<!DOCTYPE e:Envelope [<!ENTITY p SYSTEM "file://{secret_file}">]>'.encode()
    laughs = b'<!DOCTYPE l [<!ENTITY a "lol"><!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;"><!ENTITY c "&b;&b;&b;&b;&b;&b;&b;&b;">]>'
    other_action = "http://connectwise.com/RunReportQuery"
    must_understand = '<e:Header><Security xmlns="urn:wsse" e:mustUnderstand="1"/></e:Header>'
    return {
        "cut short": Attack(envelope(version)[:-30], media, "Sender", "not well-formed"),
        "not XML": Attack(b"credentials=sandbox", media, "Sender", "not well-formed"),
        "empty": Attack(b"", media, "Sender", "not well-formed"),
        "not an envelope": Attack(b'<GetReports xmlns="http://connectwise.com"/>', media, "Sender", "not a SOAP Envelope"),
        "no operation": Attack(envelope(version).split(b"<GetReports")[0] + b"</e:Body></e:Envelope>", media, "Sender", "holds no operation"),
        "unknown envelope": Attack(b'<e:Envelope xmlns:e="urn:soap-2"><e:Body/></e:Envelope>', media, "VersionMismatch", "neither SOAP 1.1 nor SOAP 1.2"),
        "internal entity": Attack(internal + envelope(version, password="&p;"), media, "Sender", dtd),
        "external entity": Attack(external + envelope(version, password="&p;"), media, "Sender", dtd),
        "entity expansion": Attack(laughs + b"<l>&c;</l>", media, "Sender", dtd),
        "wrong content type": Attack(envelope(version), "application/json", "Sender", f"sent as {media}, not application/json", status=415),
        "no content type": Attack(envelope(version), None, "Sender", "has no content type", status=415),
        "the other version's content type": Attack(envelope(version), other, "Sender", f"sent as {media}, not {other}", status=415),
        "operation in no namespace": Attack(envelope(version).replace(b' xmlns="http://connectwise.com"', b""), media, "Sender", "GetReports is not in the http://connectwise.com namespace"),
        "credentials in no namespace": Attack(envelope(version).replace(b"<credentials>", b'<credentials xmlns="">'), media, "Sender", "Cannot find company in connectwise"),
        "bad credentials": Attack(envelope(version, password="wrong-password"), media, "Sender", "Username or password is incorrect"),
        "another API's operation": Attack(envelope(version, "FindInvoices"), media, "Sender", "FindInvoices is not an operation of the ReportingApi 1.5"),
        "not supported": Attack(envelope(version, "RunPortalReport"), media, "Receiver", "RunPortalReport is not supported by the sandbox"),
        "action names another operation": (
            Attack(envelope(version), media, "Sender", f"SOAP action: {other_action}", soap_action=other_action)
            if version == "SOAP 1.1"
            else Attack(envelope(version), f'{media}; action="{other_action}"', "Sender", f"SOAP action: {other_action}")
        ),
        "header it must understand": Attack(envelope(version, header=must_understand), media, "MustUnderstand", "{urn:wsse}Security was not understood"),
    }  # fmt: skip


@pytest.mark.parametrize(
    ("version", "case"), [(version, case) for version in BINDINGS for case in attacks(version, "")]
)
def test_every_bad_request_gets_a_fault_its_sender_can_read(
    sandbox: SandboxServer, version: str, case: str, tmp_path: Path
) -> None:
    secret = tmp_path / "secret.txt"
    secret.write_text("TOP-SECRET-FILE")
    attack = attacks(version, str(secret))[case]
    answer = post(sandbox, attack.body, attack.content_type, attack.soap_action)
    fault_code, text = read_fault(answer, version)
    status = attack.status or (400 if (version, attack.cause) == ("SOAP 1.2", "Sender") else 500)
    assert (answer.status_code, fault_code) == (status, code(version, attack.cause))
    assert attack.message in text
    for leak in (b"EXPANDED-ENTITY", b"TOP-SECRET-FILE", b"lollol", b"wrong-password"):
        assert leak not in answer.content


@pytest.mark.parametrize("version", BINDINGS)
def test_a_version_mismatch_names_the_envelopes_the_sandbox_reads(
    sandbox: SandboxServer, version: str
) -> None:
    answer = post(sandbox, b'<e:Envelope xmlns:e="urn:soap-2"><e:Body/></e:Envelope>', MEDIA_TYPE[version])
    root = parse_xml(answer.content)
    upgrade = root.find(f"{{{ENVELOPE[version]}}}Header/{{{ENVELOPE['SOAP 1.2']}}}Upgrade")
    assert upgrade is not None and len(upgrade) == 2
