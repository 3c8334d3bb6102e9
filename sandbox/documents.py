"""GLExport documents as ConnectWise writes them, rendered from the sandbox's records.

Element and attribute names follow the reference samples exactly (the contract test checks it).
"""

from collections.abc import Iterable
from datetime import date, datetime
from decimal import Decimal
from xml.etree.ElementTree import Element, SubElement, tostring

from sandbox.data import TAX_RATE, Company, Expense, Invoice, Line, Member, PurchaseReceipt, parties

OPTIONS = {
    "CogsOption": "True",
    "SalesTaxOption": "True",
    "SalesTaxGroupsOption": "False",
    "InventoryPostOption": "True",
    "ExpenseAsBillOption": "True",
    "ExpenseSummaryOption": "False",
}


def _b(flag: bool) -> str:
    return "True" if flag else "False"


def _yn(flag: bool) -> str:
    return "Y" if flag else "N"


def _ids(ids: Iterable[int]) -> str:
    return ",".join(str(i) for i in ids)


def _us_datetime(moment: datetime) -> str:
    hour = moment.hour % 12 or 12
    return f"{moment.month}/{moment.day}/{moment.year} {hour}:{moment:%M:%S} {'AM' if moment.hour < 12 else 'PM'}"


def glexport(
    batch_id: str,
    kinds: dict[str, bool],
    invoices: list[Invoice],
    expenses: list[Expense],
    purchases: list[PurchaseReceipt],
) -> bytes:
    root = Element(
        "GLExport",
        OPTIONS
        | {
            "ExportInvoices": _b(kinds["invoices"]),
            "ExportExpenses": _b(kinds["expenses"]),
            "ExportInventory": _b(kinds["procurement"]),
            "SyncPayments": "False",
            "GLBatchID": batch_id,
            "LastPaymentSync": "",
            "DropShipCogsOption": "False",
            "UomProductOption": "False",
        },
    )
    vendors, customers = parties(invoices, expenses, purchases)

    if vendors:
        section = SubElement(root, "Vendors")
        section.extend(_member_vendor(v) if isinstance(v, Member) else _company_vendor(v) for v in vendors)
    if customers:
        section = SubElement(root, "Customers")
        section.extend(_customer(c) for c in customers)
    if invoices:
        section = SubElement(root, "Transactions")
        section.extend(_transaction(i) for i in invoices)
    if expenses:
        non_reimbursable = [
            e.header_entry_ids[0] for e in expenses if not all(line.billable for line in e.lines)
        ]
        section = SubElement(root, "ExpenseBills", {"NonReimbursableExpenseRecIDs": _ids(non_reimbursable)})
        section.extend(_expense(e) for e in expenses)
    if purchases:
        section = SubElement(root, "PurchaseTransactions")
        section.extend(_purchase(p) for p in purchases)
    return b'<?xml version="1.0" encoding="utf-8"?>\n' + tostring(root, encoding="unicode").encode("utf-8")


def _address(company: Company) -> dict[str, str]:
    return {
        "SiteName": "Main",
        "AddressLine1": f"{company.id} Main Street",
        "AddressLine2": "",
        "AddressLine3": f"{company.city}, {company.state} {company.postal_code}".replace(" ,", ","),
        "City": company.city,
        "State": company.state,
        "PostalCode": company.postal_code,
        "Country": company.country,
        "CountryCode": "",
        "PhoneNumber": f"555{company.id:07d}",
    }


def _member_vendor(member: Member) -> Element:
    return Element(
        "Vendor",
        {
            "MemberID": member.id,
            "VendorName": member.id,
            "CompanyName": "",
            "VendorNumber": member.id.upper(),
            "FirstName": member.first_name,
            "MiddleInitial": "",
            "LastName": member.last_name,
            "AccountNumber": "",
        }
        | dict.fromkeys(("SiteName", "AddressLine1", "AddressLine2", "AddressLine3", "City", "State"), "")
        | dict.fromkeys(
            ("PostalCode", "Country", "CountryCode", "PhoneNumber", "BillingTerms", "DueDays", "TaxGroup"), ""
        ),
    )


def _company_vendor(vendor: Company) -> Element:
    first, _, last = vendor.contact.partition(" ")
    return Element(
        "Vendor",
        {
            "MemberID": "",
            "VendorName": vendor.name,
            "CompanyName": vendor.name,
            "VendorNumber": vendor.account,
            "FirstName": first,
            "MiddleInitial": "",
            "LastName": last,
            "AccountNumber": vendor.account,
        }
        | _address(vendor)
        | {"BillingTerms": "Net 30", "DueDays": "30", "TaxGroup": "Standard VAT"},
    )


