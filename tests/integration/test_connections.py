"""Connections as data: the registry, the admin commands' refusals, the reconciler's schedules
(create, update, disable, remove, drift, idempotence), and scheduled runs recorded per job."""

import json
from decimal import Decimal
from typing import Any

import pytest

from scripts.harness import (
    DEFAULT_JOBS,
    SANDBOX_LOGINS,
    LocalEnvironment,
    admin_for,
    reconcile,
    register,
    sandbox_login,
)
from scripts.lambda_local import cold_start, fire_schedules, invoke
from tasks.admin.commands import add, listing, remove, set_enabled, update, validate
from tasks.connections.jobs import TASKS
from tasks.connections.schedules import connection_prefix, schedule_name
from tasks.platform.errors import ConfigurationError

GL_JOB = {
    "id": "gl",
    "task": "download_gl_batch",
    "schedule": "cron(0 2 * * ? *)",
    "input": {"kinds": ["invoices"]},
}


def secret(env: LocalEnvironment) -> dict[str, Any]:
    return SANDBOX_LOGINS[env.backend] | {"site": env.sandbox_site, "use_ssl": False}


def company_login(env: LocalEnvironment, company: str) -> dict[str, Any]:
    """Another company of the sandbox (a connection of main's company may not download its records)."""
    import requests

    requests.post(f"http://{env.sandbox_site}/_sandbox/companies", json={"company": company}, timeout=10)
    return sandbox_login(env.backend, company) | {"site": env.sandbox_site, "use_ssl": False}


def put_by_hand(env: LocalEnvironment, name: str, jobs: str) -> None:
    """A registry entry written outside the admin (the console), with `jobs` as its JSON text."""
    env.stack.client("dynamodb").put_item(
        TableName=env.stack.physical["ConnectionsTable"],
        Item={
            "name": {"S": name},
            "backend": {"S": "rest"},
            "time_zone": {"S": "UTC"},
            "enabled": {"BOOL": True},
            "version": {"N": "1"},
            "jobs": {"S": jobs},
        },
    )


def schedules(env: LocalEnvironment) -> dict[str, dict[str, Any]]:
    scheduler, group = env.stack.client("scheduler"), env.stack.physical["JobSchedules"]
    names = [s["Name"] for s in scheduler.list_schedules(GroupName=group)["Schedules"]]
    return {name: scheduler.get_schedule(GroupName=group, Name=name) for name in names}


def secret_names(env: LocalEnvironment) -> list[str]:
    return sorted(s["Name"] for s in env.stack.client("secretsmanager").list_secrets()["SecretList"])


def test_a_connection_is_registered_with_its_secret_and_its_jobs_get_schedules(env: LocalEnvironment) -> None:
    """`main` (DEFAULT_JOBS) is registered by the harness through the admin path."""
    entry = admin_for(env.stack).registry.get("main")
    assert entry is not None and entry.enabled and entry.backend == "accounting_interface"
    assert [job.id for job in entry.jobs] == [job["id"] for job in DEFAULT_JOBS]
    assert secret_names(env) == ["connectwise/main"]
    made = schedules(env)
    assert sorted(made) == sorted(schedule_name("main", job["id"]) for job in DEFAULT_JOBS)
    gl = made[schedule_name("main", "nightly-gl")]
    assert gl["ScheduleExpression"] == "cron(0 2 * * ? *)" and gl["ScheduleExpressionTimezone"] == "UTC"
    assert gl["FlexibleTimeWindow"] == {"Mode": "FLEXIBLE", "MaximumWindowInMinutes": 60}
    assert gl["State"] == "ENABLED"
    target = gl["Target"]
    assert target["Arn"] == env.stack.arns["DownloadGLBatchFunction"]
    assert target["DeadLetterConfig"]["Arn"] == env.stack.arns["SchedulerDeadLetterQueue"]
    assert target["RoleArn"] == env.stack.arns["SchedulerRole"]
    assert target["RetryPolicy"]["MaximumRetryAttempts"] > 0
    sent = json.loads(target["Input"])
    assert sent.pop("job_revision") and sent == {
        "connection": "main",
        "job": "nightly-gl",
        "kinds": ["invoices", "expenses", "procurement"],
    }
    for name, schedule in made.items():  # every schedule's input is a request its function takes
        function = next(k for k, arn in env.stack.arns.items() if arn == schedule["Target"]["Arn"])
        task = next(t for t, (_, logical_id) in TASKS.items() if logical_id == function)
        TASKS[task][0].model_validate(
            {
                k: v
                for k, v in json.loads(schedule["Target"]["Input"]).items()
                if k not in ("job", "job_revision")
            }
        )
        assert name.startswith(connection_prefix("main"))


