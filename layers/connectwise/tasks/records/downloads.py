"""Record downloads: agreements, companies, invoices, opportunities, purchase orders, through
SOAP Find or the REST lists (`services.records_for`).

Downloads are incremental by each record's last-updated instant. The watermark (the newest
last-updated written, and the ids written at exactly that instant) is kept per connection and
feed in the ledger table, and moved only after the S3 files are written: a run that dies leaves
the watermark where it was and the next run downloads the same records again. A feed is the
record type, or the record type and its conditions: a download narrowed by conditions keeps its
own watermark, so it never moves the one of the unnarrowed download past records it skipped.

Pages are walked by the watermark itself (`last-updated >= cursor`, in last-updated order), not
by a growing offset: a record updated while a download pages moves ahead of the cursor and is
picked up, instead of shifting the pages and making the download skip another record. When a
whole page shares one instant, every record of that instant is read (in id order) and the walk
goes on strictly after it.
"""

import hashlib
from typing import Any

from connectwise.errors import ConnectWiseError
from connectwise.records import Record, RecordQuery, RecordsBackend
from connectwise.transport import Deadline
from tasks.platform.errors import InvalidRequestError
from tasks.platform.keys import records_prefix
from tasks.platform.services import Services
from tasks.platform.watermarks import Watermark
from tasks.records.requests import DownloadRecordsRequest, conditions_of, ordered
from tasks.records.rows import write_rows


def download_records(
    entity: str, request: DownloadRecordsRequest, services: Services, deadline: Deadline, request_id: str
) -> dict[str, Any]:
    """Records of `entity` changed since the watermark (all of them if `full`) to S3, then the
    watermark moves, then `RecordsDownloaded` is announced."""
    client = services.records_for(request.connection).within(deadline)
    query = RecordQuery(conditions_of(request, client.dialect), tuple(request.fields))
    feed = feed_name(entity, request)
    watermarks = services.watermarks
    read = watermarks.read(request.connection, feed)
    start = Watermark(None, ()) if request.full else read
    records, reached = changed_records(client, entity, start, query, request.page_size)
    rows = [record.row for record in records]
    if request.order_by:
        try:
            rows = ordered(rows, request.order_by)
        except (KeyError, TypeError) as exc:
            raise InvalidRequestError(f"invalid DownloadRecordsRequest: order_by: no field {exc}") from None
    keys = {}
    if rows:
        prefix = records_prefix(request.connection, entity, services.clock(), request_id)
        keys = write_rows(services.store, prefix, rows)
    moved = reached == start or watermarks.advance(request.connection, feed, read, reached)
    detail = {
        "connection": request.connection,
        "entity": entity,
        "feed": feed,
        "full": request.full,
        "count": len(rows),
        "files": keys,
        "watermark": reached.at.isoformat() if reached.at else None,
        "watermark_moved_by_another_run": not moved,
    }
    services.notices.publish("RecordsDownloaded", detail)
    return detail


def feed_name(entity: str, request: DownloadRecordsRequest) -> str:
    """The record type, or the record type and a digest of its conditions."""
    if request.conditions is None:
        return entity
    spec = request.conditions.model_dump_json(exclude_none=True)
    return f"{entity}#{hashlib.sha256(spec.encode()).hexdigest()[:16]}"


def changed_records(
    client: RecordsBackend, entity: str, since: Watermark, query: RecordQuery, page_size: int
) -> tuple[list[Record], Watermark]:
    """Records with last-updated >= the watermark not written at it; and the watermark they reach."""
    cursor, seen = since.at, set(since.ids)
    found: dict[int, Record] = {}

    def take(record: Record) -> None:
        nonlocal cursor, seen
        at = record.last_updated
        if at is None or (at == cursor and record.id in seen):
            return
        found[record.id] = record  # a record met twice (updated while paging): its newest version
        if cursor is None or at > cursor:
            cursor, seen = at, set()
        seen.add(record.id)

    after = False
    while True:
        asked = cursor
        page = client.records_from(entity, cursor, after=after, query=query, limit=page_size)
        for record in page:
            take(record)
        if len(page) < page_size:
            break
        instant = page[0].last_updated
        after = instant is not None and all(record.last_updated == instant for record in page)
        if after:  # a page of one instant: read that instant whole, then go on after it
            assert instant is not None
            for record in client.records_at(entity, instant, query):
                take(record)
        elif cursor == asked:  # not in last-updated order: the same page would come again
            raise ConnectWiseError(f"{entity}: a page not in last-updated order cannot be paged by it")
    return list(found.values()), Watermark(cursor, tuple(sorted(seen)))
