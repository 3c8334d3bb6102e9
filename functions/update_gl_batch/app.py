"""SQS (posting confirmations from the accounting system): update GL batches on ConnectWise.

Each message is one confirmation. Transient faults fail only that message (partial batch
response) so SQS retries it and, after the redrive limit, moves it to the DLQ. Permanent faults
(bad message, unknown batch or connection, a confirmation a posted batch cannot take) are sent to
the DLQ at once with their error, counted in the ConfirmationsRejected metric, and the message is
acknowledged: recorded, not retried forever. Redeliveries are no-ops through the ledger's
conditional transitions, keyed by the batch id, which also covers a producer re-sending the same
confirmation as a new message (Powertools idempotency keyed by messageId would not).
"""

import json
from functools import partial
from typing import Any

from aws_lambda_powertools import Metrics
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from aws_lambda_powertools.utilities.typing import LambdaContext

from connector.gl_batches import PostingConfirmation, update_gl_batch
from connector.runtime import is_permanent, logger, parse_request, reject, services, sqs_records
from connectwise.transport import Deadline

processor = BatchProcessor(event_type=EventType.SQS, raise_on_entire_batch_failure=False)
metrics = Metrics()


def handle_confirmation(record: SQSRecord, deadline: Deadline) -> dict[str, Any]:
    logger.set_correlation_id(record.message_id)
    try:
        try:
            body = json.loads(record.body)
        except (json.JSONDecodeError, RecursionError):
            body = None
        confirmation = parse_request(body, PostingConfirmation)
        return update_gl_batch(confirmation, services(), deadline)
    except Exception as exc:
        if not is_permanent(exc):
            logger.warning("transient failure; SQS will retry", extra={"error": str(exc)})
            raise
        reject(record, str(exc))
        metrics.add_metric(name="ConfirmationsRejected", unit=MetricUnit.Count, value=1)
        return {"status": "rejected", "error": str(exc)}


@metrics.log_metrics
@logger.inject_lambda_context(clear_state=True)
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    if not sqs_records(event):  # the shape Lambda delivers, or a clear error
        return {"batchItemFailures": []}
    response = process_partial_response(
        event=event,
        record_handler=partial(handle_confirmation, deadline=Deadline.of(context)),
        processor=processor,
        context=context,
    )
    return dict(response)
