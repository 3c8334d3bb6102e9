"""gl-stream: a GL batch read as a stream against the DOM reader it replaced, on the same bytes.

For each size (10,000 and 50,000 invoices by default) the sandbox writes a GLExport of that many
invoices in both forms (the Accounting Interface's XML, the REST API's JSON). Each measurement
runs in a child process of its own, reading the document from disk in 64 KiB chunks, as the
download reads a reply:

* stream: the connector's reader with the download's sink (tasks.gl.files.BatchFiles) over an S3
  client that takes the parts and drops them: parsing, typing, records.jsonl, the parts' buffers;
* DOM baseline: what the download did before (scripts/dom_glexport.py): the whole reply in
  memory, parsed at once, every record validated with pydantic, records.jsonl built in memory;
* bare: the cheapest complete pass over the same bytes, lxml's iterparse (each record cleared
  once read) or ijson's parse events (C backend), for the time.

Peak memory is the child's peak resident set over what it held before reading (Linux resets
the peak through /proc/self/clear_refs). Times are CPU seconds (the best of --gl-runs runs): the
work done, whatever else the machine runs meanwhile.
"""

import argparse
import contextlib
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
CHUNK = 2**16
MB = 2**20
KINDS = ("invoices", "expenses", "procurement")
BATCH_ID = "bench-batch"


def bench_gl_stream(sizes: list[int], runs: int) -> list[str]:
    lines = []
    with tempfile.TemporaryDirectory(prefix="gl-stream-") as folder:
        for invoices in sizes:
            _child(["generate", str(invoices), folder])
            for form in ("xml", "json"):
                document = str(Path(folder) / f"glexport-{invoices}.{form}")
                bare = _child(["measure", "bare", form, document, str(runs)])
                stream = _child(["measure", "stream", form, document, str(runs)])
                dom = _child(["measure", "dom", form, document, "1"])
                if (stream["records"], stream["totals"]) != (dom["records"], dom["totals"]):
                    raise RuntimeError(f"{form} {invoices}: the stream and the DOM reader disagree")
                baseline = "iterparse" if form == "xml" else "ijson parse"
                print(
                    f"  {form} {invoices}: {os.path.getsize(document) / MB:.0f} MB, {stream['records']} "
                    f"records; stream {stream['seconds']:.2f} s (+{stream['peak_mb']:.0f} MB), bare {baseline} "
                    f"{bare['seconds']:.2f} s (+{bare['peak_mb']:.0f} MB), time ratio "
                    f"{stream['seconds'] / bare['seconds']:.2f}x; DOM {dom['seconds']:.2f} s "
                    f"(+{dom['peak_mb']:.0f} MB)",
                    flush=True,
                )
                line = (
                    f"gl-stream: {invoices} invoices ({form}), peak +{stream['peak_mb']:.0f} MB vs DOM baseline "
                    f"+{dom['peak_mb']:.0f} MB ({dom['peak_mb'] / max(stream['peak_mb'], 1):.0f}x less), "
                    f"{stream['seconds']:.2f} s vs {bare['seconds']:.2f} s"
                )
                print(line, flush=True)
                lines.append(line)
    return lines


def _child(arguments: list[str]) -> dict[str, Any]:
    """Run this module in a fresh process (its own peak memory) and read its JSON answer."""
    environment = os.environ | {"PYTHONPATH": f"{ROOT / 'layers' / 'connectwise'}{os.pathsep}{ROOT}"}
    done = subprocess.run(
        [sys.executable, "-m", "scripts.bench_stream", *arguments],
        cwd=ROOT,
        env=environment,
        capture_output=True,
        text=True,
        check=False,
        timeout=3600,
    )
    if done.returncode != 0:
        raise RuntimeError(f"bench_stream {' '.join(arguments)} failed:\n{done.stderr[-3000:]}")
    answer: dict[str, Any] = json.loads(done.stdout.splitlines()[-1]) if done.stdout.strip() else {}
    return answer


# --- in the child --------------------------------------------------------------------------


def generate(invoices: int, folder: Path) -> None:
    """The sandbox's export of `invoices` invoices (and its usual expenses and purchases)."""
    from connectwise import jsonmoney
    from sandbox import data, documents, rest_documents

    site = data.generate(seed=3, invoices=invoices)
    kinds = dict.fromkeys(KINDS, True)
    xml = documents.glexport(BATCH_ID, kinds, site.invoices, site.expenses, site.purchases)
    (folder / f"glexport-{invoices}.xml").write_bytes(xml)
    del xml
    rest = rest_documents.glexport(site.invoices, site.expenses, site.purchases)
    (folder / f"glexport-{invoices}.json").write_bytes(jsonmoney.dumps(rest))


def measure(mode: str, form: str, document: Path, runs: int) -> dict[str, Any]:
    run = {"bare": _bare, "stream": _stream, "dom": _dom}[mode]
    # Imported before the peak is reset: what a warm function holds before its first batch.
    import ijson  # noqa: F401
    import lxml.etree  # noqa: F401

    import scripts.dom_glexport  # noqa: F401
    import tasks.gl.files  # noqa: F401
    from connectwise.glexport import rest_json  # noqa: F401

    best, answer = float("inf"), {}
    peak = _reset_peak()
    for _ in range(runs):
        start = time.process_time()  # CPU time: the machine may be shared
        answer = run(form, document)
        best = min(best, time.process_time() - start)
    return answer | {"seconds": best, "peak_mb": (_peak() - peak) / MB}


