"""Payments from SQS: every message of the batch settled (`settle`), then what it leaves:
messages that can never succeed kept in the DLQ, the result files, the events, the metrics, and
the partial batch response that makes SQS retry only the messages that hit a transient fault.

An unreadable message, and a message whose connection failed (credentials refused, secret
missing), is kept in the DLQ with its error, to be re-driven once fixed; its payments are also
in the fail file and events.
"""

from decimal import Decimal
from typing import Any

from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.parser.models import SqsRecordModel

from connectwise.transport import Deadline
from tasks.payments.outcomes import Message, PaymentOutcome
from tasks.payments.results import publish_outcomes, write_file_results, write_result_files
from tasks.payments.settle import apply_payment_messages
from tasks.platform.keys import is_payment_file_results
from tasks.platform.requests import is_connection_name
from tasks.platform.services import Services

OUTCOME_METRICS = {"applied": "PaymentsApplied", "failed": "PaymentsFailed", "duplicate": "PaymentsDuplicate"}


def upload_invoice_payments(
    records: list[SqsRecordModel], services: Services, deadline: Deadline, request_id: str
) -> dict[str, Any]:
    messages = [
        Message(record.messageId, str(record.body), *connection_of(record), sent=_routing(record))
        for record in records
    ]
    result = apply_payment_messages(messages, services, deadline)
    for message_id, error in result.rejected.items():
        message = next(m for m in messages if m.message_id == message_id)
        # The copy goes as it came (a re-drive meets the same checks), or to its connection.
        attribute, group = message.sent if message.refused else (message.connection, message.connection)
        services.dead_letters.keep(message_id, message.body, error, attribute, group)
        services.log.error(
            "message rejected and copied to the DLQ", extra={"error": error, "message_id": message_id}
        )
    keys = write_result_files(result, services, request_id)
    keys |= write_file_results(
        result, {r.messageId: f for r in records if (f := file_results(r))}, services, request_id
    )
    publish_outcomes(result, services)

    counts = {
        status: sum(1 for o in result.outcomes if o.status == status)
        for status in ("applied", "failed", "duplicate")
    }
    overpaid = [o for o in result.outcomes if o.status == "applied" and Decimal(o.overage) > 0]
    _count_outcomes(result.outcomes, services)
    services.count("PaymentsRetried", len(result.retry))
    services.log.info(
        "payments settled",
        extra={"counts": counts, "overages": len(overpaid), "retry": result.retry, "files": keys},
    )
    for error in result.errors:
        services.log.warning("transient failure; SQS will retry", extra={"error": error})
    return {"batchItemFailures": [{"itemIdentifier": message_id} for message_id in result.retry]}


def _count_outcomes(outcomes: list[PaymentOutcome], services: Services) -> None:
    """The metrics of the settled payments, per registered connection (a name a sender made up
    is counted without one: it must not make a metric series of its own)."""
    known = {c: _registered(c, services) for c in {o.connection for o in outcomes} if c}
    for outcome in outcomes:
        connection = outcome.connection if known.get(outcome.connection) else None
        metric = OUTCOME_METRICS.get(outcome.status)
        if metric:
            services.count(metric, 1, connection)
        if outcome.status == "applied":
            amount = float(Decimal(outcome.paid_amount))  # a metric's double, for watching only
            services.count("PaymentAmountApplied", amount, connection, MetricUnit.NoUnit)
            if Decimal(outcome.overage) > 0:
                services.count("PaymentOverages", 1, connection)


def _registered(connection: str, services: Services) -> bool:
    """Whether a connection is in the registry; a failed read counts the metrics without it: the
    payments are settled, and a raise now would settle the batch again."""
    try:
        return services.entry(connection) is not None
    except Exception:
        return False


def file_results(record: SqsRecordModel) -> str:
    """The results folder of the payment file the message was split from (its `payment_file`
    attribute), if it is one of the message's own connection; else ""."""
    attribute = record.messageAttributes.get("payment_file")
    folder, (connection, _) = (attribute.stringValue if attribute else None) or "", connection_of(record)
    return folder if connection and is_payment_file_results(folder, connection) else ""


def _routing(record: SqsRecordModel) -> tuple[str | None, str | None]:
    """The message's `connection` attribute and group, where they could be a connection's name."""
    attribute = record.messageAttributes.get("connection")
    named, group = (attribute.stringValue if attribute else None), record.attributes.MessageGroupId
    return (named if is_connection_name(named) else None), (group if is_connection_name(group) else None)


def connection_of(record: SqsRecordModel) -> tuple[str | None, str]:
    """The message's connection: its `connection` attribute, else its MessageGroupId (senders set
    the group to the connection, so the fair queue keeps one connection's backlog from the others);
    and why the message is refused, if the two differ or name no connection."""
    attribute = record.messageAttributes.get("connection")
    named, group = (attribute.stringValue if attribute else None), record.attributes.MessageGroupId
    if named and group and named != group:
        return None, (
            f"message attribute connection {named[:64]!r} and MessageGroupId {group[:64]!r} differ; "
            "send it with both naming its connection"
        )
    name = named or group
    if name is not None and not is_connection_name(name):
        return None, f"message names connection {name[:64]!r}, which is not a connection's name"
    return name, ""
