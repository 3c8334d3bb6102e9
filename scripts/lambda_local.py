"""Invoke the functions in-process with real Lambda event shapes (no Docker, no `sam local`)."""

import importlib.util
import json
import os
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import cache
from pathlib import Path
from types import ModuleType
from typing import Any

from botocore.client import BaseClient

from scripts.local_aws import ACCOUNT, REGION, ROOT, Stack

Handler = Callable[[dict[str, Any], Any], Any]


@dataclass
class LambdaContext:
    function_name: str
    memory_limit_in_mb: int = 1024
    aws_request_id: str = ""
    timeout_seconds: float = 120.0
    started: float = field(default_factory=time.monotonic)

    @property
    def invoked_function_arn(self) -> str:
        return f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:{self.function_name}"

    def get_remaining_time_in_millis(self) -> int:
        """Counts down from the function's timeout in template.yaml, as Lambda's does."""
        return max(0, int((self.timeout_seconds - (time.monotonic() - self.started)) * 1000))


class PolicyError(PermissionError):
    """A function called an AWS API its policy in template.yaml does not allow."""


_running: list[frozenset[str]] = []  # the allowed actions of each invocation running now
_running_lock = threading.Lock()


@contextmanager
def policy_enforced(logical_id: str, allowed: frozenset[str]) -> Iterator[None]:
    """While a handler runs, every AWS call must be allowed by its function's policy, as in AWS.

    Checks actions, not resource ARNs. Calls the harness makes while a handler runs on another
    thread are checked too (against any running function's policy): keep them out of that window.
    """
    with _running_lock:
        _running.append(allowed)
    try:
        yield
    finally:
        with _running_lock:
            _running.remove(allowed)


# DynamoDB transactions have no IAM action of their own: each item needs its operation's action.
TRANSACTION_ITEM_ACTIONS = {
    "Put": "PutItem",
    "Update": "UpdateItem",
    "Delete": "DeleteItem",
    "ConditionCheck": "ConditionCheckItem",
    "Get": "GetItem",
}


# S3's multipart upload calls are authorized as s3:PutObject (AbortMultipartUpload has its own).
S3_PUT_OPERATIONS = frozenset({"CreateMultipartUpload", "UploadPart", "CompleteMultipartUpload"})


# SQS's batch calls are authorized as the action of one message (there is no sqs:SendMessageBatch).
SQS_BATCH_OPERATIONS = {"SendMessageBatch": "SendMessage", "DeleteMessageBatch": "DeleteMessage"}


def required_actions(service: str, operation_name: str, api_params: dict[str, Any]) -> set[str]:
    if service == "s3" and operation_name in S3_PUT_OPERATIONS:
        return {"s3:PutObject"}
    if service == "sqs" and operation_name in SQS_BATCH_OPERATIONS:
        return {f"sqs:{SQS_BATCH_OPERATIONS[operation_name]}"}
    if operation_name in ("TransactWriteItems", "TransactGetItems"):
        return {
            f"{service}:{TRANSACTION_ITEM_ACTIONS[kind]}"
            for item in api_params["TransactItems"]
            for kind in item
        }
    return {f"{service}:{operation_name}"}


def _checked(make_api_call: Callable[..., Any]) -> Callable[..., Any]:
    def call(client: Any, operation_name: str, api_params: dict[str, Any]) -> Any:
        running = list(_running)
        if running:
            needed = required_actions(client.meta.service_model.endpoint_prefix, operation_name, api_params)
            if not any(needed <= allowed for allowed in running):
                missing = ", ".join(sorted(needed - set().union(*running)))
                raise PolicyError(f"{missing} is not allowed by the function's policy in template.yaml")
        return make_api_call(client, operation_name, api_params)

    return call


BaseClient._make_api_call = _checked(BaseClient._make_api_call)


@cache
def load_module(function_dir: str) -> ModuleType:
    """Import functions/<dir>/app.py under a unique module name (every function's file is app.py)."""
    path = ROOT / "functions" / function_dir / "app.py"
    spec = importlib.util.spec_from_file_location(f"functions_{function_dir}_app", path)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def invoke(stack: Stack, logical_id: str, event: dict[str, Any], request_id: str | None = None) -> Any:
    """Run a function's handler with its template environment, as Lambda would."""
    function = stack.functions[logical_id]
    from tasks.runtime import services

    if any(os.environ.get(key) != value for key, value in function["environment"].items()):
        os.environ.update(function["environment"])
        services.cache_clear()  # settings come from this function's environment, as in its container
    module = load_module(Path(function["code_uri"]).name)
    handler: Handler = getattr(module, function["handler"].split(".", 1)[1])
    with policy_enforced(logical_id, function["actions"]):
        context = LambdaContext(
            logical_id,
            aws_request_id=request_id or str(uuid.uuid4()),
            timeout_seconds=function.get("timeout", 120.0),
        )
        return handler(event, context)


