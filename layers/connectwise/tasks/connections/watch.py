"""The watcher: what did NOT happen, as metrics an alarm can hold (docs/operations.md, the watcher).

Every 15 minutes, for each enabled connection of the registry (one Scan: it is small):
* its open GL batches, found through the claims that hold its kinds (`open#<connection>#<kind>`
  naming the batch, then `batch#<connection>#<id>`: two BatchGetItems for all connections, never
  a scan of the ledger, which holds every payment too): how many are DOWNLOADED, FAILED and
  POSTING, and which have waited (DOWNLOADED or FAILED) longer than STALE_BATCH_HOURS since they
  were downloaded;
* its enabled jobs whose last run (`run#<connection>#<job>`) is not a success since the job's
  latest due time, once that time plus the job's grace has passed (tasks.connections.cron).
"""

import json
import time
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict

from connectwise.models import KINDS
from connectwise.transport import Deadline
from tasks.connections.cron import ScheduleError, last_due
from tasks.platform.batch_ledger import DOWNLOADED, FAILED, OPEN, POSTING, BatchRecord, batch_key, open_key
from tasks.platform.errors import ConfigurationError
from tasks.platform.observability import count, logger
from tasks.platform.registry import ConnectionEntry, Job, Registry
from tasks.platform.runs import BATCH_GET_LIMIT, Run, Runs

GAUGES = {
    DOWNLOADED: "OpenGLBatchesDownloaded",
    FAILED: "OpenGLBatchesFailed",
    POSTING: "OpenGLBatchesPosting",
}
WAITING = (DOWNLOADED, FAILED)  # waiting on someone: the accounting system, or an operator
LAMBDA_ATTEMPTS = 3  # a failed asynchronous invocation is tried twice more,
LAMBDA_RETRY_DELAYS = timedelta(minutes=3)  # one and two minutes after
DEFAULT_TIMEOUT_SECONDS = 900  # of a task TASK_TIMEOUTS does not name: Lambda's longest
EARLY = timedelta(minutes=1)  # a run's clock a little behind Scheduler's is still a run of that time
RESERVE_SECONDS = 10.0  # the connections left when the invocation is this close to its end
TIME_FORMAT = "%Y-%m-%dT%H:%M:%SZ"


class WatchRequest(BaseModel):
    """What the watcher's schedule sends."""

    model_config = ConfigDict(extra="forbid")

    watch: Literal[True]


@dataclass(frozen=True)
class WatchSettings:
    stale_batch_hours: float = 24.0
    job_grace_minutes: float = 30.0
    task_timeouts: Mapping[str, int] = field(default_factory=dict)  # task -> its function's timeout (s)

    @classmethod
    def from_env(cls, environ: Mapping[str, str]) -> "WatchSettings":
        """From the watcher's environment (template.yaml); a bad value is named."""
        values: dict[str, Any] = {}
        for name, variable in (
            ("stale_batch_hours", "STALE_BATCH_HOURS"),
            ("job_grace_minutes", "JOB_GRACE_MINUTES"),
        ):
            text = environ.get(variable, "")
            if text:
                try:
                    values[name] = float(text)
                except ValueError:
                    values[name] = -1.0
                if not 0 <= values[name] < 10_000:
                    raise ConfigurationError(f"{variable} must be a number of 0 or more, not {text!r}")
        try:
            timeouts = json.loads(environ.get("TASK_TIMEOUTS") or "{}")
        except ValueError:
            timeouts = None
        if not isinstance(timeouts, dict) or not all(
            isinstance(v, int) and not isinstance(v, bool) and v > 0 for v in timeouts.values()
        ):
            raise ConfigurationError('TASK_TIMEOUTS must be a JSON object {"<task>": <seconds>, ...}')
        return cls(**values, task_timeouts=timeouts)

    def grace(self, job: Job) -> timedelta:
        """How long after its due time a job may still be running (or retried) before it is late:
        its flexible window, its function's three attempts and Lambda's waits between them,
        and JOB_GRACE_MINUTES."""
        timeout = self.task_timeouts.get(job.task, DEFAULT_TIMEOUT_SECONDS)
        return (
            timedelta(minutes=job.flexible_window_minutes + self.job_grace_minutes)
            + LAMBDA_ATTEMPTS * timedelta(seconds=timeout)
            + LAMBDA_RETRY_DELAYS
        )


@dataclass
class Findings:
    connections: int = 0
    stale_batches: list[dict[str, Any]] = field(default_factory=list)
    overdue_jobs: list[dict[str, Any]] = field(default_factory=list)
    not_evaluated: list[str] = field(default_factory=list)  # jobs whose schedule could not be read
    unreadable: list[str] = field(default_factory=list)  # registry entries or batches
    unchecked: list[str] = field(default_factory=list)  # connections the invocation had no time for

    def summary(self) -> dict[str, Any]:
        return asdict(self)