def _customer(company: Company) -> Element:
    rate = f"{TAX_RATE if company.taxable else Decimal('0.00')}%"
    levels = ("State", "County", "City", "Level4", "Level5")
    attrs = (
        {"CompanyName": company.name, "ContactName": company.contact}
        | _address(company)
        | {
            "Taxable": _b(company.taxable),
            "AccountNumber": company.account,
            "BillingTerms": "Net 30",
            "BillingTermsXref": "Net 30",
            "TaxCode": "T1" if company.taxable else "T0",
            "StateTaxXref": "T1" if company.taxable else "",
        }
        | {f"{level}TaxXref": "" for level in levels[1:]}
        | {f"{level}TaxRate": rate if level == "State" else "0.00%" for level in levels}
        | {"TaxAgencyXref": company.account}
        | {f"{level}TaxAgencyXref": company.account for level in levels}
        | {
            "TaxAccountNumber": "2200",
            "TaxRate": rate,
            "DueDays": "30",
            "CurrencyID": company.currency,
            "CompanyType": "Customer",
            "ContactEmailAddress": company.email,
        }
    )
    return Element("Customer", attrs)


def _ship(company: Company) -> dict[str, str]:
    address = _address(company)
    return (
        {
            "ShipCompanyAccountNumber": company.account,
            "ShipCompanyType": "Customer",
            "ShipTaxID": "",
            "ShipCompanyName": company.name,
        }
        | {f"Ship{key}": value for key, value in address.items()}
        | {"ShipContactName": company.contact}
    )


def _transaction(invoice: Invoice) -> Element:
    company = invoice.company
    due = invoice.date.toordinal() + 30
    zero = "0.00"
    attrs = (
        {
            "DocumentType": "INVOICE",
            "DocumentDate": invoice.date.isoformat(),
            "CompanyName": company.name,
            "ProjectName": "",
            "Total": str(invoice.total),
            "TaxableTotal": str(invoice.taxable_total),
            "SalesTax": str(invoice.sales_tax),
            "StateTax": str(invoice.sales_tax),
            "CountyTax": zero,
            "CityTax": zero,
            "TaxableAmount1": str(invoice.taxable_total),
        }
        | {f"TaxableAmount{i}": zero for i in range(2, 6)}
        | {
            "DocumentNumber": invoice.number,
            "Memo": "Imported from ConnectWise",
            "Description": "Accounts Receivable",
            "Taxable": _yn(company.taxable),
            "TaxCode": "1" if company.taxable else "0",
            "TaxGroup": "Standard VAT" if company.taxable else "Exempt",
            "TaxGroupRate": f"{TAX_RATE if company.taxable else 0:.6f}",
            "TaxAccountNumber": "2200",
            "PiggyBackFlag": "False",
            "Attention": company.contact,
        }
        | _address(company)
        | _ship(company)
        | {
            "BillingTerms": "Net 30",
            "BillingTermsXref": "Net 30",
            "DueDays": "30",
            "DueDate": date.fromordinal(due).isoformat(),
            "AccountNumber": "1100",
            "Class": "",
            "GLEntryRecID": _ids(invoice.header_entry_ids),
            "CompanyAccountNumber": company.account,
            "TaxAgencyXref": company.account,
            "StateTaxXref": "T1" if company.taxable else "",
            "CountyTaxXref": "",
            "CityTaxXref": "",
            "SalesRepID": "",
            "SalesRepName": "",
            "PONumber": f"PO{invoice.id}",
            "GLTypeID": "AR",
            "SalesTerritory": invoice.location,
            "CurrencyID": company.currency,
            "CompanyType": "Customer",
            "BillingType": "Standard",
            "TaxDPAppliedFlag": "N",
            "EmailDeliveryFlag": "Y",
            "PrintDeliveryFlag": "N",
            "AgreementPrePaymentFlag": "N",
            "TaxID": "",
            "UseAvalara": "N",
            "SendAvalaraTax": "N",
        }
    )
    element = Element("Transaction", attrs)
    for line in invoice.lines:
        element.append(_detail(invoice, line, company.taxable))
    if invoice.tax:
        element.append(_detail(invoice, invoice.tax, False))
    return element


def _warehouse() -> dict[str, str]:
    keys = ("SiteName", "AddressLine1", "AddressLine2", "City", "State", "Zip", "Country", "CountryCode")
    return {f"Warehouse{key}": "" for key in keys}


