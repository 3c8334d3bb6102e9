"""Attack: "metrics never fail an invocation". The payments' metrics look each connection up in
the registry (a consistent DynamoDB GetItem, `_count_outcomes`) AFTER the payments were applied
in ConnectWise, the result files written and the events published. A throttled or failed read
there raises out of the handler: SQS then redelivers the whole batch (the partial batch response
is lost), so every message is settled again, its rejects copied to the DLQ again, its files and
events written again."""

import inspect
import json
from decimal import Decimal
from typing import Any

from botocore.exceptions import ClientError

from sandbox.server import SandboxServer
from scripts.harness import LocalEnvironment
from scripts.lambda_local import invoke, sqs_event
from tasks.platform.registry import Registry
from tests.integration.test_payments import FUNCTION, QUEUE, invoice, payment, send


def test_a_registry_read_failing_while_counting_does_not_fail_the_settled_batch(
    env: LocalEnvironment, sandbox: SandboxServer, monkeypatch: Any
) -> None:
    target = invoice(sandbox)
    send(env, payment(target.number, "10.00", "P-metrics-1"), "not a payment at all")
    real_get = Registry.get

    def get(self: Registry, name: str) -> Any:
        # DynamoDB throttles the read the metrics make (and only that one).
        if any(frame.function == "_count_outcomes" for frame in inspect.stack()):
            raise ClientError(
                {"Error": {"Code": "ProvisionedThroughputExceededException", "Message": "slow down"}},
                "GetItem",
            )
        return real_get(self, name)

    monkeypatch.setattr(Registry, "get", get)
    sqs = env.stack.client("sqs")
    messages = sqs.receive_message(
        QueueUrl=env.stack.physical[QUEUE],
        MaxNumberOfMessages=10,
        AttributeNames=["All"],
        MessageAttributeNames=["All"],
    )["Messages"]
    assert len(messages) == 2
    raised: Exception | None = None
    response: Any = None
    try:
        response = invoke(env.stack, FUNCTION, sqs_event(messages, env.stack.arns[QUEUE]))
    except Exception as exc:  # what Lambda would report: the whole batch failed
        raised = exc
    # The writes happened: the payment is applied in ConnectWise, the reject is in the DLQ.
    assert target.paid_amount == Decimal("10.00")
    dlq = sqs.receive_message(QueueUrl=env.stack.physical["PaymentsDeadLetterQueue"], MaxNumberOfMessages=10)
    assert len(dlq.get("Messages", [])) == 1
    # ... so the invocation must succeed with its partial batch response; a raise makes SQS
    # deliver both messages again (the reject copied to the DLQ a second time, files and events again).
    assert raised is None, f"the settled batch failed for its metrics: {raised!r}"
    assert json.loads(json.dumps(response)) == {"batchItemFailures": []}
