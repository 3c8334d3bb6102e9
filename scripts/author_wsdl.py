"""Author the ConnectWise 2.0 WSDLs that are not public, from the reference's field lists.

`python -m scripts.author_wsdl` writes layers/connectwise/connectwise/wsdl/<Api>_2.0.authored.wsdl.
ConnectWise never published its 2.0 WSDLs; the reference (legacy_soap_and_accounting_interface.md,
A.3) lists each Find operation's request children in order and each result type's fields, from
a client generated against the live 2.0 WSDLs. Field types are not in that list: they are read
from the names here (…Id → int, …Flag → boolean, dates → dateTime, amounts → decimal), so each
file says it is authored and which parts are inferred. Only the Find operations are described.
"""

from pathlib import Path
from xml.sax.saxutils import quoteattr

WSDL_DIR = Path(__file__).resolve().parent.parent / "layers" / "connectwise" / "connectwise" / "wsdl"

INT, STR, BOOL, DEC, DT = "int", "string", "boolean", "decimal", "dateTime"

AGREEMENT = {
    "Id": INT, "AgreementTypeId": INT, "AgreementName": STR, "ParentAgreementId": INT, "CompanyId": INT, "ContactId": INT,
    "CustomerPO": STR, "LocationId": INT, "DepartmentId": INT, "RestrictLocationFlag": BOOL, "RestrictDepartmentFlag": BOOL,
    "StartDate": DT, "EndDate": DT, "NoEndingDateFlag": BOOL, "OpportunityId": INT, "CancelledFlag": BOOL,
    "DateCancelled": DT, "ReasonCancelled": STR, "SlaId": INT, "SubContractCompanyId": INT, "SubContractContactId": INT,
    "WorkOrder": STR, "InternalNotes": STR, "ApplicationLimit": DEC, "ApplicationUnlimitedFlag": BOOL, "OneTimeFlag": BOOL,
    "CoverAgreementTime": BOOL, "CoverAgreementProduct": BOOL, "CoverAgreementExpense": BOOL, "CoverSalesTax": BOOL,
    "CarryOverUnused": BOOL, "AllowOverrruns": BOOL, "ExpiredDays": INT, "Limit": INT, "ChargeToFirm": BOOL,
    "CompHourlyRate": DEC, "CompLimitAmount": DEC, "BillCycleId": INT, "BillOneTimeFlag": BOOL, "BillTermsId": INT,
    "BillToCompanyId": INT, "BillToAddressId": INT, "BillAmount": DEC, "Taxable": BOOL, "ProrateFirstBill": BOOL,
    "BillStartDate": DT, "TaxCodeId": INT, "RestrictDownPayment": BOOL, "InvoiceDescription": STR, "TopComment": BOOL,
    "BottomComment": BOOL, "WorkRoleId": INT, "WorkTypeId": INT, "ProjectTypeId": INT, "InvoiceTemplateId": INT,
    "BillableTimeInvoice": BOOL, "BillableExpenseInvoice": BOOL, "BillableProductInvoice": BOOL, "BoardId": INT,
    "BoardDefaultFlag": BOOL, "ServiceTypeId": INT, "UpdatedBy": STR, "LastUpdate": DT,
}  # fmt: skip
COMPANY = {
    "Id": INT, "CompanyName": STR, "CompanyIdentifier": STR, "PhoneNumber": STR, "FaxNumber": STR, "AddressLine1": STR,
    "AddressLine2": STR, "City": STR, "State": STR, "Zip": STR, "Country": STR, "Type": STR, "Status": STR, "Territory": STR,
    "Website": STR, "Market": STR, "DefaultContactId": INT, "DefaultBillingContactId": INT, "UpdatedBy": STR,
    "LastUpdated": DT,
}  # fmt: skip
INVOICE = {
    "Id": INT, "BillingTypeIdentifier": STR, "AgreementName": STR, "AgreementType": STR, "BusinessUnit": STR, "Location": STR,
    "CompanyName": STR, "TicketNumber": INT, "TicketSummary": STR, "InvoiceDate": DT, "DueDate": DT, "Status": STR,
    "InvoiceType": STR, "ProjectName": STR, "PhaseName": STR, "Territory": STR, "Closed": BOOL, "Email": STR,
    "InvoiceNumber": STR, "GlPosted": BOOL, "GlBatchIdentifier": STR, "BillingDelivery": STR, "RoutedMemberIdentifier": STR,
    "RoutedMemberName": STR, "InvoiceAmount": DEC, "ContactId": INT, "CompanyId": INT, "StatusId": INT, "PaidAmount": DEC,
    "PaidDate": DT, "ProjectId": INT, "AgreementId": INT, "UpdatedBy": STR, "LastUpdated": DT,
}  # fmt: skip
OPPORTUNITY = {
    "Id": INT, "CompanyName": STR, "CompanyPhone": STR, "ContactName": STR, "OpportunityName": STR, "Rating": STR,
    "StageName": STR, "Type": STR, "Status": STR, "Closed": BOOL, "Won": BOOL, "Lost": BOOL, "CloseProbability": INT,
    "ExpectedCloseDate": DT, "PrimarySalesRep": STR, "SecondarySalesRep": STR, "MarketingCampaignName": STR,
    "Location": STR, "BusinessUnit": STR, "Age": INT, "EstimatedTotal": DEC, "RecurringTotal": DEC, "WonAmount": DEC,
    "LostAmount": DEC, "OpenAmount": DEC, "Margin": DEC, "AgreementAmount": DEC, "ProductAmount": DEC, "ServiceAmount": DEC,
    "Other1Amount": DEC, "Other2Amount": DEC, "CustomerPO": STR, "LastUpdated": DT, "UpdatedBy": STR, "CompanyId": INT,
    "ContactId": INT, "StatusId": INT, "TypeId": INT,
}  # fmt: skip
PURCHASE_ORDER = {
    "Id": INT, "VendorCompanyId": INT, "VendorCompanyName": STR, "VendorContactId": INT, "VendorContactName": STR,
    "VendorCompanyAddressId": INT, "VendorOrderNumber": STR, "VendorInvoiceNumber": STR, "IsDropShipped": BOOL,
    "ShipToWarehouse": STR, "ShipToCompanyId": INT, "ShipToCompanyName": STR, "ShipToCompanyAddressId": INT,
    "PurchaseDate": DT, "Total": DEC, "FreightCost": DEC, "ShipDate": DT, "TrackingNumber": STR, "ShipmentMethod": STR,
    "ShippingInstructions": STR, "IsClosed": BOOL, "DateClosed": DT, "UpdateBy": STR, "LastUpdated": DT,
}  # fmt: skip

