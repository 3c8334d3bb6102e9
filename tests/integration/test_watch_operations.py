"""The watcher (functions/watch_operations, tasks.connections.watch) run in-process against the
template's tables in moto, its IAM policy's actions enforced: the metrics and log lines of what
did not happen (GL batches left waiting, jobs that did not succeed on time)."""

import io
import json
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import requests

from connectwise.transport import Deadline
from scripts.lambda_local import cold_start, invoke
from scripts.local_aws import Stack, create_stack, use_endpoint
from tasks.connections.watch import WatchSettings, job_due, succeeded_since
from tasks.platform.batch_ledger import DOWNLOADED, FAILED, OPEN, POSTING, BatchRecord, open_key
from tasks.platform.errors import ConfigurationError
from tasks.platform.observability import logger
from tasks.platform.registry import ConnectionEntry, Job, Registry, parse_entry
from tasks.platform.runs import Run, Runs

HOUR = 3600


@pytest.fixture
def stack(moto_endpoint: str) -> Stack:
    requests.post(f"{moto_endpoint}/moto-api/reset", timeout=10).raise_for_status()
    use_endpoint(moto_endpoint)
    made = create_stack(moto_endpoint, {})
    cold_start()
    return made


@pytest.fixture
def log() -> Iterator[io.StringIO]:
    stream = io.StringIO()
    previous = logger.registered_handler.setStream(stream)  # the logger keeps the stdout of its birth
    try:
        yield stream
    finally:
        logger.registered_handler.setStream(previous)


def lines(stream: io.StringIO, message: str) -> list[dict[str, Any]]:
    found = [json.loads(line) for line in stream.getvalue().splitlines() if line.startswith("{")]
    return [line for line in found if line.get("message") == message]


def metrics(out: str) -> dict[str, dict[str, float]]:
    """The watcher's EMF documents: connection -> metric -> value."""
    found: dict[str, dict[str, float]] = {}
    for line in out.splitlines():
        if line.startswith("{") and '"_aws"' in line:
            document = json.loads(line)
            assert document["task"] == "watch_operations"
            names = [m["Name"] for m in document["_aws"]["CloudWatchMetrics"][0]["Metrics"]]
            found.setdefault(document.get("connection", ""), {}).update(
                {name: document[name][0] for name in names}
            )
    return found


def register(
    stack: Stack, name: str, jobs: list[dict[str, Any]], written_ago: float = 3 * HOUR, enabled: bool = True
) -> None:
    registry = Registry(
        stack.client("dynamodb"), stack.physical["ConnectionsTable"], clock=lambda: time.time() - written_ago
    )
    registry.put(
        parse_entry({"name": name, "backend": "rest", "enabled": enabled, "jobs": jobs}, f"connection {name}")
    )


def open_batch(
    stack: Stack, name: str, batch_id: str, status: str, hours_ago: float, kinds: list[str]
) -> None:
    """A batch as the ledger holds it, with the claims on its kinds naming it."""
    db, table = stack.client("dynamodb"), stack.physical["LedgerTable"]
    created = int(time.time() - hours_ago * HOUR)
    batch = BatchRecord(name, batch_id, kinds, status, created, {}, {}, {}, 3, updated_at=created + 60)
    db.put_item(TableName=table, Item=batch.to_item())
    for kind in kinds:
        item = open_key(name, kind) | {
            "state": {"S": OPEN},
            "batch_id": {"S": batch_id},
            "since": {"N": str(created)},
            "token": {"S": "t"},
        }
        db.put_item(TableName=table, Item=item)


