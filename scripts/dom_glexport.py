"""The GLExport readers the connector had before it streamed (the DOM readers): the whole
document parsed at once (defusedxml's ElementTree, json.loads), then every record validated
with its pydantic model. Kept out of the layer, as the benchmark's baseline
(scripts/bench_stream.py) and the reference the streaming readers are tested against
(tests/unit/test_glexport_stream.py): same records, totals, GL entry ids and errors."""

from dataclasses import dataclass, field
from decimal import Decimal
from functools import cache
from typing import Any, get_origin
from xml.etree.ElementTree import Element

from pydantic import ValidationError

from connectwise import jsonmoney
from connectwise.errors import DocumentError, describe_validation
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
from connectwise.glexport.rest_json import MAPPING, NOT_MAPPED, SECTIONS
from connectwise.glexport.values import CwElement
from connectwise.models import KINDS
from connectwise.safexml import parse_xml


@dataclass(frozen=True)
class DomBatch:
    """A GLExport as sent (`raw`) and as parsed (`document`), all in memory."""

    raw: bytes
    document: GLExport
    ignored_elements: tuple[str, ...] = field(default=())
    media_type: str = "application/xml"

    @property
    def batch_id(self) -> str:
        return self.document.GLBatchID

    @property
    def expense_transactions(self) -> list[ExpenseTransaction]:
        bills = self.document.ExpenseBills
        return bills.ExpenseTransactions if bills else []

    def records(self, kind: str) -> list[Any]:
        lists: dict[str, list[Any]] = {
            "invoices": self.document.Transactions,
            "expenses": self.expense_transactions,
            "procurement": self.document.PurchaseTransactions,
        }
        return lists[kind]

    def counts(self) -> dict[str, int]:
        return {kind: len(self.records(kind)) for kind in KINDS}

    def totals(self) -> dict[str, Decimal]:
        return {kind: sum((r.Total for r in self.records(kind)), Decimal("0.00")) for kind in KINDS}

    def gl_entry_ids(self) -> list[int]:
        return sorted({i for ids in self.gl_entry_ids_by_kind().values() for i in ids})

    def gl_entry_ids_by_kind(self) -> dict[str, list[int]]:
        ids: dict[str, set[int]] = {kind: set() for kind in KINDS}
        for tx in self.document.Transactions:
            ids["invoices"].update(tx.GLEntryRecID)
            for detail in tx.Details:
                ids["invoices"].update(detail.GLEntryRecID)
        for expense in self.expense_transactions:
            ids["expenses"].update(expense.GLEntryRecID)
            for expense_detail in expense.ExpenseDetails:
                ids["expenses"].update(expense_detail.GLEntryRecID)
        for purchase in self.document.PurchaseTransactions:
            for purchase_detail in purchase.PurchaseDetails:
                ids["procurement"].update(purchase_detail.GLEntryRecID)
        return {kind: sorted(found) for kind, found in ids.items()}

    def json_lines(self) -> list[dict[str, Any]]:
        doc = self.document
        sections: list[tuple[str, list[Any]]] = [
            ("Vendor", doc.Vendors),
            ("Customer", doc.Customers),
            ("Transaction", doc.Transactions),
            ("ExpenseTransaction", self.expense_transactions),
            ("PurchaseTransaction", doc.PurchaseTransactions),
        ]
        return [
            {"element": element, "GLBatchID": doc.GLBatchID} | record.model_dump(mode="json")
            for element, records in sections
            for record in records
        ]


# --- XML --------------------------------------------------------------------------------------

_CHILDREN: dict[str, dict[str, tuple[str, type[CwElement]]]] = {
    "GLExport": {},
    "Transaction": {"Detail": ("Details", Detail)},
    "ExpenseTransaction": {"ExpenseDetail": ("ExpenseDetails", ExpenseDetail)},
    "PurchaseTransaction": {"PurchaseDetail": ("PurchaseDetails", PurchaseDetail)},
    "ExpenseBills": {"ExpenseTransaction": ("ExpenseTransactions", ExpenseTransaction)},
}
_SECTIONS: dict[str, tuple[str, str, type[CwElement]]] = {
    "Vendors": ("Vendors", "Vendor", Vendor),
    "Customers": ("Customers", "Customer", Customer),
    "Transactions": ("Transactions", "Transaction", Transaction),
    "PurchaseTransactions": ("PurchaseTransactions", "PurchaseTransaction", PurchaseTransaction),
}


