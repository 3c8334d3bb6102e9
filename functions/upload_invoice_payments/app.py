"""SQS (payments from the accounting system): apply invoice payments on ConnectWise.
What is retried, kept in the DLQ or written to the result files: tasks.payments.upload."""

from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from connectwise.transport import Deadline
from tasks.payments.upload import upload_invoice_payments
from tasks.platform.observability import entry_point
from tasks.platform.requests import sqs_records
from tasks.runtime import services


@entry_point(
    "upload_invoice_payments", correlation_id_path=None
)  # the payments of a batch are settled per invoice
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    records = sqs_records(event)
    return upload_invoice_payments(records, services(), Deadline.of(context), context.aws_request_id)
