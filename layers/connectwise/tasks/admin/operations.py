"""What an operator does to the running stack, as plain functions (the command line is
tasks.admin.__main__): GL batches listed and shown from the ledger, a batch abandoned through the
confirmation queue, a job run now. Everything is checked before the one write (a message sent,
a function invoked), so a refusal changes nothing.

Abandoning is not done here but by `update_gl_batch`, sent the same `abandon` confirmation the
accounting system would send: the function applies every rule of the design (docs/gl-batches.md),
including those only ConnectWise can answer (a batch in doubt that ConnectWise holds is refused).
"""

import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from tasks.connections.schedules import schedule_name
from tasks.platform.batch_ledger import (
    ABANDONED,
    DOWNLOADED,
    FAILED,
    POSTED,
    POSTING,
    BatchRecord,
    Ledger,
)
from tasks.platform.errors import ConfigurationError
from tasks.platform.registry import ConnectionEntry, Job, Registry, job_event
from tasks.platform.secrets import refusal

STATUSES = (DOWNLOADED, POSTING, POSTED, FAILED, ABANDONED)
ABANDONABLE = (DOWNLOADED, FAILED)


@dataclass
class Operations:
    """The stack's resources an operator acts on (`resources`: option name -> table name, queue
    URL or group, as tasks.admin.__main__ reads them from the stack's outputs); the clients are
    boto3's, or a test's."""

    dynamodb: Any
    resources: dict[str, str]
    sqs: Any = None
    scheduler: Any = None
    lambda_client: Any = None
    clock: Callable[[], float] = time.time

    @property
    def ledger(self) -> Ledger:
        return Ledger(self.dynamodb, self.resources["ledger_table"])

    @property
    def registry(self) -> Registry:
        return Registry(self.dynamodb, self.resources["registry_table"])


# --- batches ---------------------------------------------------------------------------------


def batches(
    ops: Operations,
    connection: str | None = None,
    statuses: list[str] | None = None,
    invalid: list[str] | None = None,
) -> list[dict[str, Any]]:
    """Every GL batch of the ledger (one connection's, those of `statuses`), oldest first. An
    item that cannot be read (edited by hand) is named in `invalid` and passed over."""
    prefix = f"batch#{connection}#" if connection else "batch#"
    pages = ops.dynamodb.get_paginator("scan").paginate(
        TableName=ops.resources["ledger_table"],
        FilterExpression="begins_with(pk, :prefix)",
        ExpressionAttributeValues={":prefix": {"S": prefix}},
        ConsistentRead=True,
    )
    rows = []
    now = int(ops.clock())
    for page in pages:
        for item in page.get("Items", []):
            try:
                record = BatchRecord.from_item(item)
            except (KeyError, TypeError, ValueError) as exc:
                if invalid is None:
                    raise
                invalid.append(f"{item['pk']['S']}: missing or malformed {exc}")
                continue
            if not statuses or record.status in statuses:
                rows.append(_summary(record, now))
    return sorted(rows, key=lambda row: (row["created_at"], row["connection"], row["batch_id"]))


def batch(ops: Operations, connection: str, batch_id: str) -> dict[str, Any]:
    """One batch in full: what its ledger item records, which kinds it holds, and what may be
    done with it next."""
    record = _batch(ops, connection, batch_id)
    holders = ops.ledger.holders(connection, record.kinds)
    shown = _summary(record, int(ops.clock())) | {
        "keys": record.keys,
        "confirmation": record.confirmation,
        "doubt_since": _utc(record.doubt_since) if record.doubt_since else "",
        "thru_date": record.thru_date,
        # The kinds whose open-batch holder names this batch: no download hands their records out.
        "holds": sorted(h.kind for h in holders if h.batch_id == batch_id),
        "next": NEXT[record.status],
    }
    return shown


NEXT = {
    DOWNLOADED: "waits for its confirmation from the accounting system; abandon it if it will never be posted",
    POSTING: "an update is running (or died: it is taken over after STALE_AFTER_SECONDS and checked "
    "against ConnectWise); look again later",
    POSTED: "done: its records are posted on ConnectWise; it can never be abandoned",
    FAILED: "ConnectWise refused its update (see error): send its confirmation again once the cause "
    "is fixed (the kept one will do), or abandon it; meanwhile its kinds are not downloaded",
    ABANDONED: "done: its records went back to ConnectWise's unposted lists",
}


def _summary(record: BatchRecord, now: int) -> dict[str, Any]:
    updated = record.updated_at or record.created_at
    return {
        "connection": record.connection,
        "batch_id": record.batch_id,
        "status": record.status,
        "kinds": record.kinds,
        "adopted": record.adopted,
        "counts": record.counts,
        "totals": record.totals,  # decimal strings, as stored: never converted
        "gl_entry_count": record.gl_entry_count,
        "posted_count": record.posted_count,
        "in_doubt": bool(record.doubt_since) and record.status not in (POSTED, ABANDONED),
        "error": record.error,
        "created_at": _utc(record.created_at),
        "updated_at": _utc(updated),
        "age_seconds": max(0, now - record.created_at),
        "unchanged_seconds": max(0, now - updated),
    }


