"""The sandbox's SOAP side: the Reporting API and the Find operations, on the seeded site.

Serves the bundled WSDLs (sandbox/soap_wsdl.py) and answers their operations over SOAP 1.1 and
SOAP 1.2 (sandbox/soap_envelope.py) from the same companies, invoices and purchase orders as the
Accounting Interface side of the ConnectWise company the credentials' CompanyId names (matched
without case); a payment there moves the invoice's LastUpdated. Response elements follow the
bundled WSDL's sequences, read from the WSDL itself. Bad credentials, unknown reports and
malformed conditions get SOAP faults; an operation a WSDL declares that the sandbox does not
answer gets a fault naming it.
"""

import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from functools import cache
from typing import Any
from xml.etree import ElementTree as ET

from connectwise.safexml import parse_xml
from connectwise.soap.client import ENTITIES, WSDL_DIR
from sandbox.company_ids import same_company
from sandbox.conditions import ConditionsError, parse
from sandbox.data import Site
from sandbox.soap_envelope import CW, RECEIVER, SOAP11, Fault, Reply, Request, fault_reply, read, reply
from sandbox.soap_wsdl import api_at, not_served, operations, wsdl

XSD = "{http://www.w3.org/2001/XMLSchema}"
XSI_NIL = "{http://www.w3.org/2001/XMLSchema-instance}nil"
NOT_FOUND = "text/plain; charset=utf-8"


@dataclass(frozen=True)
class IntegratorCredentials:
    company: str = "sandbox"
    login_id: str = "integrator"
    password: str = "sandbox-integrator"  # noqa: S105 - the loopback sandbox's well-known login


@dataclass
class SoapSite:
    """One company as the SOAP side serves it: its site, its integrator login and the lock its
    state is changed under (shared with its other interfaces)."""

    site: Site
    credentials: IntegratorCredentials
    lock: threading.Lock
    calls: int = 0  # requests answered with its data (the login accepted)


def wsdl_for(path: str, host: str) -> Reply:
    """`GET <path>?wsdl`: the API's WSDL, its ports at http://<host><path>; 404 for an API not served."""
    api = api_at(path)
    if api is None:
        return Reply(404, not_served(path).encode(), NOT_FOUND)
    return Reply(200, wsdl(api, f"http://{host}{path}"), "text/xml; charset=utf-8")


def handle(
    find: Callable[[str], SoapSite | None],
    path: str,
    content_type: str,
    soap_action: str | None,
    body: bytes,
) -> Reply:
    """A SOAP 1.1 or 1.2 request to `path` in, the reply (or fault) in the request's version out,
    answered from the company its credentials name (`find` knows the companies by id)."""
    api = api_at(path)
    if api is None:
        return Reply(404, not_served(path).encode(), NOT_FOUND)
    try:
        request = read(content_type, soap_action, body)
    except Fault as fault:
        return fault_reply(fault.version or SOAP11, fault)
    try:
        if request.operation not in operations(api):
            raise Fault(f"{request.operation} is not an operation of the {api.name} {api.version}")
        company = _authenticate(request.fields.get("credentials"), find)
        with company.lock:
            company.calls += 1
            answer = _answer(company.site, request)
        return reply(request.version, answer)
    except Fault as fault:
        return fault_reply(request.version, fault)
    except Exception as exc:  # a sandbox bug still reaches the caller as a fault it can read
        failure = Fault(f"the sandbox failed on {request.operation}: {type(exc).__name__}", RECEIVER)
        return fault_reply(request.version, failure)


def _answer(site: Site, request: Request) -> ET.Element:
    operation = _OPERATIONS.get(request.operation)
    if operation is None:
        raise Fault(f"{request.operation} is not supported by the sandbox", RECEIVER)
    response = ET.Element(f"{{{CW}}}{request.operation}Response")
    response.append(operation(site, request.fields))
    return response