def invoke_async(stack: Stack, logical_id: str, event: dict[str, Any]) -> Any:
    """An asynchronous invocation (a schedule, an EventBridge rule), as Lambda handles it: a
    failure is retried MaximumRetryAttempts times with the same request id, then the event and
    the error go to the OnFailure destination in Lambda's destination record. Raises the last
    error, as `invoke` does."""
    config = stack.functions[logical_id].get("invoke_config") or {}
    attempts = 1 + int(config.get("MaximumRetryAttempts", 2))
    request_id = str(uuid.uuid4())
    for attempt in range(1, attempts + 1):
        try:
            return invoke(stack, logical_id, event, request_id=request_id)
        except Exception as exc:
            if attempt == attempts:
                _to_failure_destination(stack, logical_id, event, exc, request_id, attempts, config)
                raise
    raise AssertionError("unreachable")


def _to_failure_destination(
    stack: Stack,
    logical_id: str,
    event: Any,
    exc: Exception,
    request_id: str,
    attempts: int,
    config: dict[str, Any],
) -> None:
    destination = config.get("DestinationConfig", {}).get("OnFailure", {})
    if destination.get("Type") != "SQS":
        return
    queue = next(lid for lid, arn in stack.arns.items() if arn == destination["Destination"])
    record = {
        "version": "1.0",
        "timestamp": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z",
        "requestContext": {
            "requestId": request_id,
            "functionArn": f"{stack.arns[logical_id]}:$LATEST",
            "condition": "RetriesExhausted",
            "approximateInvokeCount": attempts,
        },
        "requestPayload": event,
        "responseContext": {"statusCode": 200, "executedVersion": "$LATEST", "functionError": "Unhandled"},
        "responsePayload": {"errorMessage": str(exc), "errorType": type(exc).__name__, "stackTrace": []},
    }
    stack.client("sqs").send_message(QueueUrl=stack.physical[queue], MessageBody=json.dumps(record))


def poll_sqs(
    stack: Stack, queue_logical_id: str, function_logical_id: str, batch_size: int = 10
) -> list[dict[str, Any]]:
    """Deliver a queue's messages to a function the way an event source mapping does.

    Messages not named in `batchItemFailures` are deleted; failed ones become visible again.
    Returns the handler's responses, one per delivered batch.
    """
    sqs = stack.client("sqs")
    url = stack.physical[queue_logical_id]
    arn = stack.arns[queue_logical_id]
    responses: list[dict[str, Any]] = []
    while True:
        messages = sqs.receive_message(
            QueueUrl=url,
            MaxNumberOfMessages=batch_size,
            AttributeNames=["All"],
            MessageAttributeNames=["All"],
        ).get("Messages", [])
        if not messages:
            return responses
        response = invoke(stack, function_logical_id, sqs_event(messages, arn))
        responses.append(response)
        if acknowledge(sqs, url, messages, response):
            return responses


