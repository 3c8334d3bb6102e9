"""Every alarm of the template watches a signal the code path it is about really gives: the
metric, with the namespace and dimensions the alarm names, is emitted by that path; a queue the
alarm watches is where that path leaves its message. Run through the local harness."""

import json
from pathlib import Path
from typing import Any

import pytest

from connectwise.accounting_interface.client import AccountingClient
from sandbox.server import SandboxServer
from scripts.harness import LocalEnvironment
from scripts.lambda_local import cold_start, fire, invoke, invoke_async, poll_sqs, scheduled
from scripts.local_aws import _resolve, load_template
from scripts.object_events import deliver, put_object
from tasks.platform.errors import BatchBlockedError
from tests.conftest import ROOT
from tests.integration.test_operator_dead_letters import a_minute_passes
from tests.integration.test_watch_operations import open_batch, ran, register

GL_DOWNLOAD = {"connection": "main", "kinds": ["invoices"]}
# Alarms on what AWS itself measures of every function: Lambda counts an invocation that raised
# in Errors and one it refused in Throttles; tested below by their wiring, and Errors by a raise.
AWS_MEASURED = ("ErrorsAlarm", "ThrottlesAlarm")


def alarms(env: LocalEnvironment) -> dict[str, dict[str, Any]]:
    resources = load_template()["Resources"]
    return {
        name: _resolve(env.stack, r["Properties"])
        for name, r in resources.items()
        if r["Type"] == "AWS::CloudWatch::Alarm"
    }


def emf(out: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in out.splitlines() if line.startswith("{") and '"_aws"' in line]


def watched_values(alarm: dict[str, Any], documents: list[dict[str, Any]]) -> list[float]:
    """The values of the alarm's metric in the documents CloudWatch would file under exactly the
    alarm's namespace and dimensions."""
    want = {d["Name"]: d["Value"] for d in alarm["Dimensions"]}
    found: list[float] = []
    for doc in documents:
        (directive,) = doc["_aws"]["CloudWatchMetrics"]
        names = {m["Name"] for m in directive["Metrics"]}
        sets = [set(s) for s in directive["Dimensions"]]
        if (
            directive["Namespace"] == alarm["Namespace"]
            and alarm["MetricName"] in names
            and set(want) in sets
            and all(doc.get(k) == v for k, v in want.items())
        ):
            found += doc[alarm["MetricName"]]
    return found


def breaches(alarm: dict[str, Any], documents: list[dict[str, Any]]) -> bool:
    assert alarm["ComparisonOperator"] == "GreaterThanThreshold" and alarm["Statistic"] in ("Sum", "Maximum")
    values = watched_values(alarm, documents)
    total = sum(values) if alarm["Statistic"] == "Sum" else max(values, default=0)
    return bool(values) and total > float(alarm["Threshold"])


def queue_depth(env: LocalEnvironment, alarm: dict[str, Any]) -> int:
    """Messages in the queue the alarm watches (waiting, or sent there: nothing reads them)."""
    assert alarm["Namespace"] == "AWS/SQS"
    assert alarm["MetricName"] in ("ApproximateNumberOfMessagesVisible", "NumberOfMessagesSent")
    (dimension,) = alarm["Dimensions"]
    url = next(u for u in env.stack.physical.values() if str(u).endswith("/" + dimension["Value"]))
    attributes = env.stack.client("sqs").get_queue_attributes(
        QueueUrl=url, AttributeNames=["ApproximateNumberOfMessages"]
    )["Attributes"]
    return int(attributes["ApproximateNumberOfMessages"])


def test_a_refused_gl_update_and_the_blocked_download_after_it_raise_their_alarms(
    env: LocalEnvironment, client: AccountingClient, capsys: pytest.CaptureFixture[str]
) -> None:
    watched = alarms(env)
    batch_id = invoke_async(env.stack, "DownloadGLBatchFunction", GL_DOWNLOAD)["batch_id"]
    other = client.download_gl_batch(["invoices"])  # the same entries posted elsewhere first
    client.update_gl_batch(other.batch_id, other.gl_entry_ids())
    capsys.readouterr()
    confirmation = json.dumps({"connection": "main", "batch_id": batch_id})
    env.stack.client("sqs").send_message(
        QueueUrl=env.stack.physical["ConfirmationQueue"], MessageBody=confirmation, MessageGroupId="main"
    )
    poll_sqs(env.stack, "ConfirmationQueue", "UpdateGLBatchFunction")
    assert breaches(watched["GLBatchesFailedAlarm"], emf(capsys.readouterr().out))

    assert queue_depth(env, watched["FailedRunsAlarm"]) == 0
    with pytest.raises(BatchBlockedError):  # Lambda counts it in Errors (DownloadGLBatchErrorsAlarm)
        invoke_async(env.stack, "DownloadGLBatchFunction", GL_DOWNLOAD)
    documents = emf(capsys.readouterr().out)
    assert breaches(watched["GLBatchesBlockedAlarm"], documents)
    assert queue_depth(env, watched["FailedRunsAlarm"]) == 1  # after Lambda's two retries
    (message,) = env.stack.client("sqs").receive_message(QueueUrl=env.stack.physical["FailedRunsQueue"])[
        "Messages"
    ]
    record = json.loads(message["Body"])
    assert record["requestPayload"] == GL_DOWNLOAD and record["requestContext"]["approximateInvokeCount"] == 3
    assert (
        record["responsePayload"]["errorType"] == "BatchBlockedError"
        and batch_id in (record["responsePayload"]["errorMessage"])
    )
    # Not alarmed by a path that is not theirs.
    assert not breaches(watched["GLBatchesFailedAlarm"], documents)
    assert not breaches(watched["PaymentsFailedAlarm"], documents)


