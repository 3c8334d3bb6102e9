"""Posting confirmations from SQS: one confirmation per message, settled one by one.

Transient faults fail only that message (partial batch response) so SQS retries it and, after
the redrive limit, moves it to the DLQ. Permanent faults (bad message, unknown batch or
connection, a confirmation a posted batch cannot take) are kept in the DLQ at once with their
error, counted in the ConfirmationsRejected metric, and the message is acknowledged: recorded,
not retried forever. Redeliveries are no-ops through the ledger's conditional transitions, keyed
by the batch id, which also covers a producer re-sending the same confirmation as a new message
(Powertools idempotency keyed by messageId would not).
"""

import json
from typing import Any

from aws_lambda_powertools.utilities.parser.models import SqsRecordModel

from connectwise.transport import Deadline
from tasks.gl.requests import PostingConfirmation
from tasks.gl.update import update_gl_batch
from tasks.platform.errors import ConfigurationError, InvalidRequestError, is_permanent
from tasks.platform.requests import is_connection_name, parse_request
from tasks.platform.secrets import refusal
from tasks.platform.services import Services

# A confirmation's outcome (update_gl_batch's status) -> the metric counting it.
OUTCOME_METRICS = {
    "posted": "GLBatchesPosted",
    "failed": "GLBatchesFailed",
    "abandoned": "GLBatchesAbandoned",
}


def apply_confirmations(
    records: list[SqsRecordModel], services: Services, deadline: Deadline
) -> dict[str, Any]:
    """Each message's confirmation applied; the SQS partial batch response of those to retry."""
    failures = []
    for record in records:
        try:
            apply_confirmation(record, services, deadline)
        except Exception:
            failures.append({"itemIdentifier": record.messageId})
    return {"batchItemFailures": failures}


def apply_confirmation(record: SqsRecordModel, services: Services, deadline: Deadline) -> dict[str, Any]:
    log = services.log
    log.remove_keys(["connection"])  # each message logs under its own connection, or none
    log.set_correlation_id(record.messageId)
    try:
        try:
            body = json.loads(str(record.body))
        except (json.JSONDecodeError, RecursionError, TypeError):
            body = None
        confirmation = parse_request(body, PostingConfirmation)
        group = record.attributes.MessageGroupId
        if group and group != confirmation.connection:
            raise InvalidRequestError(
                f"confirmation of batch {confirmation.batch_id} names connection {confirmation.connection!r} "
                f"but was sent in message group {group!r}; send it with MessageGroupId = its connection"
            )
        refused = refusal(confirmation.connection, services.entry(confirmation.connection))
        if refused:  # kept in the DLQ, to be re-driven once the connection is served again
            raise ConfigurationError(refused)
        result = update_gl_batch(confirmation, services, deadline)
        metric = OUTCOME_METRICS.get(result.get("status", ""))
        if metric:
            services.count(metric, 1, confirmation.connection)
        return result
    except Exception as exc:
        if not is_permanent(exc):
            log.warning("transient failure; SQS will retry", extra={"error": str(exc)})
            raise
        connection = body.get("connection") if isinstance(body, dict) else None
        group = record.attributes.MessageGroupId
        services.dead_letters.keep(
            record.messageId,
            str(record.body),
            str(exc),
            group or (connection if is_connection_name(connection) else None),
        )
        log.error(
            "message rejected and copied to the DLQ",
            extra={"error": str(exc), "message_id": record.messageId},
        )
        services.count("ConfirmationsRejected", 1)  # no connection: it may name none that exists
        return {"status": "rejected", "error": str(exc)}
