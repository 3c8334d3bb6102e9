"""Record downloads (SOAP Find): agreements, companies, invoices, opportunities, purchase orders.

Imported only by the download functions (it imports zeep through connectwise.soap).

Downloads are incremental by each record type's last-updated field. The watermark (the newest
LastUpdated written, and the ids written at exactly that instant) is kept per connection and
record type in the ledger table, and moved only after the S3 files are written: a run that dies
leaves the watermark where it was and the next run downloads the same records again. Pages are
walked by the watermark itself (`LastUpdated >= [cursor]`, ordered by it), not by a growing
skip: a record updated while a download pages moves behind the cursor and is picked up, instead
of shifting the pages and making the download skip another record. Skip is only used to step
through more than a page of records sharing one LastUpdated.
"""

from typing import Any

from connectwise.conditions import render, where
from connectwise.soap.client import ENTITIES, SoapClient
from connectwise.transport import Deadline
from tasks.platform.keys import records_prefix
from tasks.platform.services import Services
from tasks.platform.watermarks import Watermark
from tasks.records.requests import DownloadRecordsRequest
from tasks.records.rows import write_rows


def download_records(
    entity: str, request: DownloadRecordsRequest, services: Services, deadline: Deadline, request_id: str
) -> dict[str, Any]:
    """Records of `entity` changed since the watermark (all of them if `full`) to S3, then the
    watermark moves, then `RecordsDownloaded` is announced."""
    client = services.soap_for(request.connection).within(deadline)
    watermarks = services.watermarks
    read = watermarks.read(request.connection, entity)
    start = Watermark(None, ()) if request.full else read
    records, reached = changed_records(client, entity, start, request.page_size)
    keys = {}
    if records:
        prefix = records_prefix(request.connection, entity, services.clock(), request_id)
        keys = write_rows(services.store, prefix, records)
    moved = reached == start or watermarks.advance(request.connection, entity, read, reached)
    detail = {
        "connection": request.connection,
        "entity": entity,
        "full": request.full,
        "count": len(records),
        "files": keys,
        "watermark": reached.at.isoformat() if reached.at else None,
        "watermark_moved_by_another_run": not moved,
    }
    services.notices.publish("RecordsDownloaded", detail)
    return detail


def changed_records(
    client: SoapClient, entity: str, since: Watermark, page_size: int
) -> tuple[list[dict[str, Any]], Watermark]:
    """Records with last-updated >= the watermark not written at it; and the watermark they reach."""
    field = ENTITIES[entity].last_updated
    cursor, seen, skip = since.at, set(since.ids), 0
    found: dict[Any, dict[str, Any]] = {}
    while True:
        conditions = render(where(field, ">=", cursor)) if cursor else ""
        page = client.find_page(entity, conditions, order_by=field, limit=page_size, skip=skip)
        for record in page:
            at = record[field]
            if at is None or (at == cursor and record["Id"] in seen):
                continue
            found[record["Id"]] = record
            if cursor is None or at > cursor:
                cursor, seen = at, set()
            seen.add(record["Id"])
        if len(page) < page_size:
            break
        one_instant = all(record[field] == cursor for record in page)
        skip = skip + page_size if one_instant else 0  # a page of ties: step over it, else follow the cursor
    return list(found.values()), Watermark(cursor, tuple(sorted(seen)))
