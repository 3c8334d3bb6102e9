"""S3 "Object Created" through EventBridge: a payment file dropped at
payment-files/<connection>/<name>.xml|.json, split into payment messages on the payments queue.
What is sent, skipped on a retry, refused and written beside it: tasks.payments.drop."""

from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from connectwise.transport import Deadline
from tasks.payments.drop import split_payment_file
from tasks.platform.observability import entry_point
from tasks.platform.requests import object_created
from tasks.runtime import payment_queue, services


@entry_point("split_payment_file")  # the event's id is the correlation id
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    created = object_created(event)
    return split_payment_file(created, services(), payment_queue(), Deadline.of(context))