def test_a_failed_scheduled_run_reaches_the_failure_destination(env: LocalEnvironment) -> None:
    watched = alarms(env)
    (nightly,) = [run for run in scheduled(env.stack) if run.function == "DownloadGLBatchFunction"]
    registry = env.stack.client("dynamodb")
    registry.update_item(  # disabled by hand after the schedule fired: the run is refused
        TableName=env.stack.physical["ConnectionsTable"],
        Key={"name": {"S": "main"}},
        UpdateExpression="SET enabled = :off",
        ExpressionAttributeValues={":off": {"BOOL": False}},
    )
    cold_start()  # no warm container keeps the entry as it was
    fired = fire(env.stack, nightly)
    assert "disabled" in str(fired.error)
    assert queue_depth(env, watched["FailedRunsAlarm"]) == 1
    (message,) = env.stack.client("sqs").receive_message(QueueUrl=env.stack.physical["FailedRunsQueue"])[
        "Messages"
    ]
    assert json.loads(message["Body"])["requestPayload"] == nightly.input
    runs = env.stack.client("dynamodb").get_item(
        TableName=env.stack.physical["LedgerTable"], Key={"pk": {"S": "run#main#nightly-gl"}}
    )["Item"]
    assert runs["outcome"]["S"] == "failed" and "disabled" in runs["detail"]["S"]


def test_failed_and_capped_payments_and_unreadable_messages_raise_their_alarms(
    env: LocalEnvironment, sandbox: SandboxServer, capsys: pytest.CaptureFixture[str]
) -> None:
    watched = alarms(env)
    target = max(sandbox.accounting.site.invoices, key=lambda i: i.total)
    over = str(target.total + 5)
    sqs = env.stack.client("sqs")
    for body in (
        {
            "connection": "main",
            "invoice_number": "NO-SUCH-1",
            "paid_amount": "1.00",
            "date_paid": "2026-11-01T10:00:00+00:00",
            "payment_id": "P-missing",
        },
        {
            "connection": "main",
            "invoice_number": target.number,
            "paid_amount": over,
            "date_paid": "2026-11-01T10:00:00+00:00",
            "payment_id": "P-over",
        },
        "not a payment at all",
    ):
        sqs.send_message(
            QueueUrl=env.stack.physical["PaymentsQueue"],
            MessageBody=body if isinstance(body, str) else json.dumps(body),
            MessageGroupId="main",
        )
    capsys.readouterr()
    poll_sqs(env.stack, "PaymentsQueue", "UploadInvoicePaymentsFunction")
    documents = emf(capsys.readouterr().out)
    assert breaches(watched["PaymentsFailedAlarm"], documents)
    assert breaches(watched["PaymentOveragesAlarm"], documents)
    assert queue_depth(env, watched["PaymentsDeadLetterAlarm"]) == 1  # the unreadable message


def test_a_payment_file_refused_whole_raises_its_alarm(
    env: LocalEnvironment, capsys: pytest.CaptureFixture[str]
) -> None:
    watched = alarms(env)
    hostile = b'<?xml version="1.0"?><!DOCTYPE x [<!ENTITY a "b">]><ArrayOfUpdateInvoicePayment/>'
    capsys.readouterr()
    event = put_object(env.stack, "payment-files/main/export.xml", hostile)
    assert list(deliver(env.stack, event)) == ["SplitPaymentFileFunction"]
    documents = emf(capsys.readouterr().out)
    assert breaches(watched["PaymentFilesRefusedAlarm"], documents)
    assert not breaches(watched["PaymentsFailedAlarm"], documents)