def _authenticate(element: ET.Element | None, find: Callable[[str], SoapSite | None]) -> SoapSite:
    children = [] if element is None else list(element)
    given = {child.tag.removeprefix(f"{{{CW}}}"): child.text or "" for child in children}
    company = find(given.get("CompanyId", ""))
    if company is None or not same_company(given.get("CompanyId", ""), company.credentials.company):
        raise Fault("Cannot find company in connectwise")
    expected = company.credentials
    if (
        given.get("IntegratorLoginId") != expected.login_id
        or given.get("IntegratorPassword") != expected.password
    ):
        raise Fault("Username or password is incorrect")
    return company


# Records, as the Find operations and reports see them


def records(site: Site, entity: str) -> list[dict[str, Any]]:
    return _RECORDS[entity](site)


def _moment(day: date, hour: int = 9) -> datetime:
    return datetime.combine(day, time(hour), tzinfo=UTC)


def _companies(site: Site) -> list[dict[str, Any]]:
    return [
        {
            "Id": c.id,
            "CompanyName": c.name,
            "CompanyIdentifier": c.account,
            "City": c.city,
            "State": c.state,
            "Zip": c.postal_code,
            "Country": c.country,
            "Type": "Vendor" if c.vendor else "Customer",
            "Status": "Active",
            "UpdatedBy": "sandbox",
            "LastUpdated": _moment(date(2026, 7, 1)) + timedelta(minutes=c.id),
        }
        for c in [*site.customers, *site.vendors]
    ]


def _invoices(site: Site) -> list[dict[str, Any]]:
    return [
        {
            "Id": i.id,
            "InvoiceNumber": i.number,
            "CompanyName": i.company.name,
            "CompanyId": i.company.id,
            "Location": i.location,
            "InvoiceDate": _moment(i.date),
            "InvoiceAmount": i.total,
            "PaidAmount": i.paid_amount,
            "PaidDate": i.paid_date,
            "Closed": i.paid_amount >= i.total,
            "UpdatedBy": "sandbox",
            "LastUpdated": i.updated_at or _moment(i.date, 17),
        }
        for i in site.invoices
    ]


def _purchase_orders(site: Site) -> list[dict[str, Any]]:
    return [
        {
            "Id": p.id,
            "VendorCompanyId": p.vendor.id,
            "VendorCompanyName": p.vendor.name,
            "VendorInvoiceNumber": p.number,
            "ShipToCompanyId": p.ship_to.id,
            "ShipToCompanyName": p.ship_to.name,
            "PurchaseDate": _moment(p.date),
            "Total": p.total,
            "IsClosed": True,
            "UpdateBy": "sandbox",
            "LastUpdated": p.received_at.replace(tzinfo=UTC),  # the sandbox site keeps UTC
        }
        for p in site.purchases
    ]


def _agreements(site: Site) -> list[dict[str, Any]]:
    return [
        {
            "Id": 500 + n,
            "AgreementName": f"Managed services - {c.name}",
            "CompanyId": c.id,
            "StartDate": _moment(date(2026, 1, 1)),
            "BillAmount": Decimal(150 + 25 * (c.id % 7)).quantize(Decimal("0.01")),
            "CancelledFlag": False,
            "UpdatedBy": "sandbox",
            "LastUpdate": _moment(date(2026, 6, 1)) + timedelta(hours=n),
        }
        for n, c in enumerate(site.customers[::2])
    ]


def _opportunities(site: Site) -> list[dict[str, Any]]:
    return [
        {
            "Id": 700 + n,
            "OpportunityName": f"Renewal {c.name}",
            "CompanyName": c.name,
            "CompanyId": c.id,
            "Status": "Open" if n % 3 else "Won",
            "Closed": n % 3 == 0,
            "Won": n % 3 == 0,
            "EstimatedTotal": Decimal(1000 + 250 * n).quantize(Decimal("0.01")),
            "ExpectedCloseDate": _moment(date(2026, 12, 1)) + timedelta(days=n),
            "LastUpdated": _moment(date(2026, 6, 15)) + timedelta(hours=n),
        }
        for n, c in enumerate(site.customers[1::3])
    ]


