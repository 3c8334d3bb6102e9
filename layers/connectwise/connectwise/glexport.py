"""GLExport documents: pydantic models of every element and attribute, and a hardened parser.

Attribute names are kept exactly as ConnectWise sends them, so a model field *is* the XML
attribute. Money is Decimal, `GLEntryRecID` lists are lists of ints, flags are booleans
(ConnectWise writes `True`/`False` or `Y`/`N`), empty strings become None for typed fields.
Attributes the models do not know are kept as strings (`extra="allow"`), never dropped.
"""

from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal
from functools import cache
from typing import Annotated, Any
from xml.etree.ElementTree import Element

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, ValidationError

from connectwise import wire
from connectwise.errors import DocumentError
from connectwise.safexml import parse_xml


def _rate(value: Any) -> Any:
    """`20.00%` and `20.000000` are both percentages: Decimal('20.00')."""
    return value.strip().rstrip("%") if isinstance(value, str) else value


def _ids(value: Any) -> Any:
    return wire.parse_ids(value) if isinstance(value, str) else value


def _us_datetime(value: Any) -> Any:
    """`PurchaseDetail/@DocumentDate` is written `5/1/2014 5:21:58 AM` (site local time)."""
    if isinstance(value, str) and "/" in value:
        return datetime.strptime(value.strip(), "%m/%d/%Y %I:%M:%S %p")
    return value


# Empty attributes are dropped before validation (see _attributes), so typed fields are None
# when ConnectWise leaves them blank. Pydantic parses the rest natively: Decimal refuses NaN,
# infinities and thousands separators; bool takes True/False/Y/N in any case.
Money = Decimal
OptDecimal = Decimal | None
Rate = Annotated[Decimal | None, BeforeValidator(_rate)]
OptInt = int | None
Flag = bool | None
IdList = Annotated[list[int], BeforeValidator(_ids)]
CwDate = date | None
CwDateTime = Annotated[datetime | None, BeforeValidator(_us_datetime)]


class CwElement(BaseModel):
    """One XML element; unknown attributes are kept as strings."""

    model_config = ConfigDict(extra="allow")


class Vendor(CwElement):
    MemberID: str = ""
    VendorName: str = ""
    CompanyName: str = ""
    VendorNumber: str = ""
    FirstName: str = ""
    MiddleInitial: str = ""
    LastName: str = ""
    AccountNumber: str = ""
    SiteName: str = ""
    AddressLine1: str = ""
    AddressLine2: str = ""
    AddressLine3: str = ""
    City: str = ""
    State: str = ""
    PostalCode: str = ""
    Country: str = ""
    CountryCode: str = ""
    PhoneNumber: str = ""
    BillingTerms: str = ""
    DueDays: OptInt = None
    TaxGroup: str = ""


class Customer(CwElement):
    CompanyName: str = ""
    ContactName: str = ""
    SiteName: str = ""
    AddressLine1: str = ""
    AddressLine2: str = ""
    AddressLine3: str = ""
    City: str = ""
    State: str = ""
    PostalCode: str = ""
    Country: str = ""
    CountryCode: str = ""
    PhoneNumber: str = ""
    Taxable: Flag = None
    AccountNumber: str = ""
    BillingTerms: str = ""
    BillingTermsXref: str = ""
    TaxCode: str = ""
    StateTaxXref: str = ""
    CountyTaxXref: str = ""
    CityTaxXref: str = ""
    Level4TaxXref: str = ""
    Level5TaxXref: str = ""
    StateTaxRate: Rate = None
    CountyTaxRate: Rate = None
    CityTaxRate: Rate = None
    Level4TaxRate: Rate = None
    Level5TaxRate: Rate = None
    TaxAgencyXref: str = ""
    StateTaxAgencyXref: str = ""
    CountyTaxAgencyXref: str = ""
    CityTaxAgencyXref: str = ""
    Level4TaxAgencyXref: str = ""
    Level5TaxAgencyXref: str = ""
    TaxAccountNumber: str = ""
    TaxRate: Rate = None
    DueDays: OptInt = None
    CurrencyID: str = ""
    CompanyType: str = ""
    ContactEmailAddress: str = ""


