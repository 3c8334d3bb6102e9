"""The REST API's JSON documents, rendered from the sandbox's records.

Written from the sandbox's data, independently of the connector's mapping
(connectwise.rest_glexport), with the field names of the OpenAPI subset; the contract test
validates every reply against it. Money is written as JSON numbers from Decimal text, exactly.
"""

from datetime import date, datetime
from decimal import Decimal
from typing import Any

from sandbox.data import TAX_RATE, Company, Expense, Invoice, Line, Member, PurchaseReceipt, parties

LOCATION_IDS = {"Tampa": 1, "London": 2}


def ref(id_: int, name: str, **extra: Any) -> dict[str, Any]:
    return {"id": id_, "name": name} | extra


def _when(day: date) -> str:
    return f"{day.isoformat()}T00:00:00Z"


def _currency(code: str) -> dict[str, Any]:
    return {"id": 1 if code == "USD" else 2, "currencyCode": code, "name": code}


def _company(company: Company) -> dict[str, Any]:
    return ref(company.id, company.name, identifier=company.account)


def _ids(ids: list[int]) -> str:
    return ",".join(str(i) for i in ids)


def glexport(
    invoices: list[Invoice], expenses: list[Expense], purchases: list[PurchaseReceipt]
) -> dict[str, Any]:
    vendors, customers = parties(invoices, expenses, purchases)
    return {
        "exportSettings": {},
        "vendors": [_member_vendor(v) if isinstance(v, Member) else _company_vendor(v) for v in vendors],
        "customers": [_customer(c) for c in customers],
        "transactions": [_transaction(i) for i in invoices],
        "expenses": [],
        "expenseBills": [_expense_bill(e) for e in expenses],
        "purchaseTransactions": [_purchase(p) for p in purchases],
        "adjustmentTransactions": [],
        "inventoryTransfers": [],
    }


def _member_vendor(member: Member) -> dict[str, Any]:
    return {
        "member": ref(int(member.id[1:]), f"{member.first_name} {member.last_name}", identifier=member.id),
        "vendorNumber": member.id.upper(),
        "accountNumber": "",
    }


def _company_vendor(vendor: Company) -> dict[str, Any]:
    return {
        "vendor": _company(vendor),
        "company": _company(vendor),
        "vendorNumber": vendor.account,
        "contact": ref(vendor.id * 10, vendor.contact),
        "accountNumber": vendor.account,
        "billingTerms": ref(1, "Net 30"),
        "dueDays": 30,
        "site": ref(vendor.id, "Main"),
        "taxCode": ref(1, "Standard VAT"),
    }


def _customer(company: Company) -> dict[str, Any]:
    rate = TAX_RATE if company.taxable else Decimal("0.00")
    return {
        "company": _company(company),
        "companyType": ref(1, "Customer"),
        "contact": ref(company.id * 10, company.contact),
        "site": ref(company.id, "Main"),
        "accountNumber": company.account,
        "billingTerms": ref(1, "Net 30"),
        "billingTermsXref": "Net 30",
        "dueDays": 30,
        "taxable": company.taxable,
        "taxCode": ref(1 if company.taxable else 0, "T1" if company.taxable else "T0"),
        "currency": _currency(company.currency),
        "stateTaxXref": "T1" if company.taxable else "",
        "countyTaxXref": "",
        "cityTaxXref": "",
        "countryTaxXref": "",
        "compositeTaxXref": "",
        "stateTaxRate": rate,
        "countyTaxRate": Decimal("0.00"),
        "cityTaxRate": Decimal("0.00"),
        "countryTaxRate": Decimal("0.00"),
        "compositeTaxRate": Decimal("0.00"),
        "taxGroupRate": rate,
        "taxAgencyXref": company.account,
        "stateTaxAgencyXref": company.account,
        "countyTaxAgencyXref": company.account,
        "cityTaxAgencyXref": company.account,
        "countryTaxAgencyXref": company.account,
        "compositeTaxAgencyXref": company.account,
        "taxLevels": [],
    }


