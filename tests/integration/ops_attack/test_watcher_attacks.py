"""Outside review of the watcher (issue 15): what it does not see must reach an alarm."""

from pathlib import Path
from typing import Any

import pytest
import yaml

from connectwise.transport import Deadline
from scripts.local_aws import Stack
from tasks.connections.watch import Watcher, WatchSettings
from tasks.platform.observability import meter
from tasks.platform.registry import Registry
from tests.integration.test_watch_operations import every_minute, metrics, register, stack  # noqa: F401

ROOT = Path(__file__).resolve().parents[3]


def test_connections_left_unchecked_for_lack_of_time_reach_a_metric(
    stack: Stack,  # noqa: F811
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """With many connections the watcher runs out of time and leaves the rest `unchecked`: it
    logs a WARNING and returns success, but emits no metric for them (no OverdueJobs, no
    UnwatchedJobs), so OverdueJobsAlarm (TreatMissingData notBreaching) stays OK while their
    jobs never run. Whatever the watcher cannot judge must show as a metric an alarm reads."""
    register(stack, "acme", [every_minute("never")])  # never ran: overdue if it were checked
    db = stack.client("dynamodb")
    watcher = Watcher(
        db, stack.physical["LedgerTable"], Registry(db, stack.physical["ConnectionsTable"]), WatchSettings()
    )
    monkeypatch.setenv("POWERTOOLS_METRICS_NAMESPACE", "ConnectWiseConnector/local")
    monkeypatch.setattr(meter, "task", "watch_operations")
    capsys.readouterr()
    findings = watcher.watch(Deadline(1.0))
    meter.flush()
    assert findings.unchecked == ["acme"]
    found = metrics(capsys.readouterr().out).get("acme", {})
    assert found.get("OverdueJobs", 0) + found.get("UnwatchedJobs", 0) > 0, found


def _alarmed_metrics() -> set[str]:
    class Loader(yaml.SafeLoader):
        pass

    Loader.add_multi_constructor("!", lambda loader, suffix, node: None)
    template: dict[str, Any] = yaml.load((ROOT / "template.yaml").read_text(), Loader=Loader)
    return {
        resource["Properties"].get("MetricName")
        for resource in template["Resources"].values()
        if isinstance(resource, dict) and resource.get("Type") == "AWS::CloudWatch::Alarm"
    }


def test_a_job_the_watcher_cannot_evaluate_reaches_an_alarm() -> None:
    """A schedule the registry accepts but the watcher cannot evaluate (a wrap-around range such
    as cron(0 22-2 * * ? *), tests/integration/test_watch_operations.py uses one) is counted as
    UnwatchedJobs, which no alarm reads: such a job can stop running for good and nobody is
    told. Either the registry refuses what the watcher cannot judge, or an alarm reads it."""
    assert "UnwatchedJobs" in _alarmed_metrics()
