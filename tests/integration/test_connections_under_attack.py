"""Outside review of issue 13 (connections as data): tests that demonstrate defects.
Each test asserts what should hold; a failure is the defect."""

import json
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
import yaml

from connectwise.transport import Deadline
from scripts.harness import LocalEnvironment, admin_for, reconcile, register
from scripts.lambda_local import cold_start, invoke
from tasks.admin.commands import add, remove, set_enabled, update
from tasks.connections.jobs import TASKS
from tasks.connections.schedules import Reconciler, SchedulerSettings, schedule_name
from tasks.platform.registry import ConnectionEntry, Job, Registry

ROOT = Path(__file__).resolve().parents[2]


def login(env: LocalEnvironment, company: str = "sandbox") -> dict[str, Any]:
    """A company's login (one connection of a company may not download another's records)."""
    import requests

    from scripts.harness import sandbox_login

    if company != "sandbox":
        requests.post(f"http://{env.sandbox_site}/_sandbox/companies", json={"company": company}, timeout=10)
    return sandbox_login(env.backend, company) | {"site": env.sandbox_site, "use_ssl": False}


def gl_job(owner_level: str | None = None, **extra: Any) -> dict[str, Any]:
    job_input: dict[str, Any] = {"kinds": ["invoices"]}
    if owner_level:
        job_input["owner_level"] = owner_level
    return {
        "id": "gl",
        "task": "download_gl_batch",
        "schedule": "cron(0 2 * * ? *)",
        "input": job_input,
    } | extra


def reconciler_for(env: LocalEnvironment, registry: Registry | None = None) -> Reconciler:
    stack = env.stack
    settings = SchedulerSettings(
        group=stack.physical["JobSchedules"],
        role_arn=stack.arns["SchedulerRole"],
        dead_letter_arn=stack.arns["SchedulerDeadLetterQueue"],
        functions={task: stack.arns[logical] for task, (_, logical) in TASKS.items()},
    )
    dynamodb = stack.client("dynamodb")
    return Reconciler(
        stack.client("scheduler"),
        registry or Registry(dynamodb, stack.physical["ConnectionsTable"]),
        settings,
    )


def schedule(env: LocalEnvironment, connection: str, job: str) -> dict[str, Any] | None:
    scheduler = env.stack.client("scheduler")
    try:
        return scheduler.get_schedule(
            GroupName=env.stack.physical["JobSchedules"], Name=schedule_name(connection, job)
        )  # type: ignore[no-any-return]
    except scheduler.exceptions.ResourceNotFoundException:
        return None


class SlowScan(Registry):
    """A registry whose scan lets `meanwhile` happen after the sweep has read every entry
    (the sweep then lists and compares schedules for minutes at 10,000 connections)."""

    def __init__(self, base: Registry, meanwhile: Any) -> None:
        super().__init__(base.db, base.table)
        self.meanwhile = meanwhile

    def scan(self, invalid: list[str] | None = None) -> Iterator[ConnectionEntry]:
        entries = list(super().scan(invalid))
        self.meanwhile()
        yield from entries


# --- 1. the sweep writes its stale snapshot over newer changes --------------------------------


def test_a_sweep_does_not_undo_an_update_made_while_it_ran(env: LocalEnvironment) -> None:
    """Operator fixes a wrong owner level while the daily sweep runs; the stream reconciler applies
    the fix; the sweep then puts the OLD input back (until tomorrow's sweep): the nightly GL
    download runs for the wrong location's books."""
    admin = admin_for(env.stack)
    register(env.stack, "second", login(env, "second"), jobs=[gl_job("Tampa")])

    def operator_fixes_it() -> None:
        update(admin, {"name": "second", "jobs": [gl_job("Orlando")]})
        reconcile(env.stack)  # the stream delivers the change; the schedule says Orlando
        made = schedule(env, "second", "gl")
        assert made and json.loads(made["Target"]["Input"])["owner_level"] == "Orlando"

    base = reconciler_for(env)
    sweeping = reconciler_for(env, SlowScan(base.registry, operator_fixes_it))
    sweeping.sweep(Deadline(900))
    made = schedule(env, "second", "gl")
    assert made is not None
    assert json.loads(made["Target"]["Input"])["owner_level"] == "Orlando", "sweep reverted the update"


