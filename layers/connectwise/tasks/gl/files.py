"""A GL batch's files as the download reads it: the document byte for byte (glexport.xml or
glexport.json) and one JSON line per record (records.jsonl), each uploaded in parts as it comes
(tasks.platform.storage.Upload). Nothing appears in the bucket until `complete`, which the task
calls only once the whole document was read and every check passed; `abort` otherwise."""

from collections.abc import Callable

from connectwise.glexport.batch import JSON, json_line
from connectwise.glexport.rows import Row
from tasks.platform.storage import Store, Upload


class BatchFiles:
    """A GLSink writing a batch's files under the prefix `prefix_for(batch id)` gives."""

    def __init__(self, store: Store, prefix_for: Callable[[str], str]) -> None:
        self.store, self.prefix_for = store, prefix_for
        self.uploads: dict[str, Upload] = {}

    def begin(self, batch_id: str, media_type: str) -> None:
        prefix = self.prefix_for(batch_id)
        raw_name = "glexport.json" if media_type == JSON else "glexport.xml"
        self.uploads = {
            "glexport": self.store.upload(prefix + raw_name, media_type),
            "records": self.store.upload(prefix + "records.jsonl", "application/x-ndjson"),
        }

    def raw(self, chunk: bytes) -> None:
        self.uploads["glexport"].write(chunk)

    def record(self, row: Row) -> None:
        self.uploads["records"].write(json_line(row))

    def complete(self) -> dict[str, str]:
        """The files made visible, whole: {"glexport": key, "records": key}."""
        return {name: upload.complete() for name, upload in self.uploads.items()}

    def abort(self) -> None:
        for upload in self.uploads.values():
            upload.abort()
