"""Payment files, read as a stream: a finance team's `ArrayOfUpdateInvoicePayment` XML or JSON
export, however large, entry by entry, and cut into payment messages.

Nothing is kept of the file but the entry being read (and, for paid-to-date entries, their
invoice and date: see `read_entries`). XML is read by lxml's incremental parser as connectwise's
GLExport reader does: a DOCTYPE is refused when the parser meets it, entities are never resolved,
no DTD is loaded, nothing is fetched, libxml2's limits on depth and sizes stay on. JSON is read
by ijson's C backend through connectwise's JSON stream, which refuses nesting deeper than 256
levels as it arrives; numbers are exact.

Each entry is validated as the same entry in a payment message would be (`tasks.payments.messages`),
and is sent on in the file's own format, as read: an XML entry without `PaymentId` stays a
paid-to-date amount, with the same content-derived id.
"""

import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from itertools import chain
from typing import Any
from xml.sax.saxutils import escape

from connectwise.errors import DocumentError
from tasks.payments.messages import (
    XML_ITEM,
    XML_ROOT,
    Payment,
    RejectedPayment,
    validate_json_payment,
    validate_payment,
    xml_payment_fields,
)
from tasks.platform.payment_ledger import PAID_TO_DATE, PAYMENT

XML, JSON = "xml", "json"
FEED = 2**16  # bytes given to the XML parser at a time
ENTRIES_PER_MESSAGE = 10  # a message's payments are retried together: keep a retry cheap
MAX_ENTRY_CHARS = 2000  # an entry as read, as JSON: ten to a message stay far below SQS's 256 KB


@dataclass(frozen=True)
class FileEntry:
    """The entry at `index` in the file: its fields as read, and the payment they make (or why not)."""

    index: int
    fields: dict[str, Any]
    payment: Payment | RejectedPayment


def raw_entries(chunks: Iterable[bytes], form: str) -> Iterator[dict[str, Any] | Any]:
    """Each entry of the file as read (an XML entry's fields, or a JSON item); raises
    DocumentError naming the problem when the file as a whole is unreadable."""
    entries = _xml_entries(chunks) if form == XML else _json_entries(chunks)
    found = False
    for entry in entries:
        found = True
        yield entry
    if not found:
        raise DocumentError("payment file holds no payment")


def read_entries(chunks: Iterable[bytes], form: str, connection: str) -> Iterator[FileEntry]:
    """Every entry of the file, validated as in a payment message sent for `connection`.

    Paid-to-date entries of one invoice may land in different messages, which the payments
    function settles in any order: the latest by DatePaid wins whatever the order, but two with
    the same DatePaid and different amounts would be settled by arrival, which a split file no
    longer keeps. So the later of such a pair is refused here (the file says the invoice's amount
    twice for one instant); this keeps, per paid-to-date entry, its invoice, date and amount.
    """
    said: dict[tuple[str, datetime], tuple[Decimal, int]] = {}
    check = validate_payment if form == XML else validate_json_payment
    for index, fields in enumerate(raw_entries(chunks, form)):
        size = len(json.dumps(fields, default=str))
        if size > MAX_ENTRY_CHARS:  # sent as read: it must fit a message beside nine others
            yield FileEntry(index, {}, _too_long(index, size))
            continue
        payment = check(index, fields, connection)
        if isinstance(payment, Payment) and payment.kind == PAID_TO_DATE:
            instant = (payment.invoice_number.upper(), payment.date_paid.astimezone(UTC))
            amount, first = said.setdefault(instant, (payment.paid_amount, index))
            if amount != payment.paid_amount:
                payment = RejectedPayment(
                    index,
                    {k: str(v)[:100] for k, v in fields.items() if k != "payment_id"},
                    f"payment {index} (invoice {payment.invoice_number}): paid-to-date amount "
                    f"{payment.paid_amount} has the same DatePaid as amount {amount} (payment {first}) "
                    "for this invoice; which one the invoice has paid is unclear, so this one is refused",
                )
        yield FileEntry(index, fields if isinstance(fields, dict) else {}, payment)


def _too_long(index: int, size: int) -> RejectedPayment:
    return RejectedPayment(
        index,
        {},
        f"payment {index}: the entry is {size} characters long, more than any payment needs "
        f"({MAX_ENTRY_CHARS}: an amount or date padded out of proportion?); it is not sent",
    )


