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
        self.publish_many([(detail_type, detail)])

    def publish_many(self, events: list[tuple[str, dict[str, Any]]]) -> None:
        """Publish in chunks of 10 (PutEvents' limit); raise if EventBridge refuses any."""
        for start in range(0, len(events), 10):
            chunk = events[start : start + 10]
            reply = self.events.put_events(
                Entries=[
                    {
                        "EventBusName": self.bus_name,
                        "Source": SOURCE,
                        "DetailType": kind,
                        "Detail": json.dumps(detail),
                    }
                    for kind, detail in chunk
                ]
            )
            if reply.get("FailedEntryCount"):
                failed = [e for e in reply["Entries"] if e.get("ErrorCode")]
                raise RuntimeError(f"EventBridge refused {len(failed)} events: {failed[0].get('ErrorCode')}")
