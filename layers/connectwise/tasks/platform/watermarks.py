"""Download watermarks in the ledger table: how far each record type's download has got."""

import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from tasks.platform.versioned import put_if_version


@dataclass(frozen=True)
class Watermark:
    at: datetime | None  # the newest last-updated value written; None: nothing downloaded yet
    ids: tuple[int, ...]  # the records written with exactly that value
    version: int = 0


class Watermarks:
    def __init__(self, dynamodb: Any, table_name: str) -> None:
        self.db = dynamodb
        self.table = table_name

    @staticmethod
    def key(connection: str, entity: str) -> dict[str, Any]:
        return {"pk": {"S": f"watermark#{connection}#{entity}"}}

    def read(self, connection: str, entity: str) -> Watermark:
        item = self.db.get_item(
            TableName=self.table, Key=self.key(connection, entity), ConsistentRead=True
        ).get("Item")
        if not item:
            return Watermark(None, ())
        return Watermark(
            datetime.fromisoformat(item["at"]["S"]),
            tuple(json.loads(item["ids"]["S"])),
            int(item["version"]["N"]),
        )

    def advance(self, connection: str, entity: str, read: Watermark, new: Watermark) -> bool:
        """Store `new` if the watermark is still `read` (False if another run moved it meanwhile)."""
        item = self.key(connection, entity) | {
            "at": {"S": new.at.isoformat() if new.at else ""},
            "ids": {"S": json.dumps(list(new.ids))},
        }
        return put_if_version(self.db, self.table, item, read.version)
