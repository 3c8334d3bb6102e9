"""The REST record endpoints: `/finance/agreements`, `/company/companies`, `/finance/invoices`,
`/sales/opportunities` and `/procurement/purchaseorders`, each a list, `/count` and `/{id}`.

Every document is built from the SOAP side's Find record of the same site
(`sandbox.soap.records`), so a SOAP and a REST download agree: the same ids, the same number of
records per type, the same money (exact Decimal, written as JSON numbers), and `_info.lastUpdated`
is the SOAP record's `LastUpdated` (`LastUpdate` for agreements) in UTC, e.g.
"2026-07-01T09:01:00Z". A payment through REST or the Accounting Interface moves an invoice's
LastUpdated, so both sides see it move. Field names follow the OpenAPI subset's Agreement, Company,
Invoice, Opportunity and PurchaseOrder; references are `{id, name|identifier, _info}` as each
reference schema has them; nulls are left out.

The REST field that carries the SOAP record's amount (`AMOUNTS`, SOAP field -> REST field):
* agreements: `BillAmount` <-> `billAmount`;
* invoices: `InvoiceAmount` <-> `total` (and `PaidAmount` <-> `payments`; `balance` is
  `total - payments`);
* purchase_orders: `Total` <-> `total`;
* companies carry no amount;
* opportunities: the 2025.1 Opportunity has no field for `EstimatedTotal` (ConnectWise keeps the
  revenue in the opportunity's forecast, which the subset and the sandbox do not serve), so only
  their counts compare.
"""

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from sandbox import soap
from sandbox.data import Company, Invoice, Site
from sandbox.rest_documents import LOCATION_IDS
from sandbox.rest_paging import ApiError, Reply, count, page, single

AMOUNTS: dict[str, tuple[str, str]] = {
    "agreements": ("BillAmount", "billAmount"),
    "invoices": ("InvoiceAmount", "total"),
    "purchase_orders": ("Total", "total"),
}

# REST path -> (SOAP entity, the schema's name for a "not found")
PATHS: dict[str, tuple[str, str]] = {
    "/finance/agreements": ("agreements", "Agreement"),
    "/company/companies": ("companies", "Company"),
    "/finance/invoices": ("invoices", "Invoice"),
    "/sales/opportunities": ("opportunities", "Opportunity"),
    "/procurement/purchaseorders": ("purchase_orders", "PurchaseOrder"),
}


def route(
    records: "Records", route: str, query: Mapping[str, str], headers: Mapping[str, str], url: str
) -> Reply | None:
    """A GET of a record path (lower case, after the API prefix), or None if it is not one."""
    path, _, tail = route.rpartition("/") if re.search(r"/(\d+|count)$", route) else (route, "", "")
    if path not in PATHS:
        return None
    entity, schema = PATHS[path]
    rows = records.documents(entity, url[: url.lower().index(path)])
    if not tail:
        return page(rows, query, headers, url)
    if tail == "count":
        return count(rows, query)
    found = [r for r in rows if r["id"] == int(tail)]
    if not found:
        raise ApiError(404, "NotFound", f"{schema} {int(tail)} not found")
    return single(found[0], query)


class Records:
    """The REST documents of one site. Each is built once per version of its SOAP record (a
    payment makes a new version of an invoice), so a lookup on a 10,000-invoice site stays cheap;
    the documents are shared, so nothing downstream may change them."""

    def __init__(self, site: Site) -> None:
        self.site = site
        self._built: dict[tuple[Any, ...], dict[str, Any]] = {}

    def documents(self, entity: str, base: str) -> list[dict[str, Any]]:
        """One record type's documents by id, nulls kept (a list leaves them out)."""
        context: _Context | None = None
        result = []
        for record in sorted(soap.records(self.site, entity), key=lambda r: int(r["Id"])):
            key = (entity, base, *record.values())
            document = self._built.get(key)
            if document is None:
                context = context or _Context(self.site, base)
                document = self._built[key] = _BUILDERS[entity](context, record)
            result.append(document)
        return result


def last_updated(moment: datetime) -> str:
    """`_info.lastUpdated` text, read as the SOAP side writes date-times (a naive one is the
    site's local time)."""
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


@dataclass
class _Context:
    site: Site
    base: str  # http://host/v4_6_release/apis/3.0, for the references' hrefs

    def __post_init__(self) -> None:
        self.companies = {c.id: c for c in [*self.site.customers, *self.site.vendors]}
        self.invoices = {i.id: i for i in self.site.invoices}
        self.agreements = {a["CompanyId"]: a for a in soap.records(self.site, "agreements")}

    def ref(self, kind: str, path: str, id_: int, name: str, **extra: Any) -> dict[str, Any]:
        return {"id": id_, "name": name} | extra | {"_info": {f"{kind}_href": f"{self.base}{path}/{id_}"}}

    def company(self, company_id: int) -> dict[str, Any]:
        company = self.companies[company_id]
        return self.ref("company", "/company/companies", company.id, company.name, identifier=company.account)

    def contact(self, company: Company) -> dict[str, Any]:
        return self.ref("contact", "/company/contacts", company.id * 10, company.contact)

    def currency(self, company: Company) -> dict[str, Any]:
        return {
            "id": 1 if company.currency == "USD" else 2,
            "currencyCode": company.currency,
            "name": company.currency,
        }


def _info(moment: datetime, by: str = "sandbox") -> dict[str, str]:
    return {"lastUpdated": last_updated(moment), "updatedBy": by}


def _when(moment: datetime | None) -> str | None:
    return None if moment is None else last_updated(moment)