class Detail(CwElement):
    """A GL line of an invoice (revenue `RP`, sales tax `ST`, ...)."""

    DocumentType: str = ""
    DocumentDate: CwDate = None
    AccountNumber: str = ""
    Class: str = ""
    Cost: OptDecimal = None
    CostAccountNumber: str = ""
    InventoryAccountNumber: str = ""
    ProductAccountNumber: str = ""
    SalesCode: str = ""
    Taxable: Flag = None
    Taxable2: Flag = None
    Taxable3: Flag = None
    Taxable4: Flag = None
    Taxable5: Flag = None
    ItemTaxable: Flag = None
    ItemID: str = ""
    ItemPrice: OptDecimal = None
    ItemCost: OptDecimal = None
    Memo: str = ""
    Description: str = ""
    GLEntryRecID: IdList = []
    GLTypeID: str = ""
    GLItemID: str = ""
    ItemTypeXref: str = ""
    InventoryXref: str = ""
    CogsXref: str = ""
    SalesDescription: str = ""
    ItemDescription: str = ""
    CurrencyID: str = ""
    UomName: str = ""
    PriceLevelXref: str = ""
    LocationXref: str = ""
    BinDescription: str = ""
    WarehouseSiteName: str = ""
    WarehouseAddressLine1: str = ""
    WarehouseAddressLine2: str = ""
    WarehouseCity: str = ""
    WarehouseState: str = ""
    WarehouseZip: str = ""
    WarehouseCountry: str = ""
    WarehouseCountryCode: str = ""
    UomScheduleXref: str = ""
    SubCatDescription: str = ""
    Serialized: Flag = None
    SerialNumbers: str = ""
    Dropshipped: Flag = None
    ShipmentMethod: str = ""
    TaxCodeXref: str = ""
    InvoiceSummaryOption: OptInt = None
    TimeEntryRecId: OptInt = None
    Total: Money
    Quantity: OptDecimal = None
    TaxRate: Rate = None
    TaxCode: str = ""
    TaxAgencyXref: str = ""
    TaxNote: str = ""
    TaxRatePercent: Rate = None


class Transaction(CwElement):
    """An unposted invoice (`DocumentType="INVOICE"`, `GLTypeID="AR"`)."""

    DocumentType: str = ""
    DocumentDate: CwDate = None
    CompanyName: str = ""
    ProjectName: str = ""
    Total: Money
    TaxableTotal: OptDecimal = None
    SalesTax: OptDecimal = None
    StateTax: OptDecimal = None
    CountyTax: OptDecimal = None
    CityTax: OptDecimal = None
    TaxableAmount1: OptDecimal = None
    TaxableAmount2: OptDecimal = None
    TaxableAmount3: OptDecimal = None
    TaxableAmount4: OptDecimal = None
    TaxableAmount5: OptDecimal = None
    DocumentNumber: str = ""
    Memo: str = ""
    Description: str = ""
    Taxable: Flag = None
    TaxCode: str = ""
    TaxGroup: str = ""
    TaxGroupRate: Rate = None
    TaxAccountNumber: str = ""
    PiggyBackFlag: Flag = None
    Attention: str = ""
    SiteName: str = ""
    AddressLine1: str = ""
    AddressLine2: str = ""
    AddressLine3: str = ""
    City: str = ""
    State: str = ""
    PostalCode: str = ""
    Country: str = ""
    CountryCode: str = ""
    PhoneNumber: str = ""
    ShipCompanyAccountNumber: str = ""
    ShipCompanyType: str = ""
    ShipTaxID: str = ""
    ShipCompanyName: str = ""
    ShipSiteName: str = ""
    ShipAddressLine1: str = ""
    ShipAddressLine2: str = ""
    ShipAddressLine3: str = ""
    ShipCity: str = ""
    ShipState: str = ""
    ShipPostalCode: str = ""
    ShipCountry: str = ""
    ShipCountryCode: str = ""
    ShipPhoneNumber: str = ""
    ShipContactName: str = ""
    BillingTerms: str = ""
    BillingTermsXref: str = ""
    DueDays: OptInt = None
    DueDate: CwDate = None
    AccountNumber: str = ""
    Class: str = ""
    GLEntryRecID: IdList = []
    CompanyAccountNumber: str = ""
    TaxAgencyXref: str = ""
    StateTaxXref: str = ""
    CountyTaxXref: str = ""
    CityTaxXref: str = ""
    SalesRepID: str = ""
    SalesRepName: str = ""
    PONumber: str = ""
    GLTypeID: str = ""
    SalesTerritory: str = ""
    CurrencyID: str = ""
    CompanyType: str = ""
    BillingType: str = ""
    TaxDPAppliedFlag: Flag = None
    EmailDeliveryFlag: Flag = None
    PrintDeliveryFlag: Flag = None
    AgreementPrePaymentFlag: Flag = None
    TaxID: str = ""
    UseAvalara: Flag = None
    SendAvalaraTax: Flag = None
    Details: list[Detail] = Field(default_factory=list)