def _transaction(invoice: Invoice) -> dict[str, Any]:
    company = invoice.company
    zero = Decimal("0.00")
    return {
        "id": invoice.id,
        "glClass": "",
        "glTypeId": "AR",
        "documentDate": _when(invoice.date),
        "documentNumber": invoice.number,
        "documentType": "INVOICE",
        "memo": "Imported from ConnectWise",
        "description": "Accounts Receivable",
        "attention": company.contact,
        "salesTerritory": invoice.location,
        "company": _company(company),
        "companyType": ref(1, "Customer"),
        "companyAccountNumber": company.account,
        "site": ref(company.id, "Main"),
        "billingTerms": ref(1, "Net 30"),
        "billingTermsXref": "Net 30",
        "dueDays": 30,
        "dueDate": _when(date.fromordinal(invoice.date.toordinal() + 30)),
        "emailDeliveryFlag": True,
        "printDeliveryFlag": False,
        "agreementPrePaymentFlag": False,
        "accountNumber": "1100",
        "billingType": "Standard",
        "glEntryIds": _ids(invoice.header_entry_ids),
        "purchaseOrder": ref(invoice.id, f"PO{invoice.id}"),
        "currency": _currency(company.currency),
        "total": invoice.total,
        "salesRepId": "",
        "salesRepName": "",
        "taxable": company.taxable,
        "taxableTotal": invoice.taxable_total,
        "taxCode": ref(1 if company.taxable else 0, "Standard VAT" if company.taxable else "Exempt"),
        "taxGroupRate": TAX_RATE if company.taxable else zero,
        "piggyBackFlag": False,
        "taxAccountNumber": "2200",
        "salesTax": invoice.sales_tax,
        "stateTax": invoice.sales_tax,
        "countyTax": zero,
        "cityTax": zero,
        "taxableAmount1": invoice.taxable_total,
        "taxableAmount2": zero,
        "taxableAmount3": zero,
        "taxableAmount4": zero,
        "taxableAmount5": zero,
        "taxAgencyXref": company.account,
        "stateTaxXref": "T1" if company.taxable else "",
        "countyTaxXref": "",
        "taxId": "",
        "taxDpAppliedFlag": False,
        "useAvalaraFlag": False,
        "sendAvalaraTaxFlag": False,
        "shipToCompany": _company(company),
        "shipToCompanyAccountNumber": company.account,
        "shipToCompanyType": ref(1, "Customer"),
        "shipToTaxId": "",
        "shipSite": ref(company.id, "Main"),
        "shipContact": company.contact,
        "detail": [_detail(invoice, line, company.taxable) for line in invoice.lines]
        + ([_detail(invoice, invoice.tax, False)] if invoice.tax else []),
        "taxLevels": [
            {
                "taxAmount": invoice.sales_tax,
                "taxableAmount": invoice.taxable_total,
                "taxCodeXref": "T1",
                "taxLevel": 1,
            }
        ]
        if invoice.sales_tax
        else [],
    }


def _detail(invoice: Invoice, line: Line, taxable: bool) -> dict[str, Any]:
    is_tax = line.gl_type == "ST"
    (entry_id,) = line.entry_ids  # an invoice line is one GL entry: its detail id
    return {
        "id": entry_id,
        "documentDate": _when(invoice.date),
        "documentType": "INVOICE",
        "accountNumber": line.account,
        "glClass": "",
        "glTypeId": line.gl_type,
        "glItemId": line.item_id,
        "invoiceSummaryOption": "0",
        "cost": Decimal("0.00"),
        "salesCode": "",
        "memo": line.description,
        "description": line.description,
        "quantity": line.quantity,
        "total": line.total,
        "currency": _currency(invoice.company.currency),
        "costAccountNumber": "" if is_tax else "5100",
        "inventoryAccountNumber": "" if is_tax else "1300",
        "productAccountNumber": "4000",
        "taxCode": ref(1, "T1") if is_tax else None,
        "taxCodeXref": "T1" if taxable else "T9",
        "taxAgencyXref": "",
        "taxNote": "AUTOSTAX" if is_tax else "",
        "taxRate": TAX_RATE / 100 if is_tax else None,
        "taxRatePercent": TAX_RATE if is_tax else None,
        "taxableFlag": taxable,
        "taxable2Flag": False,
        "taxable3Flag": False,
        "taxable4Flag": False,
        "taxable5Flag": False,
        "item": {"id": 1, "identifier": line.item_id} if line.item_id else None,
        "itemTaxableFlag": taxable,
        "itemPrice": line.price,
        "itemCost": Decimal("0"),
        "itemDescription": line.description,
        "salesDescription": line.description,
        "unitOfMeasure": ref(1, "Each"),
        "subCategory": ref(1, "Miscellaneous"),
        "serializedFlag": False,
        "serialNumbers": "",
        "warehouseBin": ref(1, "Default"),
        "dropShippedFlag": False,
        "itemTypeXref": "",
        "inventoryXref": "",
        "cogsXref": "",
        "uomScheduleXref": "",
        "priceLevelXref": "DEFAULT",
        "locationXref": "DEFAULT",
        "taxLevels": [],
    }


