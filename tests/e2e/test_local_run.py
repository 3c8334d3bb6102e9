"""The `make run` pipeline end to end: sandbox process, moto server, real event shapes."""

import json
import os
import subprocess
import sys
from decimal import Decimal
from pathlib import Path

import pytest

from tests.conftest import ROOT
from tests.glexport_kept import read_xml


@pytest.mark.slow
def test_make_run_pipeline(tmp_path: Path) -> None:
    out = tmp_path / "out"
    result = subprocess.run(
        [sys.executable, "-m", "scripts.local_run", "--out", str(out)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    report = result.stdout
    registry = report[: report.index("=====")]
    for name in ("globex", "acme-tampa", "acme-london"):  # registered, checked, enabled, and ran at night
        assert f"   {name:<12} " in registry and f"{name}" in registry
    assert registry.count("  enabled\n") == 3 and registry.count("nightly-gl") == 3
    assert registry.count("last run: succeeded (downloaded)") == 3 and "never run" not in registry
    assert report.count("1. download      downloaded") == 3
    assert report.count("2. confirmation  delivered    via SQS, failed items: 0") == 3
    assert report.count("3. second run    empty") == 3
    assert report.count("4. recreate      recreated") == 3
    assert "GLBatchDownloaded" in report and "GLBatchPosted" in report and "GLBatchRecreated" in report
    assert " POSTED" in report
    assert "objects under no connection's prefix: 0" in report
    view = report[report.index("===== The operator's view") :]  # the end of the run, as make admin shows it
    assert view.count(" POSTED      1") == 3 and "open:" not in view
    assert "confirmations 0, failed-runs 0, payments 2, scheduler 0" in view  # the malformed payments
    assert "The watcher: 0 GL batch(es) waiting too long, 0 job(s) overdue, 3 connection(s) watched" in view

    [batch_dir] = (out / "gl-batches" / "globex").iterdir()
    manifest = json.loads((batch_dir / "manifest.json").read_text())
    downloaded = read_xml((batch_dir / "glexport.xml").read_bytes())
    assert manifest["batch_id"] == downloaded.batch_id == batch_dir.name
    assert manifest["gl_entry_ids"] == downloaded.gl_entry_ids()
    [recreated_dir] = (batch_dir / "recreated").iterdir()
    recreated = read_xml((recreated_dir / "glexport.xml").read_bytes())
    assert recreated.counts()["invoices"] == downloaded.counts()["invoices"] - 1
    assert f"total {manifest['totals']['invoices']:>12}" in report
    assert "sandbox-password" not in result.stdout + result.stderr and "globex-password" not in report

    globex = report[report.index("===== connection 'globex'") : report.index("===== connection 'acme-tampa'")]
    payments = globex[globex.index("Invoice payments through SQS") :]
    assert "messages returned for retry: 0" in payments
    assert "PAY-1001 was sent twice and applied 1 time(s)" in payments
    assert "failed: Cannot find Invoice Number CW-99999" in payments
    assert "overage: Paid amount exceeds the invoice total" in payments and "discarded 25.00" in payments
    assert "dead-letter queue: 1 message(s)" in payments
    zynk = next(line for line in payments.splitlines() if "paid-to-date amounts of 30% and 70%" in line)
    held, total = zynk.split("it holds ")[1].split(", the latest")[0].split(" of ")
    assert Decimal(held) == (Decimal(total) * Decimal("0.7")).quantize(Decimal("0.01"))
    success_files = sorted((out / "payments" / "globex").rglob("*-success.xml"), key=lambda p: p.name)
    # 4 payments, 2 paid-to-date amounts, PAY-2001 below
    assert sum(f.read_text().count("<UpdateInvoicePayment>") for f in success_files) == 7

    for api, connection in (("SOAP", "globex"), ("REST", "acme-tampa")):
        part = report[report.index(f"Reports and record downloads ({api})") :]
        assert "reports listed: Invoices, Companies, Purchase Orders" in part
        assert "where Invoice_Amount > 1000.00:" in part
        table = part[part.index("agreements") :].splitlines()[:5]
        rows = {line.split()[0]: (line.split()[1], line.split()[-1]) for line in table}
        # The second run is incremental: the five invoices paid since the night, nothing else.
        assert rows["invoices"][1] == "5" and rows["companies"][1] == "0"
        assert all(int(first) > 0 for first, _ in rows.values())
        assert len(list((out / "records" / connection / "invoices").rglob("*.csv"))) == 2
    soap_part = report[report.index("Reports and record downloads (SOAP)") :].split("\n\n")[1]
    rest_part = report[report.index("Reports and record downloads (REST)") :].split("\n\n")[1]
    assert soap_part.split(" -> ")[0].split("catalog")[0] == rest_part.split(" -> ")[0].split("catalog")[0]

    # acme through REST: its two owner levels' batches add up to the same site seen through globex.
    rest_manifests = [
        json.loads((batch / "manifest.json").read_text())
        for owner in ("acme-tampa", "acme-london")
        for batch in (out / "gl-batches" / owner).iterdir()
    ]
    assert len(rest_manifests) == 2 and all(m["counts"]["invoices"] > 0 for m in rest_manifests)
    for kind in ("invoices", "expenses", "procurement"):
        assert sum(m["counts"][kind] for m in rest_manifests) == manifest["counts"][kind]
        assert sum(Decimal(m["totals"][kind]) for m in rest_manifests) == Decimal(manifest["totals"][kind])
    assert not set(rest_manifests[0]["gl_entry_ids"]) & set(rest_manifests[1]["gl_entry_ids"])
    side = report[report.index("Both backends side by side") :].splitlines()
    rows = {line[:31].strip(): line[31:] for line in side[3:] if line[:31].strip()}
    for label in ("download invoices", "GL entries", "second download", "payments"):
        legacy_cell, rest_cell = rows[label][:40].strip(), rows[label][40:].strip()
        assert legacy_cell == rest_cell and legacy_cell, label
    assert "sandbox-private" not in result.stdout + result.stderr and "acme-private" not in report


def test_local_environment_stops_what_it_started_on_failure() -> None:
    from scripts.harness import local_environment

    addresses = {}
    with pytest.raises(RuntimeError, match="boom"), local_environment() as env:
        addresses["sandbox"] = env.sandbox_site
        addresses["moto"] = env.stack.endpoint.removeprefix("http://")
        assert all(ours_listening(int(a.rsplit(":", 1)[1])) for a in addresses.values())  # the probe works
        raise RuntimeError("boom")
    for name, address in addresses.items():
        assert not ours_listening(int(address.rsplit(":", 1)[1])), f"{name} still listening on {address}"


def ours_listening(port: int) -> bool:
    """A socket of this process or of a child listens on the port. (Not "anything listens": the
    other test worker may bind the port as soon as it is free.)"""
    listening = {
        fields[9]
        for table in ("/proc/net/tcp", "/proc/net/tcp6")
        for fields in (line.split() for line in Path(table).read_text().splitlines()[1:])
        if fields[3] == "0A" and int(fields[1].rsplit(":", 1)[1], 16) == port
    }
    pids = [os.getpid()] + [
        int(p.name) for p in Path("/proc").iterdir() if p.name.isdigit() and _parent(p) == os.getpid()
    ]
    return any(listening & _sockets(pid) for pid in pids)


def _sockets(pid: int) -> set[str]:
    """The socket inodes the process holds (none if it ended meanwhile)."""
    found = set()
    try:
        fds = list(Path(f"/proc/{pid}/fd").iterdir())
    except OSError:
        return found
    for fd in fds:
        try:
            link = os.readlink(fd)
        except OSError:  # closed meanwhile
            continue
        if link.startswith("socket:["):
            found.add(link[len("socket:[") : -1])
    return found


def _parent(proc: Path) -> int:
    try:
        status = (proc / "status").read_text()
    except OSError:
        return 0
    return int(next((line.split()[1] for line in status.splitlines() if line.startswith("PPid:")), "0"))
