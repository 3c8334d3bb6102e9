"""Second outside review of the fixes after the first attack on connections as data."""

from types import SimpleNamespace
from typing import Any

import pytest
from pydantic import ValidationError

import tasks.runtime as runtime
from tasks.admin.commands import _no_shared_records
from tasks.platform.errors import ConfigurationError
from tasks.platform.registry import ConnectionEntry, Job


def gl(owner_level: str | None = None) -> dict[str, Any]:
    job_input: dict[str, Any] = {"kinds": ["invoices"]}
    if owner_level:
        job_input["owner_level"] = owner_level
    return {"id": "gl", "task": "download_gl_batch", "schedule": "cron(0 2 * * ? *)", "input": job_input}


def entry(
    name: str, site: str, backend: str = "rest", jobs: list[dict[str, Any]] | None = None
) -> ConnectionEntry:
    return ConnectionEntry.model_validate(
        {"name": name, "backend": backend, "site": site, "jobs": jobs if jobs is not None else [gl()]}
    )


def admin_with(*others: ConnectionEntry) -> Any:
    return SimpleNamespace(registry=SimpleNamespace(scan=lambda invalid=None: iter(others)))


# --- 1. one company, two host names: the "no shared records" check is bypassed ------------------


def test_one_company_through_its_rest_host_and_its_accounting_interface_host_is_one_company() -> None:
    """docs/backends.md: a REST secret names the API host (api-na.myconnectwise.net), an Accounting
    Interface secret the site's host (na.myconnectwise.net). Same company, same invoices: a
    migration from AI to REST (add `acme-rest` beside `acme`) downloads every invoice twice, into
    two books. update() already treats the company alone as the identity; this check does not."""
    existing = entry("acme", "acme@na.myconnectwise.net", backend="accounting_interface")
    with pytest.raises(ConfigurationError):
        _no_shared_records(admin_with(existing), entry("acme-rest", "acme@api-na.myconnectwise.net"))


def test_one_company_with_and_without_its_default_port_is_one_company() -> None:
    existing = entry("acme", "acme@api-na.myconnectwise.net")
    with pytest.raises(ConfigurationError):
        _no_shared_records(admin_with(existing), entry("acme-2", "acme@api-na.myconnectwise.net:443"))


def test_owner_levels_differing_only_in_case_are_one_owner_level() -> None:
    """ConnectWise compares location names case-insensitively (SQL Server collation)."""
    existing = entry("acme-tampa", "acme@api-na.myconnectwise.net", jobs=[gl("Tampa")])
    with pytest.raises(ConfigurationError):
        _no_shared_records(
            admin_with(existing), entry("acme-tampa2", "acme@api-na.myconnectwise.net", jobs=[gl("tampa")])
        )


# --- 2. a stale schedule whose job changed task (or only time) still runs ------------------------


def test_a_schedule_left_from_before_a_task_change_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    """Job `nightly` was download_companies; the operator makes it download_agreements (same input).
    Until the reconciler has run (or for ever, if Scheduler refuses the new schedule) the OLD
    schedule still invokes DownloadCompaniesFunction with {"connection","job"}: _refusal compares
    only the input, never which task the function runs, so the old task runs and its run is
    recorded as job `nightly`'s success."""
    now = ConnectionEntry.model_validate(
        {
            "name": "acme",
            "backend": "rest",
            "jobs": [{"id": "nightly", "task": "download_agreements", "schedule": "cron(0 2 * * ? *)"}],
        }
    )
    monkeypatch.setattr(runtime, "services", lambda: SimpleNamespace(entry=lambda name: now))
    monkeypatch.setattr(runtime, "_record", lambda run: None)
    ran = []

    @runtime.scheduled_job
    def download_companies_handler(event: Any, context: Any) -> Any:
        ran.append(event)
        return {"count": 1}

    from tasks.platform.registry import job_event

    before = now.model_copy(update={"jobs": [now.jobs[0].model_copy(update={"task": "download_companies"})]})
    stale = job_event(before, before.jobs[0])  # what the old schedule sends, exactly
    with pytest.raises(ConfigurationError, match="its schedule is not reconciled yet"):
        download_companies_handler(stale, None)
    assert not ran
    moved = now.model_copy(update={"time_zone": "Europe/Paris"})  # only the time changed
    monkeypatch.setattr(runtime, "services", lambda: SimpleNamespace(entry=lambda name: moved))
    with pytest.raises(ConfigurationError, match="its schedule is not reconciled yet"):
        download_companies_handler(job_event(now, now.jobs[0]), None)
    assert not ran
    download_companies_handler(job_event(moved, moved.jobs[0]), None)  # the schedule as it is now
    assert len(ran) == 1


