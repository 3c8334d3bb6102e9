"""Attacks on adoption, relative thru dates and the in-doubt re-export, from an outside review:
each test states the money-safety rule it expects (docs/gl-batches.md)."""

import json
import time
from dataclasses import replace
from datetime import date, timedelta
from typing import Any

import pytest

from connectwise.accounting_interface.client import AccountingClient
from connectwise.errors import TransportError
from connectwise.rest.client import RestClient
from sandbox.server import SandboxServer
from scripts.harness import LocalEnvironment
from tasks.gl.requests import PostingConfirmation
from tasks.gl.update import update_gl_batch
from tasks.platform.batch_ledger import Ledger
from tasks.platform.errors import BatchStateError
from tests.integration.test_gl_adoption import (
    FOREIGN_REST_ID,
    error_of,
    foreign_batch,
    other_connector,
    posted_in,
    update_services,
)
from tests.integration.test_gl_life_cycle import (
    batches,
    confirm,
    dead_letters,
    detail_types,
    download,
    ledger_items,
    s3_body,
)


@pytest.fixture(params=["accounting_interface", "rest"])
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


def kept_ids(env: LocalEnvironment, batch_id: str) -> set[int]:
    """The GL entries the ledger says the batch was posted with (its kept confirmation)."""
    item = ledger_items(env)[f"batch#main#{batch_id}"]
    return set(json.loads(s3_body(env, item["confirmation"]["S"]))["gl_entry_ids"])


# --- 1. REST: "the batch already exists" is taken for "our update landed" -------------------