class ExpenseDetail(CwElement):
    GLTypeID: str = ""
    Memo: str = ""
    AccountNumber: str = ""
    Class: str = ""
    Total: Money
    CompanyName: str = ""
    CompanyAccountNumber: str = ""
    DocumentDate: CwDate = None
    Billable: Flag = None
    Reimbursable: Flag = None
    CompanyAdvance: Flag = None
    CurrencyID: str = ""
    GLEntryRecID: IdList = []


class ExpenseTransaction(CwElement):
    """A member's expense report."""

    Memo: str = ""
    VendorNumber: str = ""
    MemberID: str = ""
    FirstName: str = ""
    LastName: str = ""
    DocumentType: str = ""
    DocumentDate: CwDate = None
    DocumentNumber: str = ""
    APAccountNumber: str = ""
    Class: str = ""
    CurrencyID: str = ""
    GLEntryRecID: IdList = []
    Total: Money
    ExpenseDetails: list[ExpenseDetail] = Field(default_factory=list)


class ExpenseBillSection(CwElement):
    """`<ExpenseBills>`: the expense reports and the non-reimbursable expense ids."""

    NonReimbursableExpenseRecIDs: IdList = []
    ExpenseTransactions: list[ExpenseTransaction] = Field(default_factory=list)


class PurchaseDetail(CwElement):
    DocumentDate: CwDateTime = None
    AccountNumber: str = ""
    Class: str = ""
    Cost: OptDecimal = None
    CostAccountNumber: str = ""
    InventoryAccountNumber: str = ""
    SalesCode: str = ""
    Taxable: Flag = None
    ItemID: str = ""
    Quantity: OptDecimal = None
    ItemPrice: OptDecimal = None
    ItemCost: OptDecimal = None
    Total: Money
    Description: str = ""
    GLEntryRecID: IdList = []
    GLTypeID: str = ""
    GLItemID: str = ""
    ItemTypeXref: str = ""
    InventoryXref: str = ""
    CogsXref: str = ""
    SalesDescription: str = ""
    ItemDescription: str = ""
    Memo: str = ""
    TaxNote: str = ""
    VendorAccountNumber: str = ""
    VendorNumber: str = ""
    CurrencyID: str = ""
    UomName: str = ""
    PriceLevelXref: str = ""
    LocationXref: str = ""
    BinDescription: str = ""
    WarehouseSiteName: str = ""
    WarehouseAddressLine1: str = ""
    WarehouseAddressLine2: str = ""
    WarehouseCity: str = ""
    WarehouseState: str = ""
    WarehouseZip: str = ""
    WarehouseCountry: str = ""
    WarehouseCountryCode: str = ""
    UomScheduleXref: str = ""
    SubCatDescription: str = ""
    Serialized: Flag = None
    SerialNumbers: str = ""
    Dropshipped: Flag = None
    LineNumber: OptInt = None
    ShipmentMethod: str = ""
    PurchaseHeaderTaxGroup: str = ""
    TaxCodeXref: str = ""
    TaxRate: Rate = None
    TaxCode: str = ""
    TaxAgencyXref: str = ""


class PurchaseTransaction(CwElement):
    """A purchase-order receipt (packing slip)."""

    DocumentNumber: str = ""
    DocumentDate: CwDate = None
    PurchaseDate: CwDate = None
    VendorName: str = ""
    VendorNumber: str = ""
    VendorAccountNumber: str = ""
    VendorInvoiceNumber: str = ""
    VendorInvoiceDate: CwDate = None
    FreightAmount: OptDecimal = None
    FreightPackingSlip: str = ""
    APAccountNumber: str = ""
    Class: str = ""
    ContactName: str = ""
    SiteName: str = ""
    AddressLine1: str = ""
    AddressLine2: str = ""
    AddressLine3: str = ""
    City: str = ""
    State: str = ""
    PostalCode: str = ""
    Country: str = ""
    CountryCode: str = ""
    PhoneNumber: str = ""
    Description: str = ""
    Memo: str = ""
    BillingTerms: str = ""
    CurrencyID: str = ""
    PackingSlip: str = ""
    BillingTermsXref: str = ""
    CompanyType: str = ""
    TaxCode: str = ""
    TaxGroup: str = ""
    TaxGroupRate: Rate = None
    TaxAgencyXref: str = ""
    StateTaxXref: str = ""
    CountyTaxXref: str = ""
    CityTaxXref: str = ""
    ShipToCompanyName: str = ""
    ShipToCompanyAccountNumber: str = ""
    ShipToCompanyType: str = ""
    ShipToContactName: str = ""
    ShipToSiteName: str = ""
    ShipToAddressLine1: str = ""
    ShipToAddressLine2: str = ""
    ShipToAddressLine3: str = ""
    ShipToCity: str = ""
    ShipToState: str = ""
    ShipToPostalCode: str = ""
    ShipToCountry: str = ""
    ShipToCountryCode: str = ""
    ShipToPhoneNumber: str = ""
    ShipToTaxGroup: str = ""
    Dropshipped: Flag = None
    DueDays: OptInt = None
    UseAvalara: Flag = None
    PurchaseHeaderTaxGroup: str = ""
    PurchaseHeaderTaxable: Flag = None
    PurchaseHeaderFreightTaxable: Flag = None
    PurchaseInformation: str = ""
    Total: Money
    PurchaseDetails: list[PurchaseDetail] = Field(default_factory=list)


