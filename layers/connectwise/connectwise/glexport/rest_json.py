"""The REST API's GLExport (JSON) mapped onto the Accounting Interface's models (connectwise.glexport.models).

Downstream consumers see one shape whichever backend served a batch: the same pydantic models,
the same records.jsonl. The document is read as it arrives (connectwise.glexport.json_stream),
one record at a time. `MAPPING` says which REST field feeds which attribute; `a.b` reads the
field `b` of the reference object `a`. Attributes without a REST counterpart (street addresses,
the legacy export options, `NonReimbursableExpenseRecIDs`) stay at their defaults; the REST
document itself is kept byte for byte next to the records. `docs/rest-glexport-mapping.md` is
written from this table (`python -m connectwise.glexport.rest_json`; a test keeps it current).

GL entry ids: a transaction's `glEntryIds` (comma-separated), and each invoice and purchase
line's `id`; an expense bill's `id` and each of its lines' `id` list (`int[]` in the spec).
"""

import sys
from collections.abc import Iterable
from decimal import Decimal
from functools import cache
from typing import Any, get_origin

from pydantic import ValidationError

from connectwise.errors import DocumentError, describe_validation
from connectwise.glexport import json_stream
from connectwise.glexport.batch import JSON, GLBatch, GLSink, Reading
from connectwise.glexport.models import (
    Customer,
    Detail,
    ExpenseDetail,
    ExpenseTransaction,
    GLExport,
    PurchaseDetail,
    PurchaseTransaction,
    Transaction,
    Vendor,
)
from connectwise.glexport.rows import Row, validated_row
from connectwise.glexport.values import CwElement
from connectwise.jsonmoney import cents


def _same(names: str) -> dict[str, str]:
    """Attributes whose REST field is the same name in lowerCamelCase."""
    return {name: name[0].lower() + name[1:] for name in names.split()}


_DETAIL_COMMON = _same(
    "DocumentDate AccountNumber Cost CostAccountNumber InventoryAccountNumber SalesCode ItemPrice ItemCost "
    "Memo Description ItemTypeXref InventoryXref CogsXref SalesDescription ItemDescription PriceLevelXref "
    "LocationXref UomScheduleXref SerialNumbers TaxCodeXref Total Quantity TaxRate TaxAgencyXref TaxNote"
) | {
    "Class": "glClass",
    "ItemID": "item.identifier",
    "GLEntryRecID": "id",
    "GLTypeID": "glTypeId",
    "GLItemID": "glItemId",
    "CurrencyID": "currency.currencyCode",
    "UomName": "unitOfMeasure.name",
    "BinDescription": "warehouseBin.name",
    "WarehouseSiteName": "warehouseSite.name",
    "SubCatDescription": "subCategory.name",
    "Serialized": "serializedFlag",
    "Dropshipped": "dropShippedFlag",
    "ShipmentMethod": "shipmentMethod.name",
    "TaxCode": "taxCode.name",
}

