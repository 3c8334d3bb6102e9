"""GLExport documents: pydantic models of every element and attribute.

Attribute names are kept exactly as ConnectWise sends them, so a model field *is* the XML
attribute. Money is Decimal, `GLEntryRecID` lists are lists of ints, flags are booleans
(ConnectWise writes `True`/`False` or `Y`/`N`), empty strings become None for typed fields.
Attributes the models do not know are kept as strings (`extra="allow"`), never dropped.
"""

from pydantic import Field

from connectwise.glexport.values import (
    CwDate,
    CwDateTime,
    CwElement,
    Flag,
    IdList,
    Money,
    OptDecimal,
    OptInt,
    Rate,
    in_order,
)


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


class GLLine(CwElement):
    """What an invoice's GL line (Detail) and a purchase line (PurchaseDetail) share.

    Each subclass lists its attributes `in_order`: the order of its JSON (records.jsonl), as
    ConnectWise's documents list them, whichever class declares them.
    """

    AccountNumber: str = ""
    Class: str = ""
    Cost: OptDecimal = None
    CostAccountNumber: str = ""
    InventoryAccountNumber: str = ""
    SalesCode: str = ""
    Taxable: Flag = None
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
    Total: Money
    Quantity: OptDecimal = None
    TaxRate: Rate = None
    TaxCode: str = ""
    TaxAgencyXref: str = ""
    TaxNote: str = ""


@in_order(
    """
        DocumentType DocumentDate AccountNumber Class Cost CostAccountNumber
        InventoryAccountNumber ProductAccountNumber SalesCode Taxable Taxable2 Taxable3 Taxable4
        Taxable5 ItemTaxable ItemID ItemPrice ItemCost Memo Description GLEntryRecID GLTypeID
        GLItemID ItemTypeXref InventoryXref CogsXref SalesDescription ItemDescription CurrencyID
        UomName PriceLevelXref LocationXref BinDescription WarehouseSiteName
        WarehouseAddressLine1 WarehouseAddressLine2 WarehouseCity WarehouseState WarehouseZip
        WarehouseCountry WarehouseCountryCode UomScheduleXref SubCatDescription Serialized
        SerialNumbers Dropshipped ShipmentMethod TaxCodeXref InvoiceSummaryOption TimeEntryRecId
        Total Quantity TaxRate TaxCode TaxAgencyXref TaxNote TaxRatePercent
    """
)
class Detail(GLLine):
    """A GL line of an invoice (revenue `RP`, sales tax `ST`, ...)."""

    DocumentType: str = ""
    DocumentDate: CwDate = None
    ProductAccountNumber: str = ""
    Taxable2: Flag = None
    Taxable3: Flag = None
    Taxable4: Flag = None
    Taxable5: Flag = None
    ItemTaxable: Flag = None
    InvoiceSummaryOption: OptInt = None
    TimeEntryRecId: OptInt = None
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


@in_order(
    """
        DocumentDate AccountNumber Class Cost CostAccountNumber InventoryAccountNumber SalesCode
        Taxable ItemID Quantity ItemPrice ItemCost Total Description GLEntryRecID GLTypeID
        GLItemID ItemTypeXref InventoryXref CogsXref SalesDescription ItemDescription Memo
        TaxNote VendorAccountNumber VendorNumber CurrencyID UomName PriceLevelXref LocationXref
        BinDescription WarehouseSiteName WarehouseAddressLine1 WarehouseAddressLine2
        WarehouseCity WarehouseState WarehouseZip WarehouseCountry WarehouseCountryCode
        UomScheduleXref SubCatDescription Serialized SerialNumbers Dropshipped LineNumber
        ShipmentMethod PurchaseHeaderTaxGroup TaxCodeXref TaxRate TaxCode TaxAgencyXref
    """
)
class PurchaseDetail(GLLine):
    """A line of a purchase-order receipt."""

    DocumentDate: CwDateTime = None
    VendorAccountNumber: str = ""
    VendorNumber: str = ""
    LineNumber: OptInt = None
    PurchaseHeaderTaxGroup: str = ""


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
