"""The per-invoice payment ledger in DynamoDB.

ConnectWise keeps one payment per invoice and a later update replaces the amount, so the
connector keeps, per invoice, every distinct payment id it was given and sends ConnectWise the
cumulative amount. Item `invoice#<connection>#<invoice number>`:

* `payments`: payment id -> {amount, date, currency, state: pending | applied | failed, error}
* `version`: bumped by every newly recorded payment
* `applied`, `total`, `overage`: what ConnectWise held after the last sync, and how much of the
  cumulative amount it discarded above the total
* `lease_owner`, `lease_until`: the one invocation allowed to sync this invoice right now

Recording a payment is a conditional write on its id, so a duplicate changes nothing; syncing
happens under the lease and marks exactly the payments it sent, so each payment is reported
applied once, whichever invocation sent it.
"""

from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from botocore.exceptions import ClientError

from connector.errors import BatchStateError
from connector.ledger import _code

PENDING, APPLIED, FAILED = "pending", "applied", "failed"


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
    version: int
    applied: Decimal
    total: Decimal | None
    overage: Decimal

    @property
    def counted(self) -> list[Entry]:
        """The payments that make up the cumulative amount (not the failed ones)."""
        return [e for e in self.payments.values() if e.state != FAILED]

    @property
    def cumulative(self) -> Decimal:
        return sum((e.amount for e in self.counted), Decimal("0.00"))

    @property
    def pending(self) -> list[Entry]:
        return [e for e in self.payments.values() if e.state == PENDING]


class PaymentConflictError(BatchStateError):
    """A payment id already recorded with another amount, date or currency."""


class PaymentLedger:
    def __init__(self, dynamodb: Any, table_name: str) -> None:
        self.db = dynamodb
        self.table = table_name

    def record(
        self,
        connection: str,
        invoice_number: str,
        payment_id: str,
        amount: Decimal,
        date_paid: str,
        currency: str,
    ) -> bool:
        """Add a payment; True if new, False if this id was already recorded identically."""
        key = invoice_key(connection, invoice_number)
        self.db.update_item(
            TableName=self.table,
            Key=key,
            UpdateExpression="SET payments = if_not_exists(payments, :empty), version = if_not_exists(version, :zero)",
            ExpressionAttributeValues={":empty": {"M": {}}, ":zero": {"N": "0"}},
        )
        current = self.read(connection, invoice_number)
        other_currencies = {e.currency for e in current.counted if e.currency and e.payment_id != payment_id}
        if currency and other_currencies - {currency}:
            raise PaymentConflictError(
                f"payment {payment_id} for invoice {invoice_number} is in {currency}, "
                f"earlier payments are in {', '.join(sorted(other_currencies))}"
            )
        entry = {
            "amount": {"S": str(amount)},
            "date": {"S": date_paid},
            "currency": {"S": currency},
            "state": {"S": PENDING},
        }
        try:
            self.db.update_item(
                TableName=self.table,
                Key=key,
                UpdateExpression="SET payments.#id = :entry ADD version :one",
                ConditionExpression="attribute_not_exists(payments.#id)",
                ExpressionAttributeNames={"#id": payment_id},
                ExpressionAttributeValues={":entry": {"M": entry}, ":one": {"N": "1"}},
            )
            return True
        except ClientError as exc:
            if _code(exc) != "ConditionalCheckFailedException":
                raise
        existing = self.read(connection, invoice_number).payments[payment_id]
        if (existing.amount, existing.date_paid, existing.currency) != (amount, date_paid, currency):
            raise PaymentConflictError(
                f"payment {payment_id} for invoice {invoice_number} was already recorded with amount "
                f"{existing.amount} on {existing.date_paid}; a payment id cannot change"
            )
        return False

    def read(self, connection: str, invoice_number: str) -> InvoiceLedger:
        item = self.db.get_item(
            TableName=self.table, Key=invoice_key(connection, invoice_number), ConsistentRead=True
        ).get("Item", {})
        payments = {
            payment_id: Entry(
                payment_id=payment_id,
                amount=Decimal(value["M"]["amount"]["S"]),
                date_paid=value["M"]["date"]["S"],
                currency=value["M"]["currency"]["S"],
                state=value["M"]["state"]["S"],
                error=value["M"].get("error", {"S": ""})["S"],
            )
            for payment_id, value in item.get("payments", {"M": {}})["M"].items()
        }
        return InvoiceLedger(
            connection=connection,
            invoice_number=invoice_number,
            payments=payments,
            version=int(item.get("version", {"N": "0"})["N"]),
            applied=Decimal(item.get("applied", {"S": "0.00"})["S"]),
            total=Decimal(item["total"]["S"]) if "total" in item else None,
            overage=Decimal(item.get("overage", {"S": "0.00"})["S"]),
        )

    def acquire(self, connection: str, invoice_number: str, token: str, now: int, seconds: int) -> bool:
        try:
            self.db.update_item(
                TableName=self.table,
                Key=invoice_key(connection, invoice_number),
                UpdateExpression="SET lease_owner = :token, lease_until = :until",
                ConditionExpression="attribute_not_exists(lease_until) OR lease_until < :now OR lease_owner = :token",
                ExpressionAttributeValues={
                    ":token": {"S": token},
                    ":until": {"N": str(now + seconds)},
                    ":now": {"N": str(now)},
                },
            )
            return True
        except ClientError as exc:
            if _code(exc) != "ConditionalCheckFailedException":
                raise
            return False

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

    def mark(
        self,
        ledger: InvoiceLedger,
        token: str,
        payment_ids: list[str],
        state: str,
        error: str = "",
        applied: Decimal | None = None,
        total: Decimal | None = None,
        overage: Decimal | None = None,
    ) -> None:
        """Move the payments just sent from pending to applied or failed, under the lease."""
        names = {f"#p{i}": payment_id for i, payment_id in enumerate(payment_ids)}
        sets = [f"payments.{name}.#state = :state" for name in names]
        values: dict[str, Any] = {":state": {"S": state}, ":token": {"S": token}}
        if error:
            sets += [f"payments.{name}.#error = :error" for name in names]
            values[":error"] = {"S": error[:1000]}
        names_used = dict(names) | {"#state": "state"}
        for field, value in (("applied", applied), ("total", total), ("overage", overage)):
            if value is not None:
                sets.append(f"#{field} = :{field}")  # `total` is a DynamoDB reserved word
                names_used[f"#{field}"] = field
                values[f":{field}"] = {"S": str(value)}
        if error:
            names_used["#error"] = "error"
        try:
            self.db.update_item(
                TableName=self.table,
                Key=invoice_key(ledger.connection, ledger.invoice_number),
                UpdateExpression="SET " + ", ".join(sets),
                ConditionExpression="lease_owner = :token",
                ExpressionAttributeNames=names_used,
                ExpressionAttributeValues=values,
            )
        except ClientError as exc:
            if _code(exc) == "ConditionalCheckFailedException":
                raise LeaseLostError(f"lease on invoice {ledger.invoice_number} lost while syncing") from None
            raise


class LeaseLostError(BatchStateError):
    """Another invocation took the invoice over (this one ran past its lease); retry."""

    transient = True
