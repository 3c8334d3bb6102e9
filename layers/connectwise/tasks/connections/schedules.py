"""EventBridge Scheduler kept as the registry says: one schedule per job, in the stack's group.

Reconciling a connection reads its entry as stored now (never a stream image, which may be old
or replayed), so running it twice, late or out of order converges on the same schedules:
* a job of an enabled connection gets an ENABLED schedule, a disabled job or connection a
  DISABLED one (kept, so enabling it again is one update);
* a schedule of a job or connection no longer in the registry is deleted;
* a schedule that differs from what the job asks (edited by hand, a half-finished run) is put back.
Scheduler's own conflicts are taken as they come: create on a name that exists updates it,
update or delete of a name that is gone creates it or does nothing.
"""

import contextlib
import hashlib
import json
import random
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, Self

from pydantic import BaseModel, ConfigDict, Field, model_validator

from connectwise.transport import Deadline
from tasks.connections.jobs import TASKS
from tasks.platform.observability import count, logger
from tasks.platform.registry import ConnectionEntry, Registry, job_event

PREFIX = "cw-"
MAX_PASSES = 5  # a connection made again while its entry keeps changing
SWEEP_RESERVE_SECONDS = 30.0  # a sweep stops comparing schedules this long before its deadline


@dataclass(frozen=True)
class SchedulerSettings:
    group: str  # the stack's schedule group
    role_arn: str  # the role Scheduler assumes to invoke the functions
    dead_letter_arn: str  # where Scheduler puts a run it could not deliver
    functions: dict[str, str]  # task -> the function's ARN
    retry_attempts: int = 3
    max_event_age_seconds: int = 6 * 3600  # a nightly run delivered later than this is dropped to the DLQ


@dataclass
class Changes:
    created: list[str] = field(default_factory=list)
    updated: list[str] = field(default_factory=list)
    deleted: list[str] = field(default_factory=list)
    unchanged: int = 0
    unchecked: int = 0  # left for the next sweep (its time ran out)
    failed: list[str] = field(default_factory=list)  # connections not reconciled, with why

    def add(self, other: "Changes") -> None:
        self.created += other.created
        self.updated += other.updated
        self.deleted += other.deleted
        self.unchanged += other.unchanged
        self.unchecked += other.unchecked
        self.failed += other.failed

    def summary(self) -> dict[str, Any]:
        return {
            "created": len(self.created),
            "updated": len(self.updated),
            "deleted": len(self.deleted),
            "unchanged": self.unchanged,
            "unchecked": self.unchecked,
            "failed": self.failed,
        }


def connection_prefix(connection: str) -> str:
    """Every schedule name of a connection starts with this, and no other connection's does
    (names are at most 64 characters, a connection's name alone may be 64)."""
    return f"{PREFIX}{hashlib.sha256(connection.encode()).hexdigest()[:12]}-"


def schedule_name(connection: str, job_id: str) -> str:
    return connection_prefix(connection) + job_id


def desired(entry: ConnectionEntry, settings: SchedulerSettings) -> dict[str, dict[str, Any]]:
    """The schedules the entry asks for, by name, as CreateSchedule takes them."""
    wanted = {}
    for job in entry.jobs:
        window = (
            {"Mode": "FLEXIBLE", "MaximumWindowInMinutes": job.flexible_window_minutes}
            if job.flexible_window_minutes
            else {"Mode": "OFF"}
        )
        wanted[schedule_name(entry.name, job.id)] = {
            "Description": f"{entry.name} / {job.id}: {job.task}",
            "ScheduleExpression": job.schedule,
            "ScheduleExpressionTimezone": entry.time_zone,
            "FlexibleTimeWindow": window,
            "State": "ENABLED" if entry.enabled and job.enabled else "DISABLED",
            "Target": {
                "Arn": settings.functions[job.task],
                "RoleArn": settings.role_arn,
                "Input": json.dumps(job_event(entry, job), sort_keys=True),
                "RetryPolicy": {
                    "MaximumRetryAttempts": settings.retry_attempts,
                    "MaximumEventAgeInSeconds": settings.max_event_age_seconds,
                },
                "DeadLetterConfig": {"Arn": settings.dead_letter_arn},
            },
        }
    return wanted