def parse_glexport(raw: bytes) -> DomBatch:
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
    return DomBatch(raw=raw, document=document, ignored_elements=tuple(sorted(set(ignored))))


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
    typed = _typed_fields(model)
    return {name: value for name, value in element.attrib.items() if value or name not in typed}


@cache
def _typed_fields(model: type[CwElement]) -> frozenset[str]:
    return frozenset(name for name, info in model.model_fields.items() if info.annotation is not str)


def _describe(tag: str, element: Element, exc: ValidationError) -> str:
    label = element.get("DocumentNumber") or element.get("GLEntryRecID") or element.get("CompanyName") or ""
    where = f"{tag} DocumentNumber={label}" if element.get("DocumentNumber") else f"{tag} {label}".strip()
    return f"{where}: {describe_validation(exc, limit=3)}"


# --- REST JSON --------------------------------------------------------------------------------


def parse_rest_glexport(raw: bytes, batch_id: str, kinds: dict[str, bool]) -> DomBatch:
    try:
        document = jsonmoney.loads(raw)
    except ValueError:
        raise DocumentError("the REST GLExport is not JSON") from None
    if not isinstance(document, dict):
        raise DocumentError(f"expected a GLExport object, got {type(document).__name__}")
    values: dict[str, Any] = {
        "GLBatchID": batch_id,
        "ExportInvoices": kinds.get("invoices", False),
        "ExportExpenses": kinds.get("expenses", False),
        "ExportInventory": kinds.get("procurement", False),
    }
    for section, (model, attribute, lines) in SECTIONS.items():
        records = [
            _rest_record(section, i, item, model, lines) for i, item in enumerate(_list(document, section))
        ]
        if attribute == "ExpenseBills":
            values[attribute] = ExpenseBillSection(ExpenseTransactions=records) if records else None
        else:
            values[attribute] = records
    ignored = [name for name in NOT_MAPPED if _list(document, name)]
    ignored += [
        name
        for name, value in document.items()
        if name not in SECTIONS and name not in NOT_MAPPED and name != "exportSettings" and value
    ]
    return DomBatch(
        raw=raw,
        document=GLExport.model_validate(values),
        ignored_elements=tuple(sorted(ignored)),
        media_type="application/json",
    )


def _list(document: dict[str, Any], name: str) -> list[Any]:
    value = document.get(name) or []
    if not isinstance(value, list):
        raise DocumentError(f"GLExport.{name} is not a list")
    return value


def _rest_record(
    section: str,
    index: int,
    item: Any,
    model: type[CwElement],
    lines: tuple[str, str, type[CwElement]] | None,
) -> Any:
    where = f"{section}[{index}]"
    if not isinstance(item, dict):
        raise DocumentError(f"{where} is not an object")
    if item.get("documentNumber"):
        where += f" documentNumber={item['documentNumber']}"
    values = _values(item, model)
    if lines:
        source, attribute, line_model = lines
        children = item.get(source) or []
        if not isinstance(children, list) or not all(isinstance(c, dict) for c in children):
            raise DocumentError(f"{where}: {source} is not a list of objects")
        values[attribute] = [
            _rest_validated(f"{where} {source}[{n}]", line_model, _values(c, line_model))
            for n, c in enumerate(children)
        ]
    return _rest_validated(where, model, values)


def _rest_validated(where: str, model: type[CwElement], values: dict[str, Any]) -> Any:
    try:
        return model.model_validate(values)
    except ValidationError as exc:
        mapped = MAPPING[model]
        problems = describe_validation(
            exc, limit=3, name=lambda loc: mapped.get(str(loc[0]), str(loc[0])) if loc else ""
        )
        raise DocumentError(f"{where}: {problems}") from None


def _values(item: dict[str, Any], model: type[CwElement]) -> dict[str, Any]:
    values = {}
    for attribute, path, kind in _rest_plan(model):
        value: Any = item
        for part in path:
            value = value.get(part) if isinstance(value, dict) else None
        if value is None or (value == "" and kind != "text"):
            continue
        if kind == "text" and not isinstance(value, str):
            value = str(value)
        elif kind == "ids" and isinstance(value, int):
            value = [value]
        values[attribute] = value
    return values


@cache
def _rest_plan(model: type[CwElement]) -> tuple[tuple[str, tuple[str, ...], str], ...]:
    plan = []
    for attribute, path in MAPPING[model].items():
        annotation = model.model_fields[attribute].annotation
        kind = "text" if annotation is str else "ids" if get_origin(annotation) is list else "typed"
        plan.append((attribute, tuple(path.split(".")), kind))
    return tuple(plan)
