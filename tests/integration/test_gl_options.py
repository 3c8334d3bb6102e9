"""The GL tasks' options through the handlers, on both backends: relative thru dates resolved in
the connection's time zone when the task runs (and written down), a recreate's kinds, thru date
and owner level."""

import json
import os
from datetime import date, datetime
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from sandbox.server import SandboxServer
from scripts.harness import LocalEnvironment, admin_for
from scripts.lambda_local import cold_start, invoke
from tasks.admin.commands import update
from tasks.platform.errors import ConfigurationError
from tests.integration.test_gl_life_cycle import confirm, download, ledger_items, s3_body

OWNER = {"accounting_interface": "London", "rest": "2"}  # REST filters by the location's id


@pytest.fixture(params=["accounting_interface", "rest"])
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


def set_time_zone(env: LocalEnvironment, zone: str) -> None:
    """The operator's update of the connection's zone, seen by the functions' next containers."""
    admin = admin_for(env.stack)
    entry = admin.registry.get("main")
    assert entry is not None
    update(admin, {"name": "main", "time_zone": zone, "jobs": [job.model_dump() for job in entry.jobs]})
    cold_start()


def clock_at(
    env: LocalEnvironment, function: str, monkeypatch: pytest.MonkeyPatch, local: str, zone: str
) -> None:
    """The function's clock stopped at a wall-clock time somewhere (the task reads the time once)."""
    from tasks.runtime import services

    os.environ.update(env.stack.function_env(function))
    services.cache_clear()
    instant = datetime.fromisoformat(local).replace(tzinfo=ZoneInfo(zone)).timestamp()
    monkeypatch.setattr(services(), "clock", lambda: instant)


def invoices_through(sandbox: SandboxServer, thru: date, location: str = "") -> list[str]:
    return sorted(
        i.number for i in sandbox.accounting.site.invoices if i.date <= thru and location in ("", i.location)
    )