MAPPING: dict[type[CwElement], dict[str, str]] = {
    Transaction: _same(
        "DocumentType DocumentDate DocumentNumber Memo Description Attention Total TaxableTotal SalesTax "
        "StateTax CountyTax CityTax TaxableAmount1 TaxableAmount2 TaxableAmount3 TaxableAmount4 "
        "TaxableAmount5 Taxable TaxGroupRate TaxAccountNumber PiggyBackFlag BillingTermsXref DueDays DueDate "
        "AccountNumber CompanyAccountNumber TaxAgencyXref StateTaxXref CountyTaxXref SalesTerritory "
        "BillingType EmailDeliveryFlag PrintDeliveryFlag AgreementPrePaymentFlag"
    )
    | {
        "CompanyName": "company.name",
        "CompanyType": "companyType.name",
        "SiteName": "site.name",
        "ProjectName": "project.name",
        "TaxCode": "taxCode.id",
        "TaxGroup": "taxCode.name",
        "BillingTerms": "billingTerms.name",
        "Class": "glClass",
        "GLTypeID": "glTypeId",
        "GLEntryRecID": "glEntryIds",
        "SalesRepID": "salesRepId",
        "SalesRepName": "salesRepName",
        "PONumber": "purchaseOrder.name",
        "CurrencyID": "currency.currencyCode",
        "TaxDPAppliedFlag": "taxDpAppliedFlag",
        "TaxID": "taxId",
        "UseAvalara": "useAvalaraFlag",
        "SendAvalaraTax": "sendAvalaraTaxFlag",
        "ShipCompanyName": "shipToCompany.name",
        "ShipCompanyAccountNumber": "shipToCompanyAccountNumber",
        "ShipCompanyType": "shipToCompanyType.name",
        "ShipTaxID": "shipToTaxId",
        "ShipSiteName": "shipSite.name",
        "ShipContactName": "shipContact",
    },
    Detail: _DETAIL_COMMON
    | _same("DocumentType ProductAccountNumber InvoiceSummaryOption TaxRatePercent")
    | {
        "Taxable": "taxableFlag",
        "Taxable2": "taxable2Flag",
        "Taxable3": "taxable3Flag",
        "Taxable4": "taxable4Flag",
        "Taxable5": "taxable5Flag",
        "ItemTaxable": "itemTaxableFlag",
        "TimeEntryRecId": "timeEntry.id",
    },
    ExpenseTransaction: _same("Memo VendorNumber DocumentType DocumentDate DocumentNumber Total")
    | {
        "MemberID": "member.identifier",
        "APAccountNumber": "apAccountNumber",
        "Class": "glClass",
        "CurrencyID": "currency.currencyCode",
        "GLEntryRecID": "id",
    },
    ExpenseDetail: _same("Memo AccountNumber Total DocumentDate Billable Reimbursable CompanyAdvance")
    | {
        "GLTypeID": "glTypeId",
        "Class": "expenseClass.name",
        "CompanyName": "company.name",
        "CompanyAccountNumber": "company.identifier",
        "CurrencyID": "currency.currencyCode",
        "GLEntryRecID": "id",
    },
    PurchaseTransaction: _same(
        "DocumentNumber DocumentDate PurchaseDate VendorNumber VendorAccountNumber VendorInvoiceNumber "
        "VendorInvoiceDate FreightAmount FreightPackingSlip Description Memo PackingSlip BillingTermsXref "
        "TaxGroupRate TaxAgencyXref StateTaxXref CountyTaxXref CityTaxXref ShipToCompanyAccountNumber "
        "ShipToTaxGroup DueDays PurchaseHeaderTaxGroup Total"
    )
    | {
        "VendorName": "company.name",
        "APAccountNumber": "apAccountNumber",
        "Class": "purchaseClass",
        "ContactName": "contact.name",
        "SiteName": "site.name",
        "BillingTerms": "billingTerms.name",
        "CurrencyID": "currency.currencyCode",
        "CompanyType": "companyType.name",
        "TaxCode": "taxCode.id",
        "TaxGroup": "taxCode.name",
        "ShipToCompanyName": "shipToCompany.name",
        "ShipToCompanyType": "shipToCompanyType.name",
        "ShipToContactName": "shipToContact.name",
        "ShipToSiteName": "shipToSite.name",
        "Dropshipped": "dropshipFlag",
        "UseAvalara": "useAvalaraTaxFlag",
        "PurchaseHeaderTaxable": "purchaseHeaderTaxableFlag",
        "PurchaseHeaderFreightTaxable": "purchaseHeaderFreightTaxableFlag",
    },
    PurchaseDetail: _DETAIL_COMMON
    | _same("VendorAccountNumber VendorNumber LineNumber PurchaseHeaderTaxGroup Taxable"),
    Customer: _same(
        "Taxable AccountNumber BillingTermsXref StateTaxXref CountyTaxXref CityTaxXref StateTaxRate "
        "CountyTaxRate CityTaxRate TaxAgencyXref StateTaxAgencyXref CountyTaxAgencyXref CityTaxAgencyXref "
        "DueDays"
    )
    | {
        "CompanyName": "company.name",
        "ContactName": "contact.name",
        "SiteName": "site.name",
        "BillingTerms": "billingTerms.name",
        "TaxCode": "taxCode.name",
        "Level4TaxXref": "countryTaxXref",
        "Level5TaxXref": "compositeTaxXref",
        "Level4TaxRate": "countryTaxRate",
        "Level5TaxRate": "compositeTaxRate",
        "Level4TaxAgencyXref": "countryTaxAgencyXref",
        "Level5TaxAgencyXref": "compositeTaxAgencyXref",
        "TaxRate": "taxGroupRate",
        "CurrencyID": "currency.currencyCode",
        "CompanyType": "companyType.name",
    },
    Vendor: _same("VendorNumber AccountNumber DueDays")
    | {
        "MemberID": "member.identifier",
        "CompanyName": "company.name",
        "SiteName": "site.name",
        "BillingTerms": "billingTerms.name",
        "TaxGroup": "taxCode.name",
    },
}

# REST section -> (the records' model, the GLExport attribute holding them, their child lines).
SECTIONS: dict[str, tuple[type[CwElement], str, tuple[str, str, type[CwElement]] | None]] = {
    "vendors": (Vendor, "Vendors", None),
    "customers": (Customer, "Customers", None),
    "transactions": (Transaction, "Transactions", ("detail", "Details", Detail)),
    "expenseBills": (ExpenseTransaction, "ExpenseBills", ("detail", "ExpenseDetails", ExpenseDetail)),
    "purchaseTransactions": (
        PurchaseTransaction,
        "PurchaseTransactions",
        ("purchaseDetail", "PurchaseDetails", PurchaseDetail),
    ),
}
NOT_MAPPED = ("expenses", "adjustmentTransactions", "inventoryTransfers")  # kept in the raw document


