"""split_payment_file: a payment file dropped at `payment-files/<connection>/<name>.xml|.json`
(S3 "Object Created", through EventBridge) split into payment messages on the payments queue,
with what became of it written to its results folder (`tasks.platform.keys.payment_file_results`).

The file is read twice, as a stream each time: first whole, so that an unreadable file (not
well-formed, hostile, cut short) sends nothing; then entry by entry, its valid payments sent ten
to a message, ten messages to a SendMessageBatch (a "part"). Each message carries the connection
(attribute and MessageGroupId, as any payment message) and the results folder (attribute
`payment_file`), where the payments function writes what it did with them.

Each payment once: the payment ledger recognises a payment sent again (by its id, given or
derived from its content), so a message sent twice is never money twice. The split sends as
little twice as it can: its progress item (`payment-file#<connection>#<digest of key and
version>`, in the ledger table) counts the parts sent, so a retry after a death goes on after
them (resending at most the part it died in), and an upload already split is not sent again.
Another upload of the same file is another version: it is sent again, and its applied payments
are reported as duplicates while its failed ones are tried again.
"""

import hashlib
import time
from collections.abc import Callable, Iterator
from contextlib import suppress
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import Any

from aws_lambda_powertools.utilities.parser.models import S3EventNotificationEventBridgeModel

from connectwise.errors import DocumentError
from connectwise.transport import Deadline
from tasks.payments.files import JSON, XML, FileEntry, message_body, messages, raw_entries, read_entries
from tasks.payments.messages import RejectedPayment, payments_document
from tasks.platform.errors import ConfigurationError, ConnectorError
from tasks.platform.keys import PAYMENT_FILES, PAYMENT_RESULTS, UNKNOWN, payment_file, payment_file_results
from tasks.platform.requests import is_connection_name
from tasks.platform.secrets import refusal
from tasks.platform.services import Services

MESSAGES_PER_PART = 10  # SendMessageBatch's most; ten messages of ten payments are far below 256 KB
SEND_ATTEMPTS = 4  # for the entries of a batch SQS failed on its side
MARGIN = 30.0  # seconds kept to record progress and write the results
REFUSALS_LISTED = 10_000  # refused entries written to the fail files; more are counted
READ_CHUNK = 2**20


class SplitUnfinishedError(ConnectorError):
    """The split could not finish now (SQS refused messages, no time left): the invocation
    fails, Lambda invokes it again, and the retry goes on after the parts already sent."""

    transient = True


@dataclass(frozen=True)
class Upload:
    """One upload of a payment file, as its event names it."""

    bucket: str
    key: str
    version: str | None  # the bucket is versioned: the split reads exactly what was put
    etag: str
    connection: str
    name: str
    results: str  # its results folder
    progress: str  # its progress item's key

    @property
    def form(self) -> str:
        return JSON if self.name.lower().endswith(".json") else XML


@dataclass
class Split:
    """What the split made of a file: written as split.json, with the refused entries."""

    file: str
    connection: str
    status: str = "split"  # or "refused": nothing of the file was sent
    error: str = ""
    entries: int = 0
    queued: int = 0
    refused: int = 0
    messages: int = 0
    version_id: str = ""
    results: str = ""
    refusals: list[dict[str, Any]] = field(default_factory=list)


class PaymentQueue:
    """The payments queue, as the split sends to it."""

    def __init__(self, sqs: Any, url: str, sleep: Callable[[float], None] = time.sleep) -> None:
        self.sqs, self.url, self.sleep = sqs, url, sleep

    def send(self, bodies: list[str], connection: str, results: str) -> None:
        """Send one part; entries SQS failed on its side are sent again a few times. Raises
        SplitUnfinishedError if some are still not sent (what was sent may be sent again)."""
        attributes = {
            "connection": {"DataType": "String", "StringValue": connection},
            "payment_file": {"DataType": "String", "StringValue": results},
        }
        waiting = {str(i): body for i, body in enumerate(bodies)}
        for attempt in range(SEND_ATTEMPTS):
            reply = self.sqs.send_message_batch(
                QueueUrl=self.url,
                Entries=[
                    {"Id": i, "MessageBody": b, "MessageAttributes": attributes, "MessageGroupId": connection}
                    for i, b in waiting.items()
                ],
            )
            failed = reply.get("Failed", [])
            waiting = {f["Id"]: waiting[f["Id"]] for f in failed}
            if not waiting or any(f.get("SenderFault") for f in failed):
                break
            self.sleep(0.2 * 2**attempt)
        if waiting:
            codes = sorted({f.get("Code", "?") for f in failed})
            raise SplitUnfinishedError(
                f"SQS did not take {len(waiting)} of {len(bodies)} messages ({', '.join(codes)})"
            )


