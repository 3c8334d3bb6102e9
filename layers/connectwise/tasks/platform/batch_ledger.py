"""The GL batch ledger in DynamoDB: every transition is a conditional write.

Items (partition key `pk`):

* `batch#<connection>#<batch id>`: one downloaded batch: kinds, status, counts, totals, the S3
  keys of its outputs and manifest (the GL entry ids live in the S3 manifest, not here). An
  adopted batch (`adopted`: downloaded by another connector, its GL entries from its
  confirmation) is recorded the same way and holds its kinds the same way.
* `open#<connection>#<kind>`: who holds a kind of record for a connection. While a download
  runs it is `downloading` with a claim token; once the batch is recorded it is `open` with the
  batch id, until the batch is POSTED or ABANDONED. So two schedule firings make one batch, and
  records held by an unconfirmed batch are never handed out in another.

Batch status: DOWNLOADED -> POSTING -> POSTED, POSTING -> FAILED (ConnectWise refused the
update; the batch keeps its records until a confirmation is re-sent or an operator abandons it),
DOWNLOADED or FAILED -> ABANDONED.
"""

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from decimal import Decimal
from typing import Any

from botocore.exceptions import ClientError

from tasks.platform.errors import BatchBusyError, BatchStateError
from tasks.platform.versioned import error_code

DOWNLOADED, POSTING, POSTED, FAILED, ABANDONED = "DOWNLOADED", "POSTING", "POSTED", "FAILED", "ABANDONED"
DOWNLOADING, OPEN = "downloading", "open"


def batch_key(connection: str, batch_id: str) -> dict[str, Any]:
    return {"pk": {"S": f"batch#{connection}#{batch_id}"}}


def open_key(connection: str, kind: str) -> dict[str, Any]:
    return {"pk": {"S": f"open#{connection}#{kind}"}}


@dataclass(frozen=True)
class Holder:
    """Who holds a kind: a running download (`batch_id` empty) or an open batch."""

    kind: str
    state: str
    batch_id: str
    since: int


@dataclass(frozen=True)
class BatchRecord:
    connection: str
    batch_id: str
    kinds: list[str]
    status: str
    created_at: int
    counts: dict[str, int]
    totals: dict[str, str]
    keys: dict[str, str]
    gl_entry_count: int
    posted_count: int = 0
    error: str = ""
    updated_at: int = 0
    confirmation: str = ""  # S3 key of the confirmation it was posted (or failed) with
    # When an update whose outcome is unknown was sent (0: none): ConnectWise may hold the batch
    # with that attempt's GL entries, or still apply it late.
    doubt_since: int = 0
    thru_date: str = ""  # the thru date the batch was exported with ("": ConnectWise's today)
    adopted: bool = False  # not downloaded here: its GL entries came with its confirmation

    def to_item(self) -> dict[str, Any]:
        item: dict[str, Any] = batch_key(self.connection, self.batch_id) | {
            "connection": {"S": self.connection},
            "batch_id": {"S": self.batch_id},
            "kinds": {"L": [{"S": k} for k in self.kinds]},
            "status": {"S": self.status},
            "created_at": {"N": str(self.created_at)},
            "updated_at": {"N": str(self.updated_at or self.created_at)},
            "counts": {"M": {k: {"N": str(v)} for k, v in self.counts.items()}},
            "totals": {"M": {k: {"S": v} for k, v in self.totals.items()}},
            "keys": {"M": {k: {"S": v} for k, v in self.keys.items()}},
            "gl_entry_count": {"N": str(self.gl_entry_count)},
            "posted_count": {"N": str(self.posted_count)},
        }
        if self.error:
            item["error"] = {"S": self.error}
        if self.confirmation:
            item["confirmation"] = {"S": self.confirmation}
        if self.doubt_since:
            item["doubt_since"] = {"N": str(self.doubt_since)}
        if self.thru_date:
            item["thru_date"] = {"S": self.thru_date}
        if self.adopted:
            item["adopted"] = {"BOOL": True}
        return item

    @classmethod
    def from_item(cls, item: dict[str, Any]) -> "BatchRecord":
        return cls(
            connection=item["connection"]["S"],
            batch_id=item["batch_id"]["S"],
            kinds=[k["S"] for k in item["kinds"]["L"]],
            status=item["status"]["S"],
            created_at=int(item["created_at"]["N"]),
            updated_at=int(item.get("updated_at", item["created_at"])["N"]),
            counts={k: int(v["N"]) for k, v in item["counts"]["M"].items()},
            totals={k: v["S"] for k, v in item["totals"]["M"].items()},
            keys={k: v["S"] for k, v in item["keys"]["M"].items()},
            gl_entry_count=int(item["gl_entry_count"]["N"]),
            posted_count=int(item.get("posted_count", {"N": "0"})["N"]),
            error=item.get("error", {"S": ""})["S"],
            confirmation=item.get("confirmation", {"S": ""})["S"],
            doubt_since=int(item.get("doubt_since", {"N": "0"})["N"]),
            thru_date=item.get("thru_date", {"S": ""})["S"],
            adopted=item.get("adopted", {"BOOL": False})["BOOL"],
        )

    def totals_as_decimal(self) -> dict[str, Decimal]:
        return {k: Decimal(v) for k, v in self.totals.items()}


