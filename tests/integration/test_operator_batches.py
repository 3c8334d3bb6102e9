"""The operator's verbs of `python -m tasks.admin` on GL batches and jobs, against the local stack:
batches, batch, abandon (through the confirmation queue, as the accounting system would) and run,
with their refusals changing nothing."""

import json
from typing import Any

import boto3
import pytest

from scripts.harness import LocalEnvironment, admin_for, job_event, reconcile
from scripts.lambda_local import invoke, poll_sqs
from tasks.admin.commands import set_enabled, update
from tasks.connections.schedules import schedule_name
from tasks.platform.batch_ledger import BatchRecord
from tests.integration.test_gl_life_cycle import confirm, download, ledger_items

STACK_OPTIONS = {  # option -> the local stack's resource it names
    "--registry-table": "ConnectionsTable",
    "--ledger-table": "LedgerTable",
    "--schedule-group": "JobSchedules",
    "--confirmation-queue": "ConfirmationQueue",
    "--confirmation-dlq": "ConfirmationDeadLetterQueue",
    "--payments-queue": "PaymentsQueue",
    "--payments-dlq": "PaymentsDeadLetterQueue",
    "--scheduler-dlq": "SchedulerDeadLetterQueue",
    "--failed-runs": "FailedRunsQueue",
}


class LocalLambda:
    """Lambda's Invoke for the local stack: the function runs here, as Lambda would run it."""

    def __init__(self, env: LocalEnvironment) -> None:
        self.env, self.calls = env, []  # type: ignore[var-annotated]

    def invoke(self, FunctionName: str, InvocationType: str, Payload: bytes) -> dict[str, Any]:
        self.calls.append((FunctionName, InvocationType, Payload))
        function = next(lid for lid, arn in self.env.stack.arns.items() if arn == FunctionName)
        invoke(self.env.stack, function, json.loads(Payload))
        return {"StatusCode": 202}


@pytest.fixture
def lambdas(env: LocalEnvironment, monkeypatch: pytest.MonkeyPatch) -> LocalLambda:
    from tasks.admin import verbs

    local = LocalLambda(env)
    monkeypatch.setattr(
        verbs, "CLIENT", lambda service: local if service == "lambda" else boto3.client(service)
    )
    return local


def cli(env: LocalEnvironment, *args: str) -> int:
    from tasks.admin.__main__ import main

    options = [part for option, lid in STACK_OPTIONS.items() for part in (option, env.stack.physical[lid])]
    return main([*options, *args])


def shown(capsys: Any) -> Any:
    """What the command printed (a function it ran locally prints its metrics lines too)."""
    out = "\n".join(line for line in capsys.readouterr().out.splitlines() if not line.startswith('{"_aws"'))
    return json.loads(out)


def queued(env: LocalEnvironment, queue: str) -> list[dict[str, Any]]:
    """The queue's messages, left in it."""
    sqs, url = env.stack.client("sqs"), env.stack.physical[queue]
    messages = sqs.receive_message(
        QueueUrl=url, MaxNumberOfMessages=10, VisibilityTimeout=0, MessageAttributeNames=["All"]
    ).get("Messages", [])
    return list(messages)


def put_batch(
    env: LocalEnvironment, batch_id: str, status: str, created_at: int, connection: str = "main"
) -> None:
    """A ledger item as the functions write it (for states and times a run does not make at will)."""
    record = BatchRecord(
        connection, batch_id, ["expenses"], status, created_at, {"expenses": 2}, {"expenses": "10.05"}, {}, 3
    )
    env.stack.client("dynamodb").put_item(TableName=env.stack.physical["LedgerTable"], Item=record.to_item())


def test_batches_lists_every_batch_oldest_first_and_filters(env: LocalEnvironment, capsys: Any) -> None:
    put_batch(env, "old-failed", "FAILED", 1_000)
    put_batch(env, "older-posted", "POSTED", 500)
    put_batch(env, "theirs", "DOWNLOADED", 700, connection="other")
    fresh = download(env)["batch_id"]
    assert cli(env, "--json", "batches") == 0
    rows = shown(capsys)
    assert [r["batch_id"] for r in rows] == ["older-posted", "theirs", "old-failed", fresh]
    row = rows[-1]
    assert row["status"] == "DOWNLOADED" and row["connection"] == "main"
    assert row["totals"] == ledger_totals(env, fresh)  # decimal strings as stored
    assert 0 <= row["unchanged_seconds"] <= row["age_seconds"]
    assert rows[2]["age_seconds"] > rows[-1]["age_seconds"]

    assert cli(env, "--json", "batches", "--connection", "main", "--open") == 0
    assert [r["batch_id"] for r in shown(capsys)] == ["old-failed", fresh]
    assert cli(env, "--json", "batches", "--status", "POSTED", "--status", "FAILED") == 0
    assert [r["batch_id"] for r in shown(capsys)] == ["older-posted", "old-failed"]
    assert cli(env, "batches", "--connection", "other") == 0
    text = capsys.readouterr().out
    assert "DOWNLOADED" in text and "theirs" in text and "expenses 10.05" in text and fresh not in text


