"""Download a GL batch: one batch per connection and kind at a time (`Ledger.claim`), outputs
written before the batch is recorded, the event published last; an open batch is announced
again instead of downloading its records twice.

The reply is streamed into S3 as it is read (tasks.gl.files): the document and records.jsonl
become visible only once the whole document was read and every check passed, then the manifest
is written, then the batch recorded; a reply cut short or refused leaves nothing under the
batch's prefix and releases the claim (the error says whether a later run may succeed)."""

import uuid
from datetime import date
from typing import Any

from aws_lambda_powertools.metrics import MetricUnit

from connectwise.glexport import GLBatch
from connectwise.transport import Deadline
from tasks.gl.files import BatchFiles
from tasks.gl.requests import DownloadRequest, resolve_thru_date
from tasks.platform.batch_ledger import DOWNLOADED, FAILED, OPEN, BatchRecord
from tasks.platform.errors import BatchBlockedError
from tasks.platform.keys import batch_prefix
from tasks.platform.services import Services
from tasks.platform.storage import Store


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

    files = BatchFiles(services.store, lambda batch_id: batch_prefix(request.connection, batch_id))
    try:
        client = services.client_for(request.connection).within(deadline or Deadline())
        # Resolved once, at the moment the task runs, in the connection's time zone.
        thru_date = resolve_thru_date(request.thru_date, services.clock(), client.connection.zone)
        batch = client.download_gl_batch(
            request.kinds, thru_date=thru_date, owner_level=request.owner_level, sink=files
        )
        if batch.is_empty:
            files.abort()
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
            keys=_write_batch(services.store, files, batch, request, thru_date, client.connection.time_zone),
            gl_entry_count=len(batch.gl_entry_ids()),
            thru_date=thru_date.isoformat() if thru_date else "",
        )
        ledger.record_download(record, token)
    except BaseException:
        files.abort()
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
    services.count("GLBatchesDownloaded", 1, request.connection)
    services.count("GLRecordsDownloaded", sum(record.counts.values()), request.connection)
    amount = float(sum(batch.totals().values()))  # a metric's double, for watching only
    services.count("GLAmountDownloaded", amount, request.connection, MetricUnit.NoUnit)
    return {"status": "downloaded"} | detail


def _held(request: DownloadRequest, holders: list[Any], services: Services) -> dict[str, Any]:
    """Someone holds the kinds: re-announce open batches, or wait for the running download. A
    batch that cannot be handed out again (FAILED, or adopted) blocks the run: it fails, after
    re-announcing the others, so the operator hears of it (GLBatchesBlocked, the run failed)."""
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
        if record is None:  # a claim naming a batch never recorded: nothing may hand its kinds out
            blocked.append(
                {"batch_id": batch_id, "status": "unrecorded", "error": "the ledger has no such batch"}
            )
            continue
        if record.status == FAILED or record.adopted:  # an adopted batch was never handed out here
            blocked.append({"batch_id": batch_id, "status": record.status, "error": record.error})
            services.log.error(
                "batch not posted yet holds its records: re-send its confirmation or abandon it",
                extra={
                    "connection": request.connection,
                    "batch_id": batch_id,
                    "status": record.status,
                    "adopted": record.adopted,
                    "error": record.error,
                },
            )
            continue
        detail = _batch_detail(record) | {"reannounced": True}
        services.notices.publish("GLBatchDownloaded", detail)
        announced.append(batch_id)
        services.log.info("open batch re-announced instead of a new download", extra=detail)
    services.count("GLBatchesReannounced", len(announced), request.connection)
    if blocked:
        services.count("GLBatchesBlocked", len(blocked), request.connection)
        raise BatchBlockedError(
            f"download of {', '.join(request.kinds)} for connection {request.connection!r} blocked by "
            + "; ".join(
                f"batch {b['batch_id']} ({b['status']}{': ' + b['error'] if b['error'] else ''})"
                for b in blocked
            )
            + ": re-send its confirmation or abandon it (docs/operations.md#a-blocked-gl-download)"
        )
    return {"status": "reannounced", "connection": request.connection, "batch_ids": announced}


def _write_batch(
    store: Store,
    files: BatchFiles,
    batch: GLBatch,
    request: DownloadRequest,
    thru_date: date | None,
    time_zone: str,
) -> dict[str, str]:
    """glexport.xml (byte for byte) and records.jsonl made visible, then the manifest of GL
    entry ids, with the thru date used (null: ConnectWise's today) and what the request said."""
    prefix = batch_prefix(request.connection, batch.batch_id)
    keys = files.complete()
    keys["manifest"] = store.put_json(
        prefix + "manifest.json",
        batch.summary()
        | {
            "connection": request.connection,
            "kinds": request.kinds,
            "thru_date": thru_date.isoformat() if thru_date else None,
            "thru_date_requested": request.model_dump(mode="json")["thru_date"],
            "time_zone": time_zone,
            "owner_level": request.owner_level,
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
        "thru_date": record.thru_date or None,
        "keys": record.keys,
    }