class GLExport(CwElement):
    """The root: export options, the batch id and the record sections."""

    CogsOption: Flag = None
    SalesTaxOption: Flag = None
    SalesTaxGroupsOption: Flag = None
    InventoryPostOption: Flag = None
    ExpenseAsBillOption: Flag = None
    ExpenseSummaryOption: Flag = None
    ExportInvoices: Flag = None
    ExportExpenses: Flag = None
    ExportInventory: Flag = None
    SyncPayments: Flag = None
    GLBatchID: str
    LastPaymentSync: str = ""
    DropShipCogsOption: Flag = None
    UomProductOption: Flag = None
    Vendors: list[Vendor] = Field(default_factory=list)
    Customers: list[Customer] = Field(default_factory=list)
    Transactions: list[Transaction] = Field(default_factory=list)
    ExpenseBills: ExpenseBillSection | None = None
    PurchaseTransactions: list[PurchaseTransaction] = Field(default_factory=list)


KINDS = ("invoices", "expenses", "procurement")


@dataclass(frozen=True)
class GLBatch:
    """A GLExport as ConnectWise sent it (`raw`, byte for byte: XML from the Accounting
    Interface, JSON from the REST API) and as parsed (`document`)."""

    raw: bytes
    document: GLExport
    ignored_elements: tuple[str, ...] = field(default=())
    media_type: str = "application/xml"

    @property
    def raw_name(self) -> str:
        """glexport.xml or glexport.json."""
        return "glexport.json" if self.media_type == "application/json" else "glexport.xml"

    @property
    def batch_id(self) -> str:
        return self.document.GLBatchID

    @property
    def expense_transactions(self) -> list[ExpenseTransaction]:
        bills = self.document.ExpenseBills
        return bills.ExpenseTransactions if bills else []

    def records(self, kind: str) -> list[Transaction] | list[ExpenseTransaction] | list[PurchaseTransaction]:
        if kind == "invoices":
            return self.document.Transactions
        if kind == "expenses":
            return self.expense_transactions
        if kind == "procurement":
            return self.document.PurchaseTransactions
        raise ValueError(f"unknown kind {kind!r}; expected one of {', '.join(KINDS)}")

    def counts(self) -> dict[str, int]:
        return {kind: len(self.records(kind)) for kind in KINDS}

    def totals(self) -> dict[str, Decimal]:
        return {kind: sum((r.Total for r in self.records(kind)), Decimal("0.00")) for kind in KINDS}

    @property
    def is_empty(self) -> bool:
        return not any(self.counts().values())

    def gl_entry_ids(self) -> list[int]:
        """Distinct ids of every `GLEntryRecID` attribute, sorted: what an update posts."""
        ids: set[int] = set()
        for tx in self.document.Transactions:
            ids.update(tx.GLEntryRecID)
            for detail in tx.Details:
                ids.update(detail.GLEntryRecID)
        for expense in self.expense_transactions:
            ids.update(expense.GLEntryRecID)
            for expense_detail in expense.ExpenseDetails:
                ids.update(expense_detail.GLEntryRecID)
        for purchase in self.document.PurchaseTransactions:
            for purchase_detail in purchase.PurchaseDetails:
                ids.update(purchase_detail.GLEntryRecID)
        return sorted(ids)

    def summary(self) -> dict[str, Any]:
        """The JSON summary printed by `python -m connectwise glexport` and sent in events."""
        return {
            "batch_id": self.batch_id,
            "counts": self.counts(),
            "totals": {kind: str(total) for kind, total in self.totals().items()},
            "gl_entry_ids": len(self.gl_entry_ids()),
        }

    def json_lines(self) -> list[dict[str, Any]]:
        """One JSON-ready object per record, tagged with its element name and the batch id."""
        doc = self.document
        rows: list[dict[str, Any]] = []
        sections: list[tuple[str, list[Any]]] = [
            ("Vendor", doc.Vendors),
            ("Customer", doc.Customers),
            ("Transaction", doc.Transactions),
            ("ExpenseTransaction", self.expense_transactions),
            ("PurchaseTransaction", doc.PurchaseTransactions),
        ]
        for element, records in sections:
            for record in records:
                rows.append({"element": element, "GLBatchID": doc.GLBatchID} | record.model_dump(mode="json"))
        return rows