_RECORDS: dict[str, Callable[[Site], list[dict[str, Any]]]] = {
    "agreements": _agreements,
    "companies": _companies,
    "invoices": _invoices,
    "opportunities": _opportunities,
    "purchase_orders": _purchase_orders,
}

# Reports: name -> (entity, {report field: (record field, FindConditionsType)})
REPORTS: dict[str, tuple[str, dict[str, tuple[str, str]]]] = {
    "Invoices": (
        "invoices",
        {
            "Invoice_Number": ("InvoiceNumber", "Text"),
            "Company_Name": ("CompanyName", "Text"),
            "Invoice_Date": ("InvoiceDate", "DateTime"),
            "Invoice_Amount": ("InvoiceAmount", "Numeric"),
            "Paid_Amount": ("PaidAmount", "Numeric"),
            "Closed_Flag": ("Closed", "Boolean"),
        },
    ),
    "Companies": (
        "companies",
        {
            "Company_RecID": ("Id", "Numeric"),
            "Company_Name": ("CompanyName", "Text"),
            "Company_ID": ("CompanyIdentifier", "Text"),
            "City": ("City", "Text"),
            "Company_Type": ("Type", "Text"),
        },
    ),
    "Purchase Orders": (
        "purchase_orders",
        {
            "PO_Number": ("VendorInvoiceNumber", "Text"),
            "Vendor_Name": ("VendorCompanyName", "Text"),
            "PO_Date": ("PurchaseDate", "DateTime"),
            "PO_Total": ("Total", "Numeric"),
        },
    ),
}


# Operations


def _get_reports(site: Site, fields: Mapping[str, ET.Element]) -> ET.Element:
    include = (
        (fields["includeFields"].text or "").strip() in ("true", "1") if "includeFields" in fields else False
    )
    result = ET.Element(f"{{{CW}}}GetReportsResult")
    for number, (name, (_, columns)) in enumerate(REPORTS.items(), start=1):
        report = ET.SubElement(
            result, f"{{{CW}}}Report", Name=name, Id=str(number), Url=f"/reports/{number}", IsCustom="false"
        )
        if include:
            for column, (_, kind) in columns.items():
                ET.SubElement(report, f"{{{CW}}}Field", Name=column, Type=kind, IsNullable="true")
    return result


def _get_portal_reports(site: Site, fields: Mapping[str, ET.Element]) -> ET.Element:
    """The sandbox publishes no reports to the customer portal: an empty list."""
    return ET.Element(f"{{{CW}}}GetPortalReportsResult")


def _get_report_fields(site: Site, fields: Mapping[str, ET.Element]) -> ET.Element:
    _, columns = _report(fields)
    result = ET.Element(f"{{{CW}}}GetReportFieldsResult")
    for column, (_, kind) in columns.items():
        ET.SubElement(result, f"{{{CW}}}FieldInfo", Name=column, Type=kind, IsNullable="true")
    return result


def _report_rows(site: Site, fields: Mapping[str, ET.Element]) -> list[dict[str, Any]]:
    entity, columns = _report(fields)
    rows = [
        {column: record.get(source) for column, (source, _) in columns.items()}
        for record in records(site, entity)
    ]
    return _select(rows, fields)


def _run_report_query(site: Site, fields: Mapping[str, ET.Element]) -> ET.Element:
    _, columns = _report(fields)
    result = ET.Element(f"{{{CW}}}RunReportQueryResult")
    skip = _int(fields, "skip")
    for number, row in enumerate(_page(_report_rows(site, fields), fields), start=skip + 1):
        element = ET.SubElement(result, f"{{{CW}}}ResultRow", Number=str(number))
        for column, (_, kind) in columns.items():
            value = ET.SubElement(element, f"{{{CW}}}Value", Name=column, Type=kind, IsNullable="true")
            value.text = _text(row[column])
    return result


def _run_report_count(site: Site, fields: Mapping[str, ET.Element]) -> ET.Element:
    result = ET.Element(f"{{{CW}}}RunReportCountResult")
    result.text = str(len(_report_rows(site, fields)))
    return result