class Progress:
    """The parts of an upload sent so far, and whether its split is done (a ledger table item)."""

    def __init__(self, dynamodb: Any, table: str) -> None:
        self.db, self.table = dynamodb, table

    def read(self, key: str) -> tuple[int, bool]:
        item = self.db.get_item(TableName=self.table, Key={"pk": {"S": key}}, ConsistentRead=True).get("Item")
        if not item:
            return 0, False
        return int(item["parts"]["N"]), item.get("done", {}).get("BOOL", False)

    def record(self, key: str, upload: Upload, parts: int, done: bool = False) -> None:
        """Never backwards: two copies of the split at once each record only what is more."""
        with suppress(self.db.exceptions.ConditionalCheckFailedException):  # another copy got further
            self.db.update_item(
                TableName=self.table,
                Key={"pk": {"S": key}},
                UpdateExpression="SET parts = :parts, done = :done, file_key = :file, version_id = :version",
                ConditionExpression="attribute_not_exists(parts) OR parts < :parts OR (parts = :parts AND :done = :yes)",
                ExpressionAttributeValues={
                    ":parts": {"N": str(parts)},
                    ":done": {"BOOL": done},
                    ":yes": {"BOOL": True},
                    ":file": {"S": upload.key},
                    ":version": {"S": upload.version or upload.etag},
                },
            )


def upload_of(parsed: S3EventNotificationEventBridgeModel, bucket: str) -> Upload | None:
    """The upload an "Object Created" event names, or None if it is not a payment file (another
    bucket or area, a folder)."""
    detail, key = parsed.detail, parsed.detail.object.key
    if detail.bucket.name != bucket or not key.startswith(f"{PAYMENT_FILES}/") or key.endswith("/"):
        return None
    version = detail.object.version_id or None
    identity = f"{key}\n{version or detail.object.etag or detail.object.sequencer}"
    digest = hashlib.sha256(identity.encode()).hexdigest()
    upload = f"{parsed.time:%Y%m%dT%H%M%SZ}-{digest[:12]}"
    connection, name = payment_file(key) or (UNKNOWN, "")
    if not is_connection_name(connection):
        connection, name = UNKNOWN, ""
    results = (
        payment_file_results(connection, name, upload) if name else f"{PAYMENT_RESULTS}/{UNKNOWN}/{upload}/"
    )
    progress = f"payment-file#{connection}#{digest[:32]}"
    return Upload(bucket, key, version, detail.object.etag, connection, name, results, progress)


