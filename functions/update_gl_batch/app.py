"""SQS (posting confirmations from the accounting system): update GL batches on ConnectWise.

Each message is one confirmation. Transient faults fail only that message (partial batch
response) so SQS retries it and, after the redrive limit, moves it to the DLQ. Permanent faults
(bad message, unknown batch or connection) are sent to the DLQ at once with their error and the
message is acknowledged: recorded, not retried forever. Redeliveries are no-ops through the
ledger's conditional transitions, keyed by the batch id, which also covers a producer re-sending
the same confirmation as a new message (Powertools idempotency keyed by messageId would not).
"""

import json
from typing import Any

from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from aws_lambda_powertools.utilities.typing import LambdaContext

from connector.gl_batches import PostingConfirmation, update_gl_batch
from connector.runtime import is_permanent, logger, parse_request, reject, services

processor = BatchProcessor(event_type=EventType.SQS, raise_on_entire_batch_failure=False)


def handle_confirmation(record: SQSRecord) -> dict[str, Any]:
    logger.set_correlation_id(record.message_id)
    try:
        try:
            body = json.loads(record.body)
        except json.JSONDecodeError:
            body = None
        confirmation = parse_request(body, PostingConfirmation)
        return update_gl_batch(confirmation, services())
    except Exception as exc:
        if not is_permanent(exc):
            logger.warning("transient failure; SQS will retry", extra={"error": str(exc)})
            raise
        reject(record, str(exc))
        return {"status": "rejected", "error": str(exc)}


@logger.inject_lambda_context(clear_state=True)
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    response = process_partial_response(
        event=event, record_handler=handle_confirmation, processor=processor, context=context
    )
    return dict(response)
