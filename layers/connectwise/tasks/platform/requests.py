"""Events into models: what every handler parses before its one call."""

import re
from typing import Any, TypeVar

from aws_lambda_powertools.utilities.parser.models import (
    S3EventNotificationEventBridgeModel,
    SqsModel,
    SqsRecordModel,
)
from pydantic import BaseModel, Field, ValidationError

from tasks.platform.errors import InvalidRequestError, describe_validation
from tasks.platform.observability import logger

M = TypeVar("M", bound=BaseModel)

# A connection's name, as every request, message and setting writes it: no `#` or `/`, so it can
# stand in a ledger key or an S3 key without reaching into another connection's.
CONNECTION_NAME = r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$"
ConnectionName = Field(min_length=1, max_length=64, pattern=CONNECTION_NAME)


def is_connection_name(value: object) -> bool:
    return isinstance(value, str) and re.fullmatch(CONNECTION_NAME, value) is not None


def parse_request(event: Any, model: type[M]) -> M:
    """The request from a bare payload (direct invoke, schedule Input) or an EventBridge envelope."""
    payload = event.get("detail") if isinstance(event, dict) and "detail-type" in event else event
    if not isinstance(payload, dict):
        raise InvalidRequestError(f"{model.__name__}: expected a JSON object, got {type(payload).__name__}")
    if "job" in payload:  # a schedule's run names its job and revision (registry.job_event): labels
        logger.append_keys(job=str(payload["job"])[:64])
        payload = {k: v for k, v in payload.items() if k not in ("job", "job_revision")}
    try:
        request = model.model_validate(payload)
    except ValidationError as exc:
        raise InvalidRequestError(f"invalid {model.__name__}: {describe_validation(exc)}") from None
    if isinstance(getattr(request, "connection", None), str):
        logger.append_keys(connection=request.connection)  # type: ignore[attr-defined]
    return request


def sqs_records(event: Any) -> list[SqsRecordModel]:
    """The records of an SQS event, checked for the shape Lambda delivers (a malformed event,
    e.g. a hand-made test invoke, is a clear error rather than a KeyError or a silent success)."""
    try:
        return list(SqsModel.model_validate(event).Records)
    except ValidationError as exc:
        raise InvalidRequestError(f"not an SQS event: {describe_validation(exc)}") from None


def object_created(event: Any) -> S3EventNotificationEventBridgeModel:
    """An S3 "Object Created" event as EventBridge delivers it, checked for its shape."""
    try:
        return S3EventNotificationEventBridgeModel.model_validate(event)
    except ValidationError as exc:
        raise InvalidRequestError(f"not an S3 Object Created event: {describe_validation(exc)}") from None
