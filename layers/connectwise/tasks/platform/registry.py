"""The connection registry (its own DynamoDB table, the source of truth for what the stack
serves): one item per connection, its jobs inside it, so adding a connection with its jobs is
one write and the reconciler sees one change.

A job's `input` is checked against its task's request model by tasks.connections.jobs (the
platform does not know the tasks); here it is kept as the JSON it is.
"""

import json
import re
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from connectwise.models import SiteLogin
from tasks.platform.errors import ConfigurationError, describe_validation
from tasks.platform.requests import ConnectionName
from tasks.platform.versioned import put_if_version

CACHE_SECONDS = 60.0  # how long a function keeps a connection's entry: a disable takes hold within it
JOB_ID = r"^[a-z0-9][a-z0-9-]{0,39}$"
# Scheduler's own forms: cron() with six fields, rate() with a positive whole unit, at() once.
SCHEDULE = re.compile(
    r"^(cron\((\S+ ){5}\S+\)|rate\([1-9][0-9]* (minute|minutes|hour|hours|day|days)\)"
    r"|at\(\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\))$"
)


class Job(BaseModel):
    """One scheduled run of a task for the connection: the schedule fires it with `input`."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    id: str = Field(pattern=JOB_ID)
    task: str = Field(min_length=1)
    schedule: str
    enabled: bool = True
    # Scheduler runs the job at a moment within this window after the schedule's time, spreading
    # thousands of nightly runs instead of starting them in one second (0: exactly on time).
    flexible_window_minutes: int = Field(60, ge=0, le=1440)
    input: dict[str, Any] = Field(default_factory=dict)

    @field_validator("schedule")
    @classmethod
    def _scheduler_expression(cls, value: str) -> str:
        if not SCHEDULE.match(value):
            raise ValueError(
                "not an EventBridge Scheduler expression: cron(minutes hours day-of-month month "
                "day-of-week year), rate(N minutes|hours|days) or at(yyyy-mm-ddThh:mm:ss)"
            )
        return value


class ConnectionEntry(BaseModel):
    """A connection as the registry keeps it. Credentials are not here: they are in the secret
    `<prefix><name>`."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = ConnectionName
    backend: Literal["accounting_interface", "rest"]
    time_zone: str = "UTC"  # the zone its schedules and relative thru dates are read in
    enabled: bool = True
    jobs: list[Job] = Field(default_factory=list)
    version: int = 0  # of the stored item; a write lands only on the version it read
    updated_at: str = ""

    @field_validator("time_zone")
    @classmethod
    def _iana(cls, value: str) -> str:
        return SiteLogin._iana_zone(value)

    @field_validator("jobs")
    @classmethod
    def _unique_ids(cls, jobs: list[Job]) -> list[Job]:
        ids = [job.id for job in jobs]
        doubled = sorted({i for i in ids if ids.count(i) > 1})
        if doubled:
            raise ValueError(f"job ids must be unique; repeated: {', '.join(doubled)}")
        return jobs

    def job(self, job_id: str) -> Job | None:
        return next((job for job in self.jobs if job.id == job_id), None)


def parse_entry(value: Any, what: str) -> ConnectionEntry:
    """An entry from outside (a file, a stored item); the error names `what` and the problem."""
    try:
        return ConnectionEntry.model_validate(value)
    except ValidationError as exc:
        raise ConfigurationError(f"{what} is invalid: {describe_validation(exc)}") from None


class Registry:
    def __init__(self, dynamodb: Any, table_name: str, clock: Callable[[], float] = time.time) -> None:
        self.db, self.table, self.clock = dynamodb, table_name, clock
        self._cache: dict[str, tuple[float, ConnectionEntry | None]] = {}
        self._lock = threading.Lock()

    def get(self, name: str) -> ConnectionEntry | None:
        """The entry as stored now (consistent read)."""
        item = self.db.get_item(TableName=self.table, Key=_key(name), ConsistentRead=True).get("Item")
        return _entry(item) if item else None

    def cached(self, name: str) -> ConnectionEntry | None:
        """The entry, read at most once a minute per container (every invocation asks)."""
        now = time.monotonic()
        with self._lock:
            held = self._cache.get(name)
            if held and now - held[0] < CACHE_SECONDS:
                return held[1]
        entry = self.get(name)
        with self._lock:
            self._cache[name] = (now, entry)
        return entry

    def put(self, entry: ConnectionEntry) -> ConnectionEntry:
        """Write the entry over the version it was read at (0: a new connection); raises
        ConfigurationError, writing nothing, if another writer came first or it exists already."""
        stamped = entry.model_copy(update={"updated_at": _utc(self.clock())})
        if not put_if_version(self.db, self.table, _item(stamped), entry.version):
            raise ConfigurationError(
                f"connection {entry.name!r} "
                + ("exists already" if not entry.version else "was changed by someone else meanwhile")
                + "; nothing was changed"
            )
        return stamped.model_copy(update={"version": entry.version + 1})

    def delete(self, entry: ConnectionEntry) -> None:
        try:
            self.db.delete_item(
                TableName=self.table,
                Key=_key(entry.name),
                ConditionExpression="version = :read",
                ExpressionAttributeValues={":read": {"N": str(entry.version)}},
            )
        except self.db.exceptions.ConditionalCheckFailedException:
            raise ConfigurationError(
                f"connection {entry.name!r} was changed by someone else meanwhile; nothing was removed"
            ) from None

    def scan(self) -> Iterator[ConnectionEntry]:
        for page in self.db.get_paginator("scan").paginate(TableName=self.table, ConsistentRead=True):
            for item in page.get("Items", []):
                yield _entry(item)


def _key(name: str) -> dict[str, Any]:
    return {"name": {"S": name}}


def _item(entry: ConnectionEntry) -> dict[str, Any]:
    return _key(entry.name) | {
        "backend": {"S": entry.backend},
        "time_zone": {"S": entry.time_zone},
        "enabled": {"BOOL": entry.enabled},
        "updated_at": {"S": entry.updated_at},
        # JSON text: a job's input is kept exactly as given (no float, no DynamoDB number rules).
        "jobs": {"S": json.dumps([job.model_dump() for job in entry.jobs], sort_keys=True)},
    }


def _entry(item: dict[str, Any]) -> ConnectionEntry:
    name = item["name"]["S"]
    return parse_entry(
        {
            "name": name,
            "backend": item["backend"]["S"],
            "time_zone": item["time_zone"]["S"],
            "enabled": item["enabled"]["BOOL"],
            "updated_at": item.get("updated_at", {}).get("S", ""),
            "version": int(item["version"]["N"]),
            "jobs": json.loads(item["jobs"]["S"]),
        },
        f"registry entry of connection {name!r}",
    )


def _utc(at: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(at))
