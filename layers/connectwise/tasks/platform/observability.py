"""How every function is observed: one logger, one metrics namespace (POWERTOOLS_METRICS_NAMESPACE)
with every metric dimensioned by task (and by connection, unless METRICS_BY_CONNECTION is false),
X-Ray through Powertools Tracer, a correlation id from every trigger, and the one decorator stack
every handler wears (`entry_point`)."""

import json
import logging
import math
import os
import threading
import warnings
from collections.abc import Callable
from typing import Any, Protocol, TypeVar

from aws_lambda_powertools import Logger, Tracer
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.metrics.functions import is_metrics_disabled
from aws_lambda_powertools.metrics.provider.cloudwatch_emf.cloudwatch import AmazonCloudWatchEMFProvider

SERVICE = "connectwise-connector"
logger = Logger(service=SERVICE)


def _tracer() -> Tracer | None:
    """X-Ray through Powertools, made as the layer loads, inside Lambda with tracing on only:
    even a disabled Tracer imports the X-Ray SDK, which builds AWS clients of its own (40-60 ms of
    a handler's load: make bench --only cold-start). Only AWS SDK and HTTP calls get subsegments."""
    disabled = os.environ.get("POWERTOOLS_TRACE_DISABLED", "false").lower() in ("true", "1")
    if disabled or not os.environ.get("LAMBDA_TASK_ROOT"):
        return None
    traced = Tracer(service=SERVICE, auto_patch=False)
    traced.patch(["botocore", "requests"])
    return traced


tracer = _tracer()
# botocore logs whole replies at DEBUG, GetSecretValue's (the connection's keys) included: never
# let that through, whatever level the function's or the Lambda runtime's logging is set to.
logging.getLogger("botocore").setLevel(logging.INFO)
# A function that counted nothing publishes nothing; that is not worth a warning per invocation.
warnings.filterwarnings("ignore", message="No application metrics to publish")

Handler = TypeVar("Handler", bound=Callable[..., Any])
MAX_VALUES = 100  # values of one metric in one EMF document (CloudWatch's limit)


class Meter:
    """The metrics of one invocation, grouped by connection: counts summed, other values kept
    (a latency each), written as EMF documents when the handler returns. Thread-safe: payments
    settle invoices in parallel."""

    def __init__(self) -> None:
        self.task = ""
        self._lock = threading.Lock()
        self._sums: dict[tuple[str | None, str, str], float] = {}
        self._values: dict[tuple[str | None, str, str], list[float]] = {}

    def count(self, name: str, value: float, connection: str | None, unit: MetricUnit) -> None:
        with self._lock:
            key = (connection, name, unit.value)
            self._sums[key] = self._sums.get(key, 0) + value

    def record(self, name: str, value: float, unit: MetricUnit, connection: str | None) -> None:
        with self._lock:
            self._values.setdefault((connection, name, unit.value), []).append(value)

    def flush(self) -> None:
        """One document per connection (each value list in chunks CloudWatch takes); nothing
        kept afterwards, whatever happens while writing."""
        with self._lock:
            sums, values = self._sums, self._values
            self._sums, self._values = {}, {}
        groups: dict[str | None, list[tuple[str, str, list[float]]]] = {}
        for (connection, name, unit), total in sums.items():
            groups.setdefault(connection, []).append((name, unit, [total]))
        for (connection, name, unit), found in values.items():
            groups.setdefault(connection, []).append((name, unit, found))
        for connection, metrics in groups.items():
            longest = max(len(found) for _, _, found in metrics)
            for start in range(0, longest, MAX_VALUES):
                try:
                    self._write(connection, [(n, u, v[start : start + MAX_VALUES]) for n, u, v in metrics])
                except Exception:  # never fail (and so retry) an invocation for its metrics
                    logger.exception("metrics not published", extra={"connection": connection})

    def _write(self, connection: str | None, metrics: list[tuple[str, str, list[float]]]) -> None:
        if is_metrics_disabled():  # POWERTOOLS_METRICS_DISABLED (make run, the benchmarks)
            return
        emf = AmazonCloudWatchEMFProvider(service=SERVICE)  # the namespace: the function's environment
        emf.add_dimension("task", self.task or "unknown")
        if connection is not None:
            if by_connection():
                emf.add_dimensions(service=SERVICE, task=self.task or "unknown", connection=connection)
            else:
                emf.add_metadata("connection", connection)  # for Logs Insights, not a billed series
        for name, unit, found in metrics:
            for value in found:
                if math.isfinite(value):  # an amount beyond a double is not a metric
                    emf.add_metric(name=name, unit=unit, value=value)
        if emf.metric_set:
            print(json.dumps(emf.serialize_metric_set(), separators=(",", ":")))


meter = Meter()


def by_connection() -> bool:
    """Per-connection metric series cost one billed metric each (docs/scale.md); off at scale."""
    return os.environ.get("METRICS_BY_CONNECTION", "true").lower() != "false"


class Count(Protocol):
    def __call__(
        self, name: str, value: float = 1, connection: str | None = None, unit: MetricUnit = MetricUnit.Count
    ) -> None: ...


def count(
    name: str, value: float = 1, connection: str | None = None, unit: MetricUnit = MetricUnit.Count
) -> None:
    """Add to a summed metric of this invocation (published when the handler returns): a count,
    or an amount (unit None: CloudWatch takes doubles, so an amount is for watching, not money)."""
    meter.count(name, value, connection, unit)


def record(name: str, value: float, unit: MetricUnit, connection: str | None = None) -> None:
    """One value of a metric that is not a count (a latency, an amount)."""
    meter.record(name, value, unit, connection)


def entry_point(task: str, correlation_id_path: str | None = "id") -> Callable[[Handler], Handler]:
    """The decorators of every Lambda handler, in one order: traced, metrics flushed last (also
    when the handler raises), the logger with the invocation's context and a correlation id: the
    event's `id` (EventBridge events and rules, S3 notifications), else the invocation's request id
    (a schedule's run: Lambda keeps it across its retries). SQS handlers pass None and set one per
    message."""

    def wear(handler: Handler) -> Handler:
        def run(event: Any, context: Any) -> Any:
            meter.task = task
            found = (
                event.get(correlation_id_path) if correlation_id_path and isinstance(event, dict) else None
            )
            logger.set_correlation_id(
                found if isinstance(found, str) else getattr(context, "aws_request_id", None)
            )
            logger.append_keys(task=task)
            if tracer is not None:
                tracer.put_annotation("task", task)
            try:
                return handler(event, context)
            finally:
                meter.flush()

        logged = logger.inject_lambda_context(clear_state=True)(run)
        if tracer is None:
            return logged  # type: ignore[return-value]
        return tracer.capture_lambda_handler(logged, capture_response=False)  # type: ignore[return-value]

    return wear
