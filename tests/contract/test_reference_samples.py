"""The sandbox and the parser against every reference sample of ConnectWise's documents."""

from collections import defaultdict
from xml.etree.ElementTree import Element

import pytest

from connectwise.accounting_interface import wire
from connectwise.glexport import GLExport
from connectwise.glexport.models import (
    Customer,
    Detail,
    ExpenseBillSection,
    ExpenseDetail,
    ExpenseTransaction,
    PurchaseDetail,
    PurchaseTransaction,
    Transaction,
    Vendor,
)
from connectwise.safexml import parse_xml
from sandbox import documents
from sandbox.accounting import AccountingInterface
from sandbox.data import generate
from tests.conftest import SAMPLES
from tests.glexport_kept import read_xml

GLEXPORT_SAMPLES = sorted(SAMPLES.glob("glexport_*.xml"))
MODELS = {
    "GLExport": GLExport,
    "Vendor": Vendor,
    "Customer": Customer,
    "Transaction": Transaction,
    "Detail": Detail,
    "ExpenseBills": ExpenseBillSection,
    "ExpenseTransaction": ExpenseTransaction,
    "ExpenseDetail": ExpenseDetail,
    "PurchaseTransaction": PurchaseTransaction,
    "PurchaseDetail": PurchaseDetail,
}


def shape(roots: list[Element]) -> dict[str, set[str]]:
    """Element name -> every attribute name seen on it."""
    seen: dict[str, set[str]] = defaultdict(set)
    for root in roots:
        for element in root.iter():
            seen[element.tag].update(element.attrib)
    return dict(seen)


def reference_shape() -> dict[str, set[str]]:
    return shape([parse_xml(path.read_bytes()) for path in GLEXPORT_SAMPLES])


def sandbox_shape() -> dict[str, set[str]]:
    accounting = AccountingInterface(generate(3, invoices=30, expenses=8, purchases=6))
    form = {wire.EXPORT_INVOICES: "True", wire.EXPORT_EXPENSES: "True", wire.EXPORT_INVENTORY: "True"}
    return shape([parse_xml(accounting.export(form))])


def test_sandbox_glexport_has_the_reference_elements_and_attributes() -> None:
    assert sandbox_shape() == reference_shape()


@pytest.mark.parametrize("tag", sorted(MODELS))
def test_every_reference_attribute_is_a_declared_model_field(tag: str) -> None:
    attributes = reference_shape()[tag]
    assert attributes <= set(MODELS[tag].model_fields), attributes - set(MODELS[tag].model_fields)


@pytest.mark.parametrize("path", GLEXPORT_SAMPLES, ids=lambda p: p.name)
def test_every_reference_attribute_is_parsed_into_a_field_not_left_as_extra(path) -> None:
    document = read_xml(path.read_bytes()).document

    def walk(model) -> None:
        assert not model.model_extra, (type(model).__name__, model.model_extra)
        for value in model.__dict__.values():
            for item in value if isinstance(value, list) else [value]:
                if hasattr(item, "model_extra"):
                    walk(item)

    walk(document)


def test_sandbox_documents_parse_and_add_up() -> None:
    accounting = AccountingInterface(generate(5, invoices=25, expenses=6, purchases=5))
    form = {wire.EXPORT_INVOICES: "True", wire.EXPORT_EXPENSES: "True", wire.EXPORT_INVENTORY: "True"}
    batch = read_xml(accounting.export(form))
    for tx in batch.document.Transactions:
        assert tx.Total == -sum(d.Total for d in tx.Details)  # credits balance the receivable
        assert tx.Total == tx.SalesTax + sum(-d.Total for d in tx.Details if d.GLTypeID == "RP")
    for expense in batch.expense_transactions:
        assert expense.Total == sum(d.Total for d in expense.ExpenseDetails)
    for purchase in batch.document.PurchaseTransactions:
        assert purchase.Total == -sum(d.Total for d in purchase.PurchaseDetails)


@pytest.mark.parametrize(
    ("sample", "produced"),
    [
        ("update_batch_success.xml", documents.psa_data(wire.UPDATE_SUCCESS)),
        ("update_batch_error.xml", documents.psa_error(wire.EMPTY_ENTRY_LIST, "updateBatch")),
    ],
)
def test_sandbox_update_replies_match_the_reference(sample: str, produced: bytes) -> None:
    reference = (SAMPLES / sample).read_bytes()
    assert produced.strip() == reference.replace(b"\r\n", b"\n").strip()
