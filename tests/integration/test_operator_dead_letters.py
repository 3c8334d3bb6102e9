"""The operator's `dlq` verbs against the local stack: messages the functions really refused are
listed and inspected without being consumed, replayed where the runbook says they may be (and
refused, left in place, where it says not), a command dying between the send and the delete
leaves a duplicate the functions absorb, and a scheduler dead letter is replayed as a run."""

import json
from decimal import Decimal
from typing import Any

import pytest

from sandbox.server import SandboxServer
from scripts.harness import LocalEnvironment, admin_for, job_event
from tasks.admin.commands import set_enabled
from tests.integration.test_gl_life_cycle import confirm, download, ledger_items
from tests.integration.test_operator_batches import LocalLambda, cli, queued, shown
from tests.integration.test_operator_batches import lambdas as lambdas  # the fixture
from tests.integration.test_payments import deliver, payment, send


def a_minute_passes(env: LocalEnvironment, connection: str = "main") -> None:
    """As if the registry entry had changed long ago (a warm function's cached entry has expired)."""
    env.stack.client("dynamodb").update_item(
        TableName=env.stack.physical["ConnectionsTable"],
        Key={"name": {"S": connection}},
        UpdateExpression="SET updated_at = :long_ago",
        ExpressionAttributeValues={":long_ago": {"S": "2020-01-01T00:00:00Z"}},
    )


def listed(env: LocalEnvironment, capsys: Any, queue: str) -> list[dict[str, Any]]:
    capsys.readouterr()  # the functions' log lines so far
    assert cli(env, "--json", "dlq", "list", queue) == 0
    rows: list[dict[str, Any]] = shown(capsys)
    return rows


def kept(rows: list[dict[str, Any]]) -> list[tuple[str, str, str]]:
    """What a listing shows of each message but the times it was read."""
    return sorted((row["message_id"], row["body"], row["error"]) for row in rows)


def test_a_confirmation_refused_for_a_disabled_connection_is_listed_then_replayed_once_enabled(
    env: LocalEnvironment, capsys: Any
) -> None:
    batch_id = download(env)["batch_id"]
    admin = admin_for(env.stack)
    set_enabled(admin, "main", False)
    confirm(env, {"connection": "main", "batch_id": batch_id})
    [row] = listed(env, capsys, "confirmations")
    assert row["connection"] == "main" and row["group"] == "main"
    assert "connection 'main' is disabled" in row["error"] and batch_id in row["body"]
    assert kept(listed(env, capsys, "confirmations")) == kept([row])  # listing consumed nothing
    assert len(queued(env, "ConfirmationDeadLetterQueue")) == 1  # and left it visible at once
    assert cli(env, "dlq", "inspect", "confirmations", row["message_id"]) == 0
    assert f'"batch_id": "{batch_id}"' in capsys.readouterr().out

    assert cli(env, "dlq", "replay", "confirmations", row["message_id"]) == 1  # still disabled
    assert "connection 'main' is disabled" in capsys.readouterr().out
    set_enabled(admin, "main", True, check=False)
    assert cli(env, "dlq", "replay", "confirmations", row["message_id"]) == 1  # functions may cache it
    assert "a function may hold its old entry for 60 s" in capsys.readouterr().out
    assert queued(env, "ConfirmationQueue") == [] and len(queued(env, "ConfirmationDeadLetterQueue")) == 1

    a_minute_passes(env)
    capsys.readouterr()
    assert cli(env, "--json", "dlq", "replay", "confirmations", row["message_id"]) == 0
    [replayed] = shown(capsys)
    assert replayed["status"] == "replayed" and replayed["group"] == "main"
    assert queued(env, "ConfirmationDeadLetterQueue") == []
    [again] = queued(env, "ConfirmationQueue")
    assert again["Body"] == json.dumps({"connection": "main", "batch_id": batch_id})
    assert "error" not in again.get("MessageAttributes", {})
    confirm(env)
    assert ledger_items(env)[f"batch#main#{batch_id}"]["status"]["S"] == "POSTED"