def ran(stack: Stack, name: str, job: str, outcome: str, minutes_ago: float) -> None:
    at = datetime.fromtimestamp(time.time() - minutes_ago * 60, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    Runs(stack.client("dynamodb"), stack.physical["LedgerTable"]).record(Run(name, job, at, at, outcome, ""))


def every_minute(job_id: str, **more: Any) -> dict[str, Any]:
    return {
        "id": job_id,
        "task": "list_reports",
        "schedule": "cron(* * * * ? *)",
        "flexible_window_minutes": 0,
    } | more


def test_batches_left_waiting_are_counted_per_connection_and_logged(
    stack: Stack, capsys: pytest.CaptureFixture[str], log: io.StringIO
) -> None:
    for name in ("acme", "globex", "initech"):
        register(stack, name, [])
    register(stack, "dormant", [], enabled=False)
    open_batch(stack, "acme", "b-old", DOWNLOADED, 25, ["invoices"])
    open_batch(stack, "globex", "b-fresh", DOWNLOADED, 1, ["expenses"])
    open_batch(stack, "globex", "b-failed", FAILED, 30, ["invoices"])
    open_batch(stack, "globex", "b-posting", POSTING, 30, ["procurement"])
    open_batch(stack, "dormant", "b-kept", DOWNLOADED, 99, ["invoices"])
    capsys.readouterr()

    summary = invoke(stack, "WatchOperationsFunction", {"watch": True})

    found = metrics(capsys.readouterr().out)
    assert set(found) == {"acme", "globex", "initech"}  # a disabled connection is not watched
    assert found["acme"] == {
        "StaleGLBatches": 1,
        "OpenGLBatchesDownloaded": 1,
        "OpenGLBatchesFailed": 0,
        "OpenGLBatchesPosting": 0,
        "OverdueJobs": 0,
    }
    assert found["globex"]["StaleGLBatches"] == 1  # the FAILED one; the fresh one is not stale
    assert (found["globex"]["OpenGLBatchesDownloaded"], found["globex"]["OpenGLBatchesFailed"]) == (1, 1)
    assert found["globex"]["OpenGLBatchesPosting"] == 1  # POSTING is counted, never stale
    assert found["initech"]["StaleGLBatches"] == 0 and found["initech"]["OpenGLBatchesDownloaded"] == 0
    stale = {(b["connection"], b["batch_id"], b["status"]) for b in summary["stale_batches"]}
    assert stale == {("acme", "b-old", DOWNLOADED), ("globex", "b-failed", FAILED)}
    logged = lines(log, "GL batch stale")
    assert {(line["connection"], line["batch_id"]) for line in logged} == {
        ("acme", "b-old"),
        ("globex", "b-failed"),
    }
    assert all(line["level"] == "ERROR" and line["age_hours"] > 24 for line in logged)


def test_jobs_that_did_not_succeed_on_time_are_overdue(
    stack: Stack, capsys: pytest.CaptureFixture[str], log: io.StringIO
) -> None:
    # Every minute, so the latest due time is always the grace (30 + 3 x 120 s + 3 minutes) ago.
    register(
        stack,
        "acme",
        [
            every_minute("succeeded"),
            every_minute("failed-since"),
            every_minute("succeeded-before"),
            every_minute("off", enabled=False),
            {
                "id": "hourly",
                "task": "list_reports",
                "schedule": "rate(1 hour)",
                "flexible_window_minutes": 0,
            },
        ],
    )
    register(stack, "newco", [every_minute("fresh")], written_ago=60)  # just added: not judged yet
    register(stack, "dormant", [every_minute("nightly")], enabled=False)
    ran(stack, "acme", "succeeded", "succeeded", minutes_ago=5)
    ran(stack, "acme", "failed-since", "failed", minutes_ago=5)
    ran(stack, "acme", "succeeded-before", "succeeded", minutes_ago=120)
    capsys.readouterr()

    summary = invoke(stack, "WatchOperationsFunction", {"watch": True})

    found = metrics(capsys.readouterr().out)
    assert found["acme"]["OverdueJobs"] == 3 and found["newco"]["OverdueJobs"] == 0
    assert "dormant" not in found
    overdue = {job["job_id"]: job for job in summary["overdue_jobs"]}
    assert set(overdue) == {"failed-since", "succeeded-before", "hourly"}
    assert overdue["hourly"]["last_run"] == "never" and overdue["failed-since"]["last_outcome"] == "failed"
    logged = lines(log, "job overdue")
    assert {line["job_id"] for line in logged} == set(overdue)
    assert all(line["level"] == "ERROR" and line["connection"] == "acme" and line["due"] for line in logged)


def test_a_schedule_that_cannot_be_evaluated_or_an_unreadable_entry_is_logged_and_the_rest_watched(
    stack: Stack, capsys: pytest.CaptureFixture[str], log: io.StringIO
) -> None:
    # Accepted by the registry, but its meaning (a range that wraps around) is not known here.
    register(
        stack,
        "acme",
        [
            every_minute("failed"),
            {"id": "wrapped", "task": "list_reports", "schedule": "cron(0 22-2 * * ? *)"},
        ],
    )
    ran(stack, "acme", "failed", "failed", minutes_ago=5)
    stack.client("dynamodb").put_item(  # edited by hand
        TableName=stack.physical["ConnectionsTable"],
        Item={"name": {"S": "garbled"}, "jobs": {"S": "not json"}, "version": {"N": "1"}},
    )
    open_batch(stack, "acme", "b-old", DOWNLOADED, 48, ["invoices"])
    capsys.readouterr()

    summary = invoke(stack, "WatchOperationsFunction", {"watch": True})

    found = metrics(capsys.readouterr().out)
    assert found["acme"]["OverdueJobs"] == 1 and found["acme"]["StaleGLBatches"] == 1
    assert found["acme"]["UnwatchedJobs"] == 1
    assert [job["job_id"] for job in summary["overdue_jobs"]] == ["failed"]
    assert summary["not_evaluated"] == [
        "acme/wrapped: hours '22-2': a range that runs backwards is not evaluated"
    ]
    assert len(summary["unreadable"]) == 1 and summary["unreadable"][0].startswith("garbled:")
    (not_evaluated,) = lines(log, "job not watched: its schedule cannot be evaluated")
    assert not_evaluated["job_id"] == "wrapped" and not_evaluated["level"] == "WARNING"
    (unreadable,) = lines(log, "registry entry not watched")
    assert unreadable["level"] == "ERROR" and "garbled" in unreadable["problem"]


def test_a_bad_request_or_setting_is_refused_with_its_name(
    stack: Stack, monkeypatch: pytest.MonkeyPatch
) -> None:
    from tasks.platform.errors import InvalidRequestError

    with pytest.raises(InvalidRequestError, match="watch"):
        invoke(stack, "WatchOperationsFunction", {"sweep": True})
    for variable, value in (("STALE_BATCH_HOURS", "a day"), ("JOB_GRACE_MINUTES", "-5")):
        with pytest.raises(ConfigurationError, match=variable):
            WatchSettings.from_env({variable: value})
    with pytest.raises(ConfigurationError, match="TASK_TIMEOUTS"):
        WatchSettings.from_env({"TASK_TIMEOUTS": '{"run_report": "ten minutes"}'})


# --- a job's due time and success, at fixed times ---------------------------------------------

NOW = datetime(2026, 3, 10, 12, 0, tzinfo=UTC)


def entry(schedule: str, written: str, zone: str = "UTC", window: int = 0) -> tuple[ConnectionEntry, Job]:
    made = ConnectionEntry(
        name="acme",
        backend="rest",
        time_zone=zone,
        updated_at=written,
        jobs=[Job(id="nightly", task="download_gl_batch", schedule=schedule, flexible_window_minutes=window)],
    )
    return made, made.jobs[0]


def run(started: str, outcome: str) -> Run:
    return Run("acme", "nightly", started, started, outcome, "")


def test_the_grace_is_the_window_the_functions_attempts_and_the_parameter() -> None:
    settings = WatchSettings(job_grace_minutes=30, task_timeouts={"download_gl_batch": 120})
    _, job = entry("cron(0 2 * * ? *)", "", window=60)
    assert settings.grace(job) == timedelta(minutes=60 + 30 + 3 * 2 + 3)
    _, unknown_task = entry("cron(0 2 * * ? *)", "", window=0)
    assert WatchSettings().grace(unknown_task) == timedelta(minutes=30 + 3 * 15 + 3)  # 900 s each


def test_a_nightly_job_is_judged_once_its_grace_has_passed() -> None:
    connection, job = entry("cron(0 2 * * ? *)", "2026-01-01T00:00:00Z")
    grace = timedelta(hours=1)
    # 02:00 today is due at 03:00: before it, yesterday's is the one judged
    assert job_due(connection, job, NOW.replace(hour=2, minute=59), grace) == NOW.replace(day=9, hour=2)
    due = job_due(connection, job, NOW.replace(hour=3), grace)
    assert due == NOW.replace(hour=2)
    assert succeeded_since(run("2026-03-10T02:14:00Z", "succeeded"), due)
    assert not succeeded_since(run("2026-03-10T02:14:00Z", "failed"), due)  # failed after its due time
    assert not succeeded_since(run("2026-03-09T02:14:00Z", "succeeded"), due)  # yesterday's
    assert not succeeded_since(None, due)  # never ran
    assert not succeeded_since(run("garbled", "succeeded"), due)


def test_a_job_is_not_judged_by_a_due_time_before_its_entry_was_written() -> None:
    connection, job = entry("cron(0 2 * * ? *)", "2026-03-10T02:30:00Z")  # added after today's 02:00
    assert job_due(connection, job, NOW, timedelta(hours=1)) is None
    connection, job = entry("cron(0 2 * * ? *)", "2026-03-09T23:00:00Z")
    assert job_due(connection, job, NOW, timedelta(hours=1)) == NOW.replace(hour=2)


def test_a_job_in_a_zone_is_due_in_that_zone() -> None:
    connection, job = entry("cron(0 2 * * ? *)", "", zone="America/New_York")  # 02:00 EDT = 06:00Z
    assert job_due(connection, job, NOW, timedelta(hours=1)) == NOW.replace(hour=6)


def test_the_deadline_leaves_connections_unchecked_rather_than_the_invocation_failing(stack: Stack) -> None:
    from tasks.connections.watch import Watcher

    register(stack, "acme", [every_minute("never")])
    db = stack.client("dynamodb")
    watcher = Watcher(
        db, stack.physical["LedgerTable"], Registry(db, stack.physical["ConnectionsTable"]), WatchSettings()
    )
    findings = watcher.watch(Deadline(1.0))
    assert findings.unchecked == ["acme"] and findings.overdue_jobs == []
    assert [job["job_id"] for job in watcher.watch(Deadline()).overdue_jobs] == ["never"]