class Ledger:
    def __init__(self, dynamodb: Any, table_name: str) -> None:
        self.db = dynamodb
        self.table = table_name

    # --- claims on kinds -------------------------------------------------------------------

    def claim(
        self, connection: str, kinds: Sequence[str], token: str, now: int, stale_after: int
    ) -> list[Holder]:
        """Claim every kind for a download, all or nothing.

        Returns [] when the claim is taken, else the current holders. A `downloading` claim older
        than `stale_after` seconds belongs to a crashed invocation and is taken over.
        """
        items = [
            {
                "Put": {
                    "TableName": self.table,
                    "Item": open_key(connection, kind)
                    | {
                        "state": {"S": DOWNLOADING},
                        "token": {"S": token},
                        "since": {"N": str(now)},
                    },
                    "ConditionExpression": "attribute_not_exists(pk) OR (#state = :downloading AND since < :stale)",
                    "ExpressionAttributeNames": {"#state": "state"},
                    "ExpressionAttributeValues": {
                        ":downloading": {"S": DOWNLOADING},
                        ":stale": {"N": str(now - stale_after)},
                    },
                }
            }
            for kind in kinds
        ]
        try:
            self.db.transact_write_items(TransactItems=items)
        except ClientError as exc:
            if error_code(exc) != "TransactionCanceledException":
                raise
            return self.holders(connection, kinds)
        return []

    def holders(self, connection: str, kinds: Iterable[str]) -> list[Holder]:
        holders = []
        for kind in kinds:
            item = self.db.get_item(
                TableName=self.table, Key=open_key(connection, kind), ConsistentRead=True
            ).get("Item")
            if item:
                holders.append(
                    Holder(
                        kind,
                        item["state"]["S"],
                        item.get("batch_id", {"S": ""})["S"],
                        int(item["since"]["N"]),
                    )
                )
        return holders

    def release(self, connection: str, kinds: Iterable[str], token: str) -> None:
        """Give up a download's claim (nothing was exported, or the download failed)."""
        for kind in kinds:
            try:
                self.db.delete_item(
                    TableName=self.table,
                    Key=open_key(connection, kind),
                    # Only a claim still downloading: an open batch's holder is never let go here.
                    ConditionExpression="#token = :token AND #state = :downloading",
                    ExpressionAttributeNames={"#token": "token", "#state": "state"},
                    ExpressionAttributeValues={":token": {"S": token}, ":downloading": {"S": DOWNLOADING}},
                )
            except ClientError as exc:
                if error_code(exc) != "ConditionalCheckFailedException":
                    raise

    # --- batches ---------------------------------------------------------------------------

    def record_download(self, batch: BatchRecord, token: str) -> None:
        """Write the batch as DOWNLOADED and turn the claims into open-batch holders, atomically.

        Fails (BatchBusyError) if the claim was taken over meanwhile: then no batch is recorded.
        """
        items: list[dict[str, Any]] = [
            {
                "Put": {
                    "TableName": self.table,
                    "Item": batch.to_item(),
                    "ConditionExpression": "attribute_not_exists(pk)",
                }
            }
        ]
        for kind in batch.kinds:
            items.append(
                {
                    "Update": {
                        "TableName": self.table,
                        "Key": open_key(batch.connection, kind),
                        "UpdateExpression": "SET #state = :open, batch_id = :batch",
                        "ConditionExpression": "#token = :token AND #state = :downloading",
                        "ExpressionAttributeNames": {"#state": "state", "#token": "token"},
                        "ExpressionAttributeValues": {
                            ":open": {"S": OPEN},
                            ":batch": {"S": batch.batch_id},
                            ":token": {"S": token},
                            ":downloading": {"S": DOWNLOADING},
                        },
                    }
                }
            )
        try:
            self.db.transact_write_items(TransactItems=items)
        except ClientError as exc:
            if error_code(exc) == "TransactionCanceledException":
                raise BatchBusyError(
                    f"batch {batch.batch_id} not recorded: the download claim of {batch.connection} was lost"
                ) from None
            raise

    def get(self, connection: str, batch_id: str) -> BatchRecord | None:
        item = self.db.get_item(
            TableName=self.table, Key=batch_key(connection, batch_id), ConsistentRead=True
        ).get("Item")
        return BatchRecord.from_item(item) if item else None

    def start_posting(self, connection: str, batch_id: str, now: int, stale_after: int) -> BatchRecord:
        """DOWNLOADED or FAILED (or a stale POSTING) -> POSTING. Returns the batch as it now is.

        A POSTED batch is returned unchanged (the caller treats it as already done).
        """
        try:
            item = self.db.update_item(
                TableName=self.table,
                Key=batch_key(connection, batch_id),
                UpdateExpression="SET #status = :posting, updated_at = :now REMOVE #error",
                ConditionExpression=(
                    "attribute_exists(pk) AND (#status IN (:downloaded, :failed) "
                    "OR (#status = :posting AND updated_at < :stale))"
                ),
                ExpressionAttributeNames={"#status": "status", "#error": "error"},
                ExpressionAttributeValues={
                    ":posting": {"S": POSTING},
                    ":downloaded": {"S": DOWNLOADED},
                    ":failed": {"S": FAILED},
                    ":now": {"N": str(now)},
                    ":stale": {"N": str(now - stale_after)},
                },
                ReturnValues="ALL_OLD",
            )["Attributes"]
            old = BatchRecord.from_item(item)
            # Taking over a stale POSTING: that attempt may have reached ConnectWise.
            doubt = old.doubt_since or (old.updated_at if old.status == POSTING else 0)
            return replace(old, status=POSTING, updated_at=now, error="", doubt_since=doubt)
        except ClientError as exc:
            if error_code(exc) != "ConditionalCheckFailedException":
                raise
        current = self.get(connection, batch_id)
        if current is None:
            raise BatchStateError(f"unknown batch {batch_id} for connection {connection!r}")
        if current.status == POSTING:
            raise BatchBusyError(f"batch {batch_id} is being updated by another invocation")
        if current.status == POSTED:
            return current
        raise BatchStateError(f"batch {batch_id} is {current.status} and cannot be posted")

    def keep_confirmation(self, batch: BatchRecord, key: str) -> None:
        """Name the confirmation being posted (while POSTING), so the batch keeps it whatever follows."""
        self.db.update_item(
            TableName=self.table,
            Key=batch_key(batch.connection, batch.batch_id),
            UpdateExpression="SET confirmation = :key",
            ConditionExpression="#status = :posting",
            ExpressionAttributeNames={"#status": "status"},
            ExpressionAttributeValues={":key": {"S": key}, ":posting": {"S": POSTING}},
        )

    def finish_posting(self, batch: BatchRecord, posted_count: int, now: int, confirmation: str) -> None:
        """POSTING -> POSTED and release the batch's kinds, atomically."""
        extra = {
            "posted_count": {"N": str(posted_count)},
            "confirmation": {"S": confirmation},
            "doubt_since": {"N": "0"},
        }
        self._close(batch, POSTED, (POSTING,), now, extra)

    def abandon(self, batch: BatchRecord, now: int) -> None:
        """DOWNLOADED or FAILED -> ABANDONED: an operator gives the records back to ConnectWise's lists."""
        self._close(batch, ABANDONED, (DOWNLOADED, FAILED), now, {})

    def fail_posting(self, batch: BatchRecord, error: str, now: int, confirmation: str) -> None:
        """POSTING -> FAILED; the batch keeps its kinds so its records are not handed out again,
        and the confirmation it failed with, to be sent again."""
        if not self._leave_posting(batch, FAILED, now, error, confirmation):
            raise BatchBusyError(f"batch {batch.batch_id} changed state while failing it")

    def abort_posting(self, batch: BatchRecord, now: int, doubt: bool = False) -> None:
        """POSTING -> DOWNLOADED after a transient failure, so the retry can start at once;
        `doubt`: the update may have reached ConnectWise (its outcome is unknown)."""
        self._leave_posting(batch, DOWNLOADED, now, doubt_since=(batch.doubt_since or now) if doubt else 0)

    def _leave_posting(
        self,
        batch: BatchRecord,
        status: str,
        now: int,
        error: str = "",
        confirmation: str = "",
        doubt_since: int = 0,
    ) -> bool:
        """POSTING -> `status` (recording `error` if any); False if the batch was not POSTING."""
        names = {"#status": "status"}
        values = {
            ":status": {"S": status},
            ":posting": {"S": POSTING},
            ":now": {"N": str(now)},
            ":doubt": {"N": str(doubt_since)},
        }
        update = "SET #status = :status, updated_at = :now, doubt_since = :doubt"
        if error:
            names["#error"] = "error"
            values[":error"] = {"S": error[:1000]}
            update += ", #error = :error"
        if confirmation:
            values[":confirmation"] = {"S": confirmation}
            update += ", confirmation = :confirmation"
        try:
            self.db.update_item(
                TableName=self.table,
                Key=batch_key(batch.connection, batch.batch_id),
                UpdateExpression=update,
                ConditionExpression="#status = :posting",
                ExpressionAttributeNames=names,
                ExpressionAttributeValues=values,
            )
        except ClientError as exc:
            if error_code(exc) != "ConditionalCheckFailedException":
                raise
            return False
        return True

    def _close(
        self, batch: BatchRecord, status: str, allowed: Sequence[str], now: int, extra: dict[str, Any]
    ) -> None:
        allowed_values = {f":allowed{i}": {"S": s} for i, s in enumerate(allowed)}
        sets = ", ".join(f"{name} = :{name}" for name in extra)
        items: list[dict[str, Any]] = [
            {
                "Update": {
                    "TableName": self.table,
                    "Key": batch_key(batch.connection, batch.batch_id),
                    "UpdateExpression": "SET #status = :status, updated_at = :now"
                    + (f", {sets}" if sets else ""),
                    "ConditionExpression": f"#status IN ({', '.join(allowed_values)})",
                    "ExpressionAttributeNames": {"#status": "status"},
                    "ExpressionAttributeValues": {":status": {"S": status}, ":now": {"N": str(now)}}
                    | allowed_values
                    | {f":{name}": value for name, value in extra.items()},
                }
            }
        ]
        for kind in batch.kinds:
            items.append(
                {
                    "Delete": {
                        "TableName": self.table,
                        "Key": open_key(batch.connection, kind),
                        "ConditionExpression": "attribute_not_exists(pk) OR batch_id = :batch",
                        "ExpressionAttributeValues": {":batch": {"S": batch.batch_id}},
                    }
                }
            )
        try:
            self.db.transact_write_items(TransactItems=items)
        except ClientError as exc:
            if error_code(exc) == "TransactionCanceledException":
                raise BatchBusyError(f"batch {batch.batch_id} changed state meanwhile; retry") from None
            raise
