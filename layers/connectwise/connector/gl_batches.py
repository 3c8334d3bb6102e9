"""The GL batch life cycle as plain functions: download, update (post), recreate.

Each task takes a validated request and a `Services` bundle, so tests call it without Lambda.
Money-safety rules (DESIGN.md) and where they are kept:

* one batch per connection and kind at a time: `Ledger.claim` / the open-batch holders;
* nothing looks complete before the ledger says so: outputs are written first, the batch is
  recorded after, the event is published last;
* a redelivered confirmation is a no-op: `Ledger.start_posting` returns a POSTED batch as is;
  a confirmation naming GL entries the batch was not posted with is refused loudly (DLQ, event,
  metric): those records stayed unposted and are handed out again, never silently;
* the confirmation being posted is kept with the batch (`confirmation.json`, re-sendable as is);
* an update that ConnectWise refused, or whose reply was lost, is checked against ConnectWise
  before the batch is declared FAILED or retried: a batch ConnectWise holds is POSTED.
"""

import uuid
from dataclasses import replace
from datetime import UTC, date, datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from connector.errors import BatchBusyError, BatchStateError
from connector.ledger import ABANDONED, DOWNLOADED, FAILED, OPEN, POSTED, POSTING, BatchRecord
from connector.outputs import Store, batch_prefix
from connector.services import Services
from connectwise.accounting import RecreateFilters
from connectwise.backends import GLBackend
from connectwise.errors import ConnectWiseError, OutcomeUnknownError
from connectwise.glexport import GLBatch
from connectwise.transport import HOLD_AFTER_UNKNOWN, Deadline

Kind = Literal["invoices", "expenses", "procurement"]
ConnectionName = Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")


class DownloadRequest(BaseModel):
    """What a schedule asks for: which connection, which kinds of unposted records."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    connection: str = ConnectionName
    kinds: list[Kind] = Field(min_length=1)
    thru_date: date | None = None
    owner_level: str | None = None

    @field_validator("kinds")
    @classmethod
    def _distinct(cls, kinds: list[Kind]) -> list[Kind]:
        return sorted(set(kinds))


class PostingConfirmation(BaseModel):
    """The accounting system's word on a batch: posted (all or the listed GL entries) or abandon."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    connection: str = ConnectionName
    batch_id: str = Field(min_length=1, max_length=64)
    gl_entry_ids: list[int] | None = None
    action: Literal["post", "abandon"] = "post"


