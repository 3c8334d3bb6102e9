"""The per-invoice payment ledger in DynamoDB.

ConnectWise keeps one payment per invoice and a later update replaces the amount, so the
connector keeps, per invoice, what it was given and sends ConnectWise the amount that follows
from it. One item per invoice, `invoice#<connection>#<invoice number>`:

* `p#<payment id>`: one payment as given: {amount, date, currency, kind, state, error, the SQS
  message that reports it, the overage charged to it, its arrival order};
  * kind `payment`: an individual payment with its own id; the invoice's amount is their sum;
  * kind `paid_to_date`: the invoice's paid-to-date amount (Zynk's XML without PaymentId); the
    invoice's amount is the latest of them (by date paid, then arrival);
  * state `pending` (counted, not yet confirmed by ConnectWise: being sent, or sent with an
    outcome nobody could read, then `doubt` is set: it may be in ConnectWise already, so a later
    refusal cannot fail it), `applied` (ConnectWise's reply included it), `failed` (refused, not
    counted, and retried when the same payment is sent again);
* `applied`, `total`, `overage`: what ConnectWise held after the last confirmed sync and how
  much of the amount it discarded above the invoice total;
* `lease`, `lease_until`: which invocation may talk to ConnectWise about the invoice, until when;
* `version`: bumped by every write, which is conditioned on the version read.

Only the lease holder calls ConnectWise for an invoice, so two invocations never write its
payment at once (nor both create the first one). Others add their payments as `pending` and
come back later: the holder sees the item change and sends again with them. A payment is
written `pending` before the call that carries it, so whatever happens to the call (a crash, a
lost reply) the ledger never counts less than it was given.
"""

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any

from tasks.platform.versioned import put_if_version

PENDING, APPLIED, FAILED = "pending", "applied", "failed"
PAYMENT, PAID_TO_DATE = "payment", "paid_to_date"
PAYMENT_PREFIX = "p#"
BATCH_GET_LIMIT = 100  # keys per BatchGetItem request


def invoice_key(connection: str, invoice_number: str) -> dict[str, Any]:
    """ConnectWise finds an invoice by its number whatever the letter case (`cw-1` is `CW-1`), so
    the ledger does too: two spellings must never make two ledgers of one invoice's payment."""
    return {"pk": {"S": f"invoice#{connection}#{invoice_number.upper()}"}}


@dataclass(frozen=True)
class Entry:
    payment_id: str
    amount: Decimal
    date_paid: str
    currency: str
    kind: str = PAYMENT
    state: str = PENDING
    error: str = ""
    message_id: str = ""  # the SQS message that reports it
    overage: Decimal = Decimal("0.00")  # the part of it ConnectWise discarded
    seq: int = 0  # arrival order in the invoice (the latest paid-to-date wins ties on the date)
    doubt: bool = False  # sent in a write whose outcome is unknown: ConnectWise may hold it
    reported: bool = True  # False while applied by another message's sync and not yet reported

    @property
    def counted(self) -> bool:
        return self.state != FAILED

    @property
    def paid_at(self) -> datetime:
        return datetime.fromisoformat(self.date_paid)


@dataclass(frozen=True)
class InvoiceLedger:
    connection: str
    invoice_number: str
    payments: dict[str, Entry]
    applied: Decimal
    total: Decimal | None
    overage: Decimal
    version: int = 0  # 0: never written
    lease: str = ""
    lease_until: float = 0.0
    item: dict[str, Any] = field(default_factory=dict, repr=False, compare=False)  # as read

    @property
    def counted(self) -> list[Entry]:
        """The payments that make up the invoice's amount (pending and applied)."""
        return sorted((e for e in self.payments.values() if e.counted), key=lambda e: (e.paid_at, e.seq))

    @property
    def kind(self) -> str | None:
        """How the invoice is paid: individual payments or paid-to-date amounts (None: not yet)."""
        counted = self.counted
        return counted[0].kind if counted else None

    @property
    def cumulative(self) -> Decimal:
        """The amount the counted payments give the invoice (before ConnectWise's cap)."""
        counted = self.counted
        if counted and counted[0].kind == PAID_TO_DATE:
            return counted[-1].amount
        return sum((e.amount for e in counted), Decimal("0.00"))

    @property
    def last_paid(self) -> datetime | None:
        counted = self.counted
        return counted[-1].paid_at if counted else None

    def leased_by_another(self, token: str, now: float) -> bool:
        return bool(self.lease) and self.lease != token and self.lease_until > now

    @property
    def next_seq(self) -> int:
        return max((e.seq for e in self.payments.values()), default=0) + 1


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

    def write(
        self,
        read: InvoiceLedger,
        entries: Iterable[Entry] = (),
        *,
        lease: tuple[str, float] | None = None,
        keep_lease: bool = True,
        applied: Decimal | None = None,
        total: Decimal | None = None,
        overage: Decimal | None = None,
    ) -> InvoiceLedger | None:
        """Write the item as read with these entries (added or replaced) and values, only if it
        did not change since `read`. Returns the item as written, or None if it changed meanwhile.

        `lease` takes (or extends) the lease; `keep_lease=False` gives it up."""
        item = read.item | invoice_key(read.connection, read.invoice_number)
        for entry in entries:
            item[PAYMENT_PREFIX + entry.payment_id] = _entry_item(entry)
        for name, value in (("applied", applied), ("total", total), ("overage", overage)):
            if value is not None:
                item[name] = {"S": str(value)}
        if lease is not None:
            item["lease"], item["lease_until"] = {"S": lease[0]}, {"N": repr(lease[1])}
        elif not keep_lease:
            item.pop("lease", None)
            item.pop("lease_until", None)
        if not put_if_version(self.db, self.table, item, read.version):
            return None
        return _ledger(read.connection, read.invoice_number, item | {"version": {"N": str(read.version + 1)}})


def _entry_item(entry: Entry) -> dict[str, Any]:
    return {
        "M": {
            "amount": {"S": str(entry.amount)},
            "date": {"S": entry.date_paid},
            "currency": {"S": entry.currency},
            "kind": {"S": entry.kind},
            "state": {"S": entry.state},
            "error": {"S": entry.error[:300]},
            "message": {"S": entry.message_id},
            "overage": {"S": str(entry.overage)},
            "seq": {"N": str(entry.seq)},
            "doubt": {"BOOL": entry.doubt},
            "reported": {"BOOL": entry.reported},
        }
    }


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
                kind=fields.get("kind", {"S": PAYMENT})["S"],  # items written before paid-to-date existed
                state=fields["state"]["S"],
                error=fields["error"]["S"],
                message_id=fields["message"]["S"],
                overage=Decimal(fields["overage"]["S"]),
                seq=int(fields.get("seq", {"N": "0"})["N"]),
                doubt=fields.get("doubt", {"BOOL": False})["BOOL"],
                reported=fields.get("reported", {"BOOL": True})["BOOL"],
            )
    return InvoiceLedger(
        connection=connection,
        invoice_number=invoice_number,
        payments=payments,
        applied=Decimal(item.get("applied", {"S": "0.00"})["S"]),
        total=Decimal(item["total"]["S"]) if "total" in item else None,
        overage=Decimal(item.get("overage", {"S": "0.00"})["S"]),
        version=int(item.get("version", {"N": "0"})["N"]),
        lease=item.get("lease", {"S": ""})["S"],
        lease_until=float(item.get("lease_until", {"N": "0"})["N"]),
        item=item,
    )
