"""SQS (payments from the accounting system): apply invoice payments on ConnectWise.

Partial batch response: only messages that hit a transient fault or an outcome that could not
be read are returned for retry (and reach the DLQ after the redrive limit). Failed payments are
recorded in the fail file and as events; an unreadable message, and a message whose connection
failed (credentials refused, secret missing), is also copied to the DLQ with its error, to be
re-driven once fixed. See connector.payments.
"""

from decimal import Decimal
from typing import Any

from aws_lambda_powertools import Metrics
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.parser.models import SqsRecordModel
from aws_lambda_powertools.utilities.typing import LambdaContext

from connector.payments import Message, apply_payment_messages, publish_outcomes, write_result_files
from connector.runtime import logger, reject_message, services, sqs_records
from connectwise.transport import Deadline

metrics = Metrics()


@metrics.log_metrics
@logger.inject_lambda_context(clear_state=True)
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    messages = [
        Message(
            message_id=record.messageId,
            body=str(record.body),
            connection=_attribute(record, "connection"),
        )
        for record in sqs_records(event)
    ]
    svc = services()
    result = apply_payment_messages(messages, svc, Deadline.of(context))
    for message_id, error in result.rejected.items():
        body = next(m.body for m in messages if m.message_id == message_id)
        reject_message(message_id, body, error)
    keys = write_result_files(result, svc, context.aws_request_id)
    publish_outcomes(result, svc)

    counts = {
        status: sum(1 for o in result.outcomes if o.status == status)
        for status in ("applied", "failed", "duplicate")
    }
    overpaid = [o for o in result.outcomes if o.status == "applied" and Decimal(o.overage) > 0]
    metrics.add_metric(name="PaymentsApplied", unit=MetricUnit.Count, value=counts["applied"])
    metrics.add_metric(name="PaymentsFailed", unit=MetricUnit.Count, value=counts["failed"])
    metrics.add_metric(name="PaymentsDuplicate", unit=MetricUnit.Count, value=counts["duplicate"])
    metrics.add_metric(name="PaymentOverages", unit=MetricUnit.Count, value=len(overpaid))
    metrics.add_metric(name="PaymentsRetried", unit=MetricUnit.Count, value=len(result.retry))
    logger.info(
        "payments settled",
        extra={"counts": counts, "overages": len(overpaid), "retry": result.retry, "files": keys},
    )
    for error in result.errors:
        logger.warning("transient failure; SQS will retry", extra={"error": error})
    return {"batchItemFailures": [{"itemIdentifier": message_id} for message_id in result.retry]}


def _attribute(record: SqsRecordModel, name: str) -> str | None:
    attribute = record.messageAttributes.get(name)
    return attribute.stringValue if attribute else None