@pytest.mark.parametrize("backend", ["rest"])
def test_a_rest_batch_created_meanwhile_with_part_of_the_entries_is_not_recorded_posted_with_all(
    env: LocalEnvironment, sandbox: SandboxServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The other connector (still running during the move) posts the batch with one of its two
    invoices between the adoption's checks and our update. ConnectWise holds one invoice; the
    ledger must not say POSTED with both (rule 6: ConnectWise decides, not a reply)."""
    batch_id, ids = foreign_batch(env, sandbox, invoices=2)
    first = next(i for i in sandbox.accounting.site.invoices if ids[0] in i.entry_ids())
    part = sorted(first.entry_ids())
    original = Ledger.start_posting
    other = other_connector(env, sandbox)

    def meanwhile(self: Ledger, *args: Any) -> Any:
        other.update_gl_batch(batch_id, part, kinds=["invoices"])
        return original(self, *args)

    monkeypatch.setattr(Ledger, "start_posting", meanwhile)
    confirm(env, {"connection": "main", "batch_id": batch_id, "gl_entry_ids": ids})
    monkeypatch.undo()
    held = {i for i, b in posted_in(sandbox, ids).items() if b == batch_id}
    assert held == set(part)  # what ConnectWise holds
    assert batches(env) == {f"batch#main#{batch_id}": "POSTED"}
    assert kept_ids(env, batch_id) <= held, (  # FAILS: the ledger claims all of them
        f"ledger says posted with {len(kept_ids(env, batch_id))} entries, ConnectWise holds {len(held)}"
    )


@pytest.mark.parametrize("backend", ["rest"])
def test_a_rest_batch_whose_identifier_differs_only_in_case_is_not_this_batch(
    env: LocalEnvironment, sandbox: SandboxServer
) -> None:
    """REST conditions compare text without case (the sandbox, like SQL Server's default
    collation). A batch 'ZYNK-...' that exists with other records makes the update of
    'zynk-...' return 'already exists': POSTED, with nothing posted on ConnectWise."""
    batch_id, ids = FOREIGN_REST_ID, foreign_batch(env, sandbox, invoices=2)[1]
    other_invoice = next(i for i in sandbox.accounting.site.invoices if not set(i.entry_ids()) & set(ids))
    other_connector(env, sandbox).update_gl_batch(
        batch_id.upper(), other_invoice.entry_ids(), kinds=["invoices"]
    )
    confirm(env, {"connection": "main", "batch_id": batch_id, "gl_entry_ids": ids})
    if batches(env).get(f"batch#main#{batch_id}") == "POSTED":  # then ConnectWise must hold them
        assert set(posted_in(sandbox, ids).values()) == {batch_id}, "POSTED with nothing on ConnectWise"


# --- 2. An adopted batch's entries are frozen at its first confirmation ---------------------


def test_the_rest_of_a_batch_confirmed_in_two_messages_is_refused_loudly(
    env: LocalEnvironment, sandbox: SandboxServer
) -> None:
    """The accounting system confirms the other connector's batch in two parts (or re-sends the
    corrected full list). The first part defines the adopted batch; the second is refused as
    'not in batch' with no GLBatchConfirmationRefused event, and its records, booked by the
    accounting system under that batch, are handed out again in the next download. Rule 4
    says such a confirmation is refused loudly."""
    batch_id, ids = foreign_batch(env, sandbox, invoices=2)
    first = next(i for i in sandbox.accounting.site.invoices if ids[0] in i.entry_ids())
    part_a = sorted(first.entry_ids())
    part_b = sorted(set(ids) - set(part_a))
    confirm(env, {"connection": "main", "batch_id": batch_id, "gl_entry_ids": part_a})
    confirm(env, {"connection": "main", "batch_id": batch_id, "gl_entry_ids": part_b})
    assert len(dead_letters(env)) == 1  # refused: 'GL entry ids not in batch ...'
    later = download(env, {"connection": "main", "kinds": ["invoices"]})
    manifest = json.loads(s3_body(env, later["keys"]["manifest"]))
    assert set(part_b) <= set(manifest["gl_entry_ids"])  # handed out again
    assert "GLBatchConfirmationRefused" in detail_types(env), "refused quietly"


def test_a_corrected_confirmation_of_an_adopted_batch_is_refused_loudly_and_nothing_is_lost(
    env: LocalEnvironment, sandbox: SandboxServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The first confirmation lacked an invoice; before the batch is posted (its update was not
    run: ConnectWise unavailable), the corrected full list comes. An adopted batch holds what
    its first confirmation listed (taking more would mean adopting again, not built): the
    corrected list is refused loudly, the batch is posted with what it holds, and the missing
    invoice stays unposted on ConnectWise, handed out again in a later download."""
    batch_id, ids = foreign_batch(env, sandbox, invoices=2)
    first = next(i for i in sandbox.accounting.site.invoices if ids[0] in i.entry_ids())
    part_a = sorted(first.entry_ids())
    svc, _ = update_services(env, monkeypatch)
    client_class = RestClient if env.backend == "rest" else AccountingClient

    def unavailable(*args: Any, **kwargs: Any) -> Any:
        raise TransportError("POST: HTTP 503 from ConnectWise", status=503)  # surely not run

    first_part = PostingConfirmation(connection="main", batch_id=batch_id, gl_entry_ids=part_a)
    with monkeypatch.context() as down:
        down.setattr(client_class, "update_gl_batch", unavailable)
        with pytest.raises(TransportError):
            update_gl_batch(first_part, svc)
    assert batches(env) == {f"batch#main#{batch_id}": "DOWNLOADED"}
    corrected = PostingConfirmation(connection="main", batch_id=batch_id, gl_entry_ids=ids)
    with pytest.raises(BatchStateError, match="an adopted batch holds what its first confirmation listed"):
        update_gl_batch(corrected, svc)
    assert "GLBatchConfirmationRefused" in detail_types(env)
    assert update_gl_batch(first_part, svc)["status"] == "posted"  # the retry of the first part
    assert set(posted_in(sandbox, part_a).values()) == {batch_id}
    later = download(env, {"connection": "main", "kinds": ["invoices"]})
    rest = set(ids) - set(part_a)
    assert rest <= set(json.loads(s3_body(env, later["keys"]["manifest"]))["gl_entry_ids"])


# --- 3. Records dated after ConnectWise's today -----------------------------------------------


def future_invoice(sandbox: SandboxServer, days: int = 3) -> Any:
    """An invoice dated after today (an agreement invoice made ahead, or a site whose day has
    begun before ConnectWise's)."""
    invoice = sandbox.accounting.site.invoices[-1]
    invoice.date = date.today() + timedelta(days=days)
    return invoice


