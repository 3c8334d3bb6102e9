"""The per-invoice payment ledger in DynamoDB.

ConnectWise keeps one payment per invoice and a later update replaces the amount, so the
connector keeps, per invoice, every distinct payment id it was given and sends ConnectWise the
cumulative amount. One item per invoice, `invoice#<connection>#<invoice number>`:

* `p#<payment id>`: {amount, date, currency, state: applied | failed, error, the SQS message that
  recorded it, the overage charged to it}, one attribute per payment;
* `applied`, `total`, `overage`: what ConnectWise held after the last sync and how much of the
  cumulative amount it discarded above the invoice total;
* `version`: bumped by every sync.

Optimistic concurrency instead of a lock: an invocation reads the invoice (version v), sends
ConnectWise the cumulative amount, then records what it sent by writing the whole item back,
only if the version is still v. If another invocation synced the invoice meanwhile, ConnectWise may now
hold an amount computed without the other's payments, so the loser reads again and sends again.
The invocation whose write succeeds last made the last ConnectWise call after reading the final
ledger, so ConnectWise ends with the ledger's cumulative amount (capped). An invocation that dies
between its call and its write leaves its message undeleted; the redelivery sends the cumulative
amount again. Settling an invoice costs one read (batched across the invocation's invoices) and
one write.
"""

from collections.abc import Iterable
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from connector.ledger import put_if_version

APPLIED, FAILED = "applied", "failed"
PAYMENT_PREFIX = "p#"
BATCH_GET_LIMIT = 100  # keys per BatchGetItem request


def invoice_key(connection: str, invoice_number: str) -> dict[str, Any]:
    return {"pk": {"S": f"invoice#{connection}#{invoice_number}"}}


@dataclass(frozen=True)
class Entry:
    payment_id: str
    amount: Decimal
    date_paid: str
    currency: str
    state: str = APPLIED
    error: str = ""
    message_id: str = ""  # the SQS message whose invocation recorded it
    overage: Decimal = Decimal("0.00")  # the part of it ConnectWise discarded


@dataclass(frozen=True)
class InvoiceLedger:
    connection: str
    invoice_number: str
    payments: dict[str, Entry]
    applied: Decimal
    total: Decimal | None
    overage: Decimal
    version: int = 0  # 0: never synced
    item: dict[str, Any] = field(default_factory=dict, repr=False, compare=False)  # as read

    @property
    def counted(self) -> list[Entry]:
        """The payments that make up the cumulative amount (not the failed ones)."""
        return [e for e in self.payments.values() if e.state != FAILED]

    @property
    def cumulative(self) -> Decimal:
        return sum((e.amount for e in self.counted), Decimal("0.00"))


class PaymentLedger:
    def __init__(self, dynamodb: Any, table_name: str) -> None:
        self.db = dynamodb
        self.table = table_name

    def read(self, connection: str, invoice_number: str) -> InvoiceLedger:
        reply = self.db.get_item(
            TableName=self.table, Key=invoice_key(connection, invoice_number), ConsistentRead=True
        )
        return _ledger(connection, invoice_number, reply.get("Item", {}))

    def read_many(self, invoices: Iterable[tuple[str, str]]) -> dict[tuple[str, str], InvoiceLedger]:
        """Several invoices (connection, number) in as few requests as DynamoDB allows."""
        wanted = {invoice_key(*key)["pk"]["S"]: key for key in invoices}
        items: dict[str, dict[str, Any]] = {}
        pks = list(wanted)
        for start in range(0, len(pks), BATCH_GET_LIMIT):
            request: dict[str, Any] = {
                self.table: {
                    "Keys": [{"pk": {"S": pk}} for pk in pks[start : start + BATCH_GET_LIMIT]],
                    "ConsistentRead": True,
                }
            }
            while request:  # DynamoDB may leave keys unprocessed under load: ask again for those
                reply = self.db.batch_get_item(RequestItems=request)
                items |= {item["pk"]["S"]: item for item in reply["Responses"].get(self.table, [])}
                request = reply.get("UnprocessedKeys") or {}
        return {key: _ledger(*key, items.get(pk, {})) for pk, key in wanted.items()}

    def record(
        self,
        read: InvoiceLedger,
        entries: list[Entry],
        applied: Decimal | None = None,
        total: Decimal | None = None,
        overage: Decimal | None = None,
    ) -> bool:
        """Record a sync made on `read`: its new payments and what ConnectWise replied.

        The whole item is written, conditioned on the version read (so nothing else is lost).
        False, writing nothing, if the invoice changed since `read` (another invocation synced it).
        """
        item = read.item | invoice_key(read.connection, read.invoice_number)
        for entry in entries:
            item[PAYMENT_PREFIX + entry.payment_id] = {
                "M": {
                    "amount": {"S": str(entry.amount)},
                    "date": {"S": entry.date_paid},
                    "currency": {"S": entry.currency},
                    "state": {"S": entry.state},
                    "error": {"S": entry.error[:1000]},
                    "message": {"S": entry.message_id},
                    "overage": {"S": str(entry.overage)},
                }
            }
        for name, value in (("applied", applied), ("total", total), ("overage", overage)):
            if value is not None:
                item[name] = {"S": str(value)}
        return put_if_version(self.db, self.table, item, read.version)


def _ledger(connection: str, invoice_number: str, item: dict[str, Any]) -> InvoiceLedger:
    payments = {}
    for name, value in item.items():
        if name.startswith(PAYMENT_PREFIX):
            fields = value["M"]
            payment_id = name.removeprefix(PAYMENT_PREFIX)
            payments[payment_id] = Entry(
                payment_id=payment_id,
                amount=Decimal(fields["amount"]["S"]),
                date_paid=fields["date"]["S"],
                currency=fields["currency"]["S"],
                state=fields["state"]["S"],
                error=fields["error"]["S"],
                message_id=fields["message"]["S"],
                overage=Decimal(fields["overage"]["S"]),
            )
    return InvoiceLedger(
        connection=connection,
        invoice_number=invoice_number,
        payments=payments,
        applied=Decimal(item.get("applied", {"S": "0.00"})["S"]),
        total=Decimal(item["total"]["S"]) if "total" in item else None,
        overage=Decimal(item.get("overage", {"S": "0.00"})["S"]),
        version=int(item.get("version", {"N": "0"})["N"]),
        item=item,
    )
