"""The GLExport XML parser: hardened (no DTD, no entities, no network), every attribute typed by
the models, errors naming the record and the problem, never echoing a whole record."""

from functools import cache
from typing import Any
from xml.etree.ElementTree import Element

from pydantic import ValidationError

from connectwise.errors import DocumentError, describe_validation
from connectwise.glexport.batch import GLBatch
from connectwise.glexport.models import (
    Customer,
    Detail,
    ExpenseBillSection,
    ExpenseDetail,
    ExpenseTransaction,
    GLExport,
    PurchaseDetail,
    PurchaseTransaction,
    Transaction,
    Vendor,
)
from connectwise.glexport.values import CwElement
from connectwise.safexml import parse_xml

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
    """`Transaction DocumentNumber=123: Total: not a decimal amount`, never the whole record."""
    label = element.get("DocumentNumber") or element.get("GLEntryRecID") or element.get("CompanyName") or ""
    where = f"{tag} DocumentNumber={label}" if element.get("DocumentNumber") else f"{tag} {label}".strip()
    return f"{where}: {describe_validation(exc, limit=3)}"
