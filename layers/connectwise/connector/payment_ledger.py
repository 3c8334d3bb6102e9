"""The per-invoice payment ledger in DynamoDB.

ConnectWise keeps one payment per invoice and a later update replaces the amount, so the
connector keeps, per invoice, every distinct payment id it was given and sends ConnectWise the
cumulative amount. One item per invoice, `invoice#<connection>#<invoice number>`:

* `p#<payment id>`: {amount, date, currency, state: pending | applied | failed, error}, one
  attribute per payment, written only if absent (`if_not_exists`);
* `applied`, `total`, `overage`: what ConnectWise held after the last sync and how much of the
  cumulative amount it discarded above the invoice total;
* `lease_owner`, `lease_until`: the one invocation allowed to sync this invoice right now;
* `resync`: set when an invocation lost its lease mid-sync (see `settle`).

A duplicate payment id changes nothing. Syncing happens under the lease and marks exactly the
payments it sent, so each payment is reported applied once, whichever invocation sent it.
Settling an invoice costs two writes and no reads: record + take the lease (returning the
invoice as it now is), then mark + give the lease back.
"""

from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from botocore.exceptions import ClientError

from connector.errors import BatchStateError
from connector.ledger import _code

PENDING, APPLIED, FAILED = "pending", "applied", "failed"
PAYMENT_PREFIX = "p#"


def invoice_key(connection: str, invoice_number: str) -> dict[str, Any]:
    return {"pk": {"S": f"invoice#{connection}#{invoice_number}"}}


@dataclass(frozen=True)
class Entry:
    payment_id: str
    amount: Decimal
    date_paid: str
    currency: str
    state: str
    error: str = ""


@dataclass(frozen=True)
class InvoiceLedger:
    connection: str
    invoice_number: str
    payments: dict[str, Entry]
    applied: Decimal
    total: Decimal | None
    overage: Decimal
    resync: bool = False  # ConnectWise may hold a stale amount: send the cumulative again

    @property
    def counted(self) -> list[Entry]:
        """The payments that make up the cumulative amount (not the failed ones)."""
        return [e for e in self.payments.values() if e.state != FAILED]

    @property
    def cumulative(self) -> Decimal:
        return sum((e.amount for e in self.counted), Decimal("0.00"))

    @property
    def pending(self) -> list[Entry]:
        return sorted(
            (e for e in self.payments.values() if e.state == PENDING),
            key=lambda e: (e.date_paid, e.payment_id),
        )


class LeaseLostError(BatchStateError):
    """Another invocation took the invoice over (this one ran past its lease); retry."""

    transient = True