def test_an_unreadable_batch_item_is_named_and_the_others_listed(env: LocalEnvironment, capsys: Any) -> None:
    put_batch(env, "good", "DOWNLOADED", 1_000)
    env.stack.client("dynamodb").put_item(
        TableName=env.stack.physical["LedgerTable"],
        Item={"pk": {"S": "batch#main#edited"}, "status": {"S": "X"}},
    )
    assert cli(env, "batches") == 1
    out = capsys.readouterr()
    assert "good" in out.out and "unreadable batch: batch#main#edited" in out.err


def ledger_totals(env: LocalEnvironment, batch_id: str) -> dict[str, str]:
    item = ledger_items(env)[f"batch#main#{batch_id}"]
    return {kind: value["S"] for kind, value in item["totals"]["M"].items()}


def test_batch_shows_one_batch_through_its_posting(env: LocalEnvironment, capsys: Any) -> None:
    downloaded = download(env)
    batch_id = downloaded["batch_id"]
    assert cli(env, "--json", "batch", "main", batch_id) == 0
    one = shown(capsys)
    assert one["status"] == "DOWNLOADED" and one["holds"] == sorted(one["kinds"])
    assert one["totals"] == ledger_totals(env, batch_id) and one["counts"] == downloaded["counts"]
    assert one["keys"]["manifest"].startswith(f"gl-batches/main/{batch_id}/")
    assert one["posted_count"] == 0 and one["confirmation"] == "" and "abandon" in one["next"]
    confirm(env, {"connection": "main", "batch_id": batch_id})
    assert cli(env, "--json", "batch", "main", batch_id) == 0
    posted = shown(capsys)
    assert posted["status"] == "POSTED" and posted["holds"] == []
    assert posted["posted_count"] == posted["gl_entry_count"] > 0
    assert posted["confirmation"] == f"gl-batches/main/{batch_id}/confirmation.json"
    assert cli(env, "batch", "main", batch_id) == 0
    assert f"batch_id: {batch_id}" in capsys.readouterr().out

    assert cli(env, "batch", "main", "no-such-batch") == 1
    assert "connection 'main' has no batch 'no-such-batch'" in capsys.readouterr().err
    for bad in (["batch", "main", "x" * 65], ["batch", "a/b", "x"], ["batch", "main", "a\x1bb"]):
        with pytest.raises(SystemExit) as usage:
            cli(env, *bad)
        assert usage.value.code == 2


def test_abandon_is_sent_as_the_accounting_system_would_and_the_function_abandons(
    env: LocalEnvironment, capsys: Any
) -> None:
    batch_id = download(env)["batch_id"]
    env.events()
    assert cli(env, "abandon", "main", batch_id) == 2  # no --yes
    assert "add --yes" in capsys.readouterr().err and queued(env, "ConfirmationQueue") == []
    assert cli(env, "--json", "abandon", "main", batch_id, "--yes") == 0
    sent = shown(capsys)
    assert sent["status"] == "sent" and sent["was"] == "DOWNLOADED"
    [message] = queued(env, "ConfirmationQueue")
    assert json.loads(message["Body"]) == {"connection": "main", "batch_id": batch_id, "action": "abandon"}
    poll_sqs(env.stack, "ConfirmationQueue", "UpdateGLBatchFunction")
    items = ledger_items(env)
    assert items[f"batch#main#{batch_id}"]["status"]["S"] == "ABANDONED"
    assert not [pk for pk in items if pk.startswith("open#main#")]
    assert [e["detail-type"] for e in env.events()] == ["GLBatchAbandoned"]

    assert cli(env, "abandon", "main", batch_id, "--yes") == 1
    assert "is ABANDONED already; nothing was sent" in capsys.readouterr().err
    assert queued(env, "ConfirmationQueue") == []


def test_a_failed_batch_may_be_abandoned(env: LocalEnvironment, capsys: Any) -> None:
    put_batch(env, "refused-by-cw", "FAILED", 1_000)
    assert cli(env, "abandon", "main", "refused-by-cw", "--yes") == 0
    assert "was: FAILED" in capsys.readouterr().out and len(queued(env, "ConfirmationQueue")) == 1