# api name -> (operation, result item type, fields, takes isOpen)
APIS = {
    "AgreementApi": ("FindAgreements", "AgreementFindResult", AGREEMENT, True),
    "CompanyApi": ("FindCompanies", "CompanyFindResult", COMPANY, False),
    "InvoiceApi": ("FindInvoices", "InvoiceFindResult", INVOICE, True),
    "OpportunityApi": ("FindOpportunities", "OpportunityFindResult", OPPORTUNITY, True),
    "PurchasingApi": ("FindPurchaseOrders", "PurchaseOrderFindResult", PURCHASE_ORDER, False),
}
NOTE = """AUTHORED for this connector, not published by ConnectWise. ConnectWise {api} 2.0, {operation} only.
Request children and their order, the result type and its fields and their order are as the
reference lists them (a client generated from the live 2.0 WSDL; legacy_soap_and_accounting_interface.md A.3).
Inferred: each field's XML type (from its name), minOccurs/nillable (by analogy with the 1.5 WSDLs).
Written by scripts/author_wsdl.py; edit that, not this file."""


def wsdl(api: str) -> str:
    operation, item, fields, takes_is_open = APIS[api]
    value_type = ' minOccurs="1" maxOccurs="1" nillable="true"'  # as the 1.5 WSDLs declare value types
    string_type = ' minOccurs="0" maxOccurs="1"'
    field_elements = "\n".join(
        f'          <s:element{string_type if kind == STR else value_type} name="{name}" type="s:{kind}"/>'
        for name, kind in fields.items()
    )
    is_open = (
        '            <s:element minOccurs="1" maxOccurs="1" name="isOpen" nillable="true" type="s:boolean"/>\n'
        if takes_is_open
        else ""
    )
    bindings = []
    for suffix, prefix in (("Soap", "soap"), ("Soap12", "soap12")):
        bindings.append(f"""  <wsdl:binding name="{api}{suffix}" type="tns:{api}Soap">
    <{prefix}:binding transport="http://schemas.xmlsoap.org/soap/http"/>
    <wsdl:operation name="{operation}">
      <{prefix}:operation soapAction="http://connectwise.com/{operation}" style="document"/>
      <wsdl:input>
        <{prefix}:body use="literal"/>
      </wsdl:input>
      <wsdl:output>
        <{prefix}:body use="literal"/>
      </wsdl:output>
    </wsdl:operation>
  </wsdl:binding>""")
    location = f"https://cw.example.invalid/v4_6_release/apis/2.0/{api}.asmx"
    return f"""<?xml version="1.0" encoding="UTF-8"?>
<!--
{NOTE.format(api=api, operation=operation)}
-->
<wsdl:definitions targetNamespace="http://connectwise.com" xmlns:s="http://www.w3.org/2001/XMLSchema" xmlns:soap12="http://schemas.xmlsoap.org/wsdl/soap12/" xmlns:tns="http://connectwise.com" xmlns:soap="http://schemas.xmlsoap.org/wsdl/soap/" xmlns:wsdl="http://schemas.xmlsoap.org/wsdl/">
  <wsdl:documentation>{quoteattr("ConnectWise " + api + " 2.0 (authored: " + operation + " only)")[1:-1]}</wsdl:documentation>
  <wsdl:types>
    <s:schema elementFormDefault="qualified" targetNamespace="http://connectwise.com">
      <s:element name="{operation}">
        <s:complexType>
          <s:sequence>
            <s:element minOccurs="0" maxOccurs="1" name="credentials" type="tns:ApiCredentials"/>
            <s:element minOccurs="0" maxOccurs="1" name="conditions" type="s:string"/>
            <s:element minOccurs="0" maxOccurs="1" name="orderBy" type="s:string"/>
            <s:element minOccurs="1" maxOccurs="1" name="limit" nillable="true" type="s:int"/>
            <s:element minOccurs="1" maxOccurs="1" name="skip" nillable="true" type="s:int"/>
{is_open}            <s:element minOccurs="0" maxOccurs="1" name="returnFields" type="tns:ArrayOfString"/>
          </s:sequence>
        </s:complexType>
      </s:element>
      <s:complexType name="ApiCredentials">
        <s:sequence>
          <s:element minOccurs="0" maxOccurs="1" name="CompanyId" type="s:string"/>
          <s:element minOccurs="0" maxOccurs="1" name="IntegratorLoginId" type="s:string"/>
          <s:element minOccurs="0" maxOccurs="1" name="IntegratorPassword" type="s:string"/>
        </s:sequence>
      </s:complexType>
      <s:complexType name="ArrayOfString">
        <s:sequence>
          <s:element minOccurs="0" maxOccurs="unbounded" name="string" nillable="true" type="s:string"/>
        </s:sequence>
      </s:complexType>
      <s:element name="{operation}Response">
        <s:complexType>
          <s:sequence>
            <s:element minOccurs="0" maxOccurs="1" name="{operation}Result" type="tns:ArrayOf{item}"/>
          </s:sequence>
        </s:complexType>
      </s:element>
      <s:complexType name="ArrayOf{item}">
        <s:sequence>
          <s:element minOccurs="0" maxOccurs="unbounded" name="{item}" nillable="true" type="tns:{item}"/>
        </s:sequence>
      </s:complexType>
      <s:complexType name="{item}">
        <s:sequence>
{field_elements}
        </s:sequence>
      </s:complexType>
    </s:schema>
  </wsdl:types>
  <wsdl:message name="{operation}SoapIn">
    <wsdl:part name="parameters" element="tns:{operation}"/>
  </wsdl:message>
  <wsdl:message name="{operation}SoapOut">
    <wsdl:part name="parameters" element="tns:{operation}Response"/>
  </wsdl:message>
  <wsdl:portType name="{api}Soap">
    <wsdl:operation name="{operation}">
      <wsdl:input message="tns:{operation}SoapIn"/>
      <wsdl:output message="tns:{operation}SoapOut"/>
    </wsdl:operation>
  </wsdl:portType>
{chr(10).join(bindings)}
  <wsdl:service name="{api}">
    <wsdl:port name="{api}Soap" binding="tns:{api}Soap">
      <soap:address location="{location}"/>
    </wsdl:port>
    <wsdl:port name="{api}Soap12" binding="tns:{api}Soap12">
      <soap12:address location="{location}"/>
    </wsdl:port>
  </wsdl:service>
</wsdl:definitions>
"""


def authored_path(api: str) -> Path:
    return WSDL_DIR / f"{api}_2.0.authored.wsdl"


def main() -> None:
    WSDL_DIR.mkdir(parents=True, exist_ok=True)
    for api in APIS:
        authored_path(api).write_text(wsdl(api), encoding="utf-8")
        print(authored_path(api).relative_to(WSDL_DIR.parent.parent.parent.parent))


if __name__ == "__main__":
    main()
