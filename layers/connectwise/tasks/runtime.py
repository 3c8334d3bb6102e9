"""The composition root: the services a Lambda function's task runs with, built once per
container from the environment. Handlers import it; nothing below imports it."""

from functools import cache

import boto3

from tasks.platform.batch_ledger import Ledger
from tasks.platform.clients import accounting_clients, records_clients
from tasks.platform.dead_letters import DeadLetters
from tasks.platform.notices import Notices
from tasks.platform.observability import count, logger
from tasks.platform.payment_ledger import PaymentLedger
from tasks.platform.services import Services
from tasks.platform.settings import Settings
from tasks.platform.storage import Store
from tasks.platform.watermarks import Watermarks


@cache
def services() -> Services:
    """Clients are created once per warm container (one per AWS service: creating one costs the
    cold start tens of milliseconds; SQS only when a message is rejected); AWS_ENDPOINT_URL
    points them at moto locally."""
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
        dead_letters=DeadLetters(cache(lambda: boto3.client("sqs")), settings.dead_letter_queue_url),
        records_for=records_clients(settings),
        count=count,
        log=logger,
    )
