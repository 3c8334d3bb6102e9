"""`python -m connectwise glexport FILE`: the summary, and hostile input refused fast."""

import json
import subprocess
import sys
from pathlib import Path

from tests.conftest import ROOT, SAMPLES


def run_cli(path: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "connectwise", "glexport", str(path)],
        capture_output=True,
        text=True,
        timeout=30,
        cwd=ROOT,
        check=False,
    )


def test_prints_the_summary_of_a_sample() -> None:
    result = run_cli(SAMPLES / "glexport_invoices.xml")
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == {
        "batch_id": "4531905d-2e3e-428c-b5b6-0ea196534ba8",
        "counts": {"invoices": 1, "expenses": 0, "procurement": 0},
        "totals": {"invoices": "42.00", "expenses": "0.00", "procurement": "0.00"},
        "gl_entry_ids": 8,
    }


def test_hostile_document_exits_nonzero_fast_with_one_line_and_reads_no_file(tmp_path: Path) -> None:
    secret = tmp_path / "secret.txt"
    secret.write_text("TOP-SECRET-MARKER")
    entities = "".join(f'<!ENTITY e{i} "{f"&e{i - 1};" * 10}">' for i in range(1, 12))
    hostile = tmp_path / "hostile.xml"
    hostile.write_text(
        f'<?xml version="1.0"?><!DOCTYPE GLExport [<!ENTITY x SYSTEM "file://{secret}"><!ENTITY e0 "lol">{entities}]>'
        '<GLExport GLBatchID="&x;&e11;"/>'
    )
    result = run_cli(hostile)  # run_cli's timeout fails the test if the parser hangs on expansion
    assert result.returncode != 0
    assert result.stdout == ""
    assert len(result.stderr.strip().splitlines()) == 1
    assert "refused" in result.stderr
    assert "TOP-SECRET-MARKER" not in result.stderr


def test_malformed_document_exits_nonzero_with_one_line(tmp_path: Path) -> None:
    bad = tmp_path / "bad.xml"
    bad.write_bytes((SAMPLES / "glexport_invoices.xml").read_bytes().replace(b'Total="42.00"', b'Total="x"'))
    result = run_cli(bad)
    assert result.returncode == 1
    assert result.stderr.strip().count("\n") == 0
    assert "Transaction DocumentNumber=12331233: Total" in result.stderr


def test_missing_file_is_a_clear_error(tmp_path: Path) -> None:
    result = run_cli(tmp_path / "nope.xml")
    assert result.returncode == 2
    assert "cannot read" in result.stderr