class PaymentLedger:
    def __init__(self, dynamodb: Any, table_name: str) -> None:
        self.db = dynamodb
        self.table = table_name

    def claim(
        self, connection: str, invoice_number: str, payments: list[Entry], token: str, now: int, seconds: int
    ) -> InvoiceLedger | None:
        """Record new payments and take the invoice's lease in one write.

        Payment ids already present are left as they are (a duplicate changes nothing). Returns
        the invoice as it now is, or None, recording nothing, if another invocation holds it.
        """
        names = {f"#p{i}": PAYMENT_PREFIX + e.payment_id for i, e in enumerate(payments)}
        values: dict[str, Any] = {
            ":token": {"S": token},
            ":until": {"N": str(now + seconds)},
            ":now": {"N": str(now)},
        }
        sets = ["lease_owner = :token", "lease_until = :until"]
        for i, entry in enumerate(payments):
            values[f":e{i}"] = {
                "M": {
                    "amount": {"S": str(entry.amount)},
                    "date": {"S": entry.date_paid},
                    "currency": {"S": entry.currency},
                    "state": {"S": PENDING},
                }
            }
            sets.append(f"#p{i} = if_not_exists(#p{i}, :e{i})")
        try:
            reply = self.db.update_item(
                TableName=self.table,
                Key=invoice_key(connection, invoice_number),
                UpdateExpression="SET " + ", ".join(sets),
                ConditionExpression="attribute_not_exists(lease_until) OR lease_until < :now OR lease_owner = :token",
                ExpressionAttributeValues=values,
                ReturnValues="ALL_NEW",
                **({"ExpressionAttributeNames": names} if names else {}),
            )
        except ClientError as exc:
            if _code(exc) != "ConditionalCheckFailedException":
                raise
            return None
        return _ledger(connection, invoice_number, reply["Attributes"])

    def read(self, connection: str, invoice_number: str) -> InvoiceLedger:
        return _ledger(connection, invoice_number, self._get(connection, invoice_number))

    def _get(self, connection: str, invoice_number: str) -> dict[str, Any]:
        key = invoice_key(connection, invoice_number)
        item: dict[str, Any] = self.db.get_item(TableName=self.table, Key=key, ConsistentRead=True).get(
            "Item", {}
        )
        return item

    def acquire(
        self, connection: str, invoice_number: str, token: str, now: int, seconds: int
    ) -> InvoiceLedger | None:
        """Take the invoice's lease; the invoice as it now is, or None if another invocation holds it."""
        return self.claim(connection, invoice_number, [], token, now, seconds)

    def release(self, connection: str, invoice_number: str, token: str) -> None:
        try:
            self.db.update_item(
                TableName=self.table,
                Key=invoice_key(connection, invoice_number),
                UpdateExpression="REMOVE lease_owner, lease_until",
                ConditionExpression="lease_owner = :token",
                ExpressionAttributeValues={":token": {"S": token}},
            )
        except ClientError as exc:
            if _code(exc) != "ConditionalCheckFailedException":
                raise

    def settle(
        self,
        ledger: InvoiceLedger,
        token: str,
        marks: dict[str, tuple[str, str]],
        applied: Decimal | None = None,
        total: Decimal | None = None,
        overage: Decimal | None = None,
    ) -> None:
        """Mark the payments just sent (id -> (state, error)) and give the lease back, in one write.

        If the lease was lost meanwhile (this invocation ran past it), another one may have sent
        ConnectWise a newer amount that this one's call then overwrote: flag the invoice for a
        resync, so whoever settles it next sends the cumulative amount again.
        """
        names: dict[str, str] = {}
        values: dict[str, Any] = {":token": {"S": token}, ":false": {"BOOL": False}}
        sets = ["resync = :false"]
        for i, (payment_id, (state, error)) in enumerate(marks.items()):
            names |= {f"#p{i}": PAYMENT_PREFIX + payment_id, "#state": "state", "#error": "error"}
            values |= {f":s{i}": {"S": state}, f":e{i}": {"S": error[:1000]}}
            sets += [f"#p{i}.#state = :s{i}", f"#p{i}.#error = :e{i}"]
        for field, value in (("applied", applied), ("total", total), ("overage", overage)):
            if value is not None:
                names[f"#{field}"] = field  # `total` is a DynamoDB reserved word
                values[f":{field}"] = {"S": str(value)}
                sets.append(f"#{field} = :{field}")
        key = invoice_key(ledger.connection, ledger.invoice_number)
        try:
            self.db.update_item(
                TableName=self.table,
                Key=key,
                UpdateExpression="SET " + ", ".join(sets) + " REMOVE lease_owner, lease_until",
                ConditionExpression="lease_owner = :token",
                ExpressionAttributeValues=values,
                **({"ExpressionAttributeNames": names} if names else {}),
            )
        except ClientError as exc:
            if _code(exc) != "ConditionalCheckFailedException":
                raise
            self.db.update_item(
                TableName=self.table,
                Key=key,
                UpdateExpression="SET resync = :true",
                ExpressionAttributeValues={":true": {"BOOL": True}},
            )
            raise LeaseLostError(
                f"lease on invoice {ledger.invoice_number} lost while syncing; flagged for resync"
            ) from None


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
                error=fields.get("error", {"S": ""})["S"],
            )
    return InvoiceLedger(
        connection=connection,
        invoice_number=invoice_number,
        payments=payments,
        applied=Decimal(item.get("applied", {"S": "0.00"})["S"]),
        total=Decimal(item["total"]["S"]) if "total" in item else None,
        overage=Decimal(item.get("overage", {"S": "0.00"})["S"]),
        resync=bool(item.get("resync", {"BOOL": False})["BOOL"]),
    )