BAD_SPECS: list[tuple[dict[str, Any], str]] = [
    ({"name": "a b", "jobs": []}, "name: String should match pattern"),
    ({"name": "x", "time_zone": "Mars/Olympus", "jobs": []}, "time_zone: not an IANA time zone"),
    ({"name": "x", "jobs": [GL_JOB | {"task": "drop_tables"}]}, "job 'gl': unknown task 'drop_tables'"),
    ({"name": "x", "jobs": [GL_JOB | {"input": {}}]}, "job 'gl': invalid input: kinds: Field required"),
    (
        {"name": "x", "jobs": [GL_JOB | {"input": {"kinds": ["invoices"], "thru_date": "someday"}}]},
        "thru_date",
    ),
    (
        {"name": "x", "jobs": [GL_JOB | {"input": {"kinds": ["invoices"], "connection": "y"}}]},
        "must not set connection",
    ),
    (
        {"name": "x", "jobs": [GL_JOB | {"schedule": "every night"}]},
        "not an EventBridge Scheduler expression",
    ),
    (
        {"name": "x", "jobs": [GL_JOB | {"schedule": "rate(0 minutes)"}]},
        "not an EventBridge Scheduler expression",
    ),
    ({"name": "x", "jobs": [GL_JOB | {"id": "Nightly GL"}]}, "id: String should match pattern"),
    ({"name": "x", "jobs": [GL_JOB, GL_JOB]}, "job ids must be unique; repeated: gl"),
    ({"name": "x", "jobs": [GL_JOB | {"flexible_window_minutes": 2000}]}, "flexible_window_minutes"),
    ({"name": "x", "jobs": [], "enabled": True}, "does not set enabled"),
    ({"name": "x", "jobs": [], "version": 3}, "does not set version"),
    (
        {"name": "x", "jobs": [], "backend": "rest"},
        "says backend 'rest' but its secret is 'accounting_interface'",
    ),
    ({"name": "x", "jobs": [], "colour": "red"}, "colour: Extra inputs are not permitted"),
    ([], "must hold a JSON object"),
]


@pytest.mark.parametrize(("spec", "message"), BAD_SPECS)
def test_a_bad_connection_file_is_refused_and_changes_nothing(
    env: LocalEnvironment, spec: Any, message: str
) -> None:
    admin = admin_for(env.stack)
    before = (list(admin.registry.scan()), secret_names(env), sorted(schedules(env)))
    with pytest.raises(ConfigurationError, match=message):
        add(
            admin, spec, SANDBOX_LOGINS["accounting_interface"] | {"site": env.sandbox_site, "use_ssl": False}
        )
    reconcile(env.stack)
    assert (list(admin.registry.scan()), secret_names(env), sorted(schedules(env))) == before


