"""The dead-letter queues as an operator reads, re-drives and clears them
(docs/operations.md#dlq-runbook), as plain functions; the command line is tasks.admin.__main__.

Reading never consumes: the messages read are held invisible while the command runs (so two
operators never replay one message at once) and made visible again as it ends, or, if it dies,
when the hold runs out (HOLD_SECONDS).

A replay sends the message back to its source queue, then deletes it from the DLQ: a message is
never lost, but a command dying between the two leaves it in both, and a second replay sends it
twice. That duplicate is harmless on every queue: a payment is deduplicated by its id in the
ledger (an applied one is a duplicate, a paid-to-date amount's id is its content); a
confirmation is keyed by its batch (a POSTED batch confirmed again with its entries, an
ABANDONED one abandoned again, changes nothing); a scheduler message is a run that never
started, replayed as a run of the job now (`run`), and a job run twice finds its open batch, its
watermark or its claim, or writes a second report file.

Messages the runbook says are refused again as they are (refused for their connection itself, a
confirmation its batch can never take) are not replayed: the refusal says why and what to do.
"""

import contextlib
import json
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from botocore.exceptions import ClientError

from tasks.admin.operations import Operations, run_job
from tasks.platform.errors import ConfigurationError
from tasks.platform.registry import CACHE_SECONDS
from tasks.platform.requests import is_connection_name
from tasks.platform.secrets import refusal

# queue name -> (its DLQ's resource, its source queue's resource; none: Scheduler is the source)
QUEUES = {
    "confirmations": ("confirmation_dlq", "confirmation_queue"),
    "payments": ("payments_dlq", "payments_queue"),
    "scheduler": ("scheduler_dlq", ""),
    "failed-runs": ("failed_runs", ""),  # Lambda's failure destination: runs that failed three times
}
RUNS = ("scheduler", "failed-runs")  # queues of runs, replayed by running the job again
HOLD_SECONDS = 120  # how long a read message stays invisible if the command dies holding it
WAIT_SECONDS = 1  # long polling: an empty short poll may miss messages, a long poll asks every server
SCAN_LIMIT = 1000  # messages read at most to find one, or to replay them all (run again for more)
SENT_FIELDS = ("DataType", "StringValue", "BinaryValue")  # what SendMessage takes of an attribute


