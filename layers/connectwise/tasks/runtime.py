"""The composition root: the services a Lambda function's task runs with, built once per
container from the environment. Handlers import it; nothing below imports it."""

import functools
import os
from collections.abc import Callable
from datetime import UTC, datetime
from functools import cache
from typing import TYPE_CHECKING, Any, TypeVar

import boto3

from tasks.platform.batch_ledger import Ledger
from tasks.platform.budget import Budgets
from tasks.platform.clients import accounting_clients, records_clients
from tasks.platform.dead_letters import DeadLetters
from tasks.platform.errors import ConfigurationError
from tasks.platform.notices import Notices
from tasks.platform.observability import count, logger
from tasks.platform.payment_ledger import PaymentLedger
from tasks.platform.registry import Registry, job_event
from tasks.platform.runs import Run, Runs
from tasks.platform.secrets import refusal
from tasks.platform.services import Services
from tasks.platform.settings import Settings
from tasks.platform.storage import Store
from tasks.platform.watermarks import Watermarks

if TYPE_CHECKING:
    from tasks.connections.schedules import Reconciler
    from tasks.connections.watch import Watcher
    from tasks.payments.drop import PaymentQueue

Handler = TypeVar("Handler", bound=Callable[..., Any])


@cache
def services() -> Services:
    """Clients are created once per warm container (one per AWS service: creating one costs the
    cold start tens of milliseconds; SQS only when a message is rejected); AWS_ENDPOINT_URL
    points them at moto locally."""
    settings = Settings.from_env()
    dynamodb = boto3.client("dynamodb")
    registry = Registry(dynamodb, settings.registry_table)
    budgets = Budgets(dynamodb, settings.table_name, registry)
    clients = accounting_clients(settings, registry, budgets)
    return Services(
        settings=settings,
        ledger=Ledger(dynamodb, settings.table_name),
        store=Store(boto3.client("s3"), settings.bucket_name),
        notices=Notices(boto3.client("events"), settings.event_bus_name),
        client_for=clients,
        refresh_login=clients.refresh,
        payment_ledger=PaymentLedger(dynamodb, settings.table_name),
        watermarks=Watermarks(dynamodb, settings.table_name),
        entry=registry.get,
        dead_letters=DeadLetters(cache(lambda: boto3.client("sqs")), settings.dead_letter_queue_url),
        records_for=records_clients(settings, registry, budgets),
        count=count,
        log=logger,
    )


@cache
def reconciler() -> "Reconciler":
    """The schedule reconciler's collaborators (its own function's environment); imported here,
    so the other functions' cold start never loads the job models of every task."""
    from tasks.connections.schedules import Reconciler, scheduler_settings

    settings = Settings.from_env()
    return Reconciler(
        boto3.client("scheduler"),
        Registry(boto3.client("dynamodb"), settings.registry_table),
        scheduler_settings(dict(os.environ)),
    )


def payment_queue() -> "PaymentQueue":
    """The payments queue, as the payment file split sends to it (its own function's environment);
    imported here, so no other function loads the payment file reader."""
    from tasks.payments.drop import PaymentQueue

    url = os.environ.get("PAYMENTS_QUEUE_URL")
    if not url:
        raise ConfigurationError("environment variable PAYMENTS_QUEUE_URL is not set")
    return PaymentQueue(boto3.client("sqs"), url)


def watcher() -> "Watcher":
    """The watcher's collaborators, from its environment (read at each run: it runs every 15
    minutes, so a client made again costs nothing that matters)."""
    from tasks.connections.watch import Watcher, WatchSettings

    settings = Settings.from_env()
    dynamodb = boto3.client("dynamodb")
    return Watcher(
        dynamodb,
        settings.table_name,
        Registry(dynamodb, settings.registry_table),
        WatchSettings.from_env(os.environ),
    )


def scheduled_job(handler: Handler) -> Handler:
    """A scheduled task's handler: a connection the registry does not serve now (unknown or
    disabled) is refused before anything runs, and a job's run (the schedule's input names its
    job) is recorded under its connection and job id, whatever its outcome."""

    @functools.wraps(handler)
    def run(event: Any, context: Any) -> Any:
        fields = event if isinstance(event, dict) else {}
        job, connection = fields.get("job"), fields.get("connection")
        if not isinstance(connection, str):
            return handler(event, context)  # the request parser says what is wrong
        started, served = _utc_now(), None
        try:
            refused = _refusal(connection, job, fields)
            if refused:
                raise ConfigurationError(refused)
            served = connection  # a registered name: it may dimension a metric
            result = handler(event, context)
        except Exception as exc:
            if isinstance(job, str):
                _record(Run(connection, job, started, _utc_now(), "failed", str(exc)))
            count("RunsFailed", 1, served)
            _finished(connection, job, "failed", error=str(exc)[:1000])
            raise
        if isinstance(job, str):
            _record(Run(connection, job, started, _utc_now(), "succeeded", _summary(result)))
        count("RunsSucceeded", 1, connection)
        _finished(connection, job, "succeeded")
        return result

    return run  # type: ignore[return-value]


def _finished(connection: str, job: Any, outcome: str, **extra: str) -> None:
    """The line the dashboard's run tables read (its filter: message "run finished")."""
    log = logger.error if outcome == "failed" else logger.info
    fields: dict[str, Any] = {"connection": connection, "job": job if isinstance(job, str) else None}
    log("run finished", extra=fields | {"outcome": outcome} | extra)


def _refusal(connection: str, job: Any, event: dict[str, Any]) -> str | None:
    """Why this run may not go ahead, read from the registry as it is now: the connection is
    unknown or disabled, or (a schedule's run) its job is gone, disabled, or asks for what the
    job no longer says (a schedule not yet reconciled after a change)."""
    entry = services().entry(connection)
    refused = refusal(connection, entry)
    if refused or entry is None or job is None:
        return refused
    found = entry.job(str(job))
    if found is None:
        return f"connection {connection!r} has no job {str(job)[:64]!r} (its schedule outlived it)"
    if not found.enabled:
        return f"job {found.id!r} of connection {connection!r} is disabled"
    if event != job_event(entry, found):
        return f"job {found.id!r} of connection {connection!r} was changed (task, input, schedule, zone or window); its schedule is not reconciled yet"
    return None


def _summary(result: Any) -> str:
    """A run's outcome in a few words: its status, or what it counted."""
    if not isinstance(result, dict):
        return ""
    for key, unit in (("status", ""), ("count", " records"), ("rows", " rows"), ("reports", " reports")):
        if key in result:
            value = result[key]
            return f"{len(value) if isinstance(value, list) else value}{unit}"
    return ""


def _record(run: Run) -> None:
    """Observability only: a run whose record cannot be written is not failed (nor run again)."""
    try:
        Runs(services().ledger.db, services().settings.table_name).record(run)
    except Exception:
        logger.exception("could not record the job's run", extra={"job": run.job})


def _utc_now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