def test_end_of_last_month_is_the_month_that_ended_where_the_finance_team_is(
    env: LocalEnvironment, sandbox: SandboxServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """00:30 on 1 September in Auckland is still 31 August in UTC, whose last month is July (nothing)."""
    set_time_zone(env, "Pacific/Auckland")
    clock_at(env, "DownloadGLBatchFunction", monkeypatch, "2026-09-01T00:30", "Pacific/Auckland")
    result = download(env, {"connection": "main", "kinds": ["invoices"], "thru_date": "end_of_last_month"})
    assert result["status"] == "downloaded" and result["thru_date"] == "2026-08-31"
    manifest = json.loads(s3_body(env, result["keys"]["manifest"]))
    assert (manifest["thru_date"], manifest["thru_date_requested"], manifest["time_zone"]) == (
        "2026-08-31",
        "end_of_last_month",
        "Pacific/Auckland",
    )
    expected = invoices_through(sandbox, date(2026, 8, 31))
    assert result["counts"]["invoices"] == len(expected) and 0 < len(expected) < 12
    [announced] = env.events()
    assert announced["detail"]["thru_date"] == "2026-08-31"
    again = download(env, {"connection": "main", "kinds": ["invoices"], "thru_date": "end_of_last_month"})
    assert again["status"] == "reannounced"
    assert env.events()[0]["detail"]["thru_date"] == "2026-08-31"  # the date the open batch was made with

    confirm(env, {"connection": "main", "batch_id": result["batch_id"]})
    set_time_zone(env, "UTC")  # the same instant in UTC: the month that ended is July
    clock_at(env, "DownloadGLBatchFunction", monkeypatch, "2026-09-01T00:30", "Pacific/Auckland")
    assert (
        download(env, {"connection": "main", "kinds": ["invoices"], "thru_date": "end_of_last_month"})[
            "status"
        ]
        == "empty"
    )


def test_a_fixed_thru_date_and_no_thru_date_are_written_down_too(env: LocalEnvironment) -> None:
    fixed = download(env, {"connection": "main", "kinds": ["expenses"], "thru_date": "2026-08-05"})
    manifest = json.loads(s3_body(env, fixed["keys"]["manifest"]))
    assert (manifest["thru_date"], manifest["thru_date_requested"], manifest["time_zone"]) == (
        "2026-08-05",
        "2026-08-05",
        "UTC",
    )
    assert fixed["counts"]["expenses"] == 2
    default = download(env, {"connection": "main", "kinds": ["invoices"]})
    manifest = json.loads(s3_body(env, default["keys"]["manifest"]))
    assert manifest["thru_date"] is None and default["thru_date"] is None  # ConnectWise's today


def test_a_bad_time_zone_is_a_clear_error_naming_the_connection(env: LocalEnvironment) -> None:
    with pytest.raises(ConfigurationError) as refused:
        set_time_zone(env, "Europe/Lndon")
    assert refused.value.message == (
        "connection 'main' is invalid: time_zone: not an IANA time zone name "
        "(for example America/New_York or Europe/London)"
    )
    registry = env.stack.physical["ConnectionsTable"]
    dynamodb = env.stack.client("dynamodb")
    dynamodb.update_item(  # written behind the admin's back
        TableName=registry,
        Key={"name": {"S": "main"}},
        UpdateExpression="SET time_zone = :zone",
        ExpressionAttributeValues={":zone": {"S": "Europe/Lndon"}},
    )
    cold_start()
    with pytest.raises(ConfigurationError) as caught:
        download(env, {"connection": "main", "kinds": ["invoices"], "thru_date": "today"})
    assert caught.value.message == (
        "registry entry of connection 'main' is invalid: time_zone: not an IANA time zone name "
        "(for example America/New_York or Europe/London)"
    )
    assert ledger_items(env) == {}  # the claim was given back


def test_a_recreate_takes_kinds_a_relative_thru_date_and_an_owner_level(
    env: LocalEnvironment, sandbox: SandboxServer, monkeypatch: pytest.MonkeyPatch, backend: str
) -> None:
    """Monday 00:30 in Auckland is Sunday in UTC: the week that ended is the one before in UTC."""
    first = download(env)
    confirm(env, {"connection": "main", "batch_id": first["batch_id"]})
    env.events()
    set_time_zone(env, "Pacific/Auckland")
    clock_at(env, "RecreateGLBatchFunction", monkeypatch, "2026-08-24T00:30", "Pacific/Auckland")
    request = {
        "connection": "main",
        "batch_id": first["batch_id"],
        "kinds": ["invoices"],
        "thru_date": "end_of_last_week",
        "owner_level": OWNER[backend],
    }
    result = invoke(env.stack, "RecreateGLBatchFunction", request)
    expected = invoices_through(sandbox, date(2026, 8, 23), "London")
    assert result["counts"] == {"invoices": len(expected), "expenses": 0, "procurement": 0}
    assert 0 < len(expected) < len(invoices_through(sandbox, date(2026, 8, 23)))
    assert (result["thru_date"], result["owner_level"], result["kinds"]) == (
        "2026-08-23",
        OWNER[backend],
        ["invoices"],
    )
    written = json.loads(s3_body(env, result["keys"]["request"]))
    assert (written["thru_date"], written["thru_date_requested"], written["time_zone"], written["kinds"]) == (
        "2026-08-23",
        "end_of_last_week",
        "Pacific/Auckland",
        ["invoices"],
    )
    [recreated] = env.events()
    assert recreated["detail-type"] == "GLBatchRecreated" and recreated["detail"]["thru_date"] == "2026-08-23"
    in_utc = invoices_through(sandbox, date(2026, 8, 16), "London")
    assert in_utc != expected  # UTC's "last week" would have been another one


def test_a_recreate_of_some_kinds_leaves_the_others_out(env: LocalEnvironment) -> None:
    first = download(env)
    confirm(env, {"connection": "main", "batch_id": first["batch_id"]})
    request: dict[str, Any] = {"connection": "main", "batch_id": first["batch_id"], "kinds": ["procurement"]}
    result = invoke(env.stack, "RecreateGLBatchFunction", request)
    assert result["counts"] == {"invoices": 0, "expenses": 0, "procurement": 3}
    every = invoke(
        env.stack, "RecreateGLBatchFunction", {"connection": "main", "batch_id": first["batch_id"]}
    )
    assert every["counts"] == first["counts"]  # all three kinds unless told, as before
