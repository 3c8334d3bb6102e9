"""The streaming GLExport readers against the DOM readers they replaced (scripts/dom_glexport.py):
the same records, totals, GL entry ids and errors on every sample, on the sandbox's documents
and on generated ones; hostile documents refused before anything is read; a document cut short
fails cleanly, as a transient error, handing on no record it did not read whole."""

import http.server
import json
import threading
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from lxml import etree

from connectwise import jsonmoney
from connectwise.errors import CutShortError, DocumentError
from connectwise.glexport import json_stream, read_glexport, rows
from connectwise.glexport.batch import json_line
from connectwise.glexport.rest_json import read_rest_glexport
from connectwise.models import KINDS
from sandbox import data, documents, rest_documents
from scripts.dom_glexport import DomBatch, parse_glexport, parse_rest_glexport
from tests.conftest import SAMPLES
from tests.glexport_kept import KeptBatch, read_json, read_xml

ALL = dict.fromkeys(KINDS, True)
XML_SAMPLES = sorted(SAMPLES.glob("glexport_*.xml"))


def sandbox_documents(seed: int = 5, invoices: int = 60) -> tuple[bytes, bytes]:
    site = data.generate(seed=seed, invoices=invoices, expenses=6, purchases=5)
    xml = documents.glexport("sandbox-batch", ALL, site.invoices, site.expenses, site.purchases)
    rest = jsonmoney.dumps(rest_documents.glexport(site.invoices, site.expenses, site.purchases))
    return xml, rest


def outcome_of_stream(read: Any) -> Any:
    try:
        read_batch: KeptBatch = read()
    except DocumentError as exc:
        return ("error", exc.message)
    batch = read_batch.batch
    return (
        batch.batch_id,
        batch.counts(),
        batch.totals(),
        batch.gl_entry_ids_by_kind(),
        batch.ignored_elements,
        [json.loads(json_line(row)) for row in read_batch.kept.rows],
    )


def outcome_of_dom(read: Any) -> Any:
    try:
        dom: DomBatch = read()
    except DocumentError as exc:
        return ("error", exc.message)
    return (
        dom.batch_id,
        dom.counts(),
        dom.totals(),
        dom.gl_entry_ids_by_kind(),
        dom.ignored_elements,
        dom.json_lines(),
    )


def assert_same_xml(raw: bytes) -> None:
    assert outcome_of_stream(lambda: read_xml(raw)) == outcome_of_dom(lambda: parse_glexport(raw))


def assert_same_json(raw: bytes, kinds: dict[str, bool] = ALL) -> None:
    stream = outcome_of_stream(lambda: read_json(raw, "rest-batch", kinds))
    assert stream == outcome_of_dom(lambda: parse_rest_glexport(raw, "rest-batch", kinds))


# --- the same as the DOM reader ---------------------------------------------------------------


@pytest.mark.parametrize("path", XML_SAMPLES, ids=lambda p: p.name)
def test_every_sample_reads_as_the_dom_reader_read_it(path: Path) -> None:
    assert_same_xml(path.read_bytes())


def test_the_sandbox_documents_read_as_the_dom_reader_read_them_in_both_forms() -> None:
    xml, rest = sandbox_documents()
    assert_same_xml(xml)
    assert_same_json(rest)
    assert_same_json(rest, {"invoices": True, "expenses": False, "procurement": False})


@pytest.mark.parametrize("size", [1, 7, 4096, 10**9])
def test_how_the_bytes_arrive_changes_nothing(size: int) -> None:
    xml, rest = sandbox_documents(invoices=8)
    pieces = lambda raw: [raw[i : i + size] for i in range(0, len(raw), size)]  # noqa: E731
    for raw, read in ((xml, lambda c: read_glexport(c)), (rest, lambda c: read_rest_glexport(c, "b", ALL))):
        assert read(pieces(raw)).summary() == read([raw]).summary()


def test_a_big_document_in_one_piece_is_fed_to_the_parser_a_piece_at_a_time() -> None:
    xml, _ = sandbox_documents(invoices=400)  # a bit over 2 MiB: libxml2 refuses ten times that at once
    big = xml.replace(b"</GLExport>", (b"<!--" + b"x" * 2**10 + b"-->") * 12 * 2**10 + b"</GLExport>")
    assert read_glexport([big]).counts()["invoices"] == 400


