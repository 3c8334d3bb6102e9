"""The SOAP APIs the sandbox serves: each bundled WSDL at the address the connector calls it on.

`GET .../apis/<version>/<Api>.asmx?wsdl` returns the bundled WSDL with its `soap:address` and
`soap12:address` pointing at the sandbox (the host and path asked for), so a client built from that
URL calls the sandbox, on either binding. The operations an API has are the ones its WSDL declares.
CompanyAPI_1.5.wsdl is bundled as published but nothing in the connector calls it (companies come
from the 2.0 Company API), so the sandbox does not serve it.
"""

import re
from functools import cache
from xml.sax.saxutils import quoteattr

from connectwise.safexml import parse_xml
from connectwise.soap.client import ENTITIES, REPORTING, WSDL_DIR, Api

WSDL_NS = "{http://schemas.xmlsoap.org/wsdl/}"
APIS = [REPORTING, *(entity.api for entity in ENTITIES.values())]
_BY_ADDRESS = {(api.version, api.name.lower()): api for api in APIS}
_ENDPOINT = re.compile(r"/apis/(?P<version>[^/]+)/(?P<name>[^/]+)\.asmx/?", re.IGNORECASE)
_ADDRESS = re.compile(r'(<soap(?:12)?:address location=)"[^"]*"')


def api_at(path: str) -> Api | None:
    """The API served at `/.../apis/<version>/<Api>.asmx` (names are case-insensitive, as on IIS)."""
    match = _ENDPOINT.search(path)
    if match is None or match.end() != len(path):
        return None
    return _BY_ADDRESS.get((match["version"], match["name"].lower()))


def not_served(path: str) -> str:
    served = ", ".join(f"{api.version}/{api.name}.asmx" for api in APIS)
    return f"no SOAP API at {path}; the sandbox serves {served}"


def wsdl(api: Api, address: str) -> bytes:
    """The bundled WSDL with every port's address set to `address` (the sandbox's own URL)."""
    text = (WSDL_DIR / api.wsdl).read_text(encoding="utf-8")
    return _ADDRESS.sub(lambda match: match[1] + quoteattr(address), text).encode()


@cache
def operations(api: Api) -> tuple[str, ...]:
    """The operations the API's WSDL declares (its port type's, which both bindings carry)."""
    root = parse_xml((WSDL_DIR / api.wsdl).read_bytes(), api.wsdl)
    return tuple(
        operation.get("name", "")
        for port_type in root.iter(f"{WSDL_NS}portType")
        for operation in port_type.iter(f"{WSDL_NS}operation")
    )
