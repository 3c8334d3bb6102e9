"""Metrics reach the function's namespace however they are flushed."""

import json

import pytest
from aws_lambda_powertools import Metrics

from tasks.platform.observability import count


def test_a_full_set_of_counts_is_flushed_to_the_functions_namespace(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """Powertools flushes on its own once a metric holds 100 values (a long batch, or metrics
    disabled so the handler never flushes); that flush too must know the namespace, which the
    function's environment gives only once it runs."""
    monkeypatch.setenv("POWERTOOLS_METRICS_NAMESPACE", "ConnectorUnderTest")
    monkeypatch.delenv("POWERTOOLS_METRICS_DISABLED", raising=False)
    try:
        for _ in range(100):
            count("PaymentsApplied", 1)
    finally:
        Metrics().clear_metrics()
    flushed = [json.loads(line) for line in capsys.readouterr().out.splitlines() if "_aws" in line]
    assert flushed and flushed[0]["_aws"]["CloudWatchMetrics"][0]["Namespace"] == "ConnectorUnderTest"
    assert flushed[0]["PaymentsApplied"] == [1.0] * 100