class Reconciler:
    def __init__(self, scheduler: Any, registry: Registry, settings: SchedulerSettings) -> None:
        self.scheduler, self.registry, self.settings = scheduler, registry, settings

    def connection(self, name: str) -> Changes:
        """One connection's schedules made as its entry is now (none if it is gone), each one
        compared in full; made again if the entry changed while they were being made (another
        reconciler, on the stream or sweeping, may have written an older state meanwhile)."""
        changes = Changes()
        for _ in range(MAX_PASSES):
            before = self.registry.get(name)
            changes.add(self._connection(name, before))
            after = self.registry.get(name)
            if (before and before.version) == (after and after.version):
                return changes
        raise RuntimeError(f"connection {name!r} kept changing while its schedules were made; try again")

    def _connection(self, name: str, entry: ConnectionEntry | None) -> Changes:
        wanted = self._desired(entry) if entry else {}
        listed = self._listed(connection_prefix(name))
        changes = Changes()
        for schedule, spec in sorted(wanted.items()):
            if schedule not in listed:
                self._create(schedule, spec)
                changes.created.append(schedule)
            elif self._differs(schedule, spec):
                self._update(schedule, spec)
                changes.updated.append(schedule)
            else:
                changes.unchanged += 1
        for schedule in sorted(listed.keys() - wanted.keys()):
            with contextlib.suppress(self.scheduler.exceptions.ResourceNotFoundException):
                self.scheduler.delete_schedule(
                    GroupName=self.settings.group, Name=schedule
                )  # or another run did
            changes.deleted.append(schedule)
        return changes

    def connections(self, names: Iterable[str], deadline: Deadline | None = None) -> Changes:
        """Each connection on its own: one that Scheduler refuses (or that cannot be read) is
        counted as failed and the others go on; those the deadline leaves are counted unchecked
        (the next sweep finds them again)."""
        changes = Changes()
        for name in sorted(set(names)):
            if deadline and deadline.left() < SWEEP_RESERVE_SECONDS:
                changes.unchecked += 1
                continue
            try:
                changes.add(self.connection(name))
            except Exception as exc:
                logger.exception("connection not reconciled", extra={"connection": name})
                changes.failed.append(f"{name}: {exc}")
        return changes

    def sweep(self, deadline: Deadline) -> Changes:
        """Find the connections whose schedules differ from the registry, then reconcile each of
        them as it is by then (a fresh read: a change made while the sweep ran is never undone).

        What a listing shows (a schedule missing, extra, or with another state or target) is
        found for all; the rest of each schedule is compared while `deadline` allows, in a
        random order (one GetSchedule each: 80,000 of them would outlast an invocation), so
        successive sweeps cover them all."""
        invalid: list[str] = []
        owners: dict[str, str] = {}  # schedule -> connection
        wanted: dict[str, dict[str, Any]] = {}
        for entry in self.registry.scan(invalid):
            try:
                specs = self._desired(entry)
            except KeyError as exc:  # a task no function runs (an entry edited by hand)
                invalid.append(f"{entry.name}: unknown task {exc}")
                continue
            wanted |= specs
            owners |= dict.fromkeys(specs, entry.name)
        listed = self._listed(PREFIX)
        suspects: set[str] = set()
        compare = []
        for schedule, spec in wanted.items():
            summary = listed.get(schedule)
            if (
                summary is None
                or summary.get("State") != spec["State"]
                or summary.get("Target", {}).get("Arn") != spec["Target"]["Arn"]
            ):
                suspects.add(owners[schedule])
            else:
                compare.append(schedule)
        strays = []
        unchecked = 0
        for schedule in sorted(listed.keys() - wanted.keys()):  # whose connection is gone, or was added since
            if deadline.left() < SWEEP_RESERVE_SECONDS:
                unchecked += 1
                continue
            owner = self._owner(schedule)
            if owner:
                suspects.add(owner)
            else:
                strays.append(schedule)
        random.shuffle(compare)
        equal = []
        # Comparing takes at most half the time left: repairing what it finds needs the rest.
        repairs = Deadline(deadline.left() / 2 + SWEEP_RESERVE_SECONDS)
        for schedule in compare:
            if owners[schedule] in suspects:
                continue
            if repairs.left() < SWEEP_RESERVE_SECONDS:
                unchecked += 1
            elif self._differs(schedule, wanted[schedule]):
                suspects.add(owners[schedule])
            else:
                equal.append(schedule)
        changes = self.connections(suspects, deadline)
        for schedule in strays:  # in the group, named as ours, for no connection's job
            with contextlib.suppress(self.scheduler.exceptions.ResourceNotFoundException):
                self.scheduler.delete_schedule(GroupName=self.settings.group, Name=schedule)
            changes.deleted.append(schedule)
        changes.failed += invalid
        changes.unchanged += sum(1 for schedule in equal if owners[schedule] not in suspects)
        changes.unchecked += unchecked
        return changes

    def _desired(self, entry: ConnectionEntry) -> dict[str, dict[str, Any]]:
        return desired(entry, self.settings)

    def _owner(self, schedule: str) -> str:
        """The connection a schedule runs for (its input names it); "" if it names none."""
        try:
            found = self.scheduler.get_schedule(GroupName=self.settings.group, Name=schedule)
            owner = json.loads(found["Target"]["Input"]).get("connection", "")
        except (self.scheduler.exceptions.ResourceNotFoundException, KeyError, ValueError, AttributeError):
            return ""
        return (
            owner
            if isinstance(owner, str)
            and connection_prefix(owner) == schedule[: len(connection_prefix(owner))]
            else ""
        )

    def _listed(self, prefix: str) -> dict[str, dict[str, Any]]:
        pages = self.scheduler.get_paginator("list_schedules").paginate(
            GroupName=self.settings.group, NamePrefix=prefix
        )
        return {s["Name"]: s for page in pages for s in page["Schedules"] if s["Name"].startswith(prefix)}

    def _create(self, name: str, spec: dict[str, Any]) -> None:
        try:
            self.scheduler.create_schedule(GroupName=self.settings.group, Name=name, **spec)
        except self.scheduler.exceptions.ConflictException:
            self._update(name, spec)  # another run created it meanwhile: make it ours

    def _update(self, name: str, spec: dict[str, Any]) -> None:
        try:
            self.scheduler.update_schedule(GroupName=self.settings.group, Name=name, **spec)
        except self.scheduler.exceptions.ResourceNotFoundException:
            self.scheduler.create_schedule(GroupName=self.settings.group, Name=name, **spec)

    def _differs(self, name: str, spec: dict[str, Any]) -> bool:
        try:
            present = self.scheduler.get_schedule(GroupName=self.settings.group, Name=name)
        except self.scheduler.exceptions.ResourceNotFoundException:
            return True
        return any(_normal(present.get(key)) != _normal(value) for key, value in spec.items())


