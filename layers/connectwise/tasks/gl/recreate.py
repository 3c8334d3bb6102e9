"""Recreate a GL batch: download a posted batch again, with filters, beside the batch."""

import uuid
from typing import Any

from connectwise.transport import Deadline
from tasks.gl.requests import RecreateRequest
from tasks.platform.keys import recreated_prefix
from tasks.platform.services import Services


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
    prefix = recreated_prefix(request.connection, request.batch_id, services.clock(), uuid.uuid4().hex[:6])
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