class RecreateRequest(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    connection: str = ConnectionName
    batch_id: str = Field(min_length=1, max_length=64)
    filters: RecreateFilters = Field(default_factory=RecreateFilters)
    thru_date: date | None = None
    owner_level: str | None = None


def download_gl_batch(
    request: DownloadRequest, services: Services, deadline: Deadline | None = None
) -> dict[str, Any]:
    """Download the unposted records of the requested kinds as one batch (or re-announce the open one)."""
    ledger, log = services.ledger, services.log
    now = int(services.clock())
    token = uuid.uuid4().hex
    holders = ledger.claim(
        request.connection, request.kinds, token, now, services.settings.stale_after_seconds
    )
    if holders:
        return _held(request, holders, services)

    try:
        client = services.client_for(request.connection).within(deadline or Deadline())
        batch = client.download_gl_batch(
            invoices="invoices" in request.kinds,
            expenses="expenses" in request.kinds,
            procurement="procurement" in request.kinds,
            thru_date=request.thru_date,
            owner_level=request.owner_level,
        )
        if batch.is_empty:
            ledger.release(request.connection, request.kinds, token)
            log.info("nothing to export", extra={"connection": request.connection, "kinds": request.kinds})
            return {"status": "empty", "connection": request.connection, "kinds": request.kinds}
        counts = batch.counts()
        record = BatchRecord(
            connection=request.connection,
            batch_id=batch.batch_id,
            kinds=[kind for kind in request.kinds if counts[kind]],
            status=DOWNLOADED,
            created_at=now,
            counts=counts,
            totals={kind: str(total) for kind, total in batch.totals().items()},
            keys=_write_batch(services.store, request.connection, batch, request),
            gl_entry_count=len(batch.gl_entry_ids()),
        )
        ledger.record_download(record, token)
    except BaseException:
        ledger.release(request.connection, request.kinds, token)
        raise
    # Kinds that came back empty hold nothing: give them back to other schedules.
    ledger.release(request.connection, [k for k in request.kinds if k not in record.kinds], token)
    if batch.ignored_elements:
        log.warning(
            f"GLExport had sections this connector does not model; they are kept in {batch.raw_name}",
            extra={"batch_id": batch.batch_id, "elements": list(batch.ignored_elements)},
        )
    detail = _batch_detail(record) | {"reannounced": False}
    services.notices.publish("GLBatchDownloaded", detail)
    log.info("batch downloaded", extra=detail)
    return {"status": "downloaded"} | detail


def _held(request: DownloadRequest, holders: list[Any], services: Services) -> dict[str, Any]:
    """Someone holds the kinds: re-announce open batches, or wait for the running download."""
    batch_ids = sorted({h.batch_id for h in holders if h.state == OPEN})
    if not batch_ids:
        services.log.info(
            "another download of these kinds is running; nothing to do",
            extra={"connection": request.connection, "kinds": request.kinds},
        )
        return {"status": "busy", "connection": request.connection, "kinds": request.kinds}
    announced, blocked = [], []
    for batch_id in batch_ids:
        record = services.ledger.get(request.connection, batch_id)
        if record is None:
            continue
        if record.status == FAILED:
            blocked.append({"batch_id": batch_id, "error": record.error})
            services.log.error(
                "batch failed to post and still holds its records: re-send its confirmation or abandon it",
                extra={"connection": request.connection, "batch_id": batch_id, "error": record.error},
            )
            continue
        detail = _batch_detail(record) | {"reannounced": True}
        services.notices.publish("GLBatchDownloaded", detail)
        announced.append(batch_id)
        services.log.info("open batch re-announced instead of a new download", extra=detail)
    return {
        "status": "reannounced" if announced else "blocked",
        "connection": request.connection,
        "batch_ids": announced,
        "blocked": blocked,
    }


def update_gl_batch(
    confirmation: PostingConfirmation, services: Services, deadline: Deadline | None = None
) -> dict[str, Any]:
    """Apply a posting confirmation: add the posted GL entries to the batch on ConnectWise."""
    conn, batch_id = confirmation.connection, confirmation.batch_id
    record = services.ledger.get(conn, batch_id)
    if record is None:
        raise BatchStateError(
            f"unknown batch {batch_id} for connection {conn!r}: it was never downloaded here"
        )
    client = services.client_for(conn).within(deadline or Deadline())
    if confirmation.action == "abandon":
        return _abandon(record, client, services)
    ids = _ids_to_post(record, confirmation, services.store)
    if record.status != POSTED:
        now = int(services.clock())
        record = services.ledger.start_posting(conn, batch_id, now, services.settings.stale_after_seconds)
    if record.status == POSTED:  # a redelivery, or a concurrent delivery finished first
        return _posted_already(record, ids, services)
    try:
        return _post(record, ids, confirmation, client, services)
    except BaseException as exc:
        # Back to DOWNLOADED for the retry; in doubt unless the update surely did not run.
        not_run = (
            isinstance(exc, ConnectWiseError) and exc.transient and not isinstance(exc, OutcomeUnknownError)
        )
        services.ledger.abort_posting(
            record, int(services.clock()), doubt=bool(record.doubt_since) or not not_run
        )
        raise


CONFIRMATION = "confirmation.json"


def _post(
    record: BatchRecord,
    ids: list[int],
    confirmation: PostingConfirmation,
    client: GLBackend,
    services: Services,
) -> dict[str, Any]:
    """Holding the batch in POSTING: post `ids`, settling first what an earlier attempt of unknown
    outcome may have done. What ConnectWise holds decides, never what a reply seemed to say."""
    conn, batch_id = record.connection, record.batch_id
    if record.doubt_since:
        held = client.posted_entries(batch_id)
        if held is not None:
            return _posted_as_held(record, held, ids, services)
        earlier = _posted_ids(record, services.store) if record.confirmation else None
        if (
            earlier is not None
            and earlier != set(ids)
            and services.clock() < record.doubt_since + HOLD_AFTER_UNKNOWN
        ):
            raise BatchBusyError(
                f"batch {batch_id}: an earlier update with other GL entries may still reach ConnectWise; "
                "retried later"
            )
    kept = services.store.put_json(
        batch_prefix(conn, batch_id) + CONFIRMATION,
        confirmation.model_dump(mode="json") | {"gl_entry_ids": ids},
    )
    services.ledger.keep_confirmation(record, kept)
    try:
        client.update_gl_batch(batch_id, ids, kinds=record.kinds)
    except ConnectWiseError as exc:
        if exc.transient and not isinstance(exc, OutcomeUnknownError):
            raise  # surely not run
        # Refused, or the reply was lost: a reply can be lost after ConnectWise posted, and a
        # retry can be refused because it had. Look before deciding.
        try:
            held = client.posted_entries(batch_id)
        except ConnectWiseError as check:
            if exc.transient:
                raise exc from None  # unknown and cannot look now: retried, in doubt
            if check.transient:
                raise  # refused, but cannot look now: retried
            held = None
        if held is not None:
            services.log.warning(
                "the update's reply said otherwise, but ConnectWise holds the batch",
                extra={"connection": conn, "batch_id": batch_id, "error": exc.message},
            )
            return _posted_as_held(record, held, ids, services)
        if exc.transient:
            raise
        services.ledger.fail_posting(record, exc.message, int(services.clock()), kept)
        failure = {"connection": conn, "batch_id": batch_id, "error": exc.message, "confirmation": kept}
        services.notices.publish("GLBatchFailed", failure)
        services.log.error("ConnectWise refused the batch update", extra=failure)
        return {"status": "failed"} | failure
    return _posted(record, ids, kept, services)


def _posted(record: BatchRecord, ids: list[int] | set[int], kept: str, services: Services) -> dict[str, Any]:
    services.ledger.finish_posting(record, len(ids), int(services.clock()), kept)
    detail = {
        "connection": record.connection,
        "batch_id": record.batch_id,
        "posted": len(ids),
        "gl_entry_count": record.gl_entry_count,
        "partial": len(ids) < record.gl_entry_count,
        "confirmation": kept,
    }
    services.notices.publish("GLBatchPosted", detail)
    services.log.info("batch posted", extra=detail)
    return {"status": "posted"} | detail


def _posted_as_held(
    record: BatchRecord, held: set[int], ids: list[int], services: Services
) -> dict[str, Any]:
    """ConnectWise holds the batch: it is POSTED with the GL entries ConnectWise holds (kept as the
    batch's confirmation), and this confirmation is judged against them like any other."""
    kept = services.store.put_json(
        batch_prefix(record.connection, record.batch_id) + CONFIRMATION,
        {"connection": record.connection, "batch_id": record.batch_id, "gl_entry_ids": sorted(held)},
    )
    posted = _posted(record, held, kept, services)
    if set(ids) <= held:
        return posted
    return _posted_already(
        replace(record, status=POSTED, posted_count=len(held), confirmation=kept), ids, services
    )


def _posted_already(record: BatchRecord, ids: list[int], services: Services) -> dict[str, Any]:
    """A confirmation for a POSTED batch: nothing to do if it names only entries posted with it;
    otherwise refused loudly, since its other records stayed unposted on ConnectWise."""
    conn, batch_id = record.connection, record.batch_id
    posted = _posted_ids(record, services.store)
    extra = sorted(set(ids) - posted) if posted is not None else sorted(ids)
    if not extra:
        services.log.info(
            "confirmation for a posted batch: nothing to do", extra={"connection": conn, "batch_id": batch_id}
        )
        return {"status": "already-posted", "connection": conn, "batch_id": batch_id}
    shown = ", ".join(str(i) for i in extra[:10]) + (" ..." if len(extra) > 10 else "")
    error = (
        f"batch {batch_id} was already posted with {record.posted_count} of its {record.gl_entry_count} GL "
        f"entries; this confirmation names {len(extra)} more ({shown}). They stayed unposted on "
        "ConnectWise and are handed out again in a later batch: confirm them with that batch"
    )
    services.notices.publish(
        "GLBatchConfirmationRefused",
        {"connection": conn, "batch_id": batch_id, "error": error, "gl_entry_ids": extra[:100]},
    )
    raise BatchStateError(error)


def _posted_ids(record: BatchRecord, store: Store) -> set[int] | None:
    """The GL entries the batch was posted with: its kept confirmation's, or (for a batch posted
    before confirmations were kept) all of them if all were posted; None if that cannot be told."""
    if record.confirmation:
        return set(store.get_json(record.confirmation)["gl_entry_ids"])
    if record.posted_count == record.gl_entry_count:
        return set(store.get_json(record.keys["manifest"])["gl_entry_ids"])
    return None


def _abandon(record: BatchRecord, client: GLBackend, services: Services) -> dict[str, Any]:
    conn, batch_id = record.connection, record.batch_id
    if record.status == ABANDONED:
        return {"status": "already-abandoned", "connection": conn, "batch_id": batch_id}
    if record.status == POSTING:
        raise BatchBusyError(f"batch {batch_id} is being updated by another invocation; retried later")
    if record.doubt_since and record.status != POSTED:  # an update may have reached ConnectWise
        if client.posted_entries(batch_id) is not None:
            raise BatchStateError(
                f"batch {batch_id} cannot be abandoned: ConnectWise holds it (an update whose reply was lost "
                "reached it); send its confirmation again to record it POSTED; nothing was changed"
            )
        if services.clock() < record.doubt_since + HOLD_AFTER_UNKNOWN:
            raise BatchBusyError(f"batch {batch_id}: an update may still reach ConnectWise; retried later")
    if record.status == POSTED:
        raise BatchStateError(
            f"batch {batch_id} is POSTED: its records are posted on ConnectWise and cannot be given back; "
            "nothing was changed"
        )
    services.ledger.abandon(record, int(services.clock()))
    services.notices.publish("GLBatchAbandoned", {"connection": conn, "batch_id": batch_id})
    services.log.warning(
        "batch abandoned; its records go back to ConnectWise's unposted lists",
        extra={"connection": conn, "batch_id": batch_id},
    )
    return {"status": "abandoned", "connection": conn, "batch_id": batch_id}


def _ids_to_post(record: BatchRecord, confirmation: PostingConfirmation, store: Store) -> list[int]:
    manifest_ids = store.get_json(record.keys["manifest"])["gl_entry_ids"]
    if confirmation.gl_entry_ids is None:
        return list(manifest_ids)
    given = sorted(set(confirmation.gl_entry_ids))
    if not given:
        raise BatchStateError(f"confirmation for batch {record.batch_id} lists no GL entry ids")
    unknown = sorted(set(given) - set(manifest_ids))
    if unknown:
        shown = ", ".join(str(i) for i in unknown[:10]) + (" ..." if len(unknown) > 10 else "")
        raise BatchStateError(f"GL entry ids not in batch {record.batch_id}: {shown}")
    return given


def recreate_gl_batch(
    request: RecreateRequest, services: Services, deadline: Deadline | None = None
) -> dict[str, Any]:
    """Download an updated batch again, with filters; write it under the batch with the request."""
    batch = (
        services.client_for(request.connection)
        .within(deadline or Deadline())
        .recreate_gl_batch(
            request.batch_id,
            filters=request.filters,
            thru_date=request.thru_date,
            owner_level=request.owner_level,
        )
    )
    stamp = datetime.fromtimestamp(services.clock(), UTC).strftime("%Y%m%dT%H%M%SZ")
    prefix = f"{batch_prefix(request.connection, request.batch_id)}recreated/{stamp}-{uuid.uuid4().hex[:6]}/"
    store = services.store
    keys = {
        "glexport": store.put(prefix + batch.raw_name, batch.raw, batch.media_type),
        "records": store.put_json_lines(prefix + "records.jsonl", batch.json_lines()),
    }
    keys["request"] = store.put_json(
        prefix + "request.json",
        request.model_dump(mode="json") | {"summary": batch.summary(), "keys": dict(keys)},
    )
    detail = {"connection": request.connection, "keys": keys} | batch.summary()
    services.notices.publish("GLBatchRecreated", detail)
    services.log.info("batch recreated", extra=detail)
    return {"status": "recreated"} | detail


def _write_batch(store: Store, connection: str, batch: GLBatch, request: DownloadRequest) -> dict[str, str]:
    """glexport.xml (byte for byte), records.jsonl and the manifest of GL entry ids."""
    prefix = batch_prefix(connection, batch.batch_id)
    keys = {
        "glexport": store.put(prefix + batch.raw_name, batch.raw, batch.media_type),
        "records": store.put_json_lines(prefix + "records.jsonl", batch.json_lines()),
    }
    keys["manifest"] = store.put_json(
        prefix + "manifest.json",
        batch.summary()
        | {
            "connection": connection,
            "kinds": request.kinds,
            "keys": dict(keys),
            "gl_entry_ids": batch.gl_entry_ids(),
        },
    )
    return keys


def _batch_detail(record: BatchRecord) -> dict[str, Any]:
    return {
        "connection": record.connection,
        "batch_id": record.batch_id,
        "kinds": record.kinds,
        "counts": record.counts,
        "totals": record.totals,
        "gl_entry_ids": record.gl_entry_count,
        "keys": record.keys,
    }