def _report(fields: Mapping[str, ET.Element]) -> tuple[str, dict[str, tuple[str, str]]]:
    name = fields["reportName"].text if "reportName" in fields else None
    if name not in REPORTS:
        raise Fault(f"Report '{name}' was not found")
    return REPORTS[name]


def _find(entity: str) -> Callable[[Site, Mapping[str, ET.Element]], ET.Element]:
    spec = ENTITIES[entity]

    def find(site: Site, fields: Mapping[str, ET.Element]) -> ET.Element:
        item, layout = _result_layout(spec.api.wsdl)
        wanted = None
        if "returnFields" in fields:
            wanted = {(s.text or "").lower() for s in fields["returnFields"]}
        result = ET.Element(f"{{{CW}}}{spec.operation}Result")
        for record in _page(_select(records(site, entity), fields), fields):
            element = ET.SubElement(result, f"{{{CW}}}{item}")
            for name, kind in layout:
                value = record.get(name) if wanted is None or name.lower() in wanted else None
                if value is None:
                    if kind != "string":  # value types are present and nil, as the WSDL declares them
                        ET.SubElement(element, f"{{{CW}}}{name}", {XSI_NIL: "true"})
                    continue
                ET.SubElement(element, f"{{{CW}}}{name}").text = _text(value)
        return result

    return find


@cache
def _result_layout(wsdl: str) -> tuple[str, list[tuple[str, str]]]:
    """The Find result item's name and its (field, XML type) sequence, from the bundled WSDL."""
    root = parse_xml((WSDL_DIR / wsdl).read_bytes())
    for complex_type in root.iter(f"{XSD}complexType"):
        name = complex_type.get("name", "")
        if name.endswith("FindResult") and not name.startswith("ArrayOf"):
            layout = [
                (e.get("name", ""), e.get("type", "").removeprefix("s:"))
                for e in complex_type.iter(f"{XSD}element")
            ]
            return name, layout
    raise LookupError(f"no Find result type in {wsdl}")


def _select(rows: list[dict[str, Any]], fields: Mapping[str, ET.Element]) -> list[dict[str, Any]]:
    text = fields["conditions"].text or "" if "conditions" in fields else ""
    try:
        matches = parse(text)
        selected = [row for row in rows if matches(row)]
    except ConditionsError as exc:
        raise Fault(f"Invalid conditions: {exc}") from None
    order = (fields["orderBy"].text or "").split() if "orderBy" in fields else []
    if order:
        key = next((name for name in rows[0] if name.lower() == order[0].lower()), None) if rows else order[0]
        if key is None:
            raise Fault(f"Invalid orderBy: unknown field {order[0]!r}")
        descending = len(order) > 1 and order[1].upper() == "DESC"
        selected.sort(
            key=lambda row: (row[key] is None, row[key] if row[key] is not None else 0), reverse=descending
        )
    return selected


def _page(rows: list[dict[str, Any]], fields: Mapping[str, ET.Element]) -> list[dict[str, Any]]:
    skip, limit = _int(fields, "skip"), _int(fields, "limit", default=100)
    return rows[skip : skip + limit] if limit > 0 else []


def _int(fields: Mapping[str, ET.Element], name: str, default: int = 0) -> int:
    element = fields.get(name)
    if element is None or element.get(XSI_NIL) == "true" or not (element.text or "").strip():
        return default
    try:
        return int(element.text or "")
    except ValueError:
        raise Fault(f"{name} is not a number") from None


def _text(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, datetime):
        return value.astimezone(UTC).isoformat().replace("+00:00", "Z")
    return str(value)


_OPERATIONS: dict[str, Callable[[Site, Mapping[str, ET.Element]], ET.Element]] = {
    "GetReports": _get_reports,
    "GetPortalReports": _get_portal_reports,
    "GetReportFields": _get_report_fields,
    "RunReportQuery": _run_report_query,
    "RunReportCount": _run_report_count,
    **{spec.operation: _find(entity) for entity, spec in ENTITIES.items()},
}
