"""Batches this connector did not download (a site moving from another connector has open batches
from there): adopted from a confirmation that lists their GL entries, checked, recorded, and
posted by the same money-safety rules as a downloaded batch. Both backends."""

import json
import os
import threading
import time
from collections.abc import Callable
from typing import Any

import pytest

from connectwise.accounting_interface.client import AccountingClient
from connectwise.backends import GLBackend
from connectwise.rest.client import RestClient
from sandbox.server import SandboxServer
from scripts.harness import LocalEnvironment
from scripts.lambda_local import invoke, sqs_event
from tasks.gl.requests import PostingConfirmation
from tasks.gl.update import update_gl_batch
from tasks.platform.batch_ledger import Ledger
from tasks.platform.errors import BatchBlockedError, BatchBusyError, BatchStateError
from tasks.platform.services import Services
from tests.conftest import rest_connection, sandbox_connection
from tests.glexport_kept import keep
from tests.integration.test_gl_life_cycle import (
    batches,
    confirm,
    dead_letters,
    detail_types,
    download,
    ledger_items,
    s3_body,
    s3_keys,
)

FOREIGN_REST_ID = "zynk-20261101-invoices"  # a REST batch is named by whoever posts it


@pytest.fixture(params=["accounting_interface", "rest"])
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


def other_connector(env: LocalEnvironment, sandbox: SandboxServer) -> GLBackend:
    """The connector the site moves from, talking to the same ConnectWise."""
    if env.backend == "rest":
        return RestClient(rest_connection(sandbox), retries=2, backoff=0.01)
    return AccountingClient(sandbox_connection(sandbox), retries=2, backoff=0.01)


def foreign_batch(
    env: LocalEnvironment, sandbox: SandboxServer, invoices: int = 3, kind: str = "invoices"
) -> tuple[str, list[int]]:
    """A batch the other connector downloaded before the move: its id (ConnectWise's GLBatchID of
    the export on the Accounting Interface, an identifier of its own on REST) and the GL entry ids
    of its first records (`invoices` of them)."""
    export = keep(other_connector(env, sandbox).download_gl_batch, [kind])
    records: list[Any] = list(export.records(kind))[:invoices]
    ids: list[int] = []
    for record in records:
        ids += getattr(record, "GLEntryRecID", [])
        for line in [*getattr(record, "Details", []), *getattr(record, "ExpenseDetails", [])]:
            ids += line.GLEntryRecID
        ids += [i for line in getattr(record, "PurchaseDetails", []) for i in line.GLEntryRecID]
    batch_id = f"zynk-20261101-{kind}" if env.backend == "rest" else export.batch_id
    return batch_id, sorted(set(ids))


def posted_in(sandbox: SandboxServer, ids: list[int]) -> dict[int, str | None]:
    """The ConnectWise batch each GL entry is posted in (None: unposted)."""
    return {i: sandbox.accounting.posted.get(i) for i in ids}


