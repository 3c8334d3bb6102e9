"""The connection registry (its own DynamoDB table, the source of truth for what the stack
serves): one item per connection, its jobs inside it, so adding a connection with its jobs is
one write and the reconciler sees one change.

A job's `input` is checked against its task's request model by tasks.connections.jobs (the
platform does not know the tasks); here it is kept as the JSON it is.
"""

import hashlib
import json
import re
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from connectwise.models import SiteLogin
from tasks.platform.errors import ConfigurationError, describe_validation
from tasks.platform.requests import ConnectionName
from tasks.platform.versioned import put_if_version

DEFAULT_CALLS_PER_MINUTE = 600
CACHE_SECONDS = 60.0  # how long a function keeps a connection's entry: a disable takes hold within it
JOB_ID = r"^[a-z0-9][a-z0-9-]{0,39}$"
# Scheduler's rate(): 1 takes the singular unit, more the plural.
RATE = re.compile(r"^rate\((1 (minute|hour|day)|([2-9]|[1-9][0-9]+) (minutes|hours|days))\)$")
MONTHS = ["JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC"]
DAYS = ["SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT"]
# EventBridge Scheduler's cron fields: name, lowest, highest, names standing for numbers.
CRON_FIELDS = (
    ("minutes", 0, 59, ()),
    ("hours", 0, 23, ()),
    ("day-of-month", 1, 31, ()),
    ("month", 1, 12, MONTHS),
    ("day-of-week", 1, 7, DAYS),
    ("year", 1970, 2199, ()),
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
        problem = schedule_problem(value)
        if problem:
            raise ValueError(
                f"not an EventBridge Scheduler expression ({problem}): cron(minutes hours day-of-month "
                "month day-of-week year), rate(N minutes|hours|days) or at(yyyy-mm-ddThh:mm:ss)"
            )
        return value


def schedule_problem(value: str) -> str | None:
    """What Scheduler would refuse in an expression (None: nothing), checked before any write:
    a schedule it refuses would leave the job without one."""
    if RATE.match(value):
        return None
    if value.startswith("at(") and value.endswith(")"):
        try:
            datetime.strptime(value[3:-1], "%Y-%m-%dT%H:%M:%S")
        except ValueError:
            return "no such date and time"
        return None
    if not (value.startswith("cron(") and value.endswith(")")):
        return "neither cron(), rate() nor at()"
    fields = value[5:-1].split(" ")
    if len(fields) != 6:
        return "cron() takes six fields"
    if (fields[2] == "?") == (fields[4] == "?"):
        return "exactly one of day-of-month and day-of-week must be ?"
    for (name, low, high, names), text in zip(CRON_FIELDS, fields, strict=True):
        if text != "?" and not all(_cron_item(item, name, low, high, names) for item in text.split(",")):
            return f"{name} {text!r}"
    return None


def _cron_item(item: str, name: str, low: int, high: int, names: Sequence[str]) -> bool:
    def number(text: str) -> bool:
        if text.upper() in names:
            return True
        return text.isdigit() and low <= int(text) <= high

    if name == "day-of-month" and (item in ("L", "LW") or (item.endswith("W") and number(item[:-1]))):
        return True
    if name == "day-of-week" and (item == "L" or (item.endswith("L") and number(item[:-1]))):
        return True
    if name == "day-of-week" and "#" in item:
        day, _, nth = item.partition("#")
        return number(day) and nth in {"1", "2", "3", "4", "5"}
    base, slash, step = item.partition("/")
    if slash and not (step.isdigit() and int(step) > 0):
        return False
    if base == "*":
        return True
    first, dash, last = base.partition("-")
    return number(first) and (not dash or number(last))


class ConnectionEntry(BaseModel):
    """A connection as the registry keeps it. Credentials are not here: they are in the secret
    `<prefix><name>`."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = ConnectionName
    backend: Literal["accounting_interface", "rest"]
    time_zone: str = "UTC"  # the zone its schedules and relative thru dates are read in
    # The ConnectWise company its secret logs into, `company@site` (not secret): connections of
    # one company must not download the same records (tasks.admin.commands checks their jobs).
    site: str = ""
    enabled: bool = True
    # ConnectWise calls a minute for all of its functions together (tasks.platform.budget): the
    # default leaves room under ConnectWise's ~1,000 for the MSP's other integrations.
    calls_per_minute: int = Field(DEFAULT_CALLS_PER_MINUTE, ge=1, le=60_000)
    jobs: list[Job] = Field(default_factory=list)
    version: int = 0  # of the stored item; a write lands only on the version it read
    updated_at: str = ""

    @field_validator("time_zone")
    @classmethod
    def _iana(cls, value: str) -> str:
        if value.startswith(("posix/", "right/")) or value in ("Factory", "posixrules"):
            raise ValueError(
                f"{value!r} is not a zone EventBridge Scheduler takes (for example America/New_York)"
            )
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


def job_event(entry: "ConnectionEntry", job: Job) -> dict[str, Any]:
    """What the job's schedule sends its function: the job's request, with its connection, id and
    revision set last (an input cannot name another connection). The revision changes with the
    task, the schedule, the time zone and the window: a schedule not yet reconciled after any of
    them changed is refused by the function it fires (tasks.runtime.scheduled_job)."""
    return job.input | {"connection": entry.name, "job": job.id, "job_revision": revision(entry, job)}


def revision(entry: "ConnectionEntry", job: Job) -> str:
    timing = [job.task, job.schedule, entry.time_zone, job.flexible_window_minutes]
    return hashlib.sha256(json.dumps(timing).encode()).hexdigest()[:12]


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

    def scan(self, invalid: list[str] | None = None) -> Iterator[ConnectionEntry]:
        """Every entry; with `invalid`, an entry that cannot be read (edited by hand) is named
        there with its problem and passed over, instead of stopping the scan."""
        for page in self.db.get_paginator("scan").paginate(TableName=self.table, ConsistentRead=True):
            for item in page.get("Items", []):
                try:
                    yield _entry(item)
                except (ConfigurationError, KeyError, TypeError, ValueError) as exc:
                    if invalid is None:
                        raise
                    invalid.append(f"{item.get('name', {}).get('S', '?')}: {exc}")


def _key(name: str) -> dict[str, Any]:
    return {"name": {"S": name}}


def _item(entry: ConnectionEntry) -> dict[str, Any]:
    return _key(entry.name) | {
        "backend": {"S": entry.backend},
        "time_zone": {"S": entry.time_zone},
        "site": {"S": entry.site},
        "enabled": {"BOOL": entry.enabled},
        "calls_per_minute": {"N": str(entry.calls_per_minute)},
        "updated_at": {"S": entry.updated_at},
        # JSON text: a job's input is kept exactly as given (no float, no DynamoDB number rules).
        "jobs": {"S": json.dumps([job.model_dump() for job in entry.jobs], sort_keys=True)},
    }


def _entry(item: dict[str, Any]) -> ConnectionEntry:
    name = item["name"]["S"]
    try:
        jobs = json.loads(item["jobs"]["S"])
    except (KeyError, json.JSONDecodeError):
        raise ConfigurationError(
            f"registry entry of connection {name!r} is invalid: jobs is not JSON"
        ) from None
    return parse_entry(
        {
            "name": name,
            "backend": item["backend"]["S"],
            "time_zone": item["time_zone"]["S"],
            "site": item.get("site", {}).get("S", ""),
            "enabled": item["enabled"]["BOOL"],
            # Entries written before budgets existed have the default.
            "calls_per_minute": int(item.get("calls_per_minute", {}).get("N", DEFAULT_CALLS_PER_MINUTE)),
            "updated_at": item.get("updated_at", {}).get("S", ""),
            "version": int(item["version"]["N"]),
            "jobs": jobs,
        },
        f"registry entry of connection {name!r}",
    )


def _utc(at: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(at))