def split_payment_file(
    event: S3EventNotificationEventBridgeModel, services: Services, queue: PaymentQueue, deadline: Deadline
) -> dict[str, Any]:
    upload = upload_of(event, services.settings.bucket_name)
    if upload is None:
        services.log.warning("not a payment file: ignored", extra={"key": event.detail.object.key[:300]})
        return {"status": "ignored"}
    services.log.append_keys(connection=upload.connection, payment_file=upload.key)
    progress = Progress(services.ledger.db, services.settings.table_name)
    sent, done = progress.read(upload.progress)
    if done:
        services.log.info("payment file already split", extra={"results": upload.results})
        return {"status": "already split", "results": upload.results}
    split = Split(upload.key, upload.connection, version_id=upload.version or "", results=upload.results)
    try:
        _check(upload, services)
        for _ in raw_entries(_read(upload, services), upload.form):  # unreadable: nothing is sent
            pass
    except (DocumentError, ConfigurationError) as exc:
        return _finish(split, services, error=exc.message)
    _send(upload, split, services, queue, progress, sent, deadline)
    keys = _finish(split, services)
    progress.record(upload.progress, upload, -(-split.messages // MESSAGES_PER_PART), done=True)
    return keys


def _check(upload: Upload, services: Services) -> None:
    if not upload.name:
        raise ConfigurationError(
            f"not a payment file's name: put it at {PAYMENT_FILES}/<connection>/<name>.xml or .json "
            "(a connection's name, and no folder below it)"
        )
    refused = refusal(upload.connection, services.entry(upload.connection))
    if refused:
        raise ConfigurationError(refused)


def _read(upload: Upload, services: Services) -> Iterator[bytes]:
    """The upload's bytes, as it was put (its version; without one, only while it is unchanged)."""
    s3 = services.store.s3
    which = {"VersionId": upload.version} if upload.version else {"IfMatch": upload.etag}
    try:
        body = s3.get_object(Bucket=upload.bucket, Key=upload.key, **which)["Body"]
    except s3.exceptions.NoSuchKey:
        raise ConfigurationError("the file is no longer in the bucket") from None
    except s3.exceptions.ClientError as exc:
        code = exc.response.get("Error", {}).get("Code", "")
        if code in ("NoSuchVersion", "PreconditionFailed", "404", "412"):
            raise ConfigurationError(
                "the file was replaced or deleted before it was read; a newer upload is split on its own"
            ) from None
        raise
    yield from body.iter_chunks(READ_CHUNK)


def _send(
    upload: Upload,
    split: Split,
    services: Services,
    queue: PaymentQueue,
    progress: Progress,
    sent: int,
    deadline: Deadline,
) -> None:
    """Read the file again and send its payments, part by part, after the `sent` parts."""
    part: list[str] = []
    parts = 0

    def counted(entries: Iterator[FileEntry]) -> Iterator[FileEntry]:
        for entry in entries:
            split.entries += 1
            if isinstance(entry.payment, RejectedPayment):
                split.refused += 1
                if len(split.refusals) < REFUSALS_LISTED:
                    split.refusals.append(_refusal_row(entry.payment))
            else:
                split.queued += 1
            yield entry

    def flush() -> None:
        nonlocal part, parts
        if parts >= sent:  # sent before this invocation otherwise
            if deadline.left() < MARGIN:
                raise SplitUnfinishedError(
                    f"no time left after {parts} parts of {MESSAGES_PER_PART} messages; the retry goes on"
                )
            queue.send(part, upload.connection, upload.results)
            parts += 1
            progress.record(upload.progress, upload, parts)
        else:
            parts += 1
        part = []

    for message in messages(counted(read_entries(_read(upload, services), upload.form, upload.connection))):
        split.messages += 1
        part.append(message_body(message, upload.form))
        if len(part) == MESSAGES_PER_PART:
            flush()
    if part:
        flush()


def _refusal_row(refused: RejectedPayment) -> dict[str, Any]:
    return {"index": refused.index, **refused.fields, "error": refused.error}


def _finish(split: Split, services: Services, error: str = "") -> dict[str, Any]:
    """Write split.json and the fail files, count the metrics; the results are the same whenever
    the same upload is split again."""
    if error:
        split.status, split.error = "refused", error
        split.refusals = [{"error": error}]
    store, folder = services.store, split.results
    summary = {k: v for k, v in asdict(split).items() if k != "refusals"}
    summary["split_at"] = datetime.fromtimestamp(services.clock(), UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    keys = {"summary": store.put_json(f"{folder}split.json", summary)}
    if split.refusals:
        keys["fail_jsonl"] = store.put_json_lines(f"{folder}split-fail.jsonl", split.refusals)
        keys["fail_xml"] = store.put(
            f"{folder}split-fail.xml", payments_document(split.refusals, with_errors=True), "application/xml"
        )
    if error:
        services.count("PaymentFilesRefused", 1)
        services.log.warning("payment file refused", extra={"error": error, "results": folder})
    else:
        services.count("PaymentFilesSplit", 1)
        services.count("PaymentFileEntriesQueued", split.queued)
        services.count("PaymentFileEntriesRefused", split.refused)
        services.log.info(
            "payment file split",
            extra={k: summary[k] for k in ("entries", "queued", "refused", "messages", "results")},
        )
    return {"status": split.status, "results": folder, "files": keys} | (
        {"error": error} if error else {"queued": split.queued, "refused": split.refused}
    )