def _chunks(document: Path) -> Iterator[bytes]:
    with document.open("rb") as file:
        while chunk := file.read(CHUNK):
            yield chunk


def _bare(form: str, document: Path) -> dict[str, Any]:
    if form == "json":
        import ijson

        with document.open("rb") as file:
            events = sum(1 for _ in ijson.get_backend("yajl2_c").parse(file))
        return {"events": events}
    from lxml import etree

    records = 0
    for _, element in etree.iterparse(
        str(document), events=("end",), resolve_entities=False, no_network=True
    ):
        if element.tag in ("Vendor", "Customer", "Transaction", "ExpenseTransaction", "PurchaseTransaction"):
            records += 1
            element.clear(keep_tail=True)
            while element.getprevious() is not None:
                del element.getparent()[0]
    return {"records": records}


class _DroppingS3:
    """An S3 client that takes objects and parts and keeps only their sizes."""

    def __init__(self) -> None:
        self.sizes: dict[str, int] = {}

    def put_object(self, Key: str, Body: bytes, **_: Any) -> dict[str, Any]:
        self.sizes[Key] = len(Body)
        return {}

    def create_multipart_upload(self, Key: str, **_: Any) -> dict[str, Any]:
        self.sizes[Key] = 0
        return {"UploadId": Key}

    def upload_part(self, Key: str, Body: bytes, PartNumber: int, **_: Any) -> dict[str, Any]:
        self.sizes[Key] += len(Body)
        return {"ETag": f'"{PartNumber}"'}

    def complete_multipart_upload(self, **_: Any) -> dict[str, Any]:
        return {}

    def abort_multipart_upload(self, **_: Any) -> dict[str, Any]:
        return {}


def _stream(form: str, document: Path) -> dict[str, Any]:
    from connectwise.glexport import read_glexport
    from connectwise.glexport.rest_json import read_rest_glexport
    from tasks.gl.files import BatchFiles
    from tasks.platform.storage import Store

    s3 = _DroppingS3()
    files = BatchFiles(Store(s3, "bench"), lambda batch_id: f"gl-batches/bench/{batch_id}/")
    if form == "xml":
        batch = read_glexport(_chunks(document), files)
    else:
        batch = read_rest_glexport(_chunks(document), BATCH_ID, dict.fromkeys(KINDS, True), files)
    files.complete()
    ids = batch.gl_entry_ids()
    return {
        "records": sum(batch.counts().values()),
        "totals": {kind: str(total) for kind, total in batch.totals().items()},
        "gl_entry_ids": len(ids),
        "bytes": s3.sizes,
    }


def _dom(form: str, document: Path) -> dict[str, Any]:
    from scripts.dom_glexport import parse_glexport, parse_rest_glexport

    raw = document.read_bytes()  # the reply, as requests held it
    if form == "xml":
        batch = parse_glexport(raw)
    else:
        batch = parse_rest_glexport(raw, BATCH_ID, dict.fromkeys(KINDS, True))
    body = "".join(json.dumps(row, separators=(",", ":")) + "\n" for row in batch.json_lines()).encode()
    ids = batch.gl_entry_ids()
    return {
        "records": sum(batch.counts().values()),
        "totals": {kind: str(total) for kind, total in batch.totals().items()},
        "gl_entry_ids": len(ids),
        "bytes": {"records": len(body), "glexport": len(raw)},
    }


def _reset_peak() -> int:
    """The resident set now, with the peak reset to it (Linux); bytes."""
    with contextlib.suppress(OSError):
        Path("/proc/self/clear_refs").write_text("5")
    return _status("VmRSS") or resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def _peak() -> int:
    return _status("VmHWM") or resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def _status(field: str) -> int:
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m scripts.bench_stream", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    run = commands.add_parser("run", help="the benchmark (make bench runs it as --only gl-stream)")
    run.add_argument("--gl-invoices", default="10000,50000", help="comma-separated sizes")
    run.add_argument("--gl-runs", type=int, default=3, help="runs timed per measurement (best taken)")
    generate_command = commands.add_parser("generate")
    generate_command.add_argument("invoices", type=int)
    generate_command.add_argument("folder", type=Path)
    measure_command = commands.add_parser("measure")
    measure_command.add_argument("mode", choices=("bare", "stream", "dom"))
    measure_command.add_argument("form", choices=("xml", "json"))
    measure_command.add_argument("document", type=Path)
    measure_command.add_argument("runs", type=int)
    args = parser.parse_args(argv)
    actions: dict[str, Callable[[], Any]] = {
        "run": lambda: bench_gl_stream(sizes(args.gl_invoices), args.gl_runs),
        "generate": lambda: generate(args.invoices, args.folder),
        "measure": lambda: print(json.dumps(measure(args.mode, args.form, args.document, args.runs))),
    }
    actions[args.command]()
    return 0


def sizes(text: str) -> list[int]:
    return [int(part) for part in text.split(",") if part.strip()]


if __name__ == "__main__":
    sys.exit(main())