def test_a_batch_left_waiting_and_a_job_that_did_not_run_raise_the_watchers_alarms(
    env: LocalEnvironment, capsys: pytest.CaptureFixture[str]
) -> None:
    watched = alarms(env)
    invoke(env.stack, "WatchOperationsFunction", {"watch": True})
    documents = emf(capsys.readouterr().out)
    assert watched_values(watched["StaleGLBatchesAlarm"], documents) == [0.0]  # looked: nothing waits
    assert not breaches(watched["StaleGLBatchesAlarm"], documents)

    open_batch(env.stack, "main", "b-old", "DOWNLOADED", hours_ago=30, kinds=["invoices"])
    # The registry entry written long ago, its nightly job's last run a failure two days ago.
    a_minute_passes(env)
    ran(env.stack, "main", "nightly-gl", "failed", minutes_ago=2 * 24 * 60)
    invoke(env.stack, "WatchOperationsFunction", {"watch": True})
    documents = emf(capsys.readouterr().out)
    assert breaches(watched["StaleGLBatchesAlarm"], documents)
    assert breaches(watched["OverdueJobsAlarm"], documents)


def test_a_job_the_watcher_cannot_judge_raises_its_alarm(
    env: LocalEnvironment, capsys: pytest.CaptureFixture[str]
) -> None:
    watched = alarms(env)
    wraps = {
        "id": "late",
        "task": "list_reports",
        "schedule": "cron(0 22-2 * * ? *)",
        "flexible_window_minutes": 0,
    }
    register(env.stack, "acme", [wraps])
    capsys.readouterr()
    invoke(env.stack, "WatchOperationsFunction", {"watch": True})
    assert breaches(watched["UnwatchedJobsAlarm"], emf(capsys.readouterr().out))


def test_a_confirmation_for_an_unknown_connection_waits_in_the_dlq_its_alarm_watches(
    env: LocalEnvironment,
) -> None:
    watched = alarms(env)
    env.stack.client("sqs").send_message(
        QueueUrl=env.stack.physical["ConfirmationQueue"],
        MessageBody=json.dumps({"connection": "nobody", "batch_id": "x"}),
        MessageGroupId="nobody",
    )
    poll_sqs(env.stack, "ConfirmationQueue", "UpdateGLBatchFunction")
    assert queue_depth(env, watched["ConfirmationDeadLetterAlarm"]) == 1


def test_connectwise_429s_are_counted_where_the_throttle_alarm_queries(
    env: LocalEnvironment, sandbox: SandboxServer, capsys: pytest.CaptureFixture[str]
) -> None:
    alarm = alarms(env)["ConnectWiseThrottledAlarm"]
    (query,) = alarm["Metrics"]
    sandbox.faults.set({"statuses": [429], "retry_after": 0})
    capsys.readouterr()
    invoke_async(env.stack, "DownloadGLBatchFunction", GL_DOWNLOAD)
    documents = emf(capsys.readouterr().out)
    namespace = env.stack.functions["DownloadGLBatchFunction"]["environment"]["POWERTOOLS_METRICS_NAMESPACE"]
    assert query["Expression"] == (
        f'SELECT SUM(ConnectWiseThrottled) FROM SCHEMA("{namespace}", service, task)'
    )
    throttled = [
        d
        for d in documents
        if "ConnectWiseThrottled" in d
        and d["_aws"]["CloudWatchMetrics"][0]["Namespace"] == namespace
        and ["task", "service"] in d["_aws"]["CloudWatchMetrics"][0]["Dimensions"]
    ]
    assert sum(v for d in throttled for v in d["ConnectWiseThrottled"]) == 1
    assert throttled[0]["connection"] == "main" and throttled[0]["task"] == "download_gl_batch"


def test_every_alarm_is_covered_here_and_goes_to_the_topic_naming_its_runbook(env: LocalEnvironment) -> None:
    watched = alarms(env)
    source = Path(__file__).read_text()
    runbook = (ROOT / "docs/operations.md").read_text()
    anchors = {
        "-".join("".join(c for c in line.lstrip("#").strip().lower() if c.isalnum() or c in " -").split())
        for line in runbook.splitlines()
        if line.startswith("#")
    }
    for name, alarm in watched.items():
        if not name.endswith(AWS_MEASURED):
            assert f'"{name}"' in source, f"{name} has no test here of the path it watches"
        assert alarm["AlarmActions"] == [env.stack.physical.get("AlarmTopic", "AlarmTopic")], name
        anchor = alarm["AlarmDescription"].split("Runbook: docs/operations.md#", 1)[1]
        assert anchor in anchors, f"{name} names runbook section #{anchor}, which docs/operations.md lacks"
    functions = {
        n for n, r in load_template()["Resources"].items() if r["Type"] == "AWS::Serverless::Function"
    }
    for function in functions:
        stem = function.removesuffix("Function")
        for suffix in AWS_MEASURED:
            alarm = watched[stem + suffix]
            assert alarm["Namespace"] == "AWS/Lambda" and alarm["Dimensions"] == [
                {"Name": "FunctionName", "Value": env.stack.physical[function]}
            ]
    # The scheduler DLQ is fed by AWS: Scheduler's dead-letter config and the registry stream's
    # failure destination, both wired to the queue its alarm watches.
    scheduler_dlq = watched["SchedulerDeadLetterAlarm"]["Dimensions"][0]["Value"]
    assert env.stack.physical["SchedulerDeadLetterQueue"].endswith("/" + scheduler_dlq)
