"""S3 "Object Created" events as EventBridge delivers them: an object put in the stack's moto
bucket, and each function whose `EventBridgeRule` event in template.yaml matches it invoked with
the event (moto's own S3-to-EventBridge events differ from AWS's in shape, so it is made here).
The rule's pattern is matched as EventBridge would for the operators it uses (values, prefix)."""

import uuid
from datetime import UTC, datetime
from typing import Any

from scripts.lambda_local import invoke
from scripts.local_aws import ACCOUNT, REGION, Stack


def put_object(stack: Stack, key: str, body: bytes, bucket_id: str = "OutputBucket") -> dict[str, Any]:
    """Put an object, as a finance team's upload would; returns its "Object Created" event."""
    bucket = stack.physical[bucket_id]
    reply = stack.client("s3").put_object(Bucket=bucket, Key=key, Body=body)
    return object_created(bucket, key, len(body), reply["ETag"].strip('"'), reply.get("VersionId"))


def object_created(bucket: str, key: str, size: int, etag: str, version: str | None) -> dict[str, Any]:
    return {
        "version": "0",
        "id": str(uuid.uuid4()),
        "detail-type": "Object Created",
        "source": "aws.s3",
        "account": ACCOUNT,
        "time": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "region": REGION,
        "resources": [f"arn:aws:s3:::{bucket}"],
        "detail": {
            "version": "0",
            "bucket": {"name": bucket},
            "object": {"key": key, "size": size, "etag": etag, "sequencer": "0065A1B2C3D4E5F6"}
            | ({"version-id": version} if version else {}),
            "request-id": "LOCAL" + uuid.uuid4().hex[:11].upper(),
            "requester": ACCOUNT,
            "source-ip-address": "127.0.0.1",
            "reason": "PutObject",
        },
    }


def matches(pattern: Any, event: Any) -> bool:
    """Whether an EventBridge pattern (nested fields; lists of values or {"prefix": ...}) matches."""
    if isinstance(pattern, dict):
        return isinstance(event, dict) and all(
            name in event and matches(wanted, event[name]) for name, wanted in pattern.items()
        )
    return any(
        isinstance(event, str) and event.startswith(option["prefix"])
        if isinstance(option, dict)
        else event == option
        for option in pattern
    )


def deliver(stack: Stack, event: dict[str, Any]) -> dict[str, Any]:
    """Invoke every function whose EventBridgeRule matches the event; function -> its result."""
    results = {}
    for logical_id, function in stack.functions.items():
        for rule in function["events"].values():
            if rule["Type"] == "EventBridgeRule" and matches(rule["Properties"]["Pattern"], event):
                results[logical_id] = invoke(stack, logical_id, event)
    return results