@pytest.mark.parametrize(
    ("bad_secret", "message"),
    [
        ({"company": "c"}, "secret of connection 'x' is invalid: .*username: Field required"),
        (
            {"backend": "rest", "company": "c", "site": "h", "public_key": "p", "private_key": "Pr1v"},
            "client_id",
        ),
        (
            SANDBOX_LOGINS["accounting_interface"] | {"site": "h", "time_zone": "UTC"},
            "time_zone is set in the connection file",
        ),
        ("not an object", "must hold a JSON object"),
    ],
)
def test_a_bad_secret_file_is_refused_never_echoed_and_changes_nothing(
    env: LocalEnvironment, bad_secret: Any, message: str
) -> None:
    admin = admin_for(env.stack)
    with pytest.raises(ConfigurationError, match=message) as caught:
        add(admin, {"name": "x", "jobs": []}, bad_secret)
    assert "Pr1v" not in caught.value.message and "sandbox-password" not in caught.value.message
    assert admin.registry.get("x") is None and secret_names(env) == ["connectwise/main"]


def test_adding_a_name_twice_is_refused_before_its_secret_is_touched(env: LocalEnvironment) -> None:
    admin = admin_for(env.stack)
    stored = env.stack.client("secretsmanager").get_secret_value(SecretId="connectwise/main")["SecretString"]
    with pytest.raises(ConfigurationError, match="connection 'main' exists already; use update"):
        add(admin, {"name": "main", "jobs": []}, secret(env) | {"password": "another"})
    assert (
        env.stack.client("secretsmanager").get_secret_value(SecretId="connectwise/main")["SecretString"]
        == stored
    )
    with pytest.raises(ConfigurationError, match="connection 'ghost' is not registered; use add"):
        update(admin, {"name": "ghost", "jobs": []})


def test_a_stale_write_is_refused(env: LocalEnvironment) -> None:
    """Two operators read version N; the second to write is refused, the first's change stands."""
    admin = admin_for(env.stack)
    read = admin.registry.get("main")
    assert read is not None
    set_enabled(admin, "main", False)
    with pytest.raises(ConfigurationError, match="was changed by someone else meanwhile"):
        admin.registry.put(read.model_copy(update={"time_zone": "Europe/Paris"}))
    with pytest.raises(ConfigurationError, match="was changed by someone else meanwhile"):
        admin.registry.delete(read)
    current = admin.registry.get("main")
    assert current is not None and not current.enabled and current.time_zone == "UTC"


def test_add_after_a_crash_between_its_writes_finishes_the_job(env: LocalEnvironment) -> None:
    """A secret left by an add that died before its registry write is taken over, not refused;
    one no admin of this stack made is refused."""
    table = env.stack.physical["ConnectionsTable"]
    secrets = env.stack.client("secretsmanager")
    secrets.create_secret(
        Name="connectwise/late", SecretString="{}", Tags=[{"Key": "connectwise:registry", "Value": table}]
    )
    secrets.create_secret(Name="connectwise/foreign", SecretString='{"keep": "me"}')
    with pytest.raises(
        ConfigurationError, match="exists and belongs to no connector stack; nothing was changed"
    ):
        add(admin_for(env.stack), {"name": "foreign", "jobs": []}, secret(env))
    assert json.loads(secrets.get_secret_value(SecretId="connectwise/foreign")["SecretString"]) == {
        "keep": "me"
    }
    assert admin_for(env.stack).registry.get("foreign") is None  # refused before the name was claimed
    entry = add(admin_for(env.stack), {"name": "late", "jobs": [GL_JOB]}, company_login(env, "late"))
    assert entry.name == "late" and not entry.enabled  # disabled until checked and enabled
    value = env.stack.client("secretsmanager").get_secret_value(SecretId="connectwise/late")["SecretString"]
    assert json.loads(value)["company"] == "late"


