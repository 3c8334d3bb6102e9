"""Recreate a GL batch: download a posted batch again, with filters, beside the batch (streamed
into S3 as it is read, visible once read whole, as a download)."""

import uuid
from typing import Any

from connectwise.transport import Deadline
from tasks.gl.files import BatchFiles
from tasks.gl.requests import RecreateRequest, resolve_thru_date
from tasks.platform.keys import recreated_prefix
from tasks.platform.services import Services


def recreate_gl_batch(
    request: RecreateRequest, services: Services, deadline: Deadline | None = None
) -> dict[str, Any]:
    """Download an updated batch again, with filters; write it under the batch with the request
    and the thru date it was resolved to."""
    client = services.client_for(request.connection).within(deadline or Deadline())
    thru_date = resolve_thru_date(request.thru_date, services.clock(), client.connection.zone)
    prefix = recreated_prefix(request.connection, request.batch_id, services.clock(), uuid.uuid4().hex[:6])
    store = services.store
    files = BatchFiles(store, lambda _: prefix)
    try:
        batch = client.recreate_gl_batch(
            request.batch_id,
            kinds=request.kinds,
            filters=request.filters,
            thru_date=thru_date,
            owner_level=request.owner_level,
            sink=files,
        )
        keys = files.complete()
    except BaseException:
        files.abort()
        raise
    asked = request.model_dump(mode="json")
    used = {
        "thru_date": thru_date.isoformat() if thru_date else None,  # null: ConnectWise's today
        "thru_date_requested": asked["thru_date"],
        "time_zone": client.connection.time_zone,
    }
    keys["request"] = store.put_json(
        prefix + "request.json", asked | used | {"summary": batch.summary(), "keys": dict(keys)}
    )
    detail = (
        {"connection": request.connection, "kinds": request.kinds, "keys": keys}
        | batch.summary()
        | {"thru_date": used["thru_date"], "owner_level": request.owner_level}
    )
    services.notices.publish("GLBatchRecreated", detail)
    services.log.info("batch recreated", extra=detail)
    services.count("GLBatchesRecreated", 1, request.connection)
    return {"status": "recreated"} | detail