class Watcher:
    def __init__(
        self,
        dynamodb: Any,
        ledger_table: str,
        registry: Registry,
        settings: WatchSettings,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.db, self.table, self.registry, self.settings, self.clock = (
            dynamodb,
            ledger_table,
            registry,
            settings,
            clock,
        )

    def watch(self, deadline: Deadline) -> Findings:
        findings = Findings()
        entries = [entry for entry in self.registry.scan(findings.unreadable) if entry.enabled]
        for problem in findings.unreadable:
            logger.error("registry entry not watched", extra={"problem": problem})
        findings.connections = len(entries)
        now = datetime.fromtimestamp(self.clock(), UTC)
        self._batches([entry.name for entry in entries], now, findings)
        runs = Runs(self.db, self.table)
        for entry in entries:
            if deadline.left() < RESERVE_SECONDS:  # not judged is not fine: UnwatchedJobsAlarm says so
                findings.unchecked.append(entry.name)
                count("UnwatchedJobs", sum(1 for job in entry.jobs if job.enabled), entry.name)
                continue
            jobs = [job for job in entry.jobs if job.enabled]
            last = runs.last(entry.name, [job.id for job in jobs]) if jobs else {}
            overdue, unknown = 0, len(findings.not_evaluated)
            for job in jobs:
                overdue += self._job(entry, job, last.get(job.id), now, findings)
            count("OverdueJobs", overdue, entry.name)
            if len(findings.not_evaluated) > unknown:
                count("UnwatchedJobs", len(findings.not_evaluated) - unknown, entry.name)
        if findings.unchecked:
            logger.warning("jobs not watched: no time left", extra={"connections": findings.unchecked})
        return findings

    # --- GL batches ---------------------------------------------------------------------------

    def _batches(self, connections: list[str], now: datetime, findings: Findings) -> None:
        claims = self._get([open_key(name, kind) for name in connections for kind in KINDS])
        held = sorted(
            {
                (item["pk"]["S"].split("#")[1], item["batch_id"]["S"])
                for item in claims
                if item.get("state", {}).get("S") == OPEN and item.get("batch_id", {}).get("S")
            }
        )
        gauges = {(name, status): 0 for name in connections for status in GAUGES}
        stale = dict.fromkeys(connections, 0)
        threshold = timedelta(hours=self.settings.stale_batch_hours)
        for item in self._get([batch_key(name, batch_id) for name, batch_id in held]):
            try:
                batch = BatchRecord.from_item(item)
            except (KeyError, TypeError, ValueError) as exc:
                findings.unreadable.append(f"{item['pk']['S']}: {exc!r}")
                logger.error("batch not watched: unreadable", extra={"key": item["pk"]["S"]})
                continue
            if (batch.connection, batch.status) in gauges:
                gauges[batch.connection, batch.status] += 1
            age = now - datetime.fromtimestamp(batch.created_at, UTC)
            if batch.status in WAITING and age > threshold and batch.connection in stale:
                stale[batch.connection] += 1
                finding = {
                    "connection": batch.connection,
                    "batch_id": batch.batch_id,
                    "status": batch.status,
                    "age_hours": round(age / timedelta(hours=1), 1),
                    "downloaded_at": _utc(batch.created_at),
                    "updated_at": _utc(batch.updated_at),
                }
                findings.stale_batches.append(finding)
                logger.error("GL batch stale", extra=finding)
        for (name, status), value in gauges.items():
            count(GAUGES[status], value, name)
        for name, value in stale.items():
            count("StaleGLBatches", value, name)

    def _get(self, keys: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """The items of the ledger at `keys` (those that exist), 100 keys a request."""
        found: list[dict[str, Any]] = []
        for start in range(0, len(keys), BATCH_GET_LIMIT):
            request = {self.table: {"Keys": keys[start : start + BATCH_GET_LIMIT]}}
            while request:
                reply = self.db.batch_get_item(RequestItems=request)
                found += reply["Responses"].get(self.table, [])
                request = reply.get("UnprocessedKeys") or {}
        return found

    # --- jobs ---------------------------------------------------------------------------------

    def _job(
        self, entry: ConnectionEntry, job: Job, run: Run | None, now: datetime, findings: Findings
    ) -> int:
        """1 if the job is overdue (logged and kept in `findings`), else 0."""
        try:
            due = job_due(entry, job, now, self.settings.grace(job))
        except ScheduleError as exc:
            findings.not_evaluated.append(f"{entry.name}/{job.id}: {exc}")
            logger.warning(
                "job not watched: its schedule cannot be evaluated",
                extra={"connection": entry.name, "job_id": job.id, "problem": str(exc)},
            )
            return 0
        if due is None or succeeded_since(run, due):
            return 0
        finding = {
            "connection": entry.name,
            "job_id": job.id,
            "task": job.task,
            "schedule": job.schedule,
            "due": due.strftime(TIME_FORMAT),
            "last_run": run.started_at if run else "never",
            "last_outcome": run.outcome if run else "",
        }
        findings.overdue_jobs.append(finding)
        logger.error("job overdue", extra=finding)
        return 1


def job_due(entry: ConnectionEntry, job: Job, now: datetime, grace: timedelta) -> datetime | None:
    """The due time the job must have succeeded since, now that its grace has passed: the latest
    at or before `now - grace`, and not before the entry was last written (a job just added, or
    whose schedule just changed, is judged from its first due time as it is now). None: nothing
    to judge yet."""
    due = last_due(job.schedule, entry.time_zone, now - grace)
    written = _parsed(entry.updated_at)
    if due is None or (written is not None and due < written):
        return None
    return due


def succeeded_since(run: Run | None, due: datetime) -> bool:
    started = _parsed(run.started_at) if run else None
    return run is not None and run.outcome == "succeeded" and started is not None and started >= due - EARLY


def watch(request: WatchRequest, watcher: Watcher, deadline: Deadline) -> dict[str, Any]:
    """The watch, its findings logged one line each and returned."""
    findings = watcher.watch(deadline)
    summary = findings.summary()
    logger.info(
        "watched",
        extra={
            "connections": findings.connections,
            "stale_batches": len(findings.stale_batches),
            "overdue_jobs": len(findings.overdue_jobs),
            "not_evaluated": len(findings.not_evaluated),
        },
    )
    return summary


def _parsed(text: str) -> datetime | None:
    try:
        return datetime.strptime(text, TIME_FORMAT).replace(tzinfo=UTC)
    except ValueError:
        return None


def _utc(at: int) -> str:
    return datetime.fromtimestamp(at, UTC).strftime(TIME_FORMAT)