def _expense_bill(expense: Expense) -> dict[str, Any]:
    (header_id,) = expense.header_entry_ids
    member = expense.member
    return {
        "id": header_id,
        "documentDate": _when(expense.date),
        "documentType": "GENERAL JOURNAL",
        "documentNumber": f"{expense.id}{member.id}",
        "memo": f"Expenses for {expense.date.isoformat()}",
        "glClass": "",
        "apAccountNumber": "2000",
        "member": ref(int(member.id[1:]), f"{member.first_name} {member.last_name}", identifier=member.id),
        "vendorNumber": member.id.upper(),
        "currency": _currency(expense.currency),
        "total": expense.total,
        "detail": [
            {
                "id": line.entry_ids,
                "documentDate": _when(expense.date),
                "glTypeId": "EE",
                "memo": line.description,
                "company": _company(expense.company),
                "accountNumber": line.account,
                "expenseClass": ref(1, ""),
                "currency": _currency(expense.currency),
                "total": line.total,
                "billable": line.billable,
                "reimbursable": True,
                "companyAdvance": False,
            }
            for line in expense.lines
        ],
    }


def _purchase(purchase: PurchaseReceipt) -> dict[str, Any]:
    vendor, ship_to = purchase.vendor, purchase.ship_to
    day = _when(purchase.date)
    return {
        "id": str(purchase.id),
        "documentDate": day,
        "documentNumber": purchase.number,
        "description": "Purchase",
        "memo": f"PO #{purchase.number}, Packing Slip: {purchase.number}",
        "apAccountNumber": "2000",
        "purchaseDate": day,
        "company": _company(vendor),
        "companyType": ref(2, "Vendor"),
        "contact": ref(vendor.id * 10, vendor.contact),
        "site": ref(vendor.id, "Main"),
        "purchaseClass": "",
        "freightAmount": None,
        "freightPackingSlip": purchase.number,
        "packingSlip": purchase.number,
        "dropshipFlag": False,
        "currency": _currency(purchase.currency),
        "total": purchase.total,
        "billingTerms": ref(1, "Net 30"),
        "billingTermsXref": "Net 30",
        "dueDays": 30,
        "vendorNumber": vendor.account,
        "vendorAccountNumber": vendor.account,
        "vendorInvoiceDate": day,
        "vendorInvoiceNumber": f"VINV-{purchase.id}",
        "taxAgencyXref": "",
        "stateTaxXref": "T1",
        "countyTaxXref": "",
        "cityTaxXref": "",
        "shipToCompany": _company(ship_to),
        "shipToCompanyAccountNumber": ship_to.account,
        "shipToCompanyType": ref(1, "Customer"),
        "shipToContact": ref(ship_to.id * 10, ship_to.contact),
        "shipToSite": ref(ship_to.id, "Main"),
        "shipToTaxGroup": "Standard VAT",
        "taxCode": ref(1, "Standard VAT"),
        "taxGroupRate": TAX_RATE,
        "useAvalaraTaxFlag": False,
        "purchaseHeaderTaxGroup": "Standard VAT",
        "purchaseHeaderTaxableFlag": False,
        "purchaseHeaderFreightTaxableFlag": False,
        "taxLevels": [],
        "purchaseDetail": [_purchase_detail(purchase, n, line) for n, line in enumerate(purchase.lines, 1)],
        "purchaseDetailTax": [],
    }


