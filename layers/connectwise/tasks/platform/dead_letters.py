"""The dead-letter queue as a store: a message that can never succeed is kept there with its
error, so an operator can fix the cause and re-drive it, and the original is acknowledged."""

from collections.abc import Callable
from typing import Any


class DeadLetters:
    def __init__(self, sqs: Callable[[], Any], queue_url: str) -> None:
        self._sqs = sqs  # made on first use: most invocations never reject a message
        self.queue_url = queue_url

    def keep(self, message_id: str, body: str, error: str, connection: str | None = None) -> None:
        """Copy a message with its error and its connection (so a re-drive once the cause is
        fixed reaches the same connection, in its message group); without a queue, raise so it
        is retried rather than lost."""
        if not self.queue_url:
            raise RuntimeError(f"cannot record rejected message {message_id}: DEAD_LETTER_QUEUE_URL not set")
        attributes = {
            "error": {"DataType": "String", "StringValue": error[:1000]},
            "original_message_id": {"DataType": "String", "StringValue": message_id},
        }
        if connection:
            attributes["connection"] = {"DataType": "String", "StringValue": connection}
        self._sqs().send_message(
            QueueUrl=self.queue_url,
            MessageBody=body,
            MessageAttributes=attributes,
            **({"MessageGroupId": connection} if connection else {}),
        )