def abandon(ops: Operations, connection: str, batch_id: str) -> dict[str, Any]:
    """Send `update_gl_batch` the batch's `abandon` confirmation, once the ledger says the batch
    may be abandoned and its connection is served (a disabled connection's confirmations are
    refused into the DLQ). The function decides: it gives the records back and publishes
    `GLBatchAbandoned`, or refuses (the batch was posted meanwhile, ConnectWise holds a batch in
    doubt) and keeps the message in the confirmation DLQ with the reason."""
    refused = refusal(connection, ops.registry.get(connection))
    if refused:
        raise ConfigurationError(f"{refused}: its confirmations are refused, so nothing was sent")
    record = _batch(ops, connection, batch_id)
    if record.status == POSTED:
        raise ConfigurationError(
            f"batch {batch_id} of connection {connection!r} is POSTED: its records are posted on "
            "ConnectWise and cannot be given back; nothing was sent"
        )
    if record.status == ABANDONED:
        raise ConfigurationError(
            f"batch {batch_id} of connection {connection!r} is ABANDONED already; nothing was sent"
        )
    if record.status not in ABANDONABLE:  # POSTING: an update is running now
        raise ConfigurationError(
            f"batch {batch_id} of connection {connection!r} is {record.status}: an update is running; "
            "look again once it is DOWNLOADED or FAILED (batch shows it); nothing was sent"
        )
    body = {"connection": connection, "batch_id": batch_id, "action": "abandon"}
    sent = ops.sqs.send_message(
        QueueUrl=ops.resources["confirmation_queue"], MessageBody=json.dumps(body), MessageGroupId=connection
    )
    return body | {
        "status": "sent",
        "was": record.status,
        "in_doubt": bool(record.doubt_since),
        "message_id": sent["MessageId"],
        "next": "update_gl_batch abandons it shortly (GLBatchAbandoned; batch shows ABANDONED), or refuses "
        "and keeps the message in the confirmation DLQ with the reason (dlq list confirmations)",
    }


def _batch(ops: Operations, connection: str, batch_id: str) -> BatchRecord:
    record = ops.ledger.get(connection, batch_id)
    if record is None:
        raise ConfigurationError(
            f"connection {connection!r} has no batch {batch_id!r} in the ledger "
            f"(batches --connection {connection} lists them)"
        )
    return record


# --- a job run now ---------------------------------------------------------------------------


def run_job(ops: Operations, connection: str, job_id: str) -> dict[str, Any]:
    """Invoke a job's function now, asynchronously, with exactly the input its schedule sends
    (the function checks that input against the registry, as for a scheduled run). Only a job
    that would run tonight: its connection and it enabled, its schedule reconciled."""
    entry, job = enabled_job(ops, connection, job_id)
    name = schedule_name(connection, job_id)
    try:
        schedule = ops.scheduler.get_schedule(GroupName=ops.resources["schedule_group"], Name=name)
    except ops.scheduler.exceptions.ResourceNotFoundException:
        raise ConfigurationError(
            f"job {job_id!r} of connection {connection!r} has no schedule {name!r} yet: "
            f"reconcile {connection} first; nothing was run"
        ) from None
    target = schedule["Target"]
    try:
        sent = json.loads(target["Input"])
    except (KeyError, ValueError):
        sent = None
    if schedule.get("State") != "ENABLED" or sent != job_event(entry, job):
        raise ConfigurationError(
            f"the schedule of job {job_id!r} of connection {connection!r} is not as the registry says "
            f"(changed since, or edited by hand): reconcile {connection} first; nothing was run"
        )
    ops.lambda_client.invoke(
        FunctionName=target["Arn"], InvocationType="Event", Payload=target["Input"].encode()
    )
    return {
        "connection": connection,
        "job": job_id,
        "task": job.task,
        "function": target["Arn"],
        "status": "started",
        "next": "the function runs it now; list shows it as the job's last run once it finished",
    }


def enabled_job(ops: Operations, connection: str, job_id: str) -> tuple[ConnectionEntry, Job]:
    entry = ops.registry.get(connection)
    refused = refusal(connection, entry)
    if refused or entry is None:
        raise ConfigurationError(f"{refused}; nothing was run")
    job = entry.job(job_id)
    if job is None:
        known = ", ".join(j.id for j in entry.jobs) or "none"
        raise ConfigurationError(
            f"connection {connection!r} has no job {job_id!r} (its jobs: {known}); nothing was run"
        )
    if not job.enabled:
        raise ConfigurationError(f"job {job_id!r} of connection {connection!r} is disabled; nothing was run")
    return entry, job


def _utc(at: int) -> str:
    try:
        return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(at))
    except (OverflowError, OSError, ValueError):  # an item edited by hand: shown as it is
        return str(at)