def message_body(entries: list[FileEntry], form: str) -> str:
    """One payment message holding `entries`, in the file's format, each as read."""
    if form == JSON:
        items = [entry.fields for entry in entries]
        return json.dumps({"payments": items}, default=str, separators=(",", ":"))
    parts = [f"<{XML_ROOT}>"]
    for entry in entries:
        fields = entry.fields
        parts.append(
            f"<{XML_ITEM}><InvoiceNumber>{escape(fields['invoice_number'])}</InvoiceNumber>"
            f"<PaidAmount>{escape(fields['paid_amount'])}</PaidAmount>"
            f"<DatePaid>{escape(fields['date_paid'])}</DatePaid>"
        )
        if fields.get("kind") == PAYMENT:  # a paid-to-date entry has no PaymentId, as in the file
            parts.append(f"<PaymentId>{escape(fields['payment_id'])}</PaymentId>")
        if fields.get("currency"):
            parts.append(f"<Currency>{escape(fields['currency'])}</Currency>")
        parts.append(f"</{XML_ITEM}>")
    parts.append(f"</{XML_ROOT}>")
    return "".join(parts)


def messages(entries: Iterable[FileEntry]) -> Iterator[list[FileEntry]]:
    """The valid entries, ENTRIES_PER_MESSAGE at a time, in the file's order (the same cut
    every time the file is read)."""
    message: list[FileEntry] = []
    for entry in entries:
        if isinstance(entry.payment, Payment):
            message.append(entry)
            if len(message) == ENTRIES_PER_MESSAGE:
                yield message
                message = []
    if message:
        yield message


def _xml_entries(chunks: Iterable[bytes]) -> Iterator[dict[str, Any]]:
    # Imported here: only a payment file's split loads lxml, not the payments function.
    from lxml import etree

    target = _XmlEntries()
    parser = etree.XMLParser(
        target=target, resolve_entities=False, no_network=True, load_dtd=False, huge_tree=False
    )
    try:
        for chunk in chunks:
            for start in range(0, len(chunk), FEED):  # libxml2 refuses one huge feed
                parser.feed(chunk[start : start + FEED])
                yield from target.entries
                target.entries.clear()
        parser.close()
    except etree.XMLSyntaxError as exc:  # libxml2 names the place and the problem, not the text
        raise DocumentError(f"payment file is not well-formed XML: {exc}") from None
    yield from target.entries


class _XmlEntries:
    """lxml parser target: each `UpdateInvoicePayment` handed on as its fields when it closes.
    A child's text is its text before any element inside it, as ElementTree's `text` is."""

    def __init__(self) -> None:
        self.entries: list[dict[str, Any]] = []
        self.depth = 0
        self.texts: dict[str, str | None] = {}  # the entry's children read so far
        self.child, self.parts, self.in_text = "", list[str](), False

    def doctype(self, *_: Any) -> None:
        raise DocumentError("payment file refused: it declares a DTD or entities (a DOCTYPE)")

    def start(self, tag: str, attrib: Any) -> None:
        depth, self.depth = self.depth, self.depth + 1
        if depth == 0:
            if tag != XML_ROOT:
                raise DocumentError(f"expected <{XML_ROOT}>, got <{tag[:64]}>")
        elif depth == 1:
            if tag != XML_ITEM:
                raise DocumentError(f"unexpected <{tag[:64]}> in <{XML_ROOT}>")
            self.texts = {}
        elif depth == 2:
            self.child, self.parts, self.in_text = tag, [], True
        else:
            self.in_text = False

    def data(self, text: str) -> None:
        if self.depth == 3 and self.in_text:
            self.parts.append(text)

    def end(self, tag: str) -> None:
        self.depth -= 1
        if self.depth == 2:  # the first child of a name counts, as ElementTree's `find`
            self.texts.setdefault(self.child, "".join(self.parts).strip() if self.parts else None)
        elif self.depth == 1:
            self.entries.append(xml_payment_fields(self.texts.get))

    def close(self) -> None:
        return None


def _json_entries(chunks: Iterable[bytes]) -> Iterator[Any]:
    """The items of a JSON file: a list of payments, `{"payments": [...]}`, or one payment."""
    from connectwise.glexport.json_stream import Item, members

    chunks = iter(chunks)
    head = b""
    for chunk in chunks:
        head += chunk
        if head.removeprefix(b"\xef\xbb\xbf").lstrip():
            break
    head = head.removeprefix(b"\xef\xbb\xbf")
    if head.lstrip()[:1] == b"[":  # a list: read as {"payments": [...]}, item by item
        stream: Iterable[bytes] = chain([b'{"payments":', head], chunks, [b"}"])
    elif head.lstrip()[:1] == b"{":
        stream = chain([head], chunks)
    else:
        raise DocumentError("payment file is not JSON: it must be a list of payments or an object")
    single: dict[str, Any] = {}  # the members of a file that is one payment
    listed = False
    for part in members(stream, lambda _: None, {"payments"}, "payment file"):
        if single if isinstance(part, Item) else listed:
            name = next(iter(single)) if single else part.name
            raise DocumentError(f"payment file: unexpected member {name[:64]!r} beside payments")
        if isinstance(part, Item):
            listed = True
            yield part.value
        else:
            single[part.name] = part.value
    if single:
        yield single