# --- 3. expressions Scheduler refuses, accepted by the registry ---------------------------------


@pytest.mark.parametrize(
    "expression",
    ["rate(5 minute)", "rate(1 minutes)", "rate(2 hour)", "cron(1- * * * ? *)", "cron(5/ * * * ? *)"],
)
def test_an_expression_scheduler_refuses_is_refused(expression: str) -> None:
    """AWS: "If the value is equal to 1, then the unit must be singular ... greater than 1, plural
    (rate(1 hours) and rate(5 hour) are not valid)". Accepted here, CreateSchedule/UpdateSchedule
    fails: the job has no schedule (or keeps its old one), the stream batch fails, then its DLQ."""
    with pytest.raises(ValidationError):
        Job(id="x", task="download_gl_batch", schedule=expression, input={"kinds": ["invoices"]})


@pytest.mark.parametrize(
    "expression",
    [
        "cron(0 18 ? * MON-FRI *)",
        "cron(0/10 * * * ? *)",
        "cron(15 10 ? * 6L 2026-2027)",
        "rate(1 minute)",
        "cron(0 8 ? * mon#1 *)",
        "cron(0 0 L * ? *)",
        "cron(0 0 15W * ? *)",
        "at(2028-02-29T00:00:00)",
    ],
)
def test_valid_expressions_are_taken(expression: str) -> None:
    Job(id="x", task="download_gl_batch", schedule=expression, input={"kinds": ["invoices"]})


def test_not_a_leap_year_is_refused() -> None:
    with pytest.raises(ValidationError):
        Job(id="x", task="download_gl_batch", schedule="at(2026-02-29T00:00:00)")


# --- 4. Reconciler.connection reads once, then writes: a concurrent reconcile is undone ----------

from connectwise.transport import Deadline  # noqa: E402
from scripts.harness import LocalEnvironment, admin_for, reconcile, register  # noqa: E402
from tasks.admin.commands import set_enabled  # noqa: E402
from tasks.connections.schedules import Reconciler  # noqa: E402
from tests.integration.test_connections_under_attack import (  # noqa: E402
    gl_job,
    login,
    reconciler_for,
    schedule,
)


class SlowListing(Reconciler):
    """Scheduler's listing of 80,000 schedules takes a while: the first listing lets `meanwhile` happen."""

    def __init__(self, base: Reconciler, meanwhile: Any) -> None:
        super().__init__(base.scheduler, base.registry, base.settings)
        self.meanwhile = meanwhile

    def _listed(self, prefix: str) -> dict[str, dict[str, Any]]:
        if self.meanwhile:
            run, self.meanwhile = self.meanwhile, None
            run()
        return super()._listed(prefix)


def test_a_sweep_does_not_leave_a_job_enabled_while_it_ran_disabled(env: LocalEnvironment) -> None:
    """The sweep finds `second` suspect (its schedule was deleted by hand), reads its entry
    (disabled), then, while it lists, the operator enables it and the stream reconciler makes the
    schedule ENABLED; the sweep writes its stale DISABLED state: no nightly GL download until
    tomorrow's sweep."""
    admin = admin_for(env.stack)
    register(env.stack, "second", login(env, "second"), jobs=[gl_job()])
    set_enabled(admin, "second", False)
    reconcile(env.stack)
    env.stack.client("scheduler").delete_schedule(
        GroupName=env.stack.physical["JobSchedules"],
        Name=__import__("tasks.connections.schedules", fromlist=["x"]).schedule_name("second", "gl"),
    )

    def operator_enables() -> None:
        set_enabled(admin, "second", True, check=False)
        reconcile(env.stack)
        made = schedule(env, "second", "gl")
        assert made and made["State"] == "ENABLED"

    sweeping = SlowListing(reconciler_for(env), None)
    # the sweep's own first listing (all schedules) happens before it reads `second`: arm after it
    original = sweeping.connection

    def connection(name: str) -> Any:
        sweeping.meanwhile = operator_enables
        return original(name)

    sweeping.connection = connection  # type: ignore[method-assign]
    sweeping.sweep(Deadline(900))
    made = schedule(env, "second", "gl")
    assert made is not None and made["State"] == "ENABLED", "sweep wrote the state it read before the change"
