"""SOAP 1.1 and 1.2 as the sandbox speaks them: reading a request's envelope, writing replies and faults.

Each ConnectWise WSDL declares a SOAP 1.1 binding (`text/xml`, the `SOAPAction` header) and a
SOAP 1.2 binding (`application/soap+xml` with an `action` parameter). A reply speaks the version
of the request's envelope, since that is what the caller's parser reads; a request that is not a
readable envelope is answered in the version its content type names. Faults say whose fault it is
(SOAP 1.2's Sender/Receiver, SOAP 1.1's Client/Server) and carry the HTTP status each version
prescribes. Request XML is parsed with DTDs and entities refused, never expanded.
"""

from dataclasses import dataclass
from typing import NamedTuple
from xml.etree import ElementTree as ET
from xml.sax.saxutils import escape

from connectwise.errors import DocumentError
from connectwise.safexml import parse_xml

CW = "http://connectwise.com"

# A fault's cause, in SOAP 1.2's words (a SOAP 1.1 reply uses the version's own code)
SENDER = "Sender"  # the request is wrong: resend only after changing it
RECEIVER = "Receiver"  # the request is fine; the server could not do it
VERSION_MISMATCH = "VersionMismatch"
MUST_UNDERSTAND = "MustUnderstand"
UNSUPPORTED_MEDIA_TYPE = 415


@dataclass(frozen=True)
class SoapVersion:
    name: str
    envelope: str  # the envelope's namespace
    media_type: str
    codes: dict[str, str]  # SOAP 1.2 cause -> this version's fault code
    statuses: dict[str, int]  # SOAP 1.2 cause -> HTTP status of the fault

    @property
    def content_type(self) -> str:
        return f"{self.media_type}; charset=utf-8"


SOAP11 = SoapVersion(
    "SOAP 1.1",
    "http://schemas.xmlsoap.org/soap/envelope/",
    "text/xml",
    {
        SENDER: "Client",
        RECEIVER: "Server",
        VERSION_MISMATCH: "VersionMismatch",
        MUST_UNDERSTAND: "MustUnderstand",
    },
    {},  # SOAP 1.1 over HTTP: every fault is a 500
)
SOAP12 = SoapVersion(
    "SOAP 1.2",
    "http://www.w3.org/2003/05/soap-envelope",
    "application/soap+xml",
    {code: code for code in (SENDER, RECEIVER, VERSION_MISMATCH, MUST_UNDERSTAND)},
    {SENDER: 400},  # SOAP 1.2 part 2, 7.5.2.2: Sender 400, the others 500
)
VERSIONS = (SOAP11, SOAP12)


class Fault(Exception):
    """A SOAP fault; `version` is set when the request's own version is not known yet."""

    def __init__(
        self,
        message: str,
        cause: str = SENDER,
        *,
        version: SoapVersion | None = None,
        status: int | None = None,
    ) -> None:
        super().__init__(message)
        self.message, self.cause, self.version, self.status = message, cause, version, status


class Reply(NamedTuple):
    status: int
    body: bytes
    content_type: str


@dataclass(frozen=True)
class Request:
    version: SoapVersion
    operation: str  # the body element's local name, in ConnectWise's namespace
    fields: dict[str, ET.Element]  # the operation element's children by local name


def read(content_type: str, soap_action: str | None, body: bytes) -> Request:
    """The request's version, operation and fields, or a Fault that knows which version to answer in."""
    media_type, action = _media_type_and_action(content_type, soap_action)
    # Until the envelope is read, the content type is all that says which version the caller speaks.
    named = next((v for v in VERSIONS if v.media_type == media_type), SOAP11)
    try:
        envelope = parse_xml(body, "SOAP request")
    except DocumentError as exc:
        raise Fault(f"Server was unable to read request. {exc}", version=named) from None
    namespace, name = _split(envelope.tag)
    if name != "Envelope":
        raise Fault(
            f"Server was unable to read request: its root is {name}, not a SOAP Envelope", version=named
        )
    version = next((v for v in VERSIONS if v.envelope == namespace), None)
    if version is None:
        message = f"the envelope namespace {namespace!r} is neither SOAP 1.1 nor SOAP 1.2"
        raise Fault(message, VERSION_MISMATCH, version=named)
    if media_type != version.media_type:
        given = f"not {media_type}" if media_type else "and this request has no content type"
        message = f"a {version.name} envelope is sent as {version.media_type}, {given}"
        raise Fault(message, version=version, status=UNSUPPORTED_MEDIA_TYPE)
    try:
        return _request(version, envelope, action)
    except Fault as fault:
        fault.version = version
        raise


