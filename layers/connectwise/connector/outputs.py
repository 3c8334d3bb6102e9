"""S3 outputs and EventBridge notices."""

import json
from collections.abc import Iterable
from typing import Any

SOURCE = "connectwise.connector"


def batch_prefix(connection: str, batch_id: str) -> str:
    return f"gl-batches/{connection}/{batch_id}/"


class Store:
    """Objects in the output bucket (encrypted at rest by the bucket's default encryption)."""

    def __init__(self, s3: Any, bucket: str) -> None:
        self.s3 = s3
        self.bucket = bucket

    def put(self, key: str, body: bytes, content_type: str) -> str:
        self.s3.put_object(Bucket=self.bucket, Key=key, Body=body, ContentType=content_type)
        return key

    def put_json(self, key: str, value: Any) -> str:
        return self.put(key, json.dumps(value, indent=1).encode(), "application/json")

    def put_json_lines(self, key: str, rows: Iterable[dict[str, Any]]) -> str:
        body = "".join(json.dumps(row, separators=(",", ":")) + "\n" for row in rows).encode()
        return self.put(key, body, "application/x-ndjson")

    def get_json(self, key: str) -> Any:
        return json.loads(self.s3.get_object(Bucket=self.bucket, Key=key)["Body"].read())


class Notices:
    """Events on the EventBridge bus, one detail-type per fact (GLBatchDownloaded, ...)."""

    def __init__(self, events: Any, bus_name: str) -> None:
        self.events = events
        self.bus_name = bus_name

    def publish(self, detail_type: str, detail: dict[str, Any]) -> None:
        reply = self.events.put_events(
            Entries=[
                {
                    "EventBusName": self.bus_name,
                    "Source": SOURCE,
                    "DetailType": detail_type,
                    "Detail": json.dumps(detail),
                }
            ]
        )
        if reply.get("FailedEntryCount"):
            entry = reply["Entries"][0]
            raise RuntimeError(
                f"EventBridge refused {detail_type}: {entry.get('ErrorCode')} {entry.get('ErrorMessage')}"
            )