def test_a_foreign_batch_with_a_record_dated_after_today_can_be_adopted(
    env: LocalEnvironment, sandbox: SandboxServer
) -> None:
    """The other connector exported through a future date (or 'today' in a zone ahead of
    ConnectWise's). Its entries are unposted on ConnectWise; the adoption's checks look only
    through ConnectWise's today and refuse them as 'unknown ids, or posted in another batch'
    (Accounting Interface), or fail on the REST export's invoice count."""
    invoice = future_invoice(sandbox)
    ids = sorted(invoice.entry_ids())
    export = other_connector(env, sandbox).download_gl_batch(
        ["invoices"], thru_date=date.today() + timedelta(days=30)
    )
    batch_id = FOREIGN_REST_ID if env.backend == "rest" else export.batch_id
    assert set(ids) <= set(export.gl_entry_ids())
    confirm(env, {"connection": "main", "batch_id": batch_id, "gl_entry_ids": ids})
    assert [error_of(d) for d in dead_letters(env)] == []
    assert set(posted_in(sandbox, ids).values()) == {batch_id}


@pytest.mark.parametrize("backend", ["rest"])
def test_one_invoice_dated_after_today_does_not_stop_every_rest_download(
    env: LocalEnvironment, sandbox: SandboxServer
) -> None:
    """REST lists unposted invoices with no date bound but exports through ConnectWise's today:
    the invoice count differs and the nightly download (no thru date, the template's default)
    fails every night until that invoice's date has passed; so does every adoption."""
    future_invoice(sandbox)
    result = download(env, {"connection": "main", "kinds": ["invoices"]})
    assert result["status"] == "downloaded"


# --- 4. Identifiers compared exactly here, loosely by ConnectWise ----------------------------


@pytest.mark.parametrize("backend", ["rest"])
def test_a_posted_batch_confirmed_again_under_another_case_is_not_a_second_posted_batch(
    env: LocalEnvironment, sandbox: SandboxServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The accounting system re-sends a confirmation with the batch id upper-cased. The ledger
    key is exact, ConnectWise's lookup is not: a second batch is 'adopted' and POSTED with the
    same GL entries (GLBatchAdopted and GLBatchPosted again) instead of a no-op (rule 3)."""
    batch_id, ids = foreign_batch(env, sandbox)
    confirm(env, {"connection": "main", "batch_id": batch_id, "gl_entry_ids": ids})
    env.events()
    confirm(env, {"connection": "main", "batch_id": batch_id.upper(), "gl_entry_ids": ids})
    assert detail_types(env) == [], "the same GL entries are announced posted a second time"


# --- 5. Deaths ---------------------------------------------------------------------------------


class Death(BaseException):
    pass


def test_glbatchadopted_is_not_lost_when_the_process_dies_around_the_ledger_write(
    env: LocalEnvironment, sandbox: SandboxServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """GLBatchAdopted is published before the ledger write: a death there leaves no record, and
    the next delivery (once the dead invocation's claims are stale) adopts and announces again."""
    batch_id, ids = foreign_batch(env, sandbox)
    svc, _ = update_services(env, monkeypatch)
    original = svc.notices.publish

    def dies(detail_type: str, detail: Any) -> None:
        if detail_type == "GLBatchAdopted":
            raise Death(detail_type)
        original(detail_type, detail)

    confirmation = PostingConfirmation(connection="main", batch_id=batch_id, gl_entry_ids=ids)
    with monkeypatch.context() as dying:
        dying.setattr(svc.notices, "publish", dies)
        dying.setattr(Ledger, "release", lambda *args: None)
        with pytest.raises(Death):
            update_gl_batch(confirmation, svc)
    assert batches(env) == {}  # nothing recorded: the claims of the dead invocation stay until stale
    later = replace(svc, clock=lambda: time.time() + svc.settings.stale_after_seconds + 1)
    assert update_gl_batch(confirmation, later)["status"] == "posted"
    assert "GLBatchAdopted" in detail_types(env)