def test_every_record_of_the_samples_and_the_sandbox_takes_the_fast_path(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The reader validates with pydantic only what the fast path does not take: none of
    ConnectWise's own forms (else a big batch costs several times more)."""
    slow: list[str] = []
    original = rows.fast_row

    def counted(model: Any, attributes: dict[str, Any]) -> Any:
        row = original(model, attributes)
        if row is None and model.__name__ not in ("GLExport", "ExpenseBillSection"):  # the header: once
            slow.append(model.__name__)
        return row

    monkeypatch.setattr("connectwise.glexport.rows.fast_row", counted)
    monkeypatch.setattr("connectwise.glexport.xml.fast_row", counted)
    xml, rest = sandbox_documents()
    for path in XML_SAMPLES:
        read_glexport([path.read_bytes()])
    read_glexport([xml])
    read_rest_glexport([rest], "b", ALL)
    assert slow == []


# --- generated documents -------------------------------------------------------------------------

TYPED_TEXTS = st.one_of(
    st.sampled_from(["42.00", "-7", "0", "", "Y", "N", "True", "False", "2026-09-29", "20.00%", "1503,1504"]),
    st.sampled_from(["1e3", " 5", "1_000", "NaN", "Infinity", "12.5.1", "y", "yes", "1", "2026-02-30", "٣"]),
    st.text(alphabet="0123456789.-+eE,%_ YNTrueFals/:", max_size=12),
)


def _typed_attributes(element: Any) -> list[str]:
    from connectwise.glexport.xml import LINES, RECORDS

    models = RECORDS | {line: model for line, _, model in LINES.values()}
    model = models.get(element.tag)
    return sorted(rows._plan(model).typed - {"Details", "ExpenseDetails", "PurchaseDetails"}) if model else []


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.data())
def test_generated_xml_documents_read_as_the_dom_reader_read_them(draws: st.DataObject) -> None:
    """Typed attributes of the samples rewritten with values in many forms, good and bad: the
    same records, totals and ids, or the same error."""
    path = draws.draw(st.sampled_from(XML_SAMPLES), label="sample")
    tree = etree.fromstring(path.read_bytes())
    elements = [e for e in tree.iter() if _typed_attributes(e)]
    for _ in range(draws.draw(st.integers(1, 4), label="changes")):
        element = draws.draw(st.sampled_from(elements))
        name = draws.draw(st.sampled_from(_typed_attributes(element)))
        element.set(name, draws.draw(TYPED_TEXTS, label=name))
    assert_same_xml(etree.tostring(tree))


REST_VALUES = st.one_of(
    st.decimals(allow_nan=False, allow_infinity=False, places=2, min_value=-(10**9), max_value=10**9),
    st.integers(-(10**12), 10**12),
    st.sampled_from([15.0, 1374.5, 0.1, True, False, None, "", "2026-09-29T00:00:00Z", "x", "1,2", [1, 2]]),
)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.data())
def test_generated_rest_documents_read_as_the_dom_reader_read_them(draws: st.DataObject) -> None:
    _, rest = sandbox_documents(seed=draws.draw(st.integers(1, 50), label="seed"), invoices=3)
    document = json.loads(rest)
    items = [
        item
        for section in ("transactions", "expenseBills", "purchaseTransactions")
        for item in document[section]
    ]
    for _ in range(draws.draw(st.integers(1, 4), label="changes")):
        item = draws.draw(st.sampled_from(items))
        target = draws.draw(st.sampled_from([item, *item.get("detail", [])]))
        key = draws.draw(st.sampled_from(sorted(target)))
        target[key] = draws.draw(REST_VALUES, label=key)
    raw = json.dumps(document, default=str).encode()
    assert_same_json(raw)


@settings(max_examples=300, deadline=None)
@given(
    st.sampled_from(
        [rows._DECIMAL, rows._INT, rows._FLAG, rows._DATE, rows._RATE, rows._ID_LIST, rows._DATETIME]
    ),
    st.data(),
)
def test_the_fast_path_types_a_value_as_pydantic_does_or_leaves_it_to_pydantic(
    kind: Any, draws: st.DataObject
) -> None:
    from connectwise.glexport.models import Customer, Detail, PurchaseDetail, Transaction

    fields = {
        rows._DECIMAL: (Transaction, "TaxableTotal"),
        rows._INT: (Transaction, "DueDays"),
        rows._FLAG: (Transaction, "Taxable"),
        rows._DATE: (Transaction, "DueDate"),
        rows._RATE: (Customer, "TaxRate"),
        rows._ID_LIST: (Detail, "GLEntryRecID"),
        rows._DATETIME: (PurchaseDetail, "DocumentDate"),
    }
    model, name = fields[kind]
    text = draws.draw(
        st.one_of(TYPED_TEXTS, st.sampled_from(["5/1/2014 5:21:58 AM", "2014-05-01T05:21:58Z"]))
    )
    fast = rows.fast_row(model, {"Total": "1.00", name: text})
    try:
        expected = model.model_validate({"Total": "1.00"} | ({name: text} if text else {})).model_dump()
    except ValueError:
        expected = None
    if fast is not None:  # the same value, written the same way in records.jsonl
        assert expected is not None and json_line(fast) == json_line(expected), text