@pytest.mark.parametrize(
    ("status", "refusal"),
    [("POSTED", "is POSTED: its records are posted"), ("POSTING", "is POSTING: an update is running")],
)
def test_abandon_refuses_a_posted_or_posting_batch_and_sends_nothing(
    env: LocalEnvironment, capsys: Any, status: str, refusal: str
) -> None:
    put_batch(env, "b-1", status, 1_000)
    before = ledger_items(env)
    assert cli(env, "abandon", "main", "b-1", "--yes") == 1
    assert refusal in capsys.readouterr().err
    assert queued(env, "ConfirmationQueue") == [] and ledger_items(env) == before


def test_abandon_refuses_an_unknown_batch_or_a_connection_not_served(
    env: LocalEnvironment, capsys: Any
) -> None:
    put_batch(env, "b-1", "DOWNLOADED", 1_000)
    assert cli(env, "abandon", "main", "b-2", "--yes") == 1
    assert "has no batch 'b-2'" in capsys.readouterr().err
    assert cli(env, "abandon", "nobody", "b-1", "--yes") == 1
    assert "unknown connection 'nobody'" in capsys.readouterr().err
    set_enabled(admin_for(env.stack), "main", False)
    assert cli(env, "abandon", "main", "b-1", "--yes") == 1
    assert "connection 'main' is disabled" in capsys.readouterr().err
    assert queued(env, "ConfirmationQueue") == []
    assert ledger_items(env)["batch#main#b-1"]["status"]["S"] == "DOWNLOADED"


def test_run_invokes_the_jobs_function_with_exactly_its_schedules_input(
    env: LocalEnvironment, capsys: Any, lambdas: LocalLambda
) -> None:
    assert cli(env, "--json", "run", "main", "nightly-gl") == 0
    started = shown(capsys)
    assert started["status"] == "started" and started["function"] == env.stack.arns["DownloadGLBatchFunction"]
    [(function, kind, payload)] = lambdas.calls
    schedule = env.stack.client("scheduler").get_schedule(
        GroupName=env.stack.physical["JobSchedules"], Name=schedule_name("main", "nightly-gl")
    )
    assert function == started["function"] and kind == "Event"
    assert payload == schedule["Target"]["Input"].encode()  # byte for byte
    assert json.loads(payload) == job_event(env.stack, "main", "nightly-gl")
    assert [pk for pk in ledger_items(env) if pk.startswith("batch#main#")]  # the download ran
    runs = admin_for(env.stack).runs.last("main", ["nightly-gl"])
    assert runs["nightly-gl"].outcome == "succeeded"


def test_run_refuses_what_would_not_run_tonight_and_invokes_nothing(
    env: LocalEnvironment, capsys: Any, lambdas: LocalLambda
) -> None:
    admin = admin_for(env.stack)
    refusals = [
        (("run", "nobody", "nightly-gl"), "unknown connection 'nobody'"),
        (("run", "main", "weekly-gl"), "connection 'main' has no job 'weekly-gl' (its jobs: nightly-gl, "),
    ]
    for args, message in refusals:
        assert cli(env, *args) == 1, args
        assert message in capsys.readouterr().err
    entry = admin.registry.get("main")
    assert entry is not None
    jobs = [job.model_dump() for job in entry.jobs]
    jobs[0]["schedule"] = "cron(0 3 * * ? *)"  # a change not reconciled yet
    update(admin, {"name": "main", "time_zone": "UTC", "jobs": jobs})
    assert cli(env, "run", "main", "nightly-gl") == 1
    err = capsys.readouterr().err
    assert "is not as the registry says" in err and "reconcile main first" in err
    jobs[0]["enabled"] = False
    update(admin, {"name": "main", "time_zone": "UTC", "jobs": jobs})
    reconcile(env.stack)
    assert cli(env, "run", "main", "nightly-gl") == 1
    assert "job 'nightly-gl' of connection 'main' is disabled" in capsys.readouterr().err
    set_enabled(admin, "main", False)
    assert cli(env, "run", "main", "companies") == 1
    assert "connection 'main' is disabled" in capsys.readouterr().err
    for bad in (["run", "main", "Nightly GL"], ["run", "a#b", "x"]):
        with pytest.raises(SystemExit) as usage:
            cli(env, *bad)
        assert usage.value.code == 2
    assert lambdas.calls == []


def test_every_operator_verb_has_help(capsys: Any) -> None:
    from tasks.admin.__main__ import main

    for verb in (
        ["batches"],
        ["batch"],
        ["abandon"],
        ["run"],
        ["dlq"],
        *(["dlq", a] for a in ("list", "inspect", "replay", "delete")),
    ):
        with pytest.raises(SystemExit) as help_shown:
            main([*verb, "--help"])
        assert help_shown.value.code == 0 and f"tasks.admin {' '.join(verb)}" in capsys.readouterr().out
    with pytest.raises(SystemExit):
        main(["abandon", "--help"])
    assert "GLBatchAbandoned is published" in capsys.readouterr().out