# Child element -> (model field on the parent, model of the child, its own children).
_CHILDREN: dict[str, dict[str, tuple[str, type[CwElement]]]] = {
    "GLExport": {},
    "Transaction": {"Detail": ("Details", Detail)},
    "ExpenseTransaction": {"ExpenseDetail": ("ExpenseDetails", ExpenseDetail)},
    "PurchaseTransaction": {"PurchaseDetail": ("PurchaseDetails", PurchaseDetail)},
    "ExpenseBills": {"ExpenseTransaction": ("ExpenseTransactions", ExpenseTransaction)},
}
_SECTIONS: dict[str, tuple[str, str, type[CwElement]]] = {
    # section element -> (GLExport field, record element, record model)
    "Vendors": ("Vendors", "Vendor", Vendor),
    "Customers": ("Customers", "Customer", Customer),
    "Transactions": ("Transactions", "Transaction", Transaction),
    "PurchaseTransactions": ("PurchaseTransactions", "PurchaseTransaction", PurchaseTransaction),
}


def parse_glexport(raw: bytes) -> GLBatch:
    """Parse a GLExport document; raise DocumentError naming the record and the problem."""
    root = parse_xml(raw, "GLExport document")
    if root.tag != "GLExport":
        raise DocumentError(f"expected a GLExport document, got <{root.tag}>")
    ignored: list[str] = []
    values = _attributes(root, GLExport)
    for section in root:
        if section.tag in _SECTIONS:
            field_name, record_tag, model = _SECTIONS[section.tag]
            values[field_name] = [
                _record(child, model, ignored) for child in section if _keep(child, record_tag, ignored)
            ]
        elif section.tag == "ExpenseBills":
            values["ExpenseBills"] = _record(section, ExpenseBillSection, ignored)
        else:
            ignored.append(section.tag)
    try:
        document = GLExport.model_validate(values)
    except ValidationError as exc:
        raise DocumentError(_describe("GLExport", root, exc)) from None
    if not document.GLBatchID and any(values.get(name) for name, _, _ in _SECTIONS.values()):
        raise DocumentError("GLExport has records but no GLBatchID")
    return GLBatch(raw=raw, document=document, ignored_elements=tuple(sorted(set(ignored))))


def _keep(child: Element, expected_tag: str, ignored: list[str]) -> bool:
    if child.tag == expected_tag:
        return True
    ignored.append(child.tag)
    return False


def _record(element: Element, model: type[CwElement], ignored: list[str]) -> Any:
    values = _attributes(element, model)
    children = _CHILDREN.get(element.tag, {})
    for child in element:
        if child.tag in children:
            field_name, child_model = children[child.tag]
            values.setdefault(field_name, []).append(_record(child, child_model, ignored))
        else:
            ignored.append(child.tag)
    try:
        return model.model_validate(values)
    except ValidationError as exc:
        raise DocumentError(_describe(element.tag, element, exc)) from None


def _attributes(element: Element, model: type[CwElement]) -> dict[str, Any]:
    """The element's attributes, leaving out blank ones of typed (non-text) fields."""
    typed = _typed_fields(model)
    return {name: value for name, value in element.attrib.items() if value or name not in typed}


@cache
def _typed_fields(model: type[CwElement]) -> frozenset[str]:
    return frozenset(name for name, info in model.model_fields.items() if info.annotation is not str)


def _describe(tag: str, element: Element, exc: ValidationError) -> str:
    """`Transaction DocumentNumber=123: Total: not a decimal amount: 'x'`, never the whole record."""
    label = element.get("DocumentNumber") or element.get("GLEntryRecID") or element.get("CompanyName") or ""
    where = f"{tag} DocumentNumber={label}" if element.get("DocumentNumber") else f"{tag} {label}".strip()
    problems = []
    for error in exc.errors(include_url=False, include_input=False)[:3]:
        location = ".".join(str(part) for part in error["loc"])
        problems.append(f"{location}: {error['msg'].removeprefix('Value error, ')}")
    return f"{where}: {'; '.join(problems)}"