def test_a_sweep_does_not_reenable_a_connection_disabled_while_it_ran(env: LocalEnvironment) -> None:
    admin = admin_for(env.stack)
    register(env.stack, "second", login(env, "second"), jobs=[gl_job()])

    def operator_disables() -> None:
        set_enabled(admin, "second", False)
        reconcile(env.stack)

    sweeping = reconciler_for(env, SlowScan(reconciler_for(env).registry, operator_disables))
    sweeping.sweep(Deadline(900))
    made = schedule(env, "second", "gl")
    assert made is not None and made["State"] == "DISABLED", (
        "sweep re-enabled a disabled connection's schedule"
    )


def test_a_sweep_does_not_recreate_the_schedules_of_a_connection_removed_while_it_ran(
    env: LocalEnvironment,
) -> None:
    admin = admin_for(env.stack)
    register(env.stack, "second", login(env, "second"), jobs=[gl_job()])

    def operator_removes() -> None:
        remove(admin, "second")
        reconcile(env.stack)
        assert schedule(env, "second", "gl") is None

    sweeping = reconciler_for(env, SlowScan(reconciler_for(env).registry, operator_removes))
    sweeping.sweep(Deadline(900))
    assert schedule(env, "second", "gl") is None, "sweep recreated a removed connection's schedule"


# --- 2. a job disabled (or changed) in the registry still runs from a stale schedule ----------


def test_a_disabled_job_is_refused_by_its_function_not_only_by_its_schedule(env: LocalEnvironment) -> None:
    """The functions check the connection, never the job: any schedule the reconciler has not (yet)
    fixed (stream retries, the sweep race above, a failed batch in the DLQ) runs a disabled job."""
    admin = admin_for(env.stack)
    register(env.stack, "second", login(env, "second"), jobs=[gl_job()])
    fired_input = json.loads(schedule(env, "second", "gl")["Target"]["Input"])  # type: ignore[index]
    update(admin, {"name": "second", "jobs": [gl_job(enabled=False)]})  # not yet reconciled
    cold_start()
    result = None
    with pytest.raises(Exception, match=r"disabled|not a job"):
        result = invoke(env.stack, "DownloadGLBatchFunction", fired_input)
    assert result is None


# --- 3. bad schedule expressions pass the admin and break the reconciler for everyone -------


@pytest.mark.parametrize("expression", ["cron(0 2 * * * *)", "cron(a b c d e f)", "at(2026-13-45T99:99:99)"])
def test_the_admin_refuses_a_schedule_scheduler_would_refuse(env: LocalEnvironment, expression: str) -> None:
    """AWS Scheduler rejects these (day-of-month and day-of-week both '*'; garbage fields; no such
    date); the registry's regex takes any six words."""
    from tasks.platform.errors import ConfigurationError

    with pytest.raises(ConfigurationError):
        add(admin_for(env.stack), {"name": "typo", "jobs": [gl_job(schedule=expression)]}, login(env, "typo"))


def test_one_connection_refused_by_scheduler_does_not_stop_the_sweep_for_the_others(
    env: LocalEnvironment, monkeypatch: pytest.MonkeyPatch
) -> None:
    """'bad' holds an expression AWS refuses (accepted by the admin, see above). The sweep stops at
    it: 'good' (registered while the stream reconciler was down; its schedule name sorts after
    bad's) gets no schedule, and stray schedules (deleted last) are never deleted."""
    from botocore.exceptions import ClientError

    admin = admin_for(env.stack)
    add(admin, {"name": "bad", "jobs": [gl_job(schedule="cron(0 3 * * ? *)")]}, login(env, "bad"))
    add(
        admin, {"name": "good", "jobs": [gl_job()]}, login(env, "good")
    )  # stream not delivered: no schedule yet
    rec = reconciler_for(env)
    real_create = rec.scheduler.create_schedule

    def aws_like_create(**kwargs: Any) -> Any:
        if kwargs["ScheduleExpression"] == "cron(0 3 * * ? *)":  # as if Scheduler refused it
            raise ClientError(
                {"Error": {"Code": "ValidationException", "Message": "Invalid Schedule Expression"}},
                "CreateSchedule",
            )
        return real_create(**kwargs)

    monkeypatch.setattr(rec.scheduler, "create_schedule", aws_like_create)
    changes = rec.sweep(Deadline(900))
    assert [f.split(":")[0] for f in changes.failed] == ["bad"]  # counted, not hidden
    assert schedule(env, "good", "gl") is not None, "one bad entry stopped the sweep for every connection"