def test_the_reconciler_follows_update_disable_enable_and_remove(env: LocalEnvironment) -> None:
    admin = admin_for(env.stack)
    register(env.stack, "second", company_login(env, "second"), jobs=[GL_JOB], time_zone="Pacific/Auckland")
    name = schedule_name("second", "gl")
    assert schedules(env)[name]["ScheduleExpressionTimezone"] == "Pacific/Auckland"

    moved = GL_JOB | {"schedule": "cron(30 3 ? * MON-FRI *)", "flexible_window_minutes": 0}
    update(admin, {"name": "second", "time_zone": "Europe/London", "jobs": [moved, GL_JOB | {"id": "gl-b"}]})
    [changes] = reconcile(env.stack)
    assert changes["created"] == 1 and changes["updated"] == 1 and changes["deleted"] == 0
    made = schedules(env)
    assert made[name]["ScheduleExpression"] == "cron(30 3 ? * MON-FRI *)"
    assert made[name]["FlexibleTimeWindow"] == {"Mode": "OFF"}
    assert made[name]["ScheduleExpressionTimezone"] == "Europe/London"

    set_enabled(admin, "second", False)
    reconcile(env.stack)
    assert {s["State"] for n, s in schedules(env).items() if n.startswith(connection_prefix("second"))} == {
        "DISABLED"
    }
    assert {s["State"] for n, s in schedules(env).items() if n.startswith(connection_prefix("main"))} == {
        "ENABLED"
    }
    set_enabled(admin, "second", True, check=False)
    update(admin, {"name": "second", "jobs": [moved | {"enabled": False}]})
    reconcile(env.stack)
    assert schedules(env)[name]["State"] == "DISABLED" and schedule_name("second", "gl-b") not in schedules(
        env
    )

    remove(admin, "second")
    reconcile(env.stack)
    assert not [n for n in schedules(env) if n.startswith(connection_prefix("second"))]
    assert len(schedules(env)) == len(DEFAULT_JOBS)  # main's untouched
    deleted = env.stack.client("secretsmanager").describe_secret(SecretId="connectwise/second")
    assert "DeletedDate" in deleted  # scheduled for deletion, restorable for 7 days
    add(admin, {"name": "second", "jobs": [GL_JOB]}, company_login(env, "second"))  # added again: restored
    assert admin.registry.get("second") is not None


def test_reconciling_twice_or_from_replayed_records_changes_nothing(env: LocalEnvironment) -> None:
    from tasks.runtime import reconciler

    register(env.stack, "second", company_login(env, "second"), jobs=[GL_JOB])
    again = invoke(
        env.stack,
        "ReconcileSchedulesFunction",
        {"Records": [{"dynamodb": {"Keys": {"name": {"S": "second"}}}}] * 3},
    )
    assert again == {"created": 0, "updated": 0, "deleted": 0, "unchanged": 1, "unchecked": 0, "failed": []}
    swept = invoke(env.stack, "ReconcileSchedulesFunction", {"sweep": True})
    assert swept["created"] == swept["updated"] == swept["deleted"] == 0
    assert swept["unchanged"] == len(DEFAULT_JOBS) + 1
    # A record of a connection since removed: its schedules go, whatever the record said.
    remove(admin_for(env.stack), "second")
    old = {
        "Records": [
            {"dynamodb": {"Keys": {"name": {"S": "second"}}, "NewImage": {"enabled": {"BOOL": True}}}}
        ]
    }
    assert invoke(env.stack, "ReconcileSchedulesFunction", old)["deleted"] == 1
    assert reconciler().connection("second").summary()["deleted"] == 0


def test_drift_is_repaired_by_the_sweep(env: LocalEnvironment) -> None:
    scheduler, group = env.stack.client("scheduler"), env.stack.physical["JobSchedules"]
    edited = schedule_name("main", "nightly-gl")
    spec = scheduler.get_schedule(GroupName=group, Name=edited)
    keep = {k: spec[k] for k in ("ScheduleExpressionTimezone", "FlexibleTimeWindow", "Target", "State")}
    scheduler.update_schedule(GroupName=group, Name=edited, ScheduleExpression="rate(1 minutes)", **keep)
    scheduler.delete_schedule(GroupName=group, Name=schedule_name("main", "companies"))
    stray = connection_prefix("gone") + "gl"  # a connection removed while the reconciler was down
    scheduler.create_schedule(
        GroupName=group,
        Name=stray,
        ScheduleExpression="rate(1 hours)",
        FlexibleTimeWindow={"Mode": "OFF"},
        Target=spec["Target"],
    )
    scheduler.update_schedule(
        GroupName=group,
        Name=schedule_name("main", "agreements"),
        State="DISABLED",
        **{k: v for k, v in keep.items() if k != "State"},
        ScheduleExpression="cron(30 2 * * ? *)",
    )
    changes = invoke(env.stack, "ReconcileSchedulesFunction", {"sweep": True})
    assert (changes["created"], changes["updated"], changes["deleted"]) == (1, 2, 1)
    made = schedules(env)
    assert stray not in made and made[edited]["ScheduleExpression"] == "cron(0 2 * * ? *)"
    assert {s["State"] for s in made.values()} == {"ENABLED"} and len(made) == len(DEFAULT_JOBS)


