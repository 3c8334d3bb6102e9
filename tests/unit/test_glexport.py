"""GLExport reading: every sample, money as Decimal, id lists, hostile and malformed input."""

import json
from decimal import Decimal

import pytest

from connectwise.errors import CutShortError, DocumentError
from connectwise.glexport import GLBatch
from connectwise.glexport.batch import json_line
from connectwise.glexport.models import Detail, PurchaseDetail, Transaction
from tests.conftest import SAMPLES
from tests.glexport_kept import read_xml as parse_glexport


def sample(name: str) -> bytes:
    return (SAMPLES / name).read_bytes()


def test_invoice_sample_parses_with_money_as_decimal_and_ids_as_ints() -> None:
    batch = parse_glexport(sample("glexport_invoices.xml"))
    tx = batch.document.Transactions[0]
    assert batch.batch_id == "4531905d-2e3e-428c-b5b6-0ea196534ba8"
    assert tx.Total == Decimal("42.00") and isinstance(tx.Total, Decimal)
    assert tx.GLEntryRecID == [1504, 1505, 1506, 1507, 1508, 1509]
    assert [d.GLEntryRecID for d in tx.Details] == [[1503], [1510]]
    assert [d.Total for d in tx.Details] == [Decimal("-35.00"), Decimal("-7.00")]
    assert tx.Taxable is True and tx.UseAvalara is False  # Y / N
    assert batch.document.ExportInvoices is True and batch.document.ExportExpenses is False
    assert batch.document.Customers[0].TaxRate == Decimal("20.00")  # "20.00%"


def test_summaries_of_the_three_samples() -> None:
    assert parse_glexport(sample("glexport_invoices.xml")).summary() == {
        "batch_id": "4531905d-2e3e-428c-b5b6-0ea196534ba8",
        "counts": {"invoices": 1, "expenses": 0, "procurement": 0},
        "totals": {"invoices": "42.00", "expenses": "0.00", "procurement": "0.00"},
        "gl_entry_ids": 8,
    }
    expenses = parse_glexport(sample("glexport_expenses.xml"))
    assert expenses.summary()["totals"]["expenses"] == "33.95"
    assert expenses.gl_entry_ids() == [1132, 1138, 1139, 1140, 1141]
    assert expenses.document.ExpenseBills is not None
    assert expenses.document.ExpenseBills.NonReimbursableExpenseRecIDs == [1132, 1133, 1134, 1135, 1136, 1137]
    procurement = parse_glexport(sample("glexport_procurement.xml"))
    assert procurement.counts()["procurement"] == 2
    assert procurement.totals()["procurement"] == Decimal("1122.50")
    assert procurement.gl_entry_ids() == [1299, 1519]


def test_purchase_detail_us_datetime_and_blank_amounts() -> None:
    purchase = parse_glexport(sample("glexport_procurement.xml")).document.PurchaseTransactions[0]
    assert purchase.FreightAmount is None  # FreightAmount=""
    assert purchase.PurchaseDetails[0].DocumentDate is not None
    assert purchase.PurchaseDetails[0].DocumentDate.isoformat() == "2014-05-01T05:21:58"


def test_raw_document_is_handed_on_byte_for_byte() -> None:
    raw = sample("glexport_procurement.xml")
    assert parse_glexport(raw).kept.content == raw


def test_json_lines_keep_money_as_strings() -> None:
    rows = [json.loads(json_line(row)) for row in parse_glexport(sample("glexport_invoices.xml")).kept.rows]
    transaction = next(r for r in rows if r["element"] == "Transaction")
    assert transaction["Total"] == "42.00"
    assert transaction["Details"][1]["Total"] == "-7.00"
    assert transaction["GLBatchID"] == "4531905d-2e3e-428c-b5b6-0ea196534ba8"


def test_unknown_attributes_are_kept_and_unknown_elements_listed() -> None:
    raw = (
        sample("glexport_invoices.xml")
        .replace(b'<Transaction DocumentType="INVOICE"', b'<Transaction NewFromCW="x" DocumentType="INVOICE"')
        .replace(b"</GLExport>", b"<Payments/></GLExport>")
    )
    batch = parse_glexport(raw)
    assert batch.document.Transactions[0].model_extra == {"NewFromCW": "x"}
    assert batch.ignored_elements == ("Payments",)


@pytest.mark.parametrize(
    ("old", "new", "message"),
    [
        (b'Total="42.00"', b'Total="forty-two"', "Transaction DocumentNumber=12331233: Total"),
        (b'Total="42.00"', b'Total="NaN"', "Transaction DocumentNumber=12331233: Total"),
        (b'GLEntryRecID="1503"', b'GLEntryRecID="15x3"', "GLEntryRecID"),
        (b'Taxable="Y" TaxCode="1"', b'Taxable="maybe" TaxCode="1"', "Taxable"),
    ],
)
def test_bad_values_name_the_record_and_the_field(old: bytes, new: bytes, message: str) -> None:
    raw = sample("glexport_invoices.xml")
    assert old in raw
    with pytest.raises(DocumentError) as caught:
        parse_glexport(raw.replace(old, new, 1))
    assert message in caught.value.message