def _detail(invoice: Invoice, line: Line, taxable: bool) -> Element:
    is_tax = line.gl_type == "ST"
    attrs = (
        {
            "DocumentType": "INVOICE",
            "DocumentDate": invoice.date.isoformat(),
            "AccountNumber": line.account,
            "Class": "",
            "Cost": "0.00",
            "CostAccountNumber": "" if is_tax else "5100",
            "InventoryAccountNumber": "" if is_tax else "1300",
            "ProductAccountNumber": "4000",
            "SalesCode": "",
            "Taxable": _yn(taxable),
        }
        | {f"Taxable{i}": "N" for i in range(2, 6)}
        | {
            "ItemTaxable": _yn(taxable),
            "ItemID": line.item_id,
            "ItemPrice": str(line.price),
            "ItemCost": "0",
            "Memo": line.description,
            "Description": line.description,
            "GLEntryRecID": _ids(line.entry_ids),
            "GLTypeID": line.gl_type,
            "GLItemID": line.item_id,
            "ItemTypeXref": "",
            "InventoryXref": "",
            "CogsXref": "",
            "SalesDescription": line.description,
            "ItemDescription": line.description,
            "CurrencyID": invoice.company.currency,
            "UomName": "Each",
            "PriceLevelXref": "DEFAULT",
            "LocationXref": "DEFAULT",
            "BinDescription": "Default",
        }
        | _warehouse()
        | {
            "UomScheduleXref": "",
            "SubCatDescription": "Miscellaneous",
            "Serialized": "N",
            "SerialNumbers": "",
            "Dropshipped": "N",
            "ShipmentMethod": "",
            "TaxCodeXref": "T1" if taxable else "T9",
            "InvoiceSummaryOption": "0",
            "TimeEntryRecId": "",
            "Total": str(line.total),
            "Quantity": str(line.quantity),
            "TaxRate": f"{TAX_RATE / 100:.2f}%" if is_tax else "",
            "TaxCode": "T1" if is_tax else "",
            "TaxAgencyXref": "",
            "TaxNote": "AUTOSTAX" if is_tax else "",
        }
    )
    if is_tax:
        attrs["TaxRatePercent"] = f"{TAX_RATE}%"
    return Element("Detail", attrs)


def _expense(expense: Expense) -> Element:
    element = Element(
        "ExpenseTransaction",
        {
            "Memo": f"Expenses for {expense.date.isoformat()}",
            "VendorNumber": expense.member.id.upper(),
            "MemberID": expense.member.id,
            "FirstName": expense.member.first_name,
            "LastName": expense.member.last_name,
            "DocumentType": "GENERAL JOURNAL",
            "DocumentDate": expense.date.isoformat(),
            "DocumentNumber": f"{expense.id}{expense.member.id}",
            "APAccountNumber": "2000",
            "Class": "",
            "CurrencyID": expense.currency,
            "GLEntryRecID": _ids(expense.header_entry_ids),
            "Total": str(expense.total),
        },
    )
    for line in expense.lines:
        SubElement(
            element,
            "ExpenseDetail",
            {
                "GLTypeID": "EE",
                "Memo": line.description,
                "AccountNumber": line.account,
                "Class": "",
                "Total": str(line.total),
                "CompanyName": expense.company.name,
                "CompanyAccountNumber": expense.company.account,
                "DocumentDate": expense.date.isoformat(),
                "Billable": _b(line.billable),
                "Reimbursable": "True",
                "CompanyAdvance": "False",
                "CurrencyID": expense.currency,
                "GLEntryRecID": _ids(line.entry_ids),
            },
        )
    return element


