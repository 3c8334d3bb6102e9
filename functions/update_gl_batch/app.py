"""SQS (posting confirmations from the accounting system): update GL batches on ConnectWise.
What is retried, kept in the DLQ or acknowledged: tasks.gl.confirmations."""

from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from connectwise.transport import Deadline
from tasks.gl.confirmations import apply_confirmations
from tasks.platform.observability import entry_point
from tasks.platform.requests import sqs_records
from tasks.runtime import services


@entry_point("update_gl_batch", correlation_id_path=None)  # one correlation id per message
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    records = sqs_records(event)
    return apply_confirmations(records, services(), Deadline.of(context))