def _purchase_detail(purchase: PurchaseReceipt, number: int, line: Line) -> dict[str, Any]:
    (entry_id,) = line.entry_ids
    vendor = purchase.vendor
    return {
        "id": entry_id,
        "documentDate": purchase.received_at.isoformat(),  # site local time, as the legacy side
        "glClass": "",
        "glTypeId": line.gl_type,
        "glItemId": line.item_id,
        "salesCode": "",
        "description": "Purchase",
        "cost": line.price,
        "memo": line.description,
        "taxNote": "",
        "vendorNumber": vendor.account,
        "accountNumber": line.account,
        "costAccountNumber": "5100",
        "inventoryAccountNumber": "1300",
        "vendorAccountNumber": vendor.account,
        "item": {"id": 1, "identifier": line.item_id},
        "itemDescription": line.description,
        "salesDescription": line.description,
        "taxable": False,
        "itemPrice": line.price * 2,
        "itemCost": line.price,
        "unitOfMeasure": ref(1, "Each"),
        "quantity": line.quantity,
        "total": line.total,
        "currency": _currency(purchase.currency),
        "serializedFlag": False,
        "serialNumbers": "",
        "dropShippedFlag": False,
        "lineNumber": number,
        "warehouseBin": ref(1, "Default"),
        "subCategory": ref(1, "Miscellaneous"),
        "itemTypeXref": "",
        "inventoryXref": "1300",
        "cogsXref": "5100",
        "uomScheduleXref": "DEFAULT",
        "priceLevelXref": "DEFAULT",
        "locationXref": "DEFAULT",
        "purchaseHeaderTaxGroup": "Standard VAT",
        "taxCodeXref": "T9",
        "taxAgencyXref": "",
    }


def unposted_invoice(row_id: int, invoice: Invoice) -> dict[str, Any]:
    return {
        "id": row_id,
        "billingLogId": invoice.id,
        "locationId": LOCATION_IDS[invoice.location],
        "location": ref(LOCATION_IDS[invoice.location], invoice.location),
        "company": _company(invoice.company),
        "accountNumber": invoice.company.account,
        "invoiceNumber": invoice.number,
        "invoiceDate": _when(invoice.date),
        "invoiceType": "Standard",
        "currency": _currency(invoice.company.currency),
        "subTotal": invoice.total - invoice.sales_tax,
        "total": invoice.total,
        "salesTaxAmount": invoice.sales_tax,
    }


def unposted_expense(expense: Expense) -> dict[str, Any]:
    return {
        "id": expense.id,
        "locationId": LOCATION_IDS[expense.location],
        "company": _company(expense.company),
        "member": ref(int(expense.member.id[1:]), expense.member.id, identifier=expense.member.id),
        "dateExpense": _when(expense.date),
        "currency": _currency(expense.currency),
        "total": expense.total,
    }


def unposted_procurement(purchase: PurchaseReceipt) -> dict[str, Any]:
    return {
        "id": purchase.id,
        "unpostedProductId": str(purchase.id),
        "locationId": LOCATION_IDS[purchase.location],
        "procurementType": "Purchase",
        "purchaseOrder": ref(purchase.id, purchase.number),
        "purchaseDate": _when(purchase.date),
        "currency": _currency(purchase.currency),
        "total": purchase.total,
        "vendor": _company(purchase.vendor),
    }


def payment(
    payment_id: int, invoice: Invoice, paid_at: datetime, amount: Decimal | None = None
) -> dict[str, Any]:
    return {
        "id": payment_id,
        "type": "Payment",
        "invoice": {"id": invoice.id, "identifier": invoice.number},
        "amount": invoice.paid_amount if amount is None else amount,
        "invoiceTotal": invoice.total,
        "invoiceBalance": invoice.total - invoice.paid_amount,
        "paymentDate": paid_at.isoformat().replace("+00:00", "Z"),
    }


def error(code: str, message: str, errors: list[dict[str, str]] | None = None) -> dict[str, Any]:
    """ConnectWise's error body. `errors` is always there, a list: the DEVGUIDE shows `null` for
    some errors, but the subset's ErrorResponseMessage declares a (non-nullable) array and the
    client generated from it iterates it, so an empty list is the form both accept."""
    return {"code": code, "message": message, "errors": errors or []}