def test_a_sweep_out_of_time_leaves_schedules_unchecked_not_wrong(env: LocalEnvironment) -> None:
    from connectwise.transport import Deadline
    from tasks.runtime import reconciler

    cold_start()
    changes = reconciler().sweep(Deadline(0))
    assert changes.summary() == {
        "created": 0,
        "updated": 0,
        "deleted": 0,
        "unchanged": 0,
        "unchecked": len(DEFAULT_JOBS),
        "failed": [],
    }


def test_scheduled_runs_are_recorded_per_job_and_listed(env: LocalEnvironment) -> None:
    fired = fire_schedules(env.stack)
    assert sorted(f.input["job"] for f in fired) == sorted(job["id"] for job in DEFAULT_JOBS)
    assert all(f.error is None for f in fired), [f.error for f in fired]
    [row] = listing(admin_for(env.stack))
    runs = {job["id"]: job["last_run"] for job in row["jobs"]}
    assert runs["nightly-gl"]["outcome"] == "succeeded" and runs["nightly-gl"]["detail"] == "downloaded"
    assert all(run["outcome"] == "succeeded" for run in runs.values())

    set_enabled(admin_for(env.stack), "main", False)
    cold_start()
    job = {"connection": "main", "job": "nightly-gl", "kinds": ["invoices"]}
    with pytest.raises(ConfigurationError, match="is disabled"):
        invoke(env.stack, "DownloadGLBatchFunction", job)
    [row] = listing(admin_for(env.stack))
    failed = next(j["last_run"] for j in row["jobs"] if j["id"] == "nightly-gl")
    assert failed["outcome"] == "failed" and "is disabled" in failed["detail"]
    reconcile(env.stack)
    assert fire_schedules(env.stack) == []  # a disabled connection's schedules do not fire


def test_validate_checks_the_connection_against_connectwise(env: LocalEnvironment) -> None:
    admin = admin_for(env.stack)
    checks = validate(admin, "main")
    names = [c.name for c in checks]
    assert all(c.ok for c in checks), checks
    assert "gl batches and payments" in names and "reports" in names and "purchase_orders" in names
    bad = company_login(env, "wrong") | {"password": "not-the-password"}
    add(admin, {"name": "wrong", "jobs": [GL_JOB]}, bad)
    [failed] = [c for c in validate(admin, "wrong") if not c.ok]
    assert "not-the-password" not in failed.detail and failed.name == "gl batches and payments"
    with pytest.raises(ConfigurationError, match="failed its checks against ConnectWise, nothing enabled"):
        set_enabled(admin, "wrong", True)
    entry = admin.registry.get("wrong")
    assert entry is not None and not entry.enabled


# --- queues shared fairly -----------------------------------------------------------------------