def read_rest_glexport(
    chunks: Iterable[bytes], batch_id: str, kinds: dict[str, bool], sink: GLSink | None = None
) -> GLBatch:
    """Read a REST GLExport from its chunks onto the GLExport models, handing `sink` the bytes
    and each record's row. `batch_id` is the batchIdentifier this connector chose (REST does not
    echo it); `kinds` are the export flags it sent."""
    reading = Reading(sink, JSON)
    reading.begin(
        GLExport(
            GLBatchID=batch_id,
            ExportInvoices=kinds.get("invoices", False),
            ExportExpenses=kinds.get("expenses", False),
            ExportInventory=kinds.get("procurement", False),
        )
    )
    arrays = [*SECTIONS, *NOT_MAPPED]
    for member in json_stream.members(chunks, reading.raw, arrays, "REST GLExport"):
        if isinstance(member, json_stream.Member):
            if member.value and member.name != "exportSettings":
                reading.ignore([member.name])
        elif member.name in NOT_MAPPED:
            reading.ignore([member.name])  # kept in the raw document, named in the warnings
        else:
            model, _, lines = SECTIONS[member.name]
            reading.record(model.__name__, _record(member.name, member.position, member.value, model, lines))
    return reading.batch()


def _record(
    section: str,
    index: int,
    item: Any,
    model: type[CwElement],
    lines: tuple[str, str, type[CwElement]] | None,
) -> Row:
    where = f"{section}[{index}]"
    if not isinstance(item, dict):
        raise DocumentError(f"{where} is not an object")
    if item.get("documentNumber"):
        where += f" documentNumber={item['documentNumber']}"
    row = _validated(where, model, _values(item, model))
    if lines:
        source, attribute, line_model = lines
        children = item.get(source) or []
        if not isinstance(children, list) or not all(isinstance(c, dict) for c in children):
            raise DocumentError(f"{where}: {source} is not a list of objects")
        row[attribute] = [
            _validated(f"{where} {source}[{n}]", line_model, _values(c, line_model))
            for n, c in enumerate(children)
        ]
    return row


def _values(item: dict[str, Any], model: type[CwElement]) -> dict[str, Any]:
    """The model's attributes read from a REST record (one decimal place read as cents, as
    connectwise.jsonmoney reads; blank typed values left out). Hot: plain loops."""
    values = {}
    get = item.get
    for attribute, path, kind in _plan(model):
        value: Any
        if len(path) == 1:
            value = get(path[0])
        else:
            value = item
            for part in path:
                value = value.get(part) if value.__class__ is dict else None
        if value is None:
            continue
        if value.__class__ is str:
            if value or kind is _TEXT:
                values[attribute] = value
            continue
        if value.__class__ is Decimal:
            value = cents(value)
        if kind is _TEXT:
            value = str(value)  # a reference's id where the legacy document had text
        elif kind is _IDS and value.__class__ is int:
            value = [value]  # one GL entry id
        values[attribute] = value
    return values


_TEXT, _IDS, _TYPED = "text", "ids", "typed"


@cache
def _plan(model: type[CwElement]) -> tuple[tuple[str, tuple[str, ...], str], ...]:
    """(attribute, REST path, kind) per mapped attribute, worked out once per model."""
    plan = []
    for attribute, path in MAPPING[model].items():
        annotation = model.model_fields[attribute].annotation
        kind = _TEXT if annotation is str else _IDS if get_origin(annotation) is list else _TYPED
        plan.append((attribute, tuple(path.split(".")), kind))
    return tuple(plan)


def _validated(where: str, model: type[CwElement], values: dict[str, Any]) -> Row:
    mapped = MAPPING[model]

    def problem(exc: ValidationError) -> str:
        names = describe_validation(
            exc, limit=3, name=lambda loc: mapped.get(str(loc[0]), str(loc[0])) if loc else ""
        )
        return f"{where}: {names}"

    return validated_row(model, values, problem)


def mapping_table() -> str:
    """The mapping as Markdown, for docs/rest-glexport-mapping.md."""
    lines = [
        "# REST GLExport → GLExport models",
        "",
        "Written by `python -m connectwise.glexport.rest_json` from `connectwise/glexport/rest_json.py`;",
        "a test keeps it current. `a.b` is field `b` of the reference object `a`. Attributes not",
        "listed have no REST counterpart and keep their defaults; the REST document is stored as",
        "`glexport.json` beside `records.jsonl`.",
        "",
        "| REST section | model | attribute | REST field |",
        "|---|---|---|---|",
        "| (request) | GLExport | GLBatchID | `batchIdentifier` this connector chose |",
        "| (request) | GLExport | ExportInvoices, ExportExpenses, ExportInventory | the export flags sent |",
    ]
    for section, (model, _, children) in SECTIONS.items():
        for model_, label in [
            (model, section),
            *([(children[2], f"{section}[].{children[0]}")] if children else []),
        ]:
            for attribute, path in MAPPING[model_].items():
                lines.append(f"| `{label}` | {model_.__name__} | {attribute} | `{path}` |")
    lines += [
        "",
        "Not mapped (named in the batch's warnings when not empty): "
        + ", ".join(f"`{name}`" for name in NOT_MAPPED)
        + ".",
        "",
    ]
    return "\n".join(lines)


if __name__ == "__main__":
    sys.stdout.write(mapping_table())
