"""Objects in the output bucket (the key layout is in tasks.platform.keys)."""

import json
from collections.abc import Iterable
from contextlib import suppress
from typing import Any

PART_SIZE = 5 * 2**20  # bytes per part of an upload: S3's least (but for the last), the least memory


class Store:
    """Objects in the output bucket (encrypted at rest by the bucket's default encryption)."""

    part_size = PART_SIZE

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

    def upload(self, key: str, content_type: str) -> "Upload":
        """An object written a part at a time as its bytes come (see Upload)."""
        return Upload(self, key, content_type)


class Upload:
    """One object written as its bytes come, in parts (an S3 multipart upload, begun once a
    part is full; a smaller object is one PutObject). Nothing is visible under the key until
    `complete`; `abort` drops the parts sent. At most a part is held in memory."""

    def __init__(self, store: Store, key: str, content_type: str) -> None:
        self.store, self.key, self.content_type = store, key, content_type
        self.buffer = bytearray()
        self.upload_id: str | None = None
        self.parts: list[dict[str, Any]] = []
        self.finished = False

    def write(self, data: bytes) -> None:
        self.buffer += data
        if len(self.buffer) >= self.store.part_size:
            self._send_part()

    def complete(self) -> str:
        """Make the object visible, whole; returns its key."""
        s3, bucket = self.store.s3, self.store.bucket
        if self.upload_id is None:
            s3.put_object(Bucket=bucket, Key=self.key, Body=self.buffer, ContentType=self.content_type)
        else:
            if self.buffer:
                self._send_part()
            s3.complete_multipart_upload(
                Bucket=bucket, Key=self.key, UploadId=self.upload_id, MultipartUpload={"Parts": self.parts}
            )
        self.buffer = bytearray()
        self.finished = True
        return self.key

    def abort(self) -> None:
        """Drop what was sent; the object never appears. Best effort: an upload that cannot be
        aborted stays invisible and the bucket's lifecycle rule removes its parts."""
        self.buffer = bytearray()
        if self.upload_id is None or self.finished:
            return
        self.finished = True
        with suppress(Exception):  # the failure that led here is the one to raise
            self.store.s3.abort_multipart_upload(
                Bucket=self.store.bucket, Key=self.key, UploadId=self.upload_id
            )

    def _send_part(self) -> None:
        s3, bucket = self.store.s3, self.store.bucket
        if self.upload_id is None:
            began = s3.create_multipart_upload(Bucket=bucket, Key=self.key, ContentType=self.content_type)
            self.upload_id = began["UploadId"]
        number = len(self.parts) + 1
        sent = s3.upload_part(
            Bucket=bucket, Key=self.key, UploadId=self.upload_id, PartNumber=number, Body=self.buffer
        )
        self.buffer = bytearray()  # not cleared in place: the SDK may still hold the part
        # The part's checksum, when the SDK computed one, is named again in the completion.
        checksums = {
            name: value
            for name, value in sent.items()
            if name.startswith("Checksum") and name != "ChecksumType"
        }
        self.parts.append({"ETag": sent["ETag"], "PartNumber": number} | checksums)