def _purchase(purchase: PurchaseReceipt) -> Element:
    vendor, ship_to = purchase.vendor, purchase.ship_to
    day = purchase.date.isoformat()
    attrs = (
        {
            "DocumentNumber": purchase.number,
            "DocumentDate": day,
            "PurchaseDate": day,
            "VendorName": vendor.name,
            "VendorNumber": vendor.account,
            "VendorAccountNumber": vendor.account,
            "VendorInvoiceNumber": f"VINV-{purchase.id}",
            "VendorInvoiceDate": day,
            "FreightAmount": "",
            "FreightPackingSlip": purchase.number,
            "APAccountNumber": "2000",
            "Class": "",
            "ContactName": vendor.contact,
        }
        | _address(vendor)
        | {
            "Description": "Purchase",
            "Memo": f"PO #{purchase.number}, Packing Slip: {purchase.number}",
            "BillingTerms": "Net 30",
            "CurrencyID": purchase.currency,
            "PackingSlip": purchase.number,
            "BillingTermsXref": "Net 30",
            "CompanyType": "Vendor",
            "TaxCode": "1",
            "TaxGroup": "Standard VAT",
            "TaxGroupRate": f"{TAX_RATE:.6f}",
            "TaxAgencyXref": "",
            "StateTaxXref": "T1",
            "CountyTaxXref": "",
            "CityTaxXref": "",
            "ShipToCompanyName": ship_to.name,
            "ShipToCompanyAccountNumber": ship_to.account,
            "ShipToCompanyType": "Customer",
            "ShipToContactName": ship_to.contact,
        }
        | {f"ShipTo{key}": value for key, value in _address(ship_to).items()}
        | {
            "ShipToTaxGroup": "Standard VAT",
            "Dropshipped": "N",
            "DueDays": "30",
            "UseAvalara": "N",
            "PurchaseHeaderTaxGroup": "Standard VAT",
            "PurchaseHeaderTaxable": "N",
            "PurchaseHeaderFreightTaxable": "N",
            "PurchaseInformation": f"PO #{purchase.number}, Packing Slip: {purchase.number}",
            "Total": str(purchase.total),
        }
    )
    element = Element("PurchaseTransaction", attrs)
    for number, line in enumerate(purchase.lines, start=1):
        SubElement(
            element,
            "PurchaseDetail",
            {
                "DocumentDate": _us_datetime(purchase.received_at),
                "AccountNumber": line.account,
                "Class": "",
                "Cost": str(line.price),
                "CostAccountNumber": "5100",
                "InventoryAccountNumber": "1300",
                "SalesCode": "",
                "Taxable": "N",
                "ItemID": line.item_id,
                "Quantity": str(line.quantity),
                "ItemPrice": str(line.price * 2),
                "ItemCost": str(line.price),
                "Total": str(line.total),
                "Description": "Purchase",
                "GLEntryRecID": _ids(line.entry_ids),
                "GLTypeID": line.gl_type,
                "GLItemID": line.item_id,
                "ItemTypeXref": "",
                "InventoryXref": "1300",
                "CogsXref": "5100",
                "SalesDescription": line.description,
                "ItemDescription": line.description,
                "Memo": line.description,
                "TaxNote": "",
                "VendorAccountNumber": vendor.account,
                "VendorNumber": vendor.account,
                "CurrencyID": purchase.currency,
                "UomName": "Each",
                "PriceLevelXref": "DEFAULT",
                "LocationXref": "DEFAULT",
                "BinDescription": "Default",
            }
            | _warehouse()
            | {
                "UomScheduleXref": "DEFAULT",
                "SubCatDescription": "Miscellaneous",
                "Serialized": "N",
                "SerialNumbers": "",
                "Dropshipped": "N",
                "LineNumber": str(number),
                "ShipmentMethod": "",
                "PurchaseHeaderTaxGroup": "Standard VAT",
                "TaxCodeXref": "T9",
                "TaxRate": "",
                "TaxCode": "",
                "TaxAgencyXref": "",
            },
        )
    return element


def payment_reply(invoice: Invoice) -> bytes:
    attrs = {
        "InvoiceNumber": invoice.number,
        "Total": str(invoice.total),
        "PaidAmount": str(invoice.paid_amount),
        "DatePaid": invoice.paid_date.isoformat() if invoice.paid_date else "",
    }
    root = Element("PsaData", attrs)
    root.text = "Invoice payment update was successful"
    return b'<?xml version="1.0" encoding="utf-8"?>\n' + tostring(root, encoding="unicode").encode("utf-8")


def psa_data(text: str) -> bytes:
    return f'<?xml version="1.0" encoding="utf-8"?>\n<PsaData>{_escape(text)}</PsaData>'.encode()


def psa_error(message: str, method: str = "Page_Load") -> bytes:
    trace = (
        f"System.Exception: {message}\n"
        f"   at App.services.system_io.GLEntry.GLEntry_GeneralLedger.{method}()\n"
        "   at App.services.system_io.GLEntry.GLEntry_GeneralLedger.Page_Load(Object sender, EventArgs e)"
    )
    return f'<?xml version="1.0" encoding="utf-8"?>\n<PsaError>{_escape(trace)}</PsaError>'.encode()


def _escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