def test_one_unreadable_registry_item_does_not_stop_the_sweep_or_list(env: LocalEnvironment) -> None:
    """An item written outside the admin (or valid under an older version of the models) makes
    Registry.scan raise: the sweep and `admin list` fail for every connection."""
    from tasks.admin.commands import listing
    from tests.integration.test_connections import put_by_hand

    retired = gl_job() | {"task": "retired_task", "enabled": True, "flexible_window_minutes": 60}
    put_by_hand(env, "broken", json.dumps([retired]))
    rows = listing(admin_for(env.stack))  # does not raise
    assert "main" in [r["name"] for r in rows]
    reconciler_for(env).sweep(Deadline(900))  # does not raise


# --- 4. the 60 s registry cache lets money move after `disable` ---------------------------------


def test_no_payment_is_applied_after_its_connection_is_disabled(env: LocalEnvironment, sandbox: Any) -> None:
    from tests.integration.test_payments import deliver, payment, send

    invoices = sandbox.accounting.site.invoices
    send(env, payment(invoices[0].number, "1.00", "P-warm"))
    assert deliver(env) == [{"batchItemFailures": []}]  # a warm container has read the registry
    set_enabled(admin_for(env.stack), "main", False)  # operator: stop this connection now
    send(env, payment(invoices[1].number, "5.00", "P-after-disable"))
    deliver(env)
    assert invoices[1].paid_amount == Decimal("0"), "payment applied after the connection was disabled"


def test_no_confirmation_posts_a_batch_after_its_connection_is_disabled(env: LocalEnvironment) -> None:
    from scripts.lambda_local import poll_sqs
    from tests.integration.test_gl_life_cycle import batches, download

    batch_id = download(env)["batch_id"]
    sqs = env.stack.client("sqs")
    sqs.send_message(  # a confirmation of an unknown batch warms the function's registry cache
        QueueUrl=env.stack.physical["ConfirmationQueue"],
        MessageBody=json.dumps({"connection": "main", "batch_id": "nope"}),
        MessageGroupId="main",
    )
    poll_sqs(env.stack, "ConfirmationQueue", "UpdateGLBatchFunction")
    set_enabled(admin_for(env.stack), "main", False)
    sqs.send_message(
        QueueUrl=env.stack.physical["ConfirmationQueue"],
        MessageBody=json.dumps({"connection": "main", "batch_id": batch_id}),
        MessageGroupId="main",
    )
    poll_sqs(env.stack, "ConfirmationQueue", "UpdateGLBatchFunction")
    assert batches(env) == {f"batch#main#{batch_id}": "DOWNLOADED"}, "posted after disable"


# --- 5. job input can override the connection the schedule is for ------------------------------


def test_a_schedule_always_carries_its_own_connection(env: LocalEnvironment) -> None:
    """Was: job_input = {"connection": name, "job": id} | job.input, the input won. Only the admin's
    check_jobs stands between a registry item (the source of truth, editable in the console) and a
    schedule of connection A that runs connection B."""
    from tasks.platform.registry import job_event as job_input

    job = Job(
        id="gl",
        task="download_gl_batch",
        schedule="cron(0 2 * * ? *)",
        input={"kinds": ["invoices"], "connection": "victim"},
    )
    entry = ConnectionEntry(name="attacker", backend="rest", jobs=[job])
    assert job_input(entry, job)["connection"] == "attacker"


# --- 6. template: the secret prefix grant ------------------------------------------------------