def test_messages_of_a_disabled_connection_are_refused_and_kept(env: LocalEnvironment, sandbox: Any) -> None:
    from tests.integration.test_gl_life_cycle import batches, download
    from tests.integration.test_payments import dead_letters, deliver, payment, send

    batch_id = download(env)["batch_id"]
    set_enabled(admin_for(env.stack), "main", False)
    cold_start()
    sqs = env.stack.client("sqs")
    sqs.send_message(
        QueueUrl=env.stack.physical["ConfirmationQueue"],
        MessageBody=json.dumps({"connection": "main", "batch_id": batch_id}),
        MessageGroupId="main",
    )
    from scripts.lambda_local import poll_sqs

    assert poll_sqs(env.stack, "ConfirmationQueue", "UpdateGLBatchFunction") == [{"batchItemFailures": []}]
    kept = sqs.receive_message(
        QueueUrl=env.stack.physical["ConfirmationDeadLetterQueue"], MessageAttributeNames=["All"]
    )["Messages"]
    assert [m["MessageAttributes"]["error"]["StringValue"] for m in kept] == [
        "connection 'main' is disabled in the connection registry"
    ]
    assert batches(env) == {f"batch#main#{batch_id}": "DOWNLOADED"}  # nothing posted

    number = sandbox.accounting.site.invoices[0].number
    send(env, payment(number, "5.00", "P-disabled"))
    assert deliver(env) == [{"batchItemFailures": []}]
    [letter] = dead_letters(env)
    assert (
        letter["MessageAttributes"]["error"]["StringValue"]
        == "connection 'main' is disabled in the connection registry"
    )
    assert sandbox.accounting.site.invoices[0].paid_amount == 0

    # Enabled again, the kept copy re-driven as it is (its connection and group came with it): applied.
    set_enabled(admin_for(env.stack), "main", True, check=False)
    kept = letter["MessageAttributes"]["connection"]["StringValue"]
    sqs.send_message(
        QueueUrl=env.stack.physical["PaymentsQueue"],
        MessageBody=letter["Body"],
        MessageAttributes={"connection": {"DataType": "String", "StringValue": kept}},
        MessageGroupId=kept,
    )
    assert deliver(env) == [{"batchItemFailures": []}]
    assert sandbox.accounting.site.invoices[0].paid_amount == Decimal("5.00")


def test_a_confirmation_sent_in_another_connections_group_is_refused(env: LocalEnvironment) -> None:
    from scripts.lambda_local import poll_sqs
    from tests.integration.test_gl_life_cycle import batches, download

    batch_id = download(env)["batch_id"]
    sqs = env.stack.client("sqs")
    sqs.send_message(
        QueueUrl=env.stack.physical["ConfirmationQueue"],
        MessageBody=json.dumps({"connection": "main", "batch_id": batch_id}),
        MessageGroupId="acme",
    )
    poll_sqs(env.stack, "ConfirmationQueue", "UpdateGLBatchFunction")
    [kept] = sqs.receive_message(
        QueueUrl=env.stack.physical["ConfirmationDeadLetterQueue"], MessageAttributeNames=["All"]
    )["Messages"]
    assert (
        "names connection 'main' but was sent in message group 'acme'"
        in kept["MessageAttributes"]["error"]["StringValue"]
    )
    assert batches(env) == {f"batch#main#{batch_id}": "DOWNLOADED"}


# --- the command line ----------------------------------------------------------------------------


def run_cli(env: LocalEnvironment, *args: str) -> int:
    from tasks.admin.__main__ import main

    resources = [
        "--registry-table", env.stack.physical["ConnectionsTable"],
        "--ledger-table", env.stack.physical["LedgerTable"],
        "--secret-prefix", "connectwise/",
        "--reconciler", env.stack.physical["ReconcileSchedulesFunction"],
    ]  # fmt: skip
    return main([*resources, *args])