# --- money -------------------------------------------------------------------------------------


def test_money_stays_exact_through_a_read_and_its_json_lines() -> None:
    raw = (
        (SAMPLES / "glexport_invoices.xml")
        .read_bytes()
        .replace(b'Total="42.00"', b'Total="12345678901234567.01"', 1)
    )
    batch = read_xml(raw)
    assert batch.totals()["invoices"] == Decimal("12345678901234567.01")
    [transaction] = [json.loads(json_line(r)) for r in batch.kept.rows if r["element"] == "Transaction"]
    assert transaction["Total"] == "12345678901234567.01"


def test_rest_amounts_are_exact_whatever_their_json_form() -> None:
    _, rest = sandbox_documents(invoices=2)
    document = json.loads(rest)
    first, second = document["transactions"]
    first["total"], second["total"] = 100, 0.1  # an integer, a double
    raw = json.dumps(document).replace('"total": 0.1', '"total": 1374.5').encode()
    read = read_json(raw, "b")
    totals = sorted(r["Total"] for r in read.kept.rows if r["element"] == "Transaction")
    assert totals == [Decimal("100"), Decimal("1374.50")] and all(type(t) is Decimal for t in totals)
    assert read.totals()["invoices"] == Decimal("1474.50")


# --- hostile documents ---------------------------------------------------------------------------


class Untouched:
    """A sink that fails the test if a read hands it anything."""

    def begin(self, batch_id: str, media_type: str) -> None:
        raise AssertionError("begun")

    def raw(self, chunk: bytes) -> None:
        raise AssertionError("bytes handed on")

    def record(self, row: dict[str, Any]) -> None:
        raise AssertionError("a record handed on")


@pytest.fixture
def listener() -> Iterator[list[str]]:
    """A loopback HTTP server that notes every request it gets (none may come)."""
    seen: list[str] = []

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            seen.append(self.path)
            self.send_response(200)
            self.end_headers()
            self.wfile.write(b'<!ENTITY x "NETWORK-FETCHED">')

        def log_message(self, *args: Any) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    seen.append(f"http://127.0.0.1:{server.server_address[1]}")
    yield seen
    server.shutdown()


def hostile_documents(secret: Path, url: str) -> dict[str, str]:
    laughs = "".join(f'<!ENTITY e{i} "{f"&e{i - 1};" * 10}">' for i in range(1, 12))
    return {
        "external entity": f'<!DOCTYPE GLExport [<!ENTITY x SYSTEM "file://{secret}">]><GLExport GLBatchID="&x;"/>',
        "billion laughs": f'<!DOCTYPE GLExport [<!ENTITY e0 "lol">{laughs}]><GLExport GLBatchID="&e11;"/>',
        "network DTD": f'<!DOCTYPE GLExport SYSTEM "{url}/x.dtd"><GLExport GLBatchID="&x;"/>',
        "network entity": f'<!DOCTYPE GLExport [<!ENTITY % p SYSTEM "{url}/p">%p;]><GLExport GLBatchID="&x;"/>',
        "undeclared entity": '<GLExport GLBatchID="&x;"/>',
    }


def test_hostile_documents_are_refused_before_anything_is_read(tmp_path: Path, listener: list[str]) -> None:
    secret = tmp_path / "secret.txt"
    secret.write_text("TOP-SECRET-MARKER")
    url = listener.pop()
    for name, document in hostile_documents(secret, url).items():
        raw = f'<?xml version="1.0"?>{document}'.encode()
        for size in (7, len(raw)):  # the DOCTYPE whole in one piece, or cut across pieces
            with pytest.raises(DocumentError) as caught:
                read_glexport([raw[i : i + size] for i in range(0, len(raw), size)], Untouched())
            message = caught.value.message
            assert ("refused" in message or "not defined" in message) and "TOP-SECRET" not in message, name
    assert listener == []  # nothing was fetched


