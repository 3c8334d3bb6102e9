"""Attack: the operations dashboard (and every alarm on the connector's own namespace) must show
metrics some code emits. The "Open GL batches by status" widget reads OpenGLBatchesDownloaded,
OpenGLBatchesFailed, OpenGLBatchesPosting, StaleGLBatches and OverdueJobs under task
"watch_operations": no function of this stack has that task and no code counts those names, so
the widget is empty forever (and the issue's alarms on a batch left DOWNLOADED/FAILED too long
and on a job that did not run have nothing to watch)."""

import json
import re

from scripts.local_aws import load_template
from tests.conftest import ROOT

NAMESPACE = "ConnectWiseConnector/${AWS::StackName}"


def emitted_literals() -> set[str]:
    """Every string literal of the layer's and functions' code (a metric name counted anywhere)."""
    found: set[str] = set()
    for path in [*ROOT.glob("layers/connectwise/**/*.py"), *ROOT.glob("functions/**/*.py")]:
        found |= set(re.findall(r'"([A-Za-z][A-Za-z0-9]+)"', path.read_text()))
    return found


def tasks_of_functions() -> set[str]:
    found: set[str] = set()
    for path in ROOT.glob("functions/*/app.py"):
        found |= set(re.findall(r'@entry_point\(\s*"(\w+)"', path.read_text()))
    return found


def dashboard_metrics() -> list[tuple[str, str | None]]:
    """(metric name, task) of every metric line in the dashboard under the stack's namespace."""
    body = load_template()["Resources"]["OperationsDashboard"]["Properties"]["DashboardBody"]
    text = body["Fn::Sub"] if isinstance(body, dict) else body
    widgets = json.loads(text)["widgets"]
    found: list[tuple[str, str | None]] = []
    for widget in widgets:
        previous: list[str] = []
        for line in widget.get("properties", {}).get("metrics", []):
            if isinstance(line[0], dict):  # a SEARCH expression
                expression = line[0]["expression"]
                if NAMESPACE in expression:
                    found += [(name, None) for name in re.findall(r'MetricName=\\?"(\w+)', expression)]
                continue
            full = previous[: len(previous) - (len(line) - 1)] + line[1:] if line[0] == "..." else list(line)
            full = [p if p != "." else previous[i] for i, p in enumerate(full)]
            previous = full
            if full[0] == NAMESPACE:
                task = full[full.index("task") + 1] if "task" in full else None
                found.append((full[1], task))
    return found


def test_every_dashboard_metric_of_the_stack_is_emitted_by_some_function() -> None:
    literals, tasks = emitted_literals(), tasks_of_functions()
    never = sorted({name for name, _ in dashboard_metrics() if name not in literals})
    assert not never, f"dashboard lines no code emits: {never}"
    no_task = sorted({task for _, task in dashboard_metrics() if task and task not in tasks})
    assert not no_task, f"dashboard lines for tasks no function has: {no_task}"