def test_the_command_line_adds_lists_validates_and_refuses_bad_input(
    env: LocalEnvironment, tmp_path: Any, capsys: Any
) -> None:
    spec, login = tmp_path / "acme.json", tmp_path / "acme-secret.json"
    spec.write_text(json.dumps({"name": "acme", "time_zone": "America/New_York", "jobs": [GL_JOB]}))
    login.write_text(json.dumps(company_login(env, "acme")))
    assert run_cli(env, "add", str(spec), "--secret-file", str(login), "--enable") == 0
    added = json.loads(capsys.readouterr().out)
    assert added["name"] == "acme" and added["enabled"] is True and "password" not in json.dumps(added)
    assert run_cli(env, "list") == 0
    shown = capsys.readouterr().out
    assert "acme  accounting_interface  America/New_York  enabled" in shown and "never run" in shown
    assert run_cli(env, "validate", "acme") == 0 and '"ok": true' in capsys.readouterr().out
    assert "sandbox-password" not in shown

    (tmp_path / "broken.json").write_text("{not json")
    refusals = [
        (("add", str(spec), "--secret-file", str(login)), "connection 'acme' exists already"),
        (("add", str(tmp_path / "missing.json"), "--secret-file", str(login)), "cannot read"),
        (("add", str(tmp_path / "broken.json"), "--secret-file", str(login)), "is not JSON"),
        (("disable", "nobody"), "connection 'nobody' is not registered"),
        (("validate", "nobody"), "connection 'nobody' is not registered"),
    ]
    for args, message in refusals:
        assert run_cli(env, *args) == 1, args
        assert message in capsys.readouterr().err, args
    with pytest.raises(SystemExit) as usage:
        run_cli(env, "frobnicate")
    assert usage.value.code == 2
    assert run_cli(env, "disable", "acme") == 0 and json.loads(capsys.readouterr().out)["enabled"] is False
    assert run_cli(env, "remove", "acme") == 0
    assert admin_for(env.stack).registry.get("acme") is None


def test_every_verb_has_help(capsys: Any) -> None:
    from tasks.admin.__main__ import main

    for verb in ("add", "update", "enable", "disable", "remove", "list", "validate", "reconcile"):
        with pytest.raises(SystemExit) as shown:
            main([verb, "--help"])
        assert shown.value.code == 0 and verb in capsys.readouterr().out


def test_without_a_stack_the_command_line_says_how_to_name_one(
    capsys: Any, tmp_path: Any, monkeypatch: Any
) -> None:
    from tasks.admin.__main__ import main

    monkeypatch.chdir(tmp_path)  # no samconfig.toml here
    assert main(["list"]) == 1
    assert "name the stack with --stack" in capsys.readouterr().err


def test_two_connections_of_one_company_never_download_the_same_records(env: LocalEnvironment) -> None:
    """An open batch holds its records within its connection only: a second connection of main's
    company may download other kinds, or the same kinds at another owner level, nothing else."""
    admin = admin_for(env.stack)
    same_company = secret(env)
    for job, overlap in (
        (GL_JOB, "the invoices of sandbox@"),  # main downloads every kind, at no owner level
        (GL_JOB | {"input": {"kinds": ["invoices"], "owner_level": "London"}}, "(owner level London)"),
    ):
        with pytest.raises(ConfigurationError, match="would download") as refused:
            add(admin, {"name": "books-2", "jobs": [job]}, same_company)
        assert overlap in refused.value.message and "connection 'main' downloads too" in refused.value.message
    assert admin.registry.get("books-2") is None
    update(
        admin, {"name": "main", "jobs": [GL_JOB | {"input": {"kinds": ["invoices"], "owner_level": "Tampa"}}]}
    )
    add(
        admin,
        {"name": "books-2", "jobs": [GL_JOB | {"input": {"kinds": ["invoices"], "owner_level": "London"}}]},
        same_company,
    )
    add(admin, {"name": "books-3", "jobs": [GL_JOB | {"input": {"kinds": ["expenses"]}}]}, same_company)
    with pytest.raises(ConfigurationError, match="connection 'books-2' downloads too"):
        update(admin, {"name": "books-3", "jobs": [GL_JOB | {"input": {"kinds": ["expenses", "invoices"]}}]})