def test_a_prolog_without_end_is_refused_without_holding_it() -> None:
    endless = (b"<!--" + b"x" * 2**16 for _ in range(100))
    with pytest.raises(DocumentError, match="no GLExport element in its first"):
        read_glexport(endless)


@pytest.mark.parametrize(
    ("document", "message"),
    [
        (b"[1, 2]", "expected a REST GLExport object, got an array"),
        (b'"text"', "expected a REST GLExport object, got a single value"),
        (b'{"transactions": {"item": {}}}', "GLExport.transactions is not a list"),
        (b'{"transactions": 5}', "GLExport.transactions is not a list"),
        (b'{"expenses": "x"}', "GLExport.expenses is not a list"),
        (b'{"transactions": [], "transactions": []}', "GLExport.transactions appears twice"),
        (b'{"transactions": [7]}', r"transactions\[0\] is not an object"),
        (b'{"transactions": [{"total": 1}}', "is not JSON"),
    ],
)
def test_a_rest_document_of_another_layout_is_refused(document: bytes, message: str) -> None:
    with pytest.raises(DocumentError, match=message):
        read_rest_glexport([document], "b", ALL)


def test_the_rest_reader_asks_for_ijson_s_c_backend(monkeypatch: pytest.MonkeyPatch) -> None:
    import ijson

    def missing(name: str) -> Any:
        raise ImportError(f"no {name}")

    json_stream.backend.cache_clear()
    monkeypatch.setattr(ijson, "get_backend", missing)
    try:
        with pytest.raises(RuntimeError, match="needs ijson's C backend \\(yajl2_c\\)"):
            read_rest_glexport([b"{}"], "b", ALL)
    finally:
        json_stream.backend.cache_clear()


# --- cut short -------------------------------------------------------------------------------------


def read_until_cut(read: Any, raw: bytes, cut: int) -> list[str]:
    """Read `raw` cut after `cut` bytes; the records handed on (their document numbers)."""
    from tests.glexport_kept import Kept

    kept = Kept()
    try:
        read([raw[:cut]], kept)
    except CutShortError as exc:
        assert exc.transient and "cut short" in exc.message
    else:
        assert raw[cut:].strip() == b"", f"a document cut at {cut} of {len(raw)} bytes was taken whole"
    return [str(row.get("DocumentNumber") or row.get("CompanyName")) for row in kept.rows]


@pytest.mark.parametrize("form", ["xml", "json"])
def test_a_document_cut_anywhere_fails_cleanly_handing_on_only_whole_records(form: str) -> None:
    xml, rest = sandbox_documents(invoices=3)
    raw, read = (
        (xml, lambda chunks, sink: read_glexport(chunks, sink))
        if form == "xml"
        else (rest, lambda chunks, sink: read_rest_glexport(chunks, "b", ALL, sink))
    )
    whole = read_until_cut(read, raw, len(raw))
    for cut in range(0, len(raw), max(1, len(raw) // 400)):
        handed = read_until_cut(read, raw, cut)
        assert handed == whole[: len(handed)]  # whole records, in order, none made up


@pytest.mark.parametrize("form", ["xml", "json"])
def test_a_failure_while_the_bytes_arrive_comes_out_as_it_was_raised(form: str) -> None:
    """The reply breaks off (the transport raises) or the sink fails: that error, unchanged."""
    from connectwise.errors import TransportError

    xml, rest = sandbox_documents(invoices=20)
    raw = xml if form == "xml" else rest

    def breaking() -> Iterator[bytes]:
        yield raw[: len(raw) // 2]
        raise TransportError(
            "POST /x: the reply was cut short after 10 bytes (ChunkedEncodingError); retried later"
        )

    def read(chunks: Any, sink: Any = None) -> Any:
        return read_glexport(chunks, sink) if form == "xml" else read_rest_glexport(chunks, "b", ALL, sink)

    with pytest.raises(TransportError, match="cut short after 10 bytes") as caught:
        read(breaking())
    assert caught.value.transient

    class FailingSink(Untouched):
        def begin(self, batch_id: str, media_type: str) -> None:
            pass

        def record(self, row: dict[str, Any]) -> None:
            pass

        def raw(self, chunk: bytes) -> None:
            raise OSError("the bucket is gone")

    with pytest.raises(OSError, match="the bucket is gone"):
        read([raw], FailingSink())