def test_a_confirmation_sent_in_another_connections_group_is_not_replayed(
    env: LocalEnvironment, capsys: Any
) -> None:
    batch_id = download(env)["batch_id"]
    env.stack.client("sqs").send_message(
        QueueUrl=env.stack.physical["ConfirmationQueue"],
        MessageBody=json.dumps({"connection": "main", "batch_id": batch_id}),
        MessageGroupId="acme",
    )
    confirm(env)
    [row] = listed(env, capsys, "confirmations")
    assert cli(env, "dlq", "replay", "confirmations", "--all") == 1
    out = capsys.readouterr().out
    assert "status: refused" in out and "was sent in message group 'acme'" in out
    assert (
        kept(listed(env, capsys, "confirmations")) == kept([row]) and queued(env, "ConfirmationQueue") == []
    )


def test_a_confirmation_naming_entries_a_posted_batch_was_not_posted_with_is_not_replayed(
    env: LocalEnvironment, capsys: Any, sandbox: SandboxServer
) -> None:
    batch_id = download(env)["batch_id"]
    manifest = json.loads(
        env.stack.client("s3")
        .get_object(
            Bucket=env.stack.physical["OutputBucket"], Key=f"gl-batches/main/{batch_id}/manifest.json"
        )["Body"]
        .read()
    )
    first, *rest = manifest["gl_entry_ids"]
    confirm(env, {"connection": "main", "batch_id": batch_id, "gl_entry_ids": [first]})
    confirm(env, {"connection": "main", "batch_id": batch_id, "gl_entry_ids": rest})  # refused: posted
    [row] = listed(env, capsys, "confirmations")
    assert "was already posted with" in row["error"]
    assert cli(env, "dlq", "replay", "confirmations", row["message_id"]) == 1
    assert "confirm them with that batch" in capsys.readouterr().out
    assert kept(listed(env, capsys, "confirmations")) == kept([row])