class StreamKeys(BaseModel):
    Keys: dict[str, dict[str, str]]


class StreamRecord(BaseModel):
    model_config = ConfigDict(extra="ignore")  # the reconciler reads only the key

    dynamodb: StreamKeys

    @property
    def connection(self) -> str:
        name = self.dynamodb.Keys.get("name", {}).get("S")
        if not name:
            raise ValueError("a stream record without the registry's key (name)")
        return name


class ReconcileRequest(BaseModel):
    """The registry's stream records (the connections to reconcile), or the daily sweep."""

    model_config = ConfigDict(extra="forbid")

    Records: list[StreamRecord] = Field(default_factory=list)
    sweep: bool = False

    @model_validator(mode="after")
    def _one_kind(self) -> Self:
        if self.sweep == bool(self.Records):
            raise ValueError('expected stream records or {"sweep": true}, not both or neither')
        for record in self.Records:
            _ = record.connection
        return self


def reconcile(request: ReconcileRequest, reconciler: Reconciler, deadline: Deadline) -> dict[str, Any]:
    """The stream's connections, each read as it is now (never as the record was), or the sweep."""
    if request.sweep:
        changes = reconciler.sweep(deadline)
    else:
        changes = reconciler.connections(record.connection for record in request.Records)
    summary = changes.summary()
    count("ConnectionsNotReconciled", len(changes.failed))
    if changes.failed:
        logger.error("schedules not reconciled", extra={"schedules": summary})
    else:
        logger.info("schedules reconciled", extra={"schedules": summary})
    if changes.failed and not request.sweep:  # the stream delivers the batch again, then to its DLQ
        raise RuntimeError(f"{len(changes.failed)} connection(s) not reconciled: {'; '.join(changes.failed)}")
    return summary


def _normal(value: Any) -> Any:
    """Compared as JSON text (Input compared as the JSON it holds, so key order never matters)."""
    if isinstance(value, dict):
        value = {k: (json.loads(v) if k == "Input" else v) for k, v in value.items()}
    return json.dumps(value, sort_keys=True, default=str)


def scheduler_settings(environ: dict[str, str]) -> SchedulerSettings:
    """From the reconciler's environment (template.yaml)."""
    functions = json.loads(environ["TASK_FUNCTIONS"])
    missing = sorted(set(TASKS) - set(functions))
    if missing:
        raise ValueError(f"TASK_FUNCTIONS lacks {', '.join(missing)}")
    return SchedulerSettings(
        group=environ["SCHEDULE_GROUP"],
        role_arn=environ["SCHEDULER_ROLE_ARN"],
        dead_letter_arn=environ["SCHEDULER_DEAD_LETTER_ARN"],
        functions=functions,
    )
