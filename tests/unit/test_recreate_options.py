"""A recreate's kinds, thru date and owner level reach ConnectWise on both backends (the sandbox
honours them as ConnectWise does), and the unposted GL entries are known by kind."""

from datetime import date
from typing import Any

import pytest

from connectwise.backends import GLBackend
from connectwise.errors import UnknownBatchError
from connectwise.models import KINDS
from connectwise.rest.client import RestClient
from sandbox.server import SandboxServer
from tests.glexport_kept import keep

OWNER = {"accounting_interface": "London", "rest": "2"}  # REST filters by the location's id


@pytest.fixture(params=["accounting_interface", "rest"])
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def gl(backend: str, client: Any, rest_client: RestClient) -> GLBackend:
    chosen: GLBackend = rest_client if backend == "rest" else client
    return chosen


def requests_sent(
    sandbox: SandboxServer, backend: str, monkeypatch: pytest.MonkeyPatch
) -> list[dict[str, Any]]:
    """What each recreate asked ConnectWise: the GL page's form, or the REST batch export's body."""
    seen: list[dict[str, Any]] = []
    if backend == "rest":
        original_export = sandbox.rest._export

        def export(request: dict[str, Any], batch: Any) -> Any:
            if batch is not None:
                seen.append(dict(request))
            return original_export(request, batch)

        monkeypatch.setattr(sandbox.rest, "_export", export)
    else:
        original_recreate = sandbox.accounting.recreate

        def recreate(form: Any) -> bytes:
            seen.append(dict(form))
            return original_recreate(form)

        monkeypatch.setattr(sandbox.accounting, "recreate", recreate)
    return seen


def posted_batch(gl: GLBackend) -> str:
    batch = gl.download_gl_batch(KINDS)
    gl.update_gl_batch(batch.batch_id, batch.gl_entry_ids(), kinds=KINDS)
    return batch.batch_id


def test_a_recreate_exports_only_the_kinds_asked_for(
    gl: GLBackend, backend: str, sandbox: SandboxServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    batch_id = posted_batch(gl)
    sent = requests_sent(sandbox, backend, monkeypatch)
    assert gl.recreate_gl_batch(batch_id, kinds=["expenses"]).counts() == {
        "invoices": 0,
        "expenses": 4,
        "procurement": 0,
    }
    assert gl.recreate_gl_batch(batch_id, kinds=["invoices", "procurement"]).counts() == {
        "invoices": 12,
        "expenses": 0,
        "procurement": 3,
    }
    assert gl.recreate_gl_batch(batch_id).counts() == {"invoices": 12, "expenses": 4, "procurement": 3}
    flags = ("exportInvoicesFlag", "exportExpensesFlag", "exportProductsFlag")
    if backend != "rest":
        flags = ("ExportInvoices", "ExportExpenses", "ExportInventory")
    asked = [tuple(str(request[f]).lower() for f in flags) for request in sent]
    assert asked == [("false", "true", "false"), ("true", "false", "true"), ("true", "true", "true")]
    with pytest.raises(ValueError, match="choose at least one"):
        gl.recreate_gl_batch(batch_id, kinds=[])


def test_a_recreate_passes_the_thru_date_and_owner_level(
    gl: GLBackend, backend: str, sandbox: SandboxServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    batch_id = posted_batch(gl)
    sent = requests_sent(sandbox, backend, monkeypatch)
    thru = date(2026, 8, 31)
    recreated = keep(gl.recreate_gl_batch, batch_id, thru_date=thru, owner_level=OWNER[backend])
    site = sandbox.accounting.site
    expected = {
        "invoices": sorted(i.number for i in site.invoices if i.date <= thru and i.location == "London"),
        "expenses": sorted(str(e.id) for e in site.expenses if e.date <= thru and e.location == "London"),
    }
    assert sorted(t.DocumentNumber for t in recreated.document.Transactions) == expected["invoices"]
    assert 0 < len(expected["invoices"]) < 12  # the filters narrowed something, and not to nothing
    assert recreated.counts()["expenses"] == len(expected["expenses"])
    if backend == "rest":
        assert (sent[0]["thruDate"], sent[0]["locationId"]) == ("2026-08-31T23:59:59Z", 2)
    else:
        assert (sent[0]["ThruDate"], sent[0]["OwnerLevel"]) == ("2026-08-31", "London")


def test_unposted_entries_name_each_entry_kind_and_mark_nothing(
    gl: GLBackend, sandbox: SandboxServer
) -> None:
    site = sandbox.accounting.site
    expected = {i: "invoices" for record in site.invoices for i in record.entry_ids()}
    expected |= {i: "expenses" for record in site.expenses for i in record.entry_ids()}
    expected |= {i: "procurement" for record in site.purchases for i in record.entry_ids()}
    assert gl.unposted_entries() == expected
    invoices = gl.download_gl_batch(["invoices"])
    gl.update_gl_batch(invoices.batch_id, invoices.gl_entry_ids(), kinds=["invoices"])
    assert gl.unposted_entries() == {i: k for i, k in expected.items() if k != "invoices"}
    assert len(sandbox.accounting.unposted_invoice_numbers()) == 0


def test_rest_knows_no_batch_identifier_longer_than_connectwise_allows(rest_client: RestClient) -> None:
    with pytest.raises(UnknownBatchError):
        rest_client.posted_entries("x" * 51)
    assert rest_client.posted_entries("x" * 50) is None