@dataclass(frozen=True)
class Letter:
    message_id: str
    body: str
    attributes: dict[str, dict[str, Any]]  # message attributes, as ReceiveMessage gives them
    group: str  # its MessageGroupId ("" if none)
    sent_at: int  # epoch milliseconds
    receive_count: int
    receipt: str = field(repr=False)

    @classmethod
    def of(cls, message: dict[str, Any]) -> "Letter":
        system = message.get("Attributes", {})
        return cls(
            message["MessageId"],
            message.get("Body", ""),
            message.get("MessageAttributes", {}),
            system.get("MessageGroupId", ""),
            int(system.get("SentTimestamp", "0")),
            int(system.get("ApproximateReceiveCount", "0")),
            message["ReceiptHandle"],
        )

    def attribute(self, name: str) -> str:
        return str(self.attributes.get(name, {}).get("StringValue", ""))

    @property
    def error(self) -> str:
        """Why the function refused it, or why Scheduler could not deliver it ("": SQS moved it
        there after its transient failures; their errors are in the function's log)."""
        return self.attribute("error") or self.attribute("ERROR_MESSAGE") or _failure_of(self.body)

    def public(self, body_chars: int | None = None) -> dict[str, Any]:
        body = (
            self.body
            if body_chars is None or len(self.body) <= body_chars
            else self.body[:body_chars] + "..."
        )
        return {
            "message_id": self.message_id,
            "sent_at": _utc(self.sent_at // 1000),
            "receive_count": self.receive_count,
            "connection": self.attribute("connection"),
            "group": self.group,
            "error": self.error,
            "attributes": {k: v.get("StringValue", "(binary)") for k, v in sorted(self.attributes.items())},
            "body": body,
        }


class Held:
    """The messages read from a DLQ, held invisible until `release`."""

    def __init__(self, sqs: Any, url: str) -> None:
        self.sqs, self.url = sqs, url
        self.letters: dict[str, Letter] = {}
        self.deleted: set[str] = set()

    def read(self, limit: int, wanted: str = "") -> None:
        """Up to `limit` messages, or until the `wanted` message id is read."""
        while len(self.letters) < limit and wanted not in self.letters:
            messages = self.sqs.receive_message(
                QueueUrl=self.url,
                MaxNumberOfMessages=min(10, limit - len(self.letters)),
                VisibilityTimeout=HOLD_SECONDS,
                WaitTimeSeconds=WAIT_SECONDS,
                AttributeNames=["All"],
                MessageAttributeNames=["All"],
            ).get("Messages", [])
            if not messages:
                return
            for message in messages:
                letter = Letter.of(message)  # read twice (at least once): the last receipt counts
                self.letters[letter.message_id] = letter

    def delete(self, letter: Letter) -> None:
        self.sqs.delete_message(QueueUrl=self.url, ReceiptHandle=letter.receipt)
        self.deleted.add(letter.message_id)

    def release(self) -> None:
        kept = [letter for letter in self.letters.values() if letter.message_id not in self.deleted]
        for start in range(0, len(kept), 10):
            # Refused (a receipt gone stale): the message shows again when its hold runs out anyway.
            with contextlib.suppress(ClientError):
                self._show_again(kept[start : start + 10])

    def _show_again(self, letters: list[Letter]) -> None:
        self.sqs.change_message_visibility_batch(
            QueueUrl=self.url,
            Entries=[
                {"Id": str(i), "ReceiptHandle": letter.receipt, "VisibilityTimeout": 0}
                for i, letter in enumerate(letters)
            ],
        )


@contextmanager
def held(ops: Operations, queue: str) -> Iterator[Held]:
    holding = Held(ops.sqs, ops.resources[QUEUES[queue][0]])
    try:
        yield holding
    finally:
        holding.release()


def peek(ops: Operations, queue: str, limit: int) -> list[Letter]:
    """Up to `limit` messages of the queue's DLQ, oldest first, left in it."""
    with held(ops, queue) as holding:
        holding.read(limit)
        return sorted(holding.letters.values(), key=lambda letter: (letter.sent_at, letter.message_id))


def inspect(ops: Operations, queue: str, message_id: str) -> Letter:
    with held(ops, queue) as holding:
        return _find(holding, queue, message_id)


def delete(ops: Operations, queue: str, message_id: str) -> dict[str, Any]:
    """Delete one message from the DLQ (once its cause is dealt with another way)."""
    with held(ops, queue) as holding:
        letter = _find(holding, queue, message_id)
        holding.delete(letter)
        return {"queue": queue, "message_id": message_id, "status": "deleted"}


def replay(ops: Operations, queue: str, message_id: str | None) -> list[dict[str, Any]]:
    """Re-drive one message (or, without an id, every message read: up to SCAN_LIMIT) to where it
    came from, then delete it from the DLQ. A message that would be refused again as it is, or
    whose connection is not served now, stays, and its result says why."""
    results = []
    with held(ops, queue) as holding:
        if message_id:
            letters = [_find(holding, queue, message_id)]
        else:
            holding.read(SCAN_LIMIT)
            letters = sorted(holding.letters.values(), key=lambda letter: letter.sent_at)
        runs: dict[tuple[str, str], str] = {}  # the jobs this command ran: each once
        for letter in letters:
            try:
                done = _replay(ops, queue, letter, runs)
            except ConfigurationError as exc:
                results.append({"message_id": letter.message_id, "status": "refused", "reason": exc.message})
                continue
            except ClientError as exc:  # AWS refused the send (or the run): the rest would fare no better
                results.append({"message_id": letter.message_id, "status": "failed", "reason": str(exc)})
                break
            replayed = {"message_id": letter.message_id, "status": "replayed"} | done
            try:
                holding.delete(letter)
            except ClientError as exc:  # sent, still in the DLQ: a second replay would send it twice
                replayed["warning"] = (
                    f"replayed, but not deleted from the DLQ ({exc}): dlq delete {queue} {letter.message_id} --yes"
                )
            results.append(replayed)
    return results


def _replay(ops: Operations, queue: str, letter: Letter, runs: dict[tuple[str, str], str]) -> dict[str, Any]:
    if queue in RUNS:
        connection, job = _job_of(letter)
        if (connection, job) not in runs:  # a job missed twice is run once
            runs[connection, job] = run_job(ops, connection, job)["function"]
        return {"connection": connection, "job": job, "function": runs[connection, job]}
    connection = _may_send_again(queue, letter)
    if connection:
        _served(ops, connection)
    group = letter.group or (connection if is_connection_name(connection) else "")
    attributes = {
        name: {key: value for key, value in attribute.items() if key in SENT_FIELDS}
        for name, attribute in letter.attributes.items()
        if name != "error"  # the copy's error is the last refusal's, not the message's
    }
    sent = ops.sqs.send_message(
        QueueUrl=ops.resources[QUEUES[queue][1]],
        MessageBody=letter.body,
        MessageAttributes=attributes,
        **({"MessageGroupId": group} if group else {}),
    )
    return {"connection": connection, "group": group, "sent_as": sent["MessageId"]}


RESEND = (
    "; send its body again yourself for its connection (docs/operations.md#a-disabled-or-unknown-connection), "
    "then dlq delete it"
)
# (queue, words of the function's refusal) -> why it is refused again as it is, and what to do
REFUSED_AGAIN = {
    ("payments", "which is not a connection's name"): "it named something that is not a connection's "
    "name, which its copy leaves out" + RESEND,
    ("confirmations", "was already posted with"): "its batch was posted with other GL entries: those "
    "records stayed unposted on ConnectWise and come again in a later batch; confirm them with that "
    "batch, then dlq delete it",
    ("confirmations", "GL entry ids not in batch"): "it names GL entries its batch does not hold (a batch "
    "never takes more): confirm those records with the batch that holds them, then dlq delete it",
    ("confirmations", "cannot be given back"): "it abandons a POSTED batch, whose records are posted on "
    "ConnectWise and can never be given back; dlq delete it",
}


def _may_send_again(queue: str, letter: Letter) -> str:
    """The message's connection ("" if it names none), unless it would be refused again as it is."""
    for (on, words), why in REFUSED_AGAIN.items():
        if on == queue and words in letter.error:
            raise ConfigurationError(f"message {letter.message_id} is not replayed: {why}")
    attribute, group = letter.attribute("connection"), letter.group
    if queue == "payments":
        if attribute and group and attribute != group:
            raise ConfigurationError(
                f"message {letter.message_id} is not replayed: its connection attribute {attribute!r} and "
                f"MessageGroupId {group!r} differ, so it is refused again as it is" + RESEND
            )
        return attribute or group
    try:
        body = json.loads(letter.body)
    except (ValueError, RecursionError):
        body = None
    named = body.get("connection") if isinstance(body, dict) else None
    if group and isinstance(named, str) and named != group:
        raise ConfigurationError(
            f"message {letter.message_id} is not replayed: it confirms a batch of connection {named!r} but "
            f"was sent in message group {group!r}, so it is refused again as it is" + RESEND
        )
    return group or (named if isinstance(named, str) else "")


def _served(ops: Operations, connection: str) -> None:
    """Refuses a replay the function would refuse again now: its connection is not registered or
    disabled, or changed so lately that a warm function may still hold its old entry."""
    entry = ops.registry.get(connection) if is_connection_name(connection) else None
    refused = refusal(connection, entry)
    if refused or entry is None:
        raise ConfigurationError(
            f"{refused}: add or enable it first, or it is refused again; nothing was sent"
        )
    changed = _epoch(entry.updated_at)
    if ops.clock() < changed + CACHE_SECONDS:
        raise ConfigurationError(
            f"connection {connection!r} changed at {entry.updated_at}: a function may hold its old entry for "
            f"{CACHE_SECONDS:.0f} s; replay after {_utc(int(changed + CACHE_SECONDS))}; nothing was sent"
        )


def _job_of(letter: Letter) -> tuple[str, str]:
    """The connection and job of a run that did not happen: Scheduler's message is the schedule's
    input; a Lambda failure destination's record holds it as `requestPayload`."""
    try:
        body = json.loads(letter.body)
    except (ValueError, RecursionError):
        body = None
    run = body.get("requestPayload", body) if isinstance(body, dict) else None
    connection, job = (run.get("connection"), run.get("job")) if isinstance(run, dict) else (None, None)
    if (
        not (isinstance(connection, str) and isinstance(job, str))
        and isinstance(body, dict)
        and "requestPayload" in body
    ):
        raise ConfigurationError(
            f"message {letter.message_id} is a failed invocation that is not a job's run (an event or a direct "
            "invocation of the function in requestContext.functionArn): once fixed, invoke it again with its "
            "requestPayload, then dlq delete it"
        )
    if not (isinstance(connection, str) and isinstance(job, str)):
        raise ConfigurationError(
            f"message {letter.message_id} is not a job's run but a registry change the reconciler could not "
            "apply (its log names the connection: 'connection not reconciled'); fix it, reconcile NAME, then "
            "dlq delete it"
        )
    return connection, job


def _failure_of(body: str) -> str:
    """The error of a Lambda failure destination's record (FailedRunsQueue), if it is one."""
    try:
        record = json.loads(body)
    except (ValueError, RecursionError):
        return ""
    response = record.get("responsePayload") if isinstance(record, dict) else None
    message = response.get("errorMessage") if isinstance(response, dict) else None
    return str(message)[:2000] if message else ""


def _find(holding: Held, queue: str, message_id: str) -> Letter:
    holding.read(SCAN_LIMIT, wanted=message_id)
    letter = holding.letters.get(message_id)
    if letter is None:
        raise ConfigurationError(
            f"no message {message_id!r} in the {queue} DLQ (dlq list {queue} shows its messages; one another "
            f"command is reading shows again within {HOLD_SECONDS} s); nothing was changed"
        )
    return letter


def _epoch(text: str) -> float:
    try:
        return datetime.strptime(text, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC).timestamp()
    except ValueError:
        return 0.0  # an entry of before updated_at was kept: long ago


def _utc(at: int) -> str:
    try:
        return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(at))
    except (OverflowError, OSError, ValueError):  # an item edited by hand: shown as it is
        return str(at)
