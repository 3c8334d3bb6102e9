"""What a Lambda handler needs: services built once per container, events parsed into models."""

import logging
import threading
from collections.abc import Callable
from functools import cache
from typing import Any, Generic, TypeVar

import boto3
from aws_lambda_powertools import Logger
from aws_lambda_powertools.utilities.parser.models import SqsModel, SqsRecordModel
from pydantic import BaseModel, ValidationError

from connector.errors import ConnectorError, InvalidRequestError, describe_validation
from connector.ledger import Ledger
from connector.outputs import Notices, Store
from connector.payment_ledger import PaymentLedger
from connector.secrets import load_connection
from connector.services import Services
from connector.settings import Settings
from connector.watermarks import Watermarks
from connectwise.backends import AnyConnection, GLBackend, client_for
from connectwise.errors import ConnectWiseError

logger = Logger(service="connectwise-connector")
# botocore logs whole replies at DEBUG, GetSecretValue's (the connection's keys) included: never
# let that through, whatever level the function's or the Lambda runtime's logging is set to.
logging.getLogger("botocore").setLevel(logging.INFO)

M = TypeVar("M", bound=BaseModel)
L = TypeVar("L")  # a login read from a connection's secret
C = TypeVar("C")  # the client built from it


@cache
def services() -> Services:
    """Clients are created once per warm container (one per AWS service: creating one costs the
    cold start tens of milliseconds); AWS_ENDPOINT_URL points them at moto locally."""
    settings = Settings.from_env()
    dynamodb = boto3.client("dynamodb")
    clients = accounting_clients(settings)
    return Services(
        settings=settings,
        ledger=Ledger(dynamodb, settings.table_name),
        store=Store(boto3.client("s3"), settings.bucket_name),
        notices=Notices(boto3.client("events"), settings.event_bus_name),
        client_for=clients,
        refresh_login=clients.refresh,
        payment_ledger=PaymentLedger(dynamodb, settings.table_name),
        watermarks=Watermarks(dynamodb, settings.table_name),
        soap_for=SoapClientsOnFirstUse(settings),
        log=logger,
    )


class ClientsByConnection(Generic[L, C]):
    """One client per connection, shared by the invocation's threads and kept while the login read
    from its secret is unchanged: its connections to ConnectWise are reused instead of a new TLS
    session per call, and a rotated secret gets a new client."""

    def __init__(self, load: Callable[[str, bool], L], build: Callable[[L, str], C]) -> None:
        self._load, self._build = load, build
        self._clients: dict[str, tuple[L, C]] = {}
        self._stale: set[str] = set()
        self._lock = threading.Lock()

    def refresh(self, name: str) -> None:
        """Read the connection's secret afresh next time (ConnectWise refused what it held)."""
        with self._lock:
            self._stale.add(name)

    def __call__(self, name: str) -> C:
        with self._lock:  # one secret fetch per expiry of its cache, not one per thread
            login = self._load(name, name in self._stale)
            self._stale.discard(name)
            held = self._clients.get(name)
            if held is None or held[0] != login:
                held = self._clients[name] = (login, self._build(login, name))
            return held[1]


def accounting_clients(settings: Settings) -> ClientsByConnection[AnyConnection, GLBackend]:
    """The client of each connection's backend (Accounting Interface or REST), per its secret."""
    return ClientsByConnection(lambda name, fresh: load_connection(name, settings, fresh), client_for)


class SoapClientsOnFirstUse:
    """connector.soap_tasks.soap_clients, imported on first use: the accounting functions never
    call it, so their cold start never loads zeep."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._clients: Any = None

    def __call__(self, name: str) -> Any:
        if self._clients is None:
            from connector.soap_tasks import soap_clients

            self._clients = soap_clients(self.settings)
        return self._clients(name)


def parse_request(event: Any, model: type[M]) -> M:
    """The request from a bare payload (direct invoke, schedule Input) or an EventBridge envelope."""
    payload = event.get("detail") if isinstance(event, dict) and "detail-type" in event else event
    if not isinstance(payload, dict):
        raise InvalidRequestError(f"{model.__name__}: expected a JSON object, got {type(payload).__name__}")
    try:
        return model.model_validate(payload)
    except ValidationError as exc:
        raise InvalidRequestError(f"invalid {model.__name__}: {describe_validation(exc)}") from None


def sqs_records(event: Any) -> list[SqsRecordModel]:
    """The records of an SQS event, checked for the shape Lambda delivers (a malformed event,
    e.g. a hand-made test invoke, is a clear error rather than a KeyError or a silent success)."""
    try:
        return list(SqsModel.model_validate(event).Records)
    except ValidationError as exc:
        raise InvalidRequestError(f"not an SQS event: {describe_validation(exc)}") from None


def is_permanent(exc: BaseException) -> bool:
    """Connector and ConnectWise errors say whether a retry may help; anything else is retried."""
    return isinstance(exc, ConnectorError | ConnectWiseError) and not exc.transient


@cache
def _sqs() -> Any:
    return boto3.client("sqs")


def reject(record: Any, error: str) -> None:
    """Record a message that can never succeed: copy it to the DLQ with its error (then it is acked)."""
    reject_message(record.message_id, record.body, error)


def reject_message(message_id: str, body: str, error: str) -> None:
    """Copy a message to the DLQ with its error; without a DLQ, raise so it is retried rather than lost."""
    queue_url = services().settings.dead_letter_queue_url
    if not queue_url:
        raise RuntimeError(f"cannot record rejected message {message_id}: DEAD_LETTER_QUEUE_URL not set")
    _sqs().send_message(
        QueueUrl=queue_url,
        MessageBody=body,
        MessageAttributes={
            "error": {"DataType": "String", "StringValue": error[:1000]},
            "original_message_id": {"DataType": "String", "StringValue": message_id},
        },
    )
    logger.error("message rejected and copied to the DLQ", extra={"error": error, "message_id": message_id})
