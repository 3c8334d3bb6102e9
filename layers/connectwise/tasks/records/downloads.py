"""Record downloads: agreements, companies, invoices, opportunities, purchase orders, through
SOAP Find or the REST lists (`services.records_for`).

Downloads are incremental by each record's last-updated instant. The watermark (the newest
last-updated written, and the records written at exactly that instant with a digest of what was
written) is kept per connection and feed in the ledger table, and moved only after the S3 files
are written and announced: a run that dies leaves the watermark where it was and the next run
downloads the same records again (records may come twice, never not at all). A feed is the
record type, or the record type and its conditions and fields: a narrowed download keeps its own
watermark, so it never moves the one of the full nightly download past records it left out.

Pages are walked by the watermark itself (`last-updated >= cursor`, in last-updated order), not
by a growing offset: a record updated while a download pages moves ahead of the cursor and is
picked up, instead of shifting the pages and making the download skip another record. When a
whole page shares one instant, every record of that instant is read (in id order) and the walk
goes on strictly after it. A record seen again at the watermark's instant is written again if
it changed (a second change within the same second). A walk that nears the invocation's end
stops where it is: every point of it is a valid watermark, and the next run goes on from there.
"""

import hashlib
import json
from typing import Any

from connectwise.errors import ConnectWiseError
from connectwise.records import Record, RecordQuery, RecordsBackend
from connectwise.transport import Deadline
from tasks.platform.errors import InvalidRequestError
from tasks.platform.keys import records_prefix
from tasks.platform.services import Services
from tasks.platform.watermarks import MAX_SEEN, Watermark
from tasks.records.requests import DownloadRecordsRequest, conditions_of, ordered
from tasks.records.rows import write_rows

ROOM_TO_FINISH = 30.0  # seconds kept for writing the files, announcing them and the watermark


def download_records(
    entity: str, request: DownloadRecordsRequest, services: Services, deadline: Deadline, request_id: str
) -> dict[str, Any]:
    """Records of `entity` changed since the watermark (all of them if `full`) to S3, announced
    (`RecordsDownloaded`), then the watermark moves."""
    client = services.records_for(request.connection).within(deadline)
    try:
        fields = client.record_fields(entity, request.fields)
    except ValueError as exc:
        raise InvalidRequestError(f"invalid DownloadRecordsRequest: fields: {exc}") from None
    order_by = _order_by(client, entity, request.order_by)
    if order_by and fields:  # the field the files are ordered by is written with them
        fields = tuple(dict.fromkeys([*fields, order_by.split(" ")[0]]))
    query = RecordQuery(conditions_of(request, client.dialect), fields)
    feed = feed_name(entity, request, fields)
    watermarks = services.watermarks
    read = watermarks.read(request.connection, feed)
    start = Watermark(None, {}) if request.full else read
    records, reached, complete = changed_records(client, entity, start, query, request.page_size, deadline)
    rows = [record.row for record in records]
    if order_by:
        rows = ordered(rows, order_by)
    keys = {}
    if rows:
        prefix = records_prefix(request.connection, entity, services.clock(), request_id)
        keys = write_rows(services.store, prefix, rows)
    detail = {
        "connection": request.connection,
        "entity": entity,
        "feed": feed,
        "full": request.full,
        "count": len(rows),
        "files": keys,
        "complete": complete,  # false: the invocation's time ran out; the next run goes on
        "watermark": reached.at.isoformat() if reached.at else None,
    }
    if rows or complete:
        services.notices.publish("RecordsDownloaded", detail)  # before the watermark: never unannounced
    services.count("RecordsDownloaded", len(rows), request.connection)
    moved = reached == start or watermarks.advance(request.connection, feed, read, reached)
    return detail | {"watermark_moved_by_another_run": not moved}


def _order_by(client: RecordsBackend, entity: str, order_by: str) -> str:
    """`order_by` with its field as the API spells it; checked before anything is downloaded."""
    if not order_by:
        return ""
    name, _, direction = order_by.partition(" ")
    try:
        spelled = client.record_fields(entity, [name])
    except ValueError as exc:
        raise InvalidRequestError(f"invalid DownloadRecordsRequest: order_by: {exc}") from None
    if len(spelled) != 1:
        raise InvalidRequestError(
            f"invalid DownloadRecordsRequest: order_by: {name!r} is a reference; name one of its fields"
        )
    return f"{spelled[0]} {direction}".strip()


def feed_name(entity: str, request: DownloadRecordsRequest, fields: tuple[str, ...]) -> str:
    """The record type, or the record type and a digest of its conditions and fields (as the API
    spells them: `company/name` and `company.name` are one feed)."""
    if request.conditions is None and not fields:
        return entity
    conditions = request.conditions.model_dump(mode="json", exclude_none=True) if request.conditions else None
    narrowed = {"conditions": conditions, "fields": sorted(fields)}
    return f"{entity}#{hashlib.sha256(json.dumps(narrowed, sort_keys=True).encode()).hexdigest()[:16]}"


def changed_records(
    client: RecordsBackend,
    entity: str,
    since: Watermark,
    query: RecordQuery,
    page_size: int,
    deadline: Deadline | None = None,
) -> tuple[list[Record], Watermark, bool]:
    """Records changed since the watermark; the watermark they reach; and whether the walk
    reached the end (False: the invocation's time ran short first)."""
    cursor, seen = since.at, dict(since.seen)
    found: dict[int, Record] = {}

    def take(record: Record) -> None:
        nonlocal cursor, seen
        at, digest = record.last_updated, _digest(record)
        if at is None:  # met only while the cursor is unset (a first or full run): written, not paged by
            found[record.id] = record
            return
        if at == cursor and seen.get(record.id) in (digest, ""):  # "": written before digests were kept
            return
        found[record.id] = record  # a record met twice (updated while paging): its newest version
        if cursor is None or at > cursor:
            cursor, seen = at, {}
        seen[record.id] = digest

    after, complete, pages = False, True, 0
    while True:
        if pages and deadline is not None and deadline.remaining() < ROOM_TO_FINISH:
            complete = False  # stop with what is read: the next run goes on from here
            break
        pages += 1
        asked = (cursor, after)
        page = client.records_from(entity, cursor, after=after, query=query, limit=page_size)
        for record in page:
            take(record)
        if len(page) < page_size:
            break
        instant = page[0].last_updated
        after = instant is not None and all(record.last_updated == instant for record in page)
        if (cursor, after) == asked:  # the same page would come again: never loop
            raise ConnectWiseError(
                f"{entity}: ConnectWise answered the same page twice ({page_size} records at or after "
                f"{cursor}, or without a last-updated time); they cannot be paged by their last-updated time"
            )
        if after:  # a page of one instant: read that instant whole, then go on after it
            for record in client.records_at(entity, instant, query):  # type: ignore[arg-type]
                take(record)
    if len(seen) > MAX_SEEN:  # too many to keep: the next run writes that instant's records again
        seen = {}
    return list(found.values()), Watermark(cursor, seen), complete


def _digest(record: Record) -> str:
    text = json.dumps(record.row, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]