def test_missing_total_is_an_error_not_zero() -> None:
    raw = sample("glexport_expenses.xml").replace(b' Total="33.95"', b"")
    with pytest.raises(DocumentError, match="ExpenseTransaction DocumentNumber=1132Admin1: Total"):
        parse_glexport(raw)


@pytest.mark.parametrize(
    "document",
    [b"not xml at all", b"<GLExport GLBatchID='x'><a></GLExport>", b"<GLExport GLBatchID='x'/>trailing"],
)
def test_malformed_documents_raise_document_error(document: bytes) -> None:
    with pytest.raises(DocumentError, match="not well-formed") as caught:
        parse_glexport(document)
    assert not caught.value.transient


@pytest.mark.parametrize(
    "document", [b"<GLExport GLBatchID='x'><Transactions>", b"", b"<?xml version='1.0'?>"]
)
def test_a_document_that_ends_early_is_cut_short_and_transient(document: bytes) -> None:
    with pytest.raises(CutShortError, match="cut short") as caught:
        parse_glexport(document)
    assert caught.value.transient


def test_wrong_root_is_refused() -> None:
    with pytest.raises(DocumentError, match="expected a GLExport document, got <PsaData>"):
        parse_glexport(sample("update_batch_success.xml"))


def test_external_entity_is_refused_and_no_file_is_read(tmp_path) -> None:
    secret = tmp_path / "secret.txt"
    secret.write_text("TOP-SECRET-MARKER")
    doc = (
        f'<?xml version="1.0"?><!DOCTYPE GLExport [<!ENTITY x SYSTEM "file://{secret}">]>'
        '<GLExport GLBatchID="&x;"/>'
    ).encode()
    with pytest.raises(DocumentError, match="refused") as caught:
        parse_glexport(doc)
    assert "TOP-SECRET-MARKER" not in str(caught.value)


def test_entity_expansion_bomb_is_refused() -> None:
    entities = "".join(f'<!ENTITY e{i} "{f"&e{i - 1};" * 10}">' for i in range(1, 10))
    doc = (
        f'<?xml version="1.0"?><!DOCTYPE GLExport [<!ENTITY e0 "lol">{entities}]><GLExport GLBatchID="&e9;"/>'
    )
    with pytest.raises(DocumentError, match="refused"):
        parse_glexport(doc.encode())


def test_empty_export_is_empty() -> None:
    batch = parse_glexport(b'<GLExport GLBatchID="b1" ExportInvoices="True"/>')
    assert isinstance(batch.batch, GLBatch) and batch.is_empty and batch.gl_entry_ids() == []


def words(text: str) -> list[str]:
    return text.split()


# The attribute order of records.jsonl before Detail and PurchaseDetail shared a base model.
DETAIL_ORDER = words(
    """
    DocumentType DocumentDate AccountNumber Class Cost CostAccountNumber InventoryAccountNumber
    ProductAccountNumber SalesCode Taxable Taxable2 Taxable3 Taxable4 Taxable5 ItemTaxable
    ItemID ItemPrice ItemCost Memo Description GLEntryRecID GLTypeID GLItemID ItemTypeXref
    InventoryXref CogsXref SalesDescription ItemDescription CurrencyID UomName PriceLevelXref
    LocationXref BinDescription WarehouseSiteName WarehouseAddressLine1 WarehouseAddressLine2
    WarehouseCity WarehouseState WarehouseZip WarehouseCountry WarehouseCountryCode
    UomScheduleXref SubCatDescription Serialized SerialNumbers Dropshipped ShipmentMethod
    TaxCodeXref InvoiceSummaryOption TimeEntryRecId Total Quantity TaxRate TaxCode TaxAgencyXref
    TaxNote TaxRatePercent
    """
)
PURCHASE_DETAIL_ORDER = words(
    """
    DocumentDate AccountNumber Class Cost CostAccountNumber InventoryAccountNumber SalesCode
    Taxable ItemID Quantity ItemPrice ItemCost Total Description GLEntryRecID GLTypeID GLItemID
    ItemTypeXref InventoryXref CogsXref SalesDescription ItemDescription Memo TaxNote
    VendorAccountNumber VendorNumber CurrencyID UomName PriceLevelXref LocationXref
    BinDescription WarehouseSiteName WarehouseAddressLine1 WarehouseAddressLine2 WarehouseCity
    WarehouseState WarehouseZip WarehouseCountry WarehouseCountryCode UomScheduleXref
    SubCatDescription Serialized SerialNumbers Dropshipped LineNumber ShipmentMethod
    PurchaseHeaderTaxGroup TaxCodeXref TaxRate TaxCode TaxAgencyXref
    """
)


def test_lines_keep_their_json_attribute_order() -> None:
    detail = Detail(Total=Decimal("1.00"), GLEntryRecID=[7], Extra="kept")
    assert list(detail.model_dump(mode="json")) == [*DETAIL_ORDER, "Extra"]
    assert list(PurchaseDetail(Total=Decimal("1.00")).model_dump(mode="json")) == PURCHASE_DETAIL_ORDER
    nested = Transaction(Total=Decimal("1.00"), Details=[detail]).model_dump(mode="json")["Details"][0]
    assert list(nested) == [*DETAIL_ORDER, "Extra"] and nested["GLEntryRecID"] == [7]