def count_writes(env: LocalEnvironment, sandbox: SandboxServer, monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Every batch update ConnectWise runs from now on (the GL page's update, REST's batch create)."""
    writes: list[str] = []
    if env.backend == "rest":
        original_create = sandbox.rest._create_batch

        def create(request: dict[str, Any]) -> Any:
            writes.append(str(request.get("batchIdentifier")))
            return original_create(request)

        monkeypatch.setattr(sandbox.rest, "_create_batch", create)
    else:
        original_update = sandbox.accounting.update

        def update(form: Any) -> bytes:
            writes.append(str(form.get("GLBatchID")))
            return original_update(form)

        monkeypatch.setattr(sandbox.accounting, "update", update)
    return writes


def update_services(env: LocalEnvironment, monkeypatch: pytest.MonkeyPatch) -> tuple[Services, list[float]]:
    """The update function's services, with a clock the test moves."""
    from tasks.runtime import services

    os.environ.update(env.stack.function_env("UpdateGLBatchFunction"))
    services.cache_clear()
    svc = services()
    now = [time.time()]
    monkeypatch.setattr(svc, "clock", lambda: now[0])
    return svc, now


def error_of(dead: dict[str, Any]) -> str:
    return str(dead["MessageAttributes"]["error"]["StringValue"])


def adopted_manifest(env: LocalEnvironment, batch_id: str) -> dict[str, Any]:
    [key] = [k for k in s3_keys(env) if k.startswith(f"gl-batches/main/{batch_id}/adopted-")]
    manifest: dict[str, Any] = json.loads(s3_body(env, key))
    return manifest


# --- adopted and posted ----------------------------------------------------------------------


def test_a_batch_downloaded_elsewhere_is_adopted_posted_and_shows_up_like_any_other(
    env: LocalEnvironment, sandbox: SandboxServer
) -> None:
    batch_id, ids = foreign_batch(env, sandbox)
    assert confirm(env, {"connection": "main", "batch_id": batch_id, "gl_entry_ids": ids}) == [
        {"batchItemFailures": []}
    ]
    assert set(posted_in(sandbox, ids).values()) == {batch_id}  # posted in that batch on ConnectWise
    assert batches(env) == {f"batch#main#{batch_id}": "POSTED"}
    item = ledger_items(env)[f"batch#main#{batch_id}"]
    assert item["adopted"] == {"BOOL": True} and int(item["gl_entry_count"]["N"]) == len(ids)
    assert not [pk for pk in ledger_items(env) if pk.startswith("open#")]  # its kind is free again
    adopted, posted = env.events()
    assert adopted["detail-type"] == "GLBatchAdopted"
    assert (adopted["detail"]["kinds"], adopted["detail"]["gl_entry_ids"]) == (["invoices"], len(ids))
    assert adopted["detail"]["held_by_connectwise"] is None
    assert posted["detail-type"] == "GLBatchPosted" and posted["detail"]["adopted"] is True
    assert (posted["detail"]["posted"], posted["detail"]["partial"]) == (len(ids), False)
    manifest = adopted_manifest(env, batch_id)
    assert manifest["gl_entry_ids"] == ids and manifest["adopted"] is True
    kept = json.loads(s3_body(env, posted["detail"]["confirmation"]))
    assert kept["gl_entry_ids"] == ids  # kept, re-sendable, as for any batch
    later = download(env, {"connection": "main", "kinds": ["invoices"]})
    assert later["counts"]["invoices"] == 9  # its three invoices are never handed out here


def test_a_confirmation_of_a_batch_not_downloaded_here_must_list_its_entries(
    env: LocalEnvironment, sandbox: SandboxServer
) -> None:
    batch_id, _ = foreign_batch(env, sandbox)
    seen = sandbox.requests_seen
    for body in ({"batch_id": batch_id}, {"batch_id": batch_id, "gl_entry_ids": []}):
        assert confirm(env, {"connection": "main"} | body) == [{"batchItemFailures": []}]
        [dead] = dead_letters(env)
        assert "so its confirmation must list its GL entry ids (gl_entry_ids) to adopt it" in error_of(dead)
    abandon = {"connection": "main", "batch_id": batch_id, "action": "abandon", "gl_entry_ids": [1]}
    confirm(env, abandon)
    [dead] = dead_letters(env)
    assert error_of(dead) == f"unknown batch {batch_id} for connection 'main': it was not downloaded here"
    assert sandbox.requests_seen == seen and ledger_items(env) == {} and env.events() == []


# --- what is refused, and nothing changes ---------------------------------------------------


def test_entries_of_a_batch_open_here_are_refused(env: LocalEnvironment, sandbox: SandboxServer) -> None:
    """The stack downloaded the same records again after the move: one batch may post them."""
    batch_id, ids = foreign_batch(env, sandbox)
    ours = download(env, {"connection": "main", "kinds": ["invoices"]})
    env.events()
    confirm(env, {"connection": "main", "batch_id": batch_id, "gl_entry_ids": ids})
    [dead] = dead_letters(env)
    assert error_of(dead).startswith(
        f"batch {batch_id} cannot be adopted: its GL entries {', '.join(map(str, ids[:10]))}"
    )
    assert f"are in batch {ours['batch_id']}, which this connector downloaded and has not posted" in error_of(
        dead
    )
    assert batches(env) == {f"batch#main#{ours['batch_id']}": "DOWNLOADED"}
    assert set(posted_in(sandbox, ids).values()) == {None} and env.events() == []
    confirm(env, {"connection": "main", "batch_id": ours["batch_id"]})  # its own batch still posts them
    assert set(posted_in(sandbox, ids).values()) == {ours["batch_id"]}


def test_a_kind_an_open_batch_here_holds_waits_for_it_and_other_kinds_do_not(
    env: LocalEnvironment, sandbox: SandboxServer
) -> None:
    ours = download(env, {"connection": "main", "kinds": ["invoices"], "thru_date": "2026-08-10"})
    late_invoices = [i for i in sandbox.accounting.site.invoices if i.date.isoformat() > "2026-08-10"][:2]
    ids = sorted(e for invoice in late_invoices for e in invoice.entry_ids())
    batch_id = FOREIGN_REST_ID if env.backend == "rest" else foreign_batch(env, sandbox)[0]
    confirm(env, {"connection": "main", "batch_id": batch_id, "gl_entry_ids": ids})
    [dead] = dead_letters(env)
    assert (
        f"open batches of this connector hold until posted or abandoned (invoices: batch {ours['batch_id']})"
        in (error_of(dead))
    )
    assert "send this confirmation again after that; nothing was changed" in error_of(dead)
    assert f"batch#main#{batch_id}" not in batches(env) and set(posted_in(sandbox, ids).values()) == {None}

    expenses_id, expense_ids = foreign_batch(env, sandbox, invoices=2, kind="expenses")
    confirm(env, {"connection": "main", "batch_id": expenses_id, "gl_entry_ids": expense_ids})
    assert batches(env)[f"batch#main#{expenses_id}"] == "POSTED"  # another kind: no wait

    confirm(env, {"connection": "main", "batch_id": ours["batch_id"]})
    confirm(env, {"connection": "main", "batch_id": batch_id, "gl_entry_ids": ids})  # sent again
    assert batches(env)[f"batch#main#{batch_id}"] == "POSTED"
    assert set(posted_in(sandbox, ids).values()) == {batch_id}


def test_entries_connectwise_does_not_list_as_unposted_are_refused(
    env: LocalEnvironment, sandbox: SandboxServer
) -> None:
    batch_id, ids = foreign_batch(env, sandbox)
    confirm(env, {"connection": "main", "batch_id": batch_id, "gl_entry_ids": [*ids, 1, 2]})
    [dead] = dead_letters(env)
    assert error_of(dead) == (
        f"batch {batch_id} cannot be adopted: ConnectWise lists GL entries 1, 2 neither as unposted nor in "
        "this batch (unknown ids, or posted in another batch); nothing was changed"
    )
    first = next(i for i in sandbox.accounting.site.invoices if ids[0] in i.entry_ids())
    other = other_connector(env, sandbox)
    elsewhere = other.download_gl_batch(["invoices"])
    other.update_gl_batch(elsewhere.batch_id, first.entry_ids(), kinds=["invoices"])  # posted elsewhere
    confirm(env, {"connection": "main", "batch_id": batch_id, "gl_entry_ids": ids})
    [dead] = dead_letters(env)
    shown = ", ".join(str(i) for i in sorted(first.entry_ids()))
    assert f"ConnectWise lists GL entries {shown} neither as unposted" in error_of(dead)
    assert ledger_items(env) == {}  # nothing recorded, no kind left claimed
    rest = sorted(set(ids) - set(first.entry_ids()))
    assert posted_in(sandbox, rest) == dict.fromkeys(rest)


@pytest.mark.parametrize("backend", ["rest"])
def test_an_identifier_no_rest_batch_can_have_is_refused(
    env: LocalEnvironment, sandbox: SandboxServer
) -> None:
    _, ids = foreign_batch(env, sandbox)
    too_long = "z" * 51
    confirm(env, {"connection": "main", "batch_id": too_long, "gl_entry_ids": ids})
    [dead] = dead_letters(env)
    assert error_of(dead).startswith(
        f"batch {too_long} cannot be adopted: no ConnectWise batch can have that id"
    )
    assert ledger_items(env) == {}


def test_abandon_gives_back_an_adopted_batch_that_connectwise_refused(
    env: LocalEnvironment, sandbox: SandboxServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Someone posts the entries in another batch between the checks and the update: the update is
    refused, the batch FAILED; it holds its kind (those records were booked by the accounting
    system) until it is abandoned."""
    batch_id, ids = foreign_batch(env, sandbox)
    original = Ledger.start_posting
    other = other_connector(env, sandbox)

    def meanwhile(self: Ledger, *args: Any) -> Any:
        elsewhere = other.download_gl_batch(["invoices"])
        other.update_gl_batch(elsewhere.batch_id, ids, kinds=["invoices"])
        return original(self, *args)

    monkeypatch.setattr(Ledger, "start_posting", meanwhile)
    assert confirm(env, {"connection": "main", "batch_id": batch_id, "gl_entry_ids": ids}) == [
        {"batchItemFailures": []}
    ]
    monkeypatch.undo()
    assert batches(env) == {f"batch#main#{batch_id}": "FAILED"}
    assert detail_types(env) == ["GLBatchAdopted", "GLBatchFailed"]
    with pytest.raises(BatchBlockedError, match=f"blocked by batch {batch_id}"):
        download(env, {"connection": "main", "kinds": ["invoices"]})
    confirm(env, {"connection": "main", "batch_id": batch_id, "action": "abandon"})
    assert batches(env) == {f"batch#main#{batch_id}": "ABANDONED"}
    assert download(env, {"connection": "main", "kinds": ["invoices"]})["status"] == "downloaded"


@pytest.mark.parametrize("backend", ["accounting_interface"])
def test_a_gl_batch_id_connectwise_never_issued_fails_at_the_update(
    env: LocalEnvironment, sandbox: SandboxServer
) -> None:
    """The Accounting Interface cannot tell beforehand whether it issued a GLBatchID."""
    _, ids = foreign_batch(env, sandbox)
    typo = "00000000-0000-0000-0000-000000000000"
    confirm(env, {"connection": "main", "batch_id": typo, "gl_entry_ids": ids})
    assert batches(env) == {f"batch#main#{typo}": "FAILED"}
    [_, failed] = env.events()
    assert "Cannot find GL batch" in failed["detail"]["error"]
    assert set(posted_in(sandbox, ids).values()) == {None}


# --- collisions with batches made here ------------------------------------------------------


def test_a_batch_id_made_here_is_that_batch_never_an_adoption(
    env: LocalEnvironment, sandbox: SandboxServer
) -> None:
    ours = download(env, {"connection": "main", "kinds": ["invoices"]})
    expense = sandbox.accounting.site.expenses[0].entry_ids()
    confirm(env, {"connection": "main", "batch_id": ours["batch_id"], "gl_entry_ids": expense})
    [dead] = dead_letters(env)
    assert f"GL entry ids not in batch {ours['batch_id']}" in error_of(dead)
    assert detail_types(env) == [
        "GLBatchDownloaded",
        "GLBatchConfirmationRefused",
    ]  # refused loudly, no adoption
    assert not [k for k in s3_keys(env) if "/adopted-" in k]


def test_a_batch_id_of_a_download_that_never_completed_is_adopted_beside_it(
    env: LocalEnvironment, sandbox: SandboxServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A download died between its S3 write and its ledger write: nothing here holds its records.
    A confirmation for it is adopted; the download's outputs are left as they are."""

    def crash(self: Ledger, *args: Any) -> None:
        raise RuntimeError("simulated crash after the S3 write")

    monkeypatch.setattr(Ledger, "record_download", crash)
    with pytest.raises(RuntimeError):
        download(env, {"connection": "main", "kinds": ["invoices"]})
    monkeypatch.undo()
    [manifest_key] = [k for k in s3_keys(env) if k.endswith("/manifest.json")]
    orphan = s3_body(env, manifest_key)
    batch_id, ids = manifest_key.split("/")[2], json.loads(orphan)["gl_entry_ids"][:6]
    assert confirm(env, {"connection": "main", "batch_id": batch_id, "gl_entry_ids": ids}) == [
        {"batchItemFailures": []}
    ]
    assert batches(env) == {f"batch#main#{batch_id}": "POSTED"}
    assert s3_body(env, manifest_key) == orphan and adopted_manifest(env, batch_id)["gl_entry_ids"] == ids
    assert set(posted_in(sandbox, ids).values()) == {batch_id}


# --- twice, twice at once, and deaths -------------------------------------------------------


def test_the_same_foreign_confirmation_twice_posts_once(
    env: LocalEnvironment, sandbox: SandboxServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    batch_id, ids = foreign_batch(env, sandbox)
    writes = count_writes(env, sandbox, monkeypatch)
    confirmation = {"connection": "main", "batch_id": batch_id, "gl_entry_ids": ids}
    confirm(env, confirmation)
    confirm(env, confirmation, confirmation)  # redelivered, and re-sent as new messages
    assert writes == [batch_id]
    assert detail_types(env) == ["GLBatchAdopted", "GLBatchPosted"] and dead_letters(env) == []
    confirm(env, confirmation | {"gl_entry_ids": [*ids, 10**6]})  # other entries: not this batch's
    [dead] = dead_letters(env)
    assert f"GL entry ids not in batch {batch_id}: 1000000" in error_of(dead)


def test_the_same_foreign_confirmation_twice_at_once_posts_once(
    env: LocalEnvironment, sandbox: SandboxServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    batch_id, ids = foreign_batch(env, sandbox)
    writes = count_writes(env, sandbox, monkeypatch)
    body = json.dumps({"connection": "main", "batch_id": batch_id, "gl_entry_ids": ids})
    invoke(env.stack, "UpdateGLBatchFunction", {"Records": []})  # its environment, before the race
    sandbox.faults.set({"latency_ms": 200})  # both deliveries are inside ConnectWise at once
    start = threading.Barrier(2)
    responses: list[Any] = []

    def deliver(n: int) -> None:
        event = sqs_event(
            [{"MessageId": f"m{n}", "ReceiptHandle": f"r{n}", "Body": body, "MD5OfBody": "-"}],
            "arn:aws:sqs:us-east-1:123456789012:confirmations",
        )
        start.wait()
        responses.append(invoke(env.stack, "UpdateGLBatchFunction", event))

    threads = [threading.Thread(target=deliver, args=(n,)) for n in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    sandbox.faults.set({"latency_ms": 0})
    retried = [r for r in responses if r["batchItemFailures"]]
    assert len(retried) <= 1  # the one that lost the race is retried by SQS...
    for _ in retried:
        confirm(env, json.loads(body))  # ...and then finds the batch posted
    assert writes == [batch_id] and batches(env) == {f"batch#main#{batch_id}": "POSTED"}
    assert detail_types(env) == ["GLBatchAdopted", "GLBatchPosted"] and dead_letters(env) == []


@pytest.mark.parametrize("first", ["adoption", "download"])
def test_an_adoption_and_a_download_at_once_never_share_a_record(
    env: LocalEnvironment, sandbox: SandboxServer, monkeypatch: pytest.MonkeyPatch, first: str
) -> None:
    """Whichever claims the kind first, a record is in the adopted batch or in a batch made here,
    never in both, and in one of them."""
    batch_id, ids = foreign_batch(env, sandbox)
    invoke(env.stack, "UpdateGLBatchFunction", {"Records": []})
    sandbox.faults.set({"latency_ms": 200})  # the first is still inside ConnectWise when the other starts
    claimed, original_claim = threading.Event(), Ledger.claim

    def claim(self: Ledger, *args: Any) -> Any:
        holders = original_claim(self, *args)
        claimed.set()
        return holders

    monkeypatch.setattr(Ledger, "claim", claim)
    results: dict[str, Any] = {}
    confirmation = PostingConfirmation(connection="main", batch_id=batch_id, gl_entry_ids=ids)
    svc, _ = update_services(env, monkeypatch)

    def adopt() -> None:
        if first != "adoption":
            claimed.wait(10)
        try:
            results["adopt"] = update_gl_batch(confirmation, svc)
        except (BatchBusyError, BatchStateError) as exc:
            results["adopt"] = exc

    def schedule() -> None:
        if first != "download":
            claimed.wait(10)
        event = {"connection": "main", "kinds": ["invoices"]}
        results["download"] = invoke(env.stack, "DownloadGLBatchFunction", event)

    threads = [threading.Thread(target=adopt), threading.Thread(target=schedule)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    sandbox.faults.set({"latency_ms": 0})
    if first == "adoption":
        assert results["adopt"]["status"] == "posted" and results["download"]["status"] == "busy"
    else:
        assert isinstance(results["adopt"], BatchBusyError)  # SQS delivers it again:
        confirm(env, confirmation.model_dump(mode="json"))
        [dead] = dead_letters(env)  # refused, naming the batch made here
        assert f"are in batch {results['download']['batch_id']}" in error_of(dead)
    ours = [
        set(json.loads(s3_body(env, item["keys"]["M"]["manifest"]["S"]))["gl_entry_ids"])
        for item in ledger_items(env).values()
        if "status" in item and "adopted" not in item
    ]
    foreign_posted = {i for i, batch in posted_in(sandbox, ids).items() if batch == batch_id}
    assert foreign_posted in (set(), set(ids))  # all of the batch or none of it
    assert not any(foreign_posted & held for held in ours)  # never also in a batch made here
    assert foreign_posted or any(set(ids) <= held for held in ours)  # and not lost either


class Death(BaseException):
    """The process dies here: nothing after it runs, no clean-up either."""


CRASH_POINTS = [
    "before_the_ledger_write",
    "after_the_ledger_write",
    "after_keeping_the_confirmation",
    "after_the_connectwise_write",
]


@pytest.mark.parametrize("point", CRASH_POINTS)
def test_a_death_anywhere_posts_the_adopted_batch_once_when_delivered_again(
    env: LocalEnvironment, sandbox: SandboxServer, monkeypatch: pytest.MonkeyPatch, point: str
) -> None:
    batch_id, ids = foreign_batch(env, sandbox)
    writes = count_writes(env, sandbox, monkeypatch)
    svc, now = update_services(env, monkeypatch)
    original: dict[str, Callable[..., Any]] = {
        name: getattr(Ledger, name)
        for name in ("record_download", "start_posting", "keep_confirmation", "finish_posting")
    }

    def dies_after(name: str) -> Callable[..., Any]:
        def run(self: Ledger, *args: Any) -> Any:
            original[name](self, *args)
            raise Death(name)

        return run

    def dies_before(self: Ledger, *args: Any) -> Any:
        raise Death("record_download")

    patches = {
        "before_the_ledger_write": ("record_download", dies_before),
        "after_the_ledger_write": ("record_download", dies_after("record_download")),
        "after_keeping_the_confirmation": ("keep_confirmation", dies_after("keep_confirmation")),
        "after_the_connectwise_write": ("finish_posting", dies_before),
    }
    name, replacement = patches[point]
    with monkeypatch.context() as dying:
        dying.setattr(Ledger, name, replacement)
        dying.setattr(Ledger, "release", lambda *args: None)  # a dead process cleans nothing up
        dying.setattr(Ledger, "abort_posting", lambda *args, **kwargs: None)
        with pytest.raises(Death):
            update_gl_batch(PostingConfirmation(connection="main", batch_id=batch_id, gl_entry_ids=ids), svc)
    assert writes == ([batch_id] if point == "after_the_connectwise_write" else [])
    if point != "before_the_ledger_write":  # recorded: its kind is held, no download hands it out
        with pytest.raises(BatchBlockedError):
            download(env, {"connection": "main", "kinds": ["invoices"]})

    confirmation = PostingConfirmation(connection="main", batch_id=batch_id, gl_entry_ids=ids)
    for _ in range(3):  # SQS delivers it again; a claim or a POSTING left by the dead one goes stale
        try:
            result = update_gl_batch(confirmation, svc)
            break
        except BatchBusyError:
            now[0] += svc.settings.stale_after_seconds + 1
    assert result["status"] == "posted" and result["adopted"] is True
    assert writes == [batch_id]  # ConnectWise was written once, whatever the death
    assert batches(env) == {f"batch#main#{batch_id}": "POSTED"}
    assert set(posted_in(sandbox, ids).values()) == {batch_id}
    assert update_gl_batch(confirmation, svc)["status"] == "already-posted"


def test_an_adoption_whose_update_reply_is_lost_is_checked_against_connectwise(
    env: LocalEnvironment, sandbox: SandboxServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    batch_id, ids = foreign_batch(env, sandbox)
    writes = count_writes(env, sandbox, monkeypatch)
    original = Ledger.keep_confirmation

    def then_the_reply_is_cut(self: Ledger, *args: Any) -> None:
        original(self, *args)
        sandbox.faults.set({"malformed": 1, "methods": ["POST"]})  # the update runs, its reply is cut

    monkeypatch.setattr(Ledger, "keep_confirmation", then_the_reply_is_cut)
    assert confirm(env, {"connection": "main", "batch_id": batch_id, "gl_entry_ids": ids}) == [
        {"batchItemFailures": []}
    ]
    assert batches(env) == {f"batch#main#{batch_id}": "POSTED"} and writes == [batch_id]
    assert detail_types(env) == ["GLBatchAdopted", "GLBatchPosted"]


# --- a batch ConnectWise already holds ------------------------------------------------------


def test_a_batch_connectwise_already_holds_is_recorded_from_connectwise_without_writing(
    env: LocalEnvironment, sandbox: SandboxServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The other connector posted it before the move and the confirmation comes here too."""
    batch_id, ids = foreign_batch(env, sandbox)
    other_connector(env, sandbox).update_gl_batch(batch_id, ids, kinds=["invoices"])
    writes = count_writes(env, sandbox, monkeypatch)
    assert confirm(env, {"connection": "main", "batch_id": batch_id, "gl_entry_ids": ids}) == [
        {"batchItemFailures": []}
    ]
    assert writes == [] and batches(env) == {f"batch#main#{batch_id}": "POSTED"}
    adopted, posted = env.events()
    assert adopted["detail"]["held_by_connectwise"] == len(ids) and adopted["detail"]["kinds"] == []
    assert posted["detail"]["posted"] == len(ids)
    assert adopted_manifest(env, batch_id)["held_by_connectwise"] == ids


def test_entries_a_held_batch_lacks_are_refused_loudly_and_come_again(
    env: LocalEnvironment, sandbox: SandboxServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """ConnectWise holds the batch with fewer entries than the confirmation names: POSTED with what
    ConnectWise holds, the rest refused as for any posted batch (rule 4; a REST batch cannot be
    added to), never claimed."""
    batch_id, ids = foreign_batch(env, sandbox, invoices=2)
    first_invoice = next(i for i in sandbox.accounting.site.invoices if ids[0] in i.entry_ids())
    first_only = sorted(first_invoice.entry_ids())
    other_connector(env, sandbox).update_gl_batch(batch_id, first_only, kinds=["invoices"])
    writes = count_writes(env, sandbox, monkeypatch)
    confirm(env, {"connection": "main", "batch_id": batch_id, "gl_entry_ids": ids})
    assert writes == [] and batches(env) == {f"batch#main#{batch_id}": "POSTED"}
    _, posted, refused = env.events()
    assert posted["detail"]["posted"] == len(first_only) and posted["detail"]["partial"] is True
    assert refused["detail-type"] == "GLBatchConfirmationRefused"
    assert refused["detail"]["gl_entry_ids"] == sorted(set(ids) - set(first_only))
    [dead] = dead_letters(env)
    assert "They stayed unposted on ConnectWise" in error_of(dead)
    assert download(env, {"connection": "main", "kinds": ["invoices"]})["counts"]["invoices"] == 11
