"""Metrics reach the function's namespace, dimensioned by task and connection, however the
handler ends; every log line carries a correlation id from its trigger."""

import io
import json
import os
import subprocess
import sys
import threading
from types import SimpleNamespace
from typing import Any

import pytest
from aws_lambda_powertools.metrics import MetricUnit

from tasks.platform.observability import count, entry_point, logger, record
from tests.conftest import ROOT

CONTEXT = SimpleNamespace(
    function_name="fn",
    memory_limit_in_mb=128,
    invoked_function_arn="arn:aws:lambda:x:1:function:fn",
    aws_request_id="req-1",
)


@pytest.fixture(autouse=True)
def namespace(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("POWERTOOLS_METRICS_NAMESPACE", "ConnectorUnderTest")
    monkeypatch.delenv("POWERTOOLS_METRICS_DISABLED", raising=False)
    monkeypatch.delenv("METRICS_BY_CONNECTION", raising=False)


def documents(out: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in out.splitlines() if line.startswith("{") and '"_aws"' in line]


def test_counts_are_summed_per_connection_and_dimensioned_by_task_and_connection(
    capsys: pytest.CaptureFixture[str],
) -> None:
    @entry_point("upload_invoice_payments")
    def handler(event: Any, context: Any) -> None:
        for _ in range(150):  # more than one EMF document takes as values: summed, one value
            count("PaymentsApplied", 1, "acme")
        count("PaymentsApplied", 2, "globex")
        count("PaymentsRetried", 1)

    handler({}, CONTEXT)
    found = documents(capsys.readouterr().out)
    by_connection = {d.get("connection"): d for d in found}
    assert set(by_connection) == {"acme", "globex", None}
    acme = by_connection["acme"]
    assert acme["PaymentsApplied"] == [150.0] and acme["task"] == "upload_invoice_payments"
    emf = acme["_aws"]["CloudWatchMetrics"][0]
    assert emf["Namespace"] == "ConnectorUnderTest"
    assert emf["Dimensions"] == [["task", "service"], ["service", "task", "connection"]]
    assert by_connection["globex"]["PaymentsApplied"] == [2.0]
    none = by_connection[None]
    assert none["PaymentsRetried"] == [1.0] and none["_aws"]["CloudWatchMetrics"][0]["Dimensions"] == [
        ["task", "service"]
    ]


def test_without_connection_dimensions_the_connection_is_a_property_not_a_series(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("METRICS_BY_CONNECTION", "false")

    @entry_point("download_gl_batch")
    def handler(event: Any, context: Any) -> None:
        count("GLBatchesBlocked", 1, "acme")

    handler({}, CONTEXT)
    (doc,) = documents(capsys.readouterr().out)
    assert doc["connection"] == "acme" and doc["GLBatchesBlocked"] == [1.0]
    assert doc["_aws"]["CloudWatchMetrics"][0]["Dimensions"] == [["task", "service"]]


def test_metrics_are_published_when_the_handler_raises_and_values_are_chunked(
    capsys: pytest.CaptureFixture[str],
) -> None:
    @entry_point("download_gl_batch")
    def handler(event: Any, context: Any) -> None:
        workers = [
            threading.Thread(
                target=lambda: [
                    record("ConnectWiseLatency", 5.0, MetricUnit.Milliseconds, "acme") for _ in range(125)
                ]
            )
            for _ in range(2)
        ]
        for worker in workers:
            worker.start()
        for worker in workers:
            worker.join()
        count("RunsFailed", 1, "acme")
        raise RuntimeError("the run failed")

    with pytest.raises(RuntimeError):
        handler({}, CONTEXT)
    found = documents(capsys.readouterr().out)
    latencies = [v for d in found for v in d.get("ConnectWiseLatency", [])]
    assert len(latencies) == 250 and all(len(d.get("ConnectWiseLatency", [])) <= 100 for d in found)
    assert [v for d in found for v in d.get("RunsFailed", [])] == [1.0]
    handler2 = entry_point("download_gl_batch")(lambda event, context: None)
    handler2({}, CONTEXT)
    assert documents(capsys.readouterr().out) == []  # nothing carried into the next invocation


@pytest.mark.parametrize(
    ("event", "expected"),
    [({"id": "evt-7", "detail": {}}, "evt-7"), ({"connection": "acme", "job": "nightly"}, "req-1")],
)
def test_every_log_line_carries_the_triggers_correlation_id(event: dict[str, Any], expected: str) -> None:
    @entry_point("download_gl_batch")
    def handler(event: Any, context: Any) -> None:
        logger.info("working")

    stream = io.StringIO()
    previous = logger.registered_handler.setStream(stream)  # the logger keeps the stdout of its birth
    try:
        handler(event, CONTEXT)
    finally:
        logger.registered_handler.setStream(previous)
    lines = [json.loads(line) for line in stream.getvalue().splitlines() if '"working"' in line]
    assert lines and lines[0]["correlation_id"] == expected and lines[0]["task"] == "download_gl_batch"


@pytest.mark.parametrize("tracing", [True, False])
def test_a_handler_runs_traced_inside_lambda_and_never_loads_the_xray_sdk_untraced(tracing: bool) -> None:
    """Inside Lambda (LAMBDA_TASK_ROOT) with tracing on, the handler is traced (the X-Ray SDK
    sends to the daemon's loopback address, whether or not one listens); with it off, the SDK is
    never imported (it builds AWS clients of its own at import)."""
    probe = (
        "import json, sys\n"
        "from types import SimpleNamespace\n"
        "from tasks.platform.observability import entry_point, tracer\n"
        "handler = entry_point('download_gl_batch')(lambda event, context: {'traced': tracer is not None})\n"
        "context = SimpleNamespace(function_name='fn', memory_limit_in_mb=128, aws_request_id='r1',\n"
        "                          invoked_function_arn='arn:aws:lambda:us-east-1:1:function:fn')\n"
        "print(json.dumps(handler({'id': 'e1'}, context) | {'sdk': 'aws_xray_sdk.core' in sys.modules}))\n"
    )
    env = os.environ | {
        "PYTHONPATH": f"{ROOT / 'layers/connectwise'}:{ROOT}",
        "LAMBDA_TASK_ROOT": str(ROOT / "functions/download_gl_batch"),
        "POWERTOOLS_TRACE_DISABLED": "false" if tracing else "true",
        "_X_AMZN_TRACE_ID": "Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;Sampled=1",
        "AWS_REGION": "us-east-1",
    }
    done = subprocess.run([sys.executable, "-c", probe], env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr[-2000:]
    assert json.loads(done.stdout.strip().splitlines()[-1]) == {"traced": tracing, "sdk": tracing}


def test_metrics_that_cannot_be_published_never_fail_the_invocation(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A failed invocation is retried (an SQS batch settled again): its metrics must not cause one."""

    @entry_point("upload_invoice_payments")
    def handler(event: Any, context: Any) -> str:
        count("PaymentAmountApplied", float("inf"), "acme", MetricUnit.NoUnit)  # skipped
        count("PaymentsApplied", 1, "acme")
        count("Bad Metric", 1, "globex")
        return "settled"

    def refuse(self: Any, connection: str | None, metrics: Any) -> None:
        if connection == "globex":
            raise ValueError("cannot serialize")
        original(self, connection, metrics)

    from tasks.platform.observability import Meter

    original = Meter._write
    monkeypatch.setattr(Meter, "_write", refuse)
    assert handler({}, CONTEXT) == "settled"
    (doc,) = documents(capsys.readouterr().out)
    assert doc["PaymentsApplied"] == [1.0] and "PaymentAmountApplied" not in doc
