"""Objects in the output bucket (the key layout is in tasks.platform.keys)."""

import json
from collections.abc import Iterable
from typing import Any


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
