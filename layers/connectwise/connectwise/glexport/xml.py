"""The GLExport XML reader, streaming: the document is fed to lxml's incremental parser as it
arrives, each record is typed and handed on as its element closes, and nothing of it is kept.

Hardened as connectwise.safexml: a DOCTYPE is refused when the parser meets it, before its
declarations are read and before any element; entities are never resolved, no DTD is loaded,
nothing is fetched from the network; libxml2's limits on depth and sizes stay on. Errors name
the record and the problem, never echoing a whole record.
"""

from collections.abc import Iterable
from typing import Any

from pydantic import ValidationError

from connectwise.errors import CutShortError, DocumentError, describe_validation
from connectwise.glexport.batch import XML, GLBatch, GLSink, Reading
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
from connectwise.glexport.rows import Row, fast_row, validated_row
from connectwise.glexport.values import CwElement

FEED = 2**20  # bytes given to the parser at a time

# Section element -> its record element and model.
SECTIONS: dict[str, tuple[str, type[CwElement]]] = {
    "Vendors": ("Vendor", Vendor),
    "Customers": ("Customer", Customer),
    "Transactions": ("Transaction", Transaction),
    "ExpenseBills": ("ExpenseTransaction", ExpenseTransaction),
    "PurchaseTransactions": ("PurchaseTransaction", PurchaseTransaction),
}
RECORDS: dict[str, type[CwElement]] = dict(SECTIONS.values())
# Record element -> its line element, the field holding its lines, and their model.
LINES: dict[str, tuple[str, str, type[CwElement]]] = {
    "Transaction": ("Detail", "Details", Detail),
    "ExpenseTransaction": ("ExpenseDetail", "ExpenseDetails", ExpenseDetail),
    "PurchaseTransaction": ("PurchaseDetail", "PurchaseDetails", PurchaseDetail),
}


def read_glexport(chunks: Iterable[bytes], sink: GLSink | None = None) -> GLBatch:
    """Read a GLExport document from its chunks, handing `sink` the bytes and each record's
    row; raise DocumentError naming the record and the problem (CutShortError: it ends early)."""
    # Imported here: the functions' cold start does not load lxml, an XML read does.
    from lxml import etree

    reading = Reading(sink, XML)
    records = _Records(reading)
    parser = etree.XMLParser(
        target=records, resolve_entities=False, no_network=True, load_dtd=False, huge_tree=False
    )
    try:
        for chunk in chunks:
            records.ampersands = records.ampersands or b"&" in chunk
            for start in range(0, len(chunk), FEED):  # libxml2 refuses one huge feed
                parser.feed(chunk[start : start + FEED] if len(chunk) > FEED else chunk)
            reading.raw(chunk)  # after the feed: the sink has begun once the root element opened
    except etree.XMLSyntaxError as exc:
        raise DocumentError(f"GLExport document is not well-formed XML: {exc}") from None
    try:
        parser.close()
    except (etree.XMLSyntaxError, DocumentError) as exc:
        if records.ended:
            raise DocumentError(f"GLExport document is not well-formed XML: {exc}") from None
        # Before </GLExport> (even inside its start tag, which libxml2 then hands on cut): the
        # reply was cut, the download is tried again.
        raise CutShortError(
            f"GLExport document is cut short: it ends after {reading.size} bytes, before </GLExport>"
        ) from None
    return reading.batch()


class _Records:
    """lxml parser target: elements as they open and close; a record is typed and handed on
    when it closes. Elements the models do not know are skipped whole and listed."""

    def __init__(self, reading: Reading) -> None:
        self.reading = reading
        self.depth = 0
        self.skipping = 0  # depth inside an element being skipped
        self.section: tuple[str, type[CwElement]] | None = None
        self.record: tuple[str, dict[str, str], list[dict[str, str]]] | None = None
        self.ended = False
        self.ampersands = False  # the document has an "&": attribute values may hold "&#38;"

    def doctype(self, *_: Any) -> None:
        raise DocumentError("GLExport document refused: it declares a DTD or entities (a DOCTYPE)")

    def start(self, tag: str, attrib: dict[str, str]) -> None:
        depth = self.depth
        self.depth += 1
        if self.skipping:
            self.skipping += 1
        elif depth == 0:
            self._root(tag, attrib)
        elif depth == 1 and tag in SECTIONS:
            self.section = SECTIONS[tag]
            if tag == "ExpenseBills":
                self._expense_bills(attrib)
        elif depth == 2 and self.section and tag == self.section[0]:
            self.record = (tag, self._own(attrib), [])
        elif depth == 3 and self.record and tag == LINES.get(self.record[0], ("",))[0]:
            self.record[2].append(self._own(attrib))
        else:
            self.reading.ignore([tag])
            self.skipping = 1

    def end(self, tag: str) -> None:
        self.depth -= 1
        if self.skipping:
            self.skipping -= 1
        elif self.depth == 2 and self.record:
            element, attributes, lines = self.record
            self.record = None
            self.reading.record(element, _row(element, attributes, lines))
        elif self.depth == 1:
            self.section = None
        elif self.depth == 0:
            self.ended = True

    def close(self) -> None:
        return None

    def _own(self, attrib: Any) -> dict[str, str]:
        """The element's attributes as written, in a dict of our own (lxml hands a new dict, or a
        shared empty mapping). Entities left unresolved, libxml2 hands an "&" as "&#38;"."""
        attributes: dict[str, str] = attrib if attrib.__class__ is dict else dict(attrib)
        if self.ampersands and "&#38;" in "".join(attributes.values()):
            return {name: value.replace("&#38;", "&") for name, value in attributes.items()}
        return attributes

    def _root(self, tag: str, attrib: dict[str, str]) -> None:
        if tag != "GLExport":
            raise DocumentError(f"expected a GLExport document, got <{tag}>")
        attributes = self._own(attrib)
        header = validated_row(GLExport, attributes, lambda exc: _describe("GLExport", attributes, exc))
        self.reading.begin(GLExport.model_validate(header))

    def _expense_bills(self, attrib: dict[str, str]) -> None:
        attributes = self._own(attrib)
        section = validated_row(
            ExpenseBillSection, attributes, lambda exc: _describe("ExpenseBills", attributes, exc)
        )
        header = self.reading.header
        if header is not None:
            header.ExpenseBills = ExpenseBillSection.model_validate(section)


def _row(element: str, attributes: dict[str, str], lines: list[dict[str, str]]) -> Row:
    """A record's row with its lines' rows; a record or line the fast path does not take is
    validated with its model, each on its own, so an error names the element it is in."""
    model = RECORDS[element]
    line_rows = []
    if element in LINES:
        line_tag, field, line_model = LINES[element]
        line_rows = [_validated(line_tag, line_model, line) for line in lines]
    row = fast_row(model, attributes) or _validated(element, model, attributes)
    if element in LINES:
        row[field] = line_rows
    return row


def _validated(tag: str, model: type[CwElement], attributes: dict[str, str]) -> Row:
    return validated_row(model, attributes, lambda exc: _describe(tag, attributes, exc))


def _describe(tag: str, attributes: dict[str, Any], exc: ValidationError) -> str:
    """`Transaction DocumentNumber=123: Total: not a decimal amount`, never the whole record."""
    number = attributes.get("DocumentNumber")
    ids = attributes.get("GLEntryRecID")  # typed already if the fast path got that far
    ids = ",".join(map(str, ids)) if isinstance(ids, list) else ids
    label = number or ids or attributes.get("CompanyName") or ""
    where = f"{tag} DocumentNumber={label}" if number else f"{tag} {label}".strip()
    return f"{where}: {describe_validation(exc, limit=3)}"