def acknowledge(sqs: Any, url: str, messages: list[dict[str, Any]], response: Any) -> bool:
    """Delete what succeeded in one call, as the event source mapping does, and make failures
    visible again at once (a real queue waits for the visibility timeout). True if any failed."""
    failed = {item["itemIdentifier"] for item in (response or {}).get("batchItemFailures", [])}
    done = [m for m in messages if m["MessageId"] not in failed]
    if done:
        sqs.delete_message_batch(
            QueueUrl=url,
            Entries=[{"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(done)],
        )
    for message in messages:
        if message["MessageId"] in failed:
            sqs.change_message_visibility(
                QueueUrl=url, ReceiptHandle=message["ReceiptHandle"], VisibilityTimeout=0
            )
    return bool(failed)


def sqs_event(messages: list[dict[str, Any]], queue_arn: str) -> dict[str, Any]:
    """The Lambda SQS event for messages as returned by ReceiveMessage."""
    return {
        "Records": [
            {
                "messageId": m["MessageId"],
                "receiptHandle": m["ReceiptHandle"],
                "body": m["Body"],
                "attributes": m.get("Attributes") or _attributes(),
                "messageAttributes": {
                    name: {
                        "stringValue": attr.get("StringValue"),
                        "binaryValue": None,
                        "stringListValues": [],
                        "binaryListValues": [],
                        "dataType": attr["DataType"],
                    }
                    for name, attr in m.get("MessageAttributes", {}).items()
                },
                "md5OfBody": m["MD5OfBody"],
                "eventSource": "aws:sqs",
                "eventSourceARN": queue_arn,
                "awsRegion": REGION,
            }
            for m in messages
        ]
    }


def _attributes() -> dict[str, str]:
    """The system attributes Lambda always delivers (a receive that asked for none has none)."""
    now = str(int(time.time() * 1000))
    return {
        "ApproximateReceiveCount": "1",
        "SentTimestamp": now,
        "SenderId": ACCOUNT,
        "ApproximateFirstReceiveTimestamp": now,
    }


def poll_stream(stack: Stack, table_logical_id: str, function_logical_id: str) -> list[Any]:
    """Deliver a table's new stream records to a function the way a DynamoDB event source mapping
    does (in order, in batches, each record once when the function succeeds; a failure raises
    and the records are delivered again by the next poll). Returns the handler's responses."""
    streams = stack.client("dynamodbstreams")
    arn = stack.arns[f"{table_logical_id}.StreamArn"]
    responses: list[Any] = []
    for shard in streams.describe_stream(StreamArn=arn)["StreamDescription"]["Shards"]:
        shard_id = shard["ShardId"]
        after = stack.stream_positions.get(shard_id)
        iterator = streams.get_shard_iterator(
            StreamArn=arn,
            ShardId=shard_id,
            **(
                {"ShardIteratorType": "AFTER_SEQUENCE_NUMBER", "SequenceNumber": after}
                if after
                else {"ShardIteratorType": "TRIM_HORIZON"}
            ),
        )["ShardIterator"]
        records: list[dict[str, Any]] = []
        while iterator:
            reply = streams.get_records(ShardIterator=iterator, Limit=1000)
            records += reply["Records"]
            iterator = reply.get("NextShardIterator") if reply["Records"] else None
        for start in range(0, len(records), 100):  # BatchSize in template.yaml
            batch = records[start : start + 100]
            event = {"Records": [r | {"eventSourceARN": arn} for r in batch]}
            responses.append(invoke(stack, function_logical_id, json.loads(json.dumps(event, default=str))))
            stack.stream_positions[shard_id] = batch[-1]["dynamodb"]["SequenceNumber"]
    return responses


@dataclass
class Fired:
    schedule: str
    function: str
    input: dict[str, Any]
    result: Any = None
    error: BaseException | None = None


def scheduled(stack: Stack, group_logical_id: str = "JobSchedules") -> list[Fired]:
    """Every ENABLED schedule of the stack's group, with the function and input it would fire,
    not fired yet (disabled ones do not fire)."""
    scheduler = stack.client("scheduler")
    group = stack.physical[group_logical_id]
    by_arn = {arn: logical_id for logical_id, arn in stack.arns.items()}
    runs = []
    names = [
        s["Name"]
        for page in scheduler.get_paginator("list_schedules").paginate(GroupName=group)
        for s in page["Schedules"]
    ]
    for name in sorted(names):
        schedule = scheduler.get_schedule(GroupName=group, Name=name)
        if schedule["State"] != "ENABLED":
            continue
        target = schedule["Target"]
        runs.append(Fired(name, by_arn[target["Arn"]], json.loads(target["Input"])))
    return runs


def fire(stack: Stack, run: Fired) -> Fired:
    """Invoke the run's target with its input, asynchronously as Scheduler does (retried, then
    left in the failure destination); the last error is kept, not raised."""
    try:
        run.result = invoke_async(stack, run.function, run.input)
    except Exception as exc:
        run.error = exc
    return run


def fire_schedules(stack: Stack, group_logical_id: str = "JobSchedules") -> list[Fired]:
    """A simulated day: every ENABLED schedule of the stack's group invokes its target with its
    input, as Scheduler would (disabled ones do not fire). An error is kept, not raised."""
    return [fire(stack, run) for run in scheduled(stack, group_logical_id)]


def cold_start() -> None:
    """A new stack is a new deployment: no container keeps clients, secrets, settings or
    registry entries from the last one."""
    from aws_lambda_powertools.utilities import parameters

    from tasks.runtime import reconciler, services

    parameters.clear_caches()  # type: ignore[no-untyped-call]
    services.cache_clear()
    reconciler.cache_clear()
