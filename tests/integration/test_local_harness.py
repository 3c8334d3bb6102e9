"""The local stand-ins for AWS behave as AWS does where the connector relies on it."""

import threading
import time
from typing import Any

import pytest
from botocore.exceptions import ClientError

from scripts.harness import LocalEnvironment
from scripts.lambda_local import PolicyError, invoke, load_module, policy_enforced, required_actions
from scripts.local_aws import aws_client


def test_concurrent_conditional_writes_to_one_item_let_exactly_one_through(env: LocalEnvironment) -> None:
    db, table = env.stack.client("dynamodb"), env.stack.physical["LedgerTable"]
    winners: list[int] = []

    def write(n: int) -> None:
        try:
            db.update_item(
                TableName=table,
                Key={"pk": {"S": "race"}},
                UpdateExpression="SET owner_id = :n",
                ConditionExpression="attribute_not_exists(owner_id)",
                ExpressionAttributeValues={":n": {"N": str(n)}},
            )
            winners.append(n)
        except ClientError as exc:
            assert exc.response["Error"]["Code"] == "ConditionalCheckFailedException"

    threads = [threading.Thread(target=write, args=(n,)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(winners) == 1


def test_sqs_still_drops_messages_past_their_retention_period(moto_endpoint: str) -> None:
    from moto.sqs.models import sqs_backends

    sqs = aws_client(moto_endpoint, "sqs")
    url = sqs.create_queue(QueueName="retention", Attributes={"MessageRetentionPeriod": "60"})["QueueUrl"]
    sqs.send_message(QueueUrl=url, MessageBody="old")
    queue = sqs_backends["123456789012"]["us-east-1"].get_queue("retention")
    [old] = queue._messages
    old.sent_timestamp = int((time.time() - 61) * 1000)  # sent 61 s ago (moto serves from this process)
    assert "Messages" not in sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10)
    sqs.send_message(QueueUrl=url, MessageBody="new")
    bodies = [m["Body"] for m in sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10)["Messages"]]
    assert bodies == ["new"]


def test_a_function_calling_an_api_outside_its_policy_fails(env: LocalEnvironment, monkeypatch: Any) -> None:
    # The recreate function may not touch the ledger table; make its code try.
    app = load_module("recreate_gl_batch")

    def handler(event: dict[str, Any], context: Any) -> None:
        env.stack.client("dynamodb").put_item(
            TableName=env.stack.physical["LedgerTable"], Item={"pk": {"S": "x"}}
        )

    monkeypatch.setattr(app, "lambda_handler", handler)
    with pytest.raises(PolicyError, match="dynamodb:PutItem is not allowed"):
        invoke(env.stack, "RecreateGLBatchFunction", {})


def test_transactions_need_the_actions_of_their_items(env: LocalEnvironment) -> None:
    items = [{"Put": {}}, {"ConditionCheck": {}}]
    assert required_actions("dynamodb", "TransactWriteItems", {"TransactItems": items}) == {
        "dynamodb:PutItem",
        "dynamodb:ConditionCheckItem",
    }
    db, table = env.stack.client("dynamodb"), env.stack.physical["LedgerTable"]
    put = {"Put": {"TableName": table, "Item": {"pk": {"S": "t"}}}}
    with policy_enforced("test", frozenset({"dynamodb:UpdateItem"})), pytest.raises(PolicyError):
        db.transact_write_items(TransactItems=[put])
    with policy_enforced("test", frozenset({"dynamodb:PutItem"})):
        db.transact_write_items(TransactItems=[put])
