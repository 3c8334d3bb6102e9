"""Download watermarks in the ledger table: how far each feed's download has got."""

import json
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from tasks.platform.versioned import put_if_version

MAX_SEEN = 5000  # records kept at the watermark's instant; more would near DynamoDB's item size


@dataclass(frozen=True)
class Watermark:
    at: datetime | None  # the newest last-updated value written; None: nothing downloaded yet
    seen: dict[int, str] = field(default_factory=dict)  # records written at `at`: id -> digest
    version: int = 0

    @property
    def ids(self) -> tuple[int, ...]:
        return tuple(sorted(self.seen))


class Watermarks:
    def __init__(self, dynamodb: Any, table_name: str) -> None:
        self.db = dynamodb
        self.table = table_name

    @staticmethod
    def key(connection: str, feed: str) -> dict[str, Any]:
        return {"pk": {"S": f"watermark#{connection}#{feed}"}}

    def read(self, connection: str, feed: str) -> Watermark:
        item = self.db.get_item(
            TableName=self.table, Key=self.key(connection, feed), ConsistentRead=True
        ).get("Item")
        if not item:
            return Watermark(None, {})
        stored = json.loads(item["ids"]["S"])
        # A list: written before digests were kept; those records count as written unchanged.
        seen = (
            {int(k): v for k, v in stored.items()} if isinstance(stored, dict) else dict.fromkeys(stored, "")
        )
        at = item["at"]["S"]
        return Watermark(datetime.fromisoformat(at) if at else None, seen, int(item["version"]["N"]))

    def advance(self, connection: str, feed: str, read: Watermark, new: Watermark) -> bool:
        """Store `new` if the watermark is still `read` (False if another run moved it meanwhile)."""
        item = self.key(connection, feed) | {
            "at": {"S": new.at.isoformat() if new.at else ""},
            "ids": {"S": json.dumps({str(k): v for k, v in sorted(new.seen.items())})},
        }
        return put_if_version(self.db, self.table, item, read.version)