def reply(version: SoapVersion, content: ET.Element) -> Reply:
    return Reply(200, _envelope(version, ET.tostring(content, encoding="unicode")), version.content_type)


def fault_reply(version: SoapVersion, fault: Fault) -> Reply:
    code, text = version.codes[fault.cause], escape(fault.message)
    if version is SOAP11:
        detail = "<detail/>" if fault.cause in (SENDER, RECEIVER) else ""  # 1.1: detail only for body faults
        content = f"<soap:Fault><faultcode>soap:{code}</faultcode><faultstring>{text}</faultstring>{detail}</soap:Fault>"
    else:
        content = (
            f"<soap:Fault><soap:Code><soap:Value>soap:{code}</soap:Value></soap:Code>"
            f'<soap:Reason><soap:Text xml:lang="en">{text}</soap:Text></soap:Reason></soap:Fault>'
        )
    header = _UPGRADE if fault.cause == VERSION_MISMATCH else ""
    status = fault.status or version.statuses.get(fault.cause, 500)
    return Reply(status, _envelope(version, content, header), version.content_type)


def _request(version: SoapVersion, envelope: ET.Element, action: str | None) -> Request:
    header = envelope.find(f"{{{version.envelope}}}Header")
    for block in [] if header is None else list(header):
        if block.get(f"{{{version.envelope}}}mustUnderstand") in ("1", "true"):
            raise Fault(f"SOAP header {block.tag} was not understood", MUST_UNDERSTAND)
    body = envelope.find(f"{{{version.envelope}}}Body")
    operation = None if body is None else next(iter(body), None)
    if operation is None:
        raise Fault("Server was unable to read request: the SOAP Body holds no operation")
    namespace, name = _split(operation.tag)
    if namespace != CW:
        raise Fault(f"Server was unable to read request: {name} is not in the {CW} namespace")
    if action and action != f"{CW}/{name}":
        raise Fault(
            f"Server did not recognize the value of the SOAP action: {action} (the body holds {name})"
        )
    # As the schema is elementFormDefault="qualified", a child outside ConnectWise's namespace is not one.
    fields = {
        field: child for child in operation for namespace, field in [_split(child.tag)] if namespace == CW
    }
    return Request(version, name, fields)


def _media_type_and_action(content_type: str, soap_action: str | None) -> tuple[str, str | None]:
    """`text/xml` with the SOAPAction header (1.1), or `application/soap+xml; action="..."` (1.2)."""
    media_type, *parameters = (part.strip() for part in content_type.split(";"))
    action = soap_action
    for parameter in parameters:
        key, _, value = parameter.partition("=")
        if key.strip().lower() == "action":
            action = value
    return media_type.lower(), None if action is None else action.strip().strip('"')


def _split(tag: str) -> tuple[str, str]:
    """`{namespace}name` as (namespace, name)."""
    namespace, _, name = tag[1:].rpartition("}") if tag.startswith("{") else ("", "", tag)
    return namespace, name


def _envelope(version: SoapVersion, content: str, header: str = "") -> bytes:
    return (
        f'<?xml version="1.0" encoding="utf-8"?><soap:Envelope xmlns:soap="{version.envelope}">'
        f"{header}<soap:Body>{content}</soap:Body></soap:Envelope>"
    ).encode()


# SOAP 1.2 part 1, 5.4.7: a VersionMismatch fault names the envelopes this node reads
_UPGRADE = (
    f'<soap:Header><upg:Upgrade xmlns:upg="{SOAP12.envelope}">'
    f'<upg:SupportedEnvelope xmlns:v12="{SOAP12.envelope}" qname="v12:Envelope"/>'
    f'<upg:SupportedEnvelope xmlns:v11="{SOAP11.envelope}" qname="v11:Envelope"/>'
    "</upg:Upgrade></soap:Header>"
)