def _agreement(site: _Context, record: Mapping[str, Any]) -> dict[str, Any]:
    company = site.companies[record["CompanyId"]]
    return {
        "id": record["Id"],
        "name": record["AgreementName"],
        "type": site.ref("type", "/finance/agreements/types", 1, "Managed Services"),
        "company": site.company(company.id),
        "contact": site.contact(company),
        "startDate": _when(record["StartDate"]),
        "noEndingDateFlag": True,
        "cancelledFlag": record["CancelledFlag"],
        "billingCycle": site.ref("billingCycle", "/finance/billingCycles", 1, "Monthly"),
        "billAmount": record["BillAmount"],
        "taxable": company.taxable,
        "currency": site.currency(company),
        "agreementStatus": "Cancelled" if record["CancelledFlag"] else "Active",
        "_info": _info(record["LastUpdate"], record["UpdatedBy"]),
    }


def _company(site: _Context, record: Mapping[str, Any]) -> dict[str, Any]:
    company = site.companies[record["Id"]]
    kind_id = 2 if record["Type"] == "Vendor" else 1
    return {
        "id": record["Id"],
        "identifier": record["CompanyIdentifier"],
        "name": record["CompanyName"],
        "status": site.ref("status", "/company/companies/statuses", 1, record["Status"]),
        "addressLine1": f"{company.id} Main Street",
        "city": record["City"],
        "state": record["State"] or None,
        "zip": record["Zip"],
        "country": site.ref(
            "country", "/company/countries", 1 if company.country == "United States" else 2, record["Country"]
        ),
        "phoneNumber": f"555{company.id:07d}",
        "accountNumber": company.account,
        "types": [site.ref("type", "/company/companies/types", kind_id, record["Type"])],
        "isVendorFlag": record["Type"] == "Vendor",
        "deletedFlag": False,
        "currency": site.currency(company),
        "_info": _info(record["LastUpdated"], record["UpdatedBy"]),
    }


def _invoice(site: _Context, record: Mapping[str, Any]) -> dict[str, Any]:
    invoice: Invoice = site.invoices[record["Id"]]
    company = site.companies[record["CompanyId"]]
    total, paid = record["InvoiceAmount"], record["PaidAmount"]
    location_id = LOCATION_IDS[record["Location"]]
    return {
        "id": record["Id"],
        "invoiceNumber": record["InvoiceNumber"],
        "type": "Standard",
        "status": site.ref(
            "status",
            "/finance/billingStatuses",
            2 if record["Closed"] else 1,
            "Closed" if record["Closed"] else "Open",
            isClosed=record["Closed"],
        ),
        "company": site.company(company.id),
        "billToCompany": site.company(company.id),
        "applyToType": "All",
        "agreement": _agreement_ref(site, company),  # null for a company without one
        "date": _when(record["InvoiceDate"]),
        "dueDate": _when(record["InvoiceDate"] + timedelta(days=30)),
        "locationId": location_id,
        "location": site.ref("location", "/system/locations", location_id, record["Location"]),
        "taxableFlag": company.taxable,
        "currency": site.currency(company),
        "subtotal": total - invoice.sales_tax,
        "salesTax": invoice.sales_tax,
        "total": total,
        "payments": paid,
        "credits": Decimal("0.00"),
        "balance": total - paid,
        "_info": _info(record["LastUpdated"], record["UpdatedBy"]),
    }


def _agreement_ref(site: _Context, company: Company) -> dict[str, Any] | None:
    agreement = site.agreements.get(company.id)
    if agreement is None:
        return None
    return site.ref(
        "agreement",
        "/finance/agreements",
        agreement["Id"],
        agreement["AgreementName"],
        type="Managed Services",
    )


def _opportunity(site: _Context, record: Mapping[str, Any]) -> dict[str, Any]:
    company = site.companies[record["CompanyId"]]
    status_id = 2 if record["Won"] else 1
    return {
        "id": record["Id"],
        "name": record["OpportunityName"],
        "expectedCloseDate": _when(record["ExpectedCloseDate"]),
        "status": site.ref("status", "/sales/opportunities/statuses", status_id, record["Status"]),
        "primarySalesRep": site.ref("member", "/system/members", 1, "Sandbox Sales", identifier="sales"),
        "company": site.company(company.id),
        "contact": site.contact(company),
        "currency": site.currency(company),
        "_info": _info(record["LastUpdated"]),
    }


def _purchase_order(site: _Context, record: Mapping[str, Any]) -> dict[str, Any]:
    vendor = site.companies[record["VendorCompanyId"]]
    closed = record["IsClosed"]
    return {
        "id": record["Id"],
        "poNumber": record["VendorInvoiceNumber"],
        "status": site.ref(
            "status", "/procurement/purchaseorderstatuses", 2 if closed else 1, "Closed" if closed else "Open"
        ),
        "terms": site.ref("terms", "/finance/billingTerms", 1, "Net 30"),
        "vendorCompany": site.company(vendor.id),
        "vendorContact": site.contact(vendor),
        "customerCompany": site.company(record["ShipToCompanyId"]),
        "poDate": _when(record["PurchaseDate"]),
        "closedFlag": closed,
        "vendorInvoiceNumber": record["VendorInvoiceNumber"],
        "total": record["Total"],
        "currency": site.currency(vendor),
        "_info": _info(record["LastUpdated"], record["UpdateBy"]),
    }


_BUILDERS: dict[str, Callable[[_Context, Mapping[str, Any]], dict[str, Any]]] = {
    "agreements": _agreement,
    "companies": _company,
    "invoices": _invoice,
    "opportunities": _opportunity,
    "purchase_orders": _purchase_order,
}
