"""How every function is observed: one logger, one metrics namespace (POWERTOOLS_METRICS_NAMESPACE),
correlation ids, and the one decorator stack every handler wears (`entry_point`)."""

import logging
import warnings
from collections.abc import Callable
from typing import Any, TypeVar

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.metrics import MetricUnit

logger = Logger(service="connectwise-connector")
# botocore logs whole replies at DEBUG, GetSecretValue's (the connection's keys) included: never
# let that through, whatever level the function's or the Lambda runtime's logging is set to.
logging.getLogger("botocore").setLevel(logging.INFO)
# A function that counted nothing publishes nothing; that is not worth a warning per invocation.
warnings.filterwarnings("ignore", message="No application metrics to publish")

EVENT_ID = correlation_paths.EVENT_BRIDGE  # a schedule's or an event's id; SQS sets one per message

Handler = TypeVar("Handler", bound=Callable[..., Any])


def entry_point(correlation_id_path: str | None = EVENT_ID) -> Callable[[Handler], Handler]:
    """The decorators of every Lambda handler, in one order: metrics flushed last, the logger
    with the invocation's context and correlation id, state cleared between invocations."""

    def wear(handler: Handler) -> Handler:
        logged = logger.inject_lambda_context(clear_state=True, correlation_id_path=correlation_id_path)(
            handler
        )
        # Made as the handler loads, so it reads the function's namespace from its environment;
        # every Metrics shares one set of metrics, so what `count` adds is flushed by this one.
        return Metrics().log_metrics(logged)  # type: ignore[return-value]

    return wear


def count(name: str, value: int) -> None:
    """Add to a count metric of this invocation (published when the handler returns). Every
    Metrics shares one set of metrics; one made here reads the function's namespace now, so even
    a flush forced by a full set (100 values) is published where the handler's would be."""
    Metrics().add_metric(name=name, unit=MetricUnit.Count, value=value)