def test_a_secret_pointed_at_another_company_behind_the_admins_back_is_refused(env: LocalEnvironment) -> None:
    from tests.integration.test_gl_life_cycle import download

    other = company_login(env, "acme")
    env.stack.client("secretsmanager").put_secret_value(
        SecretId="connectwise/main", SecretString=json.dumps(other)
    )
    cold_start()
    with pytest.raises(ConfigurationError, match=r"logs into acme@.*, but the registry says sandbox@"):
        download(env)


def test_an_unreadable_entry_refuses_only_its_own_payments_and_is_named_by_list(
    env: LocalEnvironment, sandbox: Any, capsys: Any
) -> None:
    from tests.integration.test_payments import deliver, payment, send

    put_by_hand(env, "broken", "not json")
    first, second = sandbox.accounting.site.invoices[:2]
    send(env, payment(first.number, "2.00", "OK-1"))
    send(env, payment(second.number, "3.00", "B-1", connection="broken"), group="broken")
    assert deliver(env) == [{"batchItemFailures": []}]
    assert first.paid_amount == Decimal("2.00") and second.paid_amount == 0
    assert run_cli(env, "list") == 1
    shown = capsys.readouterr()
    assert "main  accounting_interface" in shown.out
    assert (
        "unreadable entry: broken: registry entry of connection 'broken' is invalid: jobs is not JSON"
        in shown.err
    )


def test_a_remove_refused_for_another_stacks_secret_changes_nothing(env: LocalEnvironment) -> None:
    from scripts.local_aws import create_stack

    staging = create_stack(env.stack.endpoint, {}, name="staging")
    staging_admin = admin_for(staging)
    prod_entry = admin_for(env.stack).registry.get("main")
    assert prod_entry is not None
    staging_admin.registry.put(prod_entry.model_copy(update={"version": 0}))  # by hand, over prod's secret
    with pytest.raises(ConfigurationError, match="belongs to another stack"):
        remove(staging_admin, "main")
    kept = staging_admin.registry.get("main")
    assert kept is not None and kept.enabled  # not even disabled
    assert "DeletedDate" not in env.stack.client("secretsmanager").describe_secret(
        SecretId="connectwise/main"
    )


def test_add_uses_a_secret_made_beforehand_only_if_this_stack_owns_it(
    env: LocalEnvironment, tmp_path: Any, capsys: Any
) -> None:
    """docs/deploy.md: `aws secretsmanager create-secret ... --tags Key=connectwise:registry,...`
    then `add` without --secret-file. A missing, untagged or other stack's secret is refused and
    nothing is written; the owned one is used as it is (not written again)."""
    secrets, registry = env.stack.client("secretsmanager"), admin_for(env.stack).registry
    spec = tmp_path / "acme.json"
    spec.write_text(json.dumps({"name": "acme", "time_zone": "UTC", "jobs": [GL_JOB]}))
    login = json.dumps(company_login(env, "acme"))

    assert run_cli(env, "add", str(spec)) == 1
    assert "no secret 'connectwise/acme'" in capsys.readouterr().err and registry.get("acme") is None
    secrets.create_secret(Name="connectwise/acme", SecretString=login)  # no owner tag
    assert run_cli(env, "add", str(spec)) == 1
    assert "belongs to no connector stack" in capsys.readouterr().err and registry.get("acme") is None
    secrets.tag_resource(
        SecretId="connectwise/acme", Tags=[{"Key": "connectwise:registry", "Value": "other"}]
    )
    assert run_cli(env, "add", str(spec)) == 1
    assert "another stack" in capsys.readouterr().err and registry.get("acme") is None
    owner = env.stack.physical["ConnectionsTable"]
    secrets.tag_resource(SecretId="connectwise/acme", Tags=[{"Key": "connectwise:registry", "Value": owner}])
    versions = secrets.list_secret_version_ids(SecretId="connectwise/acme")["Versions"]

    assert run_cli(env, "add", str(spec), "--enable") == 0  # checked against ConnectWise with that login
    entry = registry.get("acme")
    assert entry is not None and entry.enabled and entry.site
    assert secrets.list_secret_version_ids(SecretId="connectwise/acme")["Versions"] == versions
