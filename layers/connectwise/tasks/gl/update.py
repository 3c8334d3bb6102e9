"""Update (post) a GL batch: the accounting system's confirmation applied on ConnectWise.

Each task takes a validated request and a `Services` bundle, so tests call it without Lambda.
Money-safety rules (docs/gl-batches.md) and where they are kept:

* one batch per connection and kind at a time: `Ledger.claim` / the open-batch holders;
* nothing looks complete before the ledger says so: outputs are written first, the batch is
  recorded after, the event is published last;
* a redelivered confirmation is a no-op: `Ledger.start_posting` returns a POSTED batch as is;
  a confirmation naming GL entries the batch was not posted with is refused loudly (DLQ, event,
  metric): those records stayed unposted and are handed out again, never silently;
* the confirmation being posted is kept with the batch (`confirmation.json`, re-sendable as is);
* an update that ConnectWise refused, or whose reply was lost, is checked against ConnectWise
  before the batch is declared FAILED or retried: a batch ConnectWise holds is POSTED;
* a batch not downloaded here is adopted (`tasks.gl.adopt`) from a confirmation listing its GL
  entries, after checks, and then posted by these same rules.
"""

from dataclasses import replace
from typing import Any

from connectwise.backends import GLBackend
from connectwise.errors import ConnectWiseError, surely_not_run
from connectwise.transport import HOLD_AFTER_UNKNOWN, Deadline
from tasks.gl.adopt import adopt_batch
from tasks.gl.requests import PostingConfirmation
from tasks.platform.batch_ledger import ABANDONED, POSTED, POSTING, BatchRecord
from tasks.platform.errors import BatchBusyError, BatchStateError
from tasks.platform.keys import batch_prefix
from tasks.platform.notices import Notices
from tasks.platform.services import Services
from tasks.platform.storage import Store


def update_gl_batch(
    confirmation: PostingConfirmation, services: Services, deadline: Deadline | None = None
) -> dict[str, Any]:
    """Apply a posting confirmation: add the posted GL entries to the batch on ConnectWise."""
    conn, batch_id = confirmation.connection, confirmation.batch_id
    record = services.ledger.get(conn, batch_id)
    if record is None:  # not downloaded here: adopted from its confirmation, or refused
        record = adopt_batch(confirmation, services, deadline)
    client = services.client_for(conn).within(deadline or Deadline())
    if confirmation.action == "abandon":
        return _abandon(record, client, services)
    ids = _ids_to_post(record, confirmation, services.store, services.notices)
    if record.status != POSTED:
        now = int(services.clock())
        record = services.ledger.start_posting(conn, batch_id, now, services.settings.stale_after_seconds)
    if record.status == POSTED:  # a redelivery, or a concurrent delivery finished first
        return _posted_already(record, ids, services)
    try:
        return _post(record, ids, confirmation, client, services)
    except BaseException as exc:
        # Back to DOWNLOADED for the retry; in doubt unless the update surely did not run.
        services.ledger.abort_posting(
            record, int(services.clock()), doubt=bool(record.doubt_since) or not surely_not_run(exc)
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
        if surely_not_run(exc):
            raise
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
        "adopted": record.adopted,
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


def _ids_to_post(
    record: BatchRecord, confirmation: PostingConfirmation, store: Store, notices: Notices
) -> list[int]:
    manifest_ids = store.get_json(record.keys["manifest"])["gl_entry_ids"]
    if confirmation.gl_entry_ids is None:
        return list(manifest_ids)
    given = sorted(set(confirmation.gl_entry_ids))
    if not given:
        raise BatchStateError(f"confirmation for batch {record.batch_id} lists no GL entry ids")
    unknown = sorted(set(given) - set(manifest_ids))
    if unknown:
        shown = ", ".join(str(i) for i in unknown[:10]) + (" ..." if len(unknown) > 10 else "")
        error = f"GL entry ids not in batch {record.batch_id}: {shown}" + (
            " (an adopted batch holds what its first confirmation listed); those records stay unposted on "
            "ConnectWise and are handed out again in a later batch"
            if record.adopted
            else ""
        )
        notices.publish(
            "GLBatchConfirmationRefused",
            {
                "connection": record.connection,
                "batch_id": record.batch_id,
                "error": error,
                "gl_entry_ids": unknown[:100],
            },
        )
        raise BatchStateError(error)
    return given