def test_the_secret_prefix_cannot_grant_every_secret_or_another_stacks() -> None:
    import re

    text = (ROOT / "template.yaml").read_text()

    class Loader(yaml.SafeLoader):
        pass

    Loader.add_multi_constructor("!", lambda loader, suffix, node: None)
    template = yaml.load(text, Loader=Loader)
    pattern = template["Parameters"]["SecretPrefix"]["AllowedPattern"]
    # "" grants secret:* (every secret in the account and region); "connectwise" grants
    # "connectwise-billing/..."; the documented "connectwise/prod/" of a second stack is inside the
    # default "connectwise/*" of the first.
    for prefix in ("", "connectwise", "cw"):
        assert not re.match(pattern, prefix), f"SecretPrefix {prefix!r} is allowed"


# --- 7. two stacks with the default prefix share (and clobber) each other's secrets ----------


def test_adding_a_connection_in_another_stack_never_overwrites_this_stacks_secret(
    env: LocalEnvironment,
) -> None:
    """A staging stack deployed with the default SecretPrefix in the prod account: `add main` there
    "takes over" prod's connectwise/main (the crash-recovery path) and writes staging's login into
    it; prod's payments then go wherever staging's login points. `remove main` there deletes it."""
    from scripts.local_aws import create_stack

    prod = env.stack.client("secretsmanager").get_secret_value(SecretId="connectwise/main")["SecretString"]
    staging = create_stack(env.stack.endpoint, {}, name="staging")
    from tasks.platform.errors import ConfigurationError

    with pytest.raises(ConfigurationError, match="belongs to another stack"):
        add(admin_for(staging), {"name": "main", "jobs": []}, login(env) | {"company": "staging-co"})
    assert admin_for(staging).registry.get("main") is None  # refused before the name was claimed there
    now = env.stack.client("secretsmanager").get_secret_value(SecretId="connectwise/main")["SecretString"]
    assert now == prod, "another stack's admin overwrote this stack's connection secret"


# --- 8. payments and confirmations disagree on a group that differs from the attribute ---------


def test_a_payment_whose_group_names_another_connection_is_refused(
    env: LocalEnvironment, sandbox: Any
) -> None:
    """Confirmations refuse a MessageGroupId that differs from their connection; payments take the
    `connection` attribute and ignore the group, so a message queued in acme's group (and counted
    in acme's fair share) moves main's money."""
    from tests.integration.test_payments import deliver, send

    register(env.stack, "acme", login(env), jobs=[])
    invoice = sandbox.accounting.site.invoices[0]
    body = {
        "invoice_number": invoice.number,
        "paid_amount": "3.00",
        "date_paid": "2026-11-01T10:00:00+00:00",
        "payment_id": "G1",
    }
    send(env, body, attributes={"connection": "main"}, group="acme")
    deliver(env)
    assert invoice.paid_amount == Decimal("0"), "applied despite group/attribute disagreement"


# --- 9. a refused payment's claimed connection becomes an S3 path ------------------------------


@pytest.mark.parametrize(
    ("claimed", "attributes", "group"),
    [
        ("acme/2026/11/29/000000-forged", None, None),  # no attribute, no group: invalid name
        ("acme/2026/11/29/000000-forged", {"connection": "main"}, ""),  # mismatch with the attribute
        ("acme", None, ""),  # sent in main's group, claims acme: refused, but filed under acme
    ],
)
def test_a_refused_payment_is_filed_only_under_the_connection_it_was_sent_for(
    env: LocalEnvironment, sandbox: Any, claimed: str, attributes: Any, group: Any
) -> None:
    from tests.integration.test_payments import deliver, send

    register(env.stack, "acme", login(env), jobs=[])
    body = {
        "connection": claimed,
        "invoice_number": sandbox.accounting.site.invoices[0].number,
        "paid_amount": "3.00",
        "date_paid": "2026-11-01T10:00:00+00:00",
        "payment_id": "X1",
    }
    send(env, body, attributes=attributes, group=group)
    deliver(env)
    s3 = env.stack.client("s3")
    keys = [
        o["Key"]
        for o in s3.list_objects_v2(Bucket=env.stack.physical["OutputBucket"], Prefix="payments/").get(
            "Contents", []
        )
    ]
    assert keys and all(k.startswith(("payments/main/", "payments/_unknown/")) for k in keys), keys
