"""Adopt a batch this connector did not download: a site moving from another connector has open
batches from there, confirmed here. The confirmation says which GL entries the batch holds; they
are checked, and the batch is recorded like a downloaded one (DOWNLOADED, holding its kinds,
marked `adopted`), so it is posted by the same rules as any other (`tasks.gl.update`).

Why each check (money):
* GL entries in a batch this connector has open (not yet posted or abandoned): two batches would
  post, or hand out, the same records. Refused, naming that batch.
* GL entries ConnectWise neither lists as unposted nor holds in this batch: unknown ids, or posted
  in another batch. Refused: an update would be refused or would post nothing.
* The kinds of its entries are claimed as a download claims them, and held until the batch is
  posted or abandoned: no download hands those records out meanwhile (while it is posted, in
  doubt or failed). A kind that an open batch of this connector holds is not free: refused until
  that batch is posted or abandoned.
* ConnectWise already holds the batch (the other connector, or an earlier attempt, posted it): it
  is recorded in doubt, so posting first asks ConnectWise and records what it holds.
* Concurrent deliveries: the claim lets one adopt; the others are retried and find the batch.
"""

import uuid

from connectwise.errors import UnknownBatchError
from connectwise.models import KINDS
from connectwise.transport import Deadline
from tasks.gl.requests import PostingConfirmation
from tasks.platform.batch_ledger import ABANDONED, DOWNLOADED, OPEN, POSTED, BatchRecord
from tasks.platform.errors import BatchBusyError, BatchStateError
from tasks.platform.keys import batch_prefix
from tasks.platform.services import Services


def adopt_batch(
    confirmation: PostingConfirmation, services: Services, deadline: Deadline | None = None
) -> BatchRecord:
    """Record the batch of a confirmation this connector has no batch for (see the module)."""
    conn, batch_id = confirmation.connection, confirmation.batch_id
    ids = sorted(set(confirmation.gl_entry_ids or ()))
    if confirmation.action == "abandon" or not ids:
        raise BatchStateError(
            f"unknown batch {batch_id} for connection {conn!r}: it was not downloaded here"
            + ("" if confirmation.action == "abandon" else _NO_IDS)
        )
    ledger = services.ledger
    open_batches = _open_batches(conn, services)
    _refuse_entries_of_open_batches(batch_id, ids, open_batches, services)
    free = [kind for kind in KINDS if kind not in open_batches]
    token, now = uuid.uuid4().hex, int(services.clock())
    if free and ledger.claim(conn, free, token, now, services.settings.stale_after_seconds):
        raise BatchBusyError(
            f"batch {batch_id}: a download or an adoption of connection {conn!r} is running; retried later"
        )
    try:
        record = ledger.get(conn, batch_id)  # a concurrent delivery may have adopted it meanwhile
        if record is None:
            record = _check_and_record(confirmation, ids, open_batches, token, now, services, deadline)
    finally:
        ledger.release(conn, free, token)  # kinds the batch does not hold (a recorded claim stays)
    return record


_NO_IDS = (
    ", so its confirmation must list its GL entry ids (gl_entry_ids) to adopt it: what it held cannot "
    "be known here"
)


def _check_and_record(
    confirmation: PostingConfirmation,
    ids: list[int],
    open_batches: dict[str, BatchRecord],
    token: str,
    now: int,
    services: Services,
    deadline: Deadline | None,
) -> BatchRecord:
    conn, batch_id = confirmation.connection, confirmation.batch_id
    client = services.client_for(conn).within(deadline or Deadline())
    try:
        held = client.posted_entries(batch_id)
    except UnknownBatchError as exc:
        raise BatchStateError(
            f"batch {batch_id} cannot be adopted: no ConnectWise batch can have that id ({exc.message})"
        ) from None
    unposted = client.unposted_entries()
    missing = [i for i in ids if i not in unposted and i not in (held or ())]
    if missing:
        raise BatchStateError(
            f"batch {batch_id} cannot be adopted: ConnectWise lists GL entries {_shown(missing)} neither "
            "as unposted nor in this batch (unknown ids, or posted in another batch); nothing was changed"
        )
    kinds = sorted({unposted[i] for i in ids if i in unposted and i not in (held or ())})
    taken = {kind: open_batches[kind].batch_id for kind in kinds if kind in open_batches}
    if taken:
        holders = "; ".join(f"{kind}: batch {holder}" for kind, holder in taken.items())
        raise BatchStateError(
            f"batch {batch_id} cannot be adopted now: its records are of kinds that open batches of this "
            f"connector hold until posted or abandoned ({holders}); send this confirmation again after "
            "that; nothing was changed"
        )
    by_kind = {kind: sum(1 for i in ids if unposted.get(i) == kind) for kind in kinds}
    manifest = services.store.put_json(
        batch_prefix(conn, batch_id) + f"adopted-{token}.json",  # never overwrites another's
        {
            "connection": conn,
            "batch_id": batch_id,
            "adopted": True,
            "kinds": kinds,
            "gl_entry_ids_by_kind": by_kind,
            "held_by_connectwise": sorted(held) if held is not None else None,
            "gl_entry_ids": ids,
        },
    )
    record = BatchRecord(
        connection=conn,
        batch_id=batch_id,
        kinds=kinds,
        status=DOWNLOADED,
        created_at=now,
        counts={},
        totals={},
        keys={"manifest": manifest},
        gl_entry_count=len(ids),
        doubt_since=now if held is not None else 0,  # ConnectWise holds it: ask before writing
        adopted=True,
    )
    detail = {
        "connection": conn,
        "batch_id": batch_id,
        "kinds": kinds,
        "gl_entry_ids": len(ids),
        "held_by_connectwise": len(held) if held is not None else None,
        "keys": record.keys,
    }
    # Announced before it is recorded: a death between the two adopts it again on the next
    # delivery and announces it again (at least once); recorded first, it would never be.
    services.notices.publish("GLBatchAdopted", detail)
    services.ledger.record_download(record, token)
    services.log.info(
        "batch adopted: not downloaded here, its GL entries from its confirmation", extra=detail
    )
    return record


def _open_batches(conn: str, services: Services) -> dict[str, BatchRecord]:
    """The batches of this connector holding a kind of the connection, by kind."""
    found: dict[str, BatchRecord] = {}
    for holder in services.ledger.holders(conn, KINDS):
        if holder.state != OPEN:
            continue  # a download running: the claim decides
        record = services.ledger.get(conn, holder.batch_id)
        if record is not None and record.status not in (POSTED, ABANDONED):
            found[holder.kind] = record
    return found


def _refuse_entries_of_open_batches(
    batch_id: str, ids: list[int], open_batches: dict[str, BatchRecord], services: Services
) -> None:
    for record in {r.batch_id: r for r in open_batches.values()}.values():
        overlap = sorted(set(ids) & set(services.store.get_json(record.keys["manifest"])["gl_entry_ids"]))
        if overlap:
            origin = "adopted" if record.adopted else "downloaded"
            raise BatchStateError(
                f"batch {batch_id} cannot be adopted: its GL entries {_shown(overlap)} are in batch "
                f"{record.batch_id}, which this connector {origin} and has not posted ({record.status}): "
                "confirm them with that batch, or abandon it first; nothing was changed"
            )


def _shown(ids: list[int]) -> str:
    return ", ".join(str(i) for i in ids[:10]) + (f" ... ({len(ids)} in all)" if len(ids) > 10 else "")