def test_payments_replayed_and_replayed_again_after_dying_between_send_and_delete_apply_once(
    env: LocalEnvironment, capsys: Any, sandbox: SandboxServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    from tasks.admin.dead_letter_queues import Held

    invoice = sandbox.accounting.site.invoices[0]
    set_enabled(admin_for(env.stack), "main", False)
    send(env, payment(invoice.number, "12.50", "PAY-1"))
    deliver(env)
    [row] = listed(env, capsys, "payments")
    assert row["connection"] == "main" and "disabled" in row["error"]
    set_enabled(admin_for(env.stack), "main", True, check=False)
    a_minute_passes(env)

    def dies(self: Held, letter: Any) -> None:
        raise KeyboardInterrupt  # the command killed after its send, before its delete

    monkeypatch.setattr(Held, "delete", dies)
    with pytest.raises(KeyboardInterrupt):
        cli(env, "dlq", "replay", "payments", row["message_id"])
    monkeypatch.undo()
    assert len(queued(env, "PaymentsQueue")) == 1 and len(queued(env, "PaymentsDeadLetterQueue")) == 1
    deliver(env)
    assert invoice.paid_amount == Decimal("12.50")
    assert cli(env, "dlq", "replay", "payments", "--all") == 0  # the same payment sent twice
    assert queued(env, "PaymentsDeadLetterQueue") == []
    deliver(env)
    assert invoice.paid_amount == Decimal("12.50")  # a duplicate: applied once
    assert queued(env, "PaymentsDeadLetterQueue") == []


def test_a_payment_message_whose_attribute_and_group_differ_is_not_replayed(
    env: LocalEnvironment, capsys: Any, sandbox: SandboxServer
) -> None:
    invoice = sandbox.accounting.site.invoices[0]
    send(env, payment(invoice.number, "1.00", "PAY-X"), attributes={"connection": "main"}, group="globex")
    send(env, payment(invoice.number, "1.00", "PAY-Y"), attributes={"connection": "acme/2026"}, group=None)
    deliver(env)
    rows = listed(env, capsys, "payments")
    assert len(rows) == 2
    capsys.readouterr()
    assert cli(env, "--json", "dlq", "replay", "payments", "--all") == 1
    reasons = " | ".join(r["reason"] for r in shown(capsys))
    assert "MessageGroupId 'globex' differ" in reasons and "not a connection's name" in reasons
    assert kept(listed(env, capsys, "payments")) == kept(rows)
    assert queued(env, "PaymentsQueue") == [] and invoice.paid_amount == 0


def scheduler_letter(env: LocalEnvironment, body: str, error: str = "Lambda throttled") -> str:
    """What Scheduler puts in its DLQ for a run it could not deliver: the schedule's input, with
    the error and the schedule in message attributes."""
    attributes = {
        "ERROR_CODE": "AWS.Scheduler.ThrottlingException",
        "ERROR_MESSAGE": error,
        "SCHEDULE_ARN": "arn:aws:scheduler:us-east-1:123456789012:schedule/local-jobs/cw-x-nightly-gl",
        "TARGET_ARN": env.stack.arns["DownloadGLBatchFunction"],
        "RETRY_ATTEMPTS": "3",
    }
    sent = env.stack.client("sqs").send_message(
        QueueUrl=env.stack.physical["SchedulerDeadLetterQueue"],
        MessageBody=body,
        MessageAttributes={k: {"DataType": "String", "StringValue": v} for k, v in attributes.items()},
    )
    return str(sent["MessageId"])


def test_a_scheduled_run_not_delivered_is_replayed_as_a_run_of_its_job_now(
    env: LocalEnvironment, capsys: Any, lambdas: LocalLambda
) -> None:
    run = job_event(env.stack, "main", "nightly-gl")
    message_id = scheduler_letter(env, json.dumps(run))
    [row] = listed(env, capsys, "scheduler")
    assert row["error"] == "Lambda throttled" and row["message_id"] == message_id
    capsys.readouterr()
    assert cli(env, "--json", "dlq", "replay", "scheduler", message_id) == 0
    [replayed] = shown(capsys)
    assert (
        replayed["job"] == "nightly-gl" and replayed["function"] == env.stack.arns["DownloadGLBatchFunction"]
    )
    [(_, kind, payload)] = lambdas.calls
    assert kind == "Event" and json.loads(payload) == run
    assert [pk for pk in ledger_items(env) if pk.startswith("batch#main#")]
    assert queued(env, "SchedulerDeadLetterQueue") == []


def test_a_reconciler_failure_is_not_replayed_but_deleted_on_request(
    env: LocalEnvironment, capsys: Any, lambdas: LocalLambda
) -> None:
    failure = {
        "requestContext": {"condition": "RetryAttemptsExhausted"},
        "DDBStreamBatchInfo": {"batchSize": 1},
    }
    message_id = scheduler_letter(env, json.dumps(failure), error="")
    assert cli(env, "dlq", "replay", "scheduler", message_id) == 1
    assert "registry change the reconciler could not apply" in capsys.readouterr().out
    assert len(queued(env, "SchedulerDeadLetterQueue")) == 1 and lambdas.calls == []
    assert cli(env, "dlq", "delete", "scheduler", message_id) == 2  # without --yes
    assert len(queued(env, "SchedulerDeadLetterQueue")) == 1
    assert cli(env, "dlq", "delete", "scheduler", message_id, "--yes") == 0
    assert queued(env, "SchedulerDeadLetterQueue") == []


def test_a_scheduled_run_of_a_disabled_connection_is_not_replayed(
    env: LocalEnvironment, capsys: Any, lambdas: LocalLambda
) -> None:
    message_id = scheduler_letter(env, json.dumps(job_event(env.stack, "main", "nightly-gl")))
    set_enabled(admin_for(env.stack), "main", False)
    assert cli(env, "dlq", "replay", "scheduler", message_id) == 1
    assert (
        "connection 'main' is disabled in the connection registry; nothing was run" in capsys.readouterr().out
    )
    assert len(queued(env, "SchedulerDeadLetterQueue")) == 1 and lambdas.calls == []


def test_hostile_bodies_print_as_one_harmless_line(env: LocalEnvironment, capsys: Any) -> None:
    scheduler_letter(env, "\x1b[2J\x1b[31mforged\nrefused: line\r", error="\x1b]0;title\x07")
    assert cli(env, "dlq", "list", "scheduler") == 0
    out = capsys.readouterr().out
    assert "\x1b" not in out and "\r" not in out and "\x07" not in out
    assert len(out.splitlines()) == 3 and "\\x1b[2J" in out and "\\nrefused: line" in out


def test_bad_dlq_input_is_refused_and_changes_nothing(env: LocalEnvironment, capsys: Any) -> None:
    message_id = scheduler_letter(env, "{}")
    usages = [
        ["dlq", "list", "orders"],
        ["dlq", "replay", "scheduler"],
        ["dlq", "replay", "scheduler", message_id, "--all"],
        ["dlq", "inspect", "scheduler", "../../etc"],
        ["dlq", "list", "scheduler", "--limit", "0"],
        ["batches", "--status", "LOST"],
    ]
    for args in usages:
        try:
            code = cli(env, *args)
        except SystemExit as exc:
            code = int(str(exc.code))
        assert code == 2, args
    for action in ("inspect", "replay"):
        assert cli(env, "dlq", action, "scheduler", "0b7e2f7a-1111-2222-3333-444455556666") == 1
        assert (
            "no message '0b7e2f7a-1111-2222-3333-444455556666' in the scheduler DLQ"
            in capsys.readouterr().err
        )
    assert [m["MessageId"] for m in queued(env, "SchedulerDeadLetterQueue")] == [message_id]


def test_a_job_missed_twice_is_run_once_and_both_letters_deleted(
    env: LocalEnvironment, capsys: Any, lambdas: LocalLambda
) -> None:
    run = json.dumps(job_event(env.stack, "main", "nightly-gl"))
    scheduler_letter(env, run)
    scheduler_letter(env, run, error="Lambda throttled again")
    capsys.readouterr()
    assert cli(env, "--json", "dlq", "replay", "scheduler", "--all") == 0
    assert [r["status"] for r in shown(capsys)] == ["replayed", "replayed"]
    assert len(lambdas.calls) == 1 and queued(env, "SchedulerDeadLetterQueue") == []


def test_a_send_aws_refuses_keeps_the_message_and_says_so(
    env: LocalEnvironment, capsys: Any, sandbox: SandboxServer
) -> None:
    set_enabled(admin_for(env.stack), "main", False)
    send(env, payment(sandbox.accounting.site.invoices[0].number, "1.00", "PAY-Z"))
    deliver(env)
    set_enabled(admin_for(env.stack), "main", True, check=False)
    a_minute_passes(env)
    [row] = listed(env, capsys, "payments")
    gone = env.stack.physical["PaymentsQueue"] + "-deleted"
    assert cli(env, "--payments-queue", gone, "--json", "dlq", "replay", "payments", "--all") == 1
    [failed] = shown(capsys)
    assert failed["status"] == "failed" and "NonExistentQueue" in failed["reason"]
    assert kept(listed(env, capsys, "payments")) == kept([row])


def test_a_run_that_failed_three_times_is_listed_with_its_error_and_replayed_as_a_run_once_fixed(
    env: LocalEnvironment, capsys: Any, lambdas: LocalLambda
) -> None:
    from scripts.lambda_local import cold_start, invoke_async

    run = job_event(env.stack, "main", "nightly-gl")
    set_enabled(admin_for(env.stack), "main", False)
    cold_start()
    with pytest.raises(Exception, match="disabled"):
        invoke_async(env.stack, "DownloadGLBatchFunction", run)  # Lambda's record goes to FailedRunsQueue
    [row] = listed(env, capsys, "failed-runs")
    assert "is disabled in the connection registry" in row["error"]
    assert cli(env, "dlq", "replay", "failed-runs", row["message_id"]) == 1  # still disabled: refused
    assert len(queued(env, "FailedRunsQueue")) == 1 and lambdas.calls == []
    set_enabled(admin_for(env.stack), "main", True, check=False)
    a_minute_passes(env)
    capsys.readouterr()
    assert cli(env, "--json", "dlq", "replay", "failed-runs", row["message_id"]) == 0
    [(_, kind, payload)] = lambdas.calls
    assert kind == "Event" and json.loads(payload) == run
    assert queued(env, "FailedRunsQueue") == []


def test_a_failed_event_that_is_no_jobs_run_is_not_replayed(
    env: LocalEnvironment, capsys: Any, lambdas: LocalLambda
) -> None:
    from scripts.lambda_local import invoke_async

    event = {
        "id": "e-1",
        "detail-type": "RecreateGLBatch",
        "source": "connectwise.connector.requests",
        "detail": {},
    }
    with pytest.raises(Exception):  # noqa: B017 - whatever the request parser says
        invoke_async(env.stack, "RecreateGLBatchFunction", event)
    [row] = listed(env, capsys, "failed-runs")
    assert row["error"]
    capsys.readouterr()
    assert cli(env, "dlq", "replay", "failed-runs", row["message_id"]) == 1
    assert "not a job's run" in capsys.readouterr().out and lambdas.calls == []
    assert len(queued(env, "FailedRunsQueue")) == 1
