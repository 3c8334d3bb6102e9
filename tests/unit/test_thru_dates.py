"""Thru dates a finance team schedules with, resolved in the connection's time zone, and the
connection's time zone itself."""

from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from pydantic import ValidationError

from connectwise.accounting_interface.client import Connection
from connectwise.models import SiteLogin
from connectwise.rest.api import RestConnection
from tasks.gl.requests import DownloadRequest, RecreateRequest, resolve_thru_date
from tasks.platform.errors import InvalidRequestError
from tasks.platform.requests import parse_request

UTC = ZoneInfo("UTC")


def at(local: str, zone: str) -> float:
    """Epoch seconds of a wall-clock time in a zone."""
    return datetime.fromisoformat(local).replace(tzinfo=ZoneInfo(zone)).timestamp()


@pytest.mark.parametrize(
    ("local", "zone", "rule", "expected", "in_utc"),
    [
        # 00:30 on the 1st in Auckland is still the 30th in UTC: the month that ended is November.
        ("2026-12-01T00:30", "Pacific/Auckland", "end_of_last_month", "2026-11-30", "2026-10-31"),
        # 17:30 on the 30th in Los Angeles is already the 1st in UTC: the month has not ended there.
        ("2026-11-30T17:30", "America/Los_Angeles", "end_of_last_month", "2026-10-31", "2026-11-30"),
        ("2026-11-30T17:30", "America/Los_Angeles", "today", "2026-11-30", "2026-12-01"),
        ("2027-01-01T00:30", "Europe/London", "end_of_last_month", "2026-12-31", "2026-12-31"),
        ("2026-03-01T09:00", "UTC", "end_of_last_month", "2026-02-28", "2026-02-28"),
        ("2028-03-01T09:00", "UTC", "end_of_last_month", "2028-02-29", "2028-02-29"),
        # Monday 00:30 in Auckland is Sunday in UTC, whose week has not ended.
        ("2026-11-30T00:30", "Pacific/Auckland", "end_of_last_week", "2026-11-29", "2026-11-22"),
    ],
)
def test_relative_thru_dates_are_dates_where_the_finance_team_is(
    local: str, zone: str, rule: str, expected: str, in_utc: str
) -> None:
    now = at(local, zone)
    assert resolve_thru_date(rule, now, ZoneInfo(zone)) == date.fromisoformat(expected)  # type: ignore[arg-type]
    assert resolve_thru_date(rule, now, UTC) == date.fromisoformat(in_utc)  # type: ignore[arg-type]


def test_a_week_ends_on_sunday() -> None:
    """Every day of a week gives the Sunday before it; the Monday after gives that week's Sunday."""
    monday = date(2026, 11, 23)
    for offset in range(7):
        day = monday + timedelta(days=offset)
        now = at(f"{day.isoformat()}T12:00", "UTC")
        assert resolve_thru_date("end_of_last_week", now, UTC) == date(2026, 11, 22), day
    next_monday = at("2026-11-30T00:00", "UTC")
    assert resolve_thru_date("end_of_last_week", next_monday, UTC) == date(2026, 11, 29)


def test_a_fixed_date_or_none_is_kept() -> None:
    now = at("2026-12-01T00:30", "Pacific/Auckland")
    assert resolve_thru_date(date(2026, 5, 31), now, UTC) == date(2026, 5, 31)
    assert resolve_thru_date(None, now, UTC) is None  # ConnectWise's today


@pytest.mark.parametrize(
    ("given", "parsed"),
    [
        ("2026-11-30", date(2026, 11, 30)),
        ("end_of_last_month", "end_of_last_month"),
        ("end_of_last_week", "end_of_last_week"),
        ("today", "today"),
        (None, None),
    ],
)
def test_requests_take_a_date_or_a_rule(given: str | None, parsed: object) -> None:
    download = parse_request(
        {"connection": "main", "kinds": ["invoices"], "thru_date": given}, DownloadRequest
    )
    recreate = parse_request({"connection": "main", "batch_id": "b", "thru_date": given}, RecreateRequest)
    assert download.thru_date == parsed and recreate.thru_date == parsed
    assert download.model_dump(mode="json")["thru_date"] == given  # written back as it was asked


@pytest.mark.parametrize("given", ["yesterday", "2026-02-30", "End_Of_Last_Month", 20261130, ["today"]])
def test_other_thru_dates_are_refused_clearly(given: object) -> None:
    with pytest.raises(InvalidRequestError) as caught:
        parse_request({"connection": "main", "kinds": ["invoices"], "thru_date": given}, DownloadRequest)
    assert caught.value.message == (
        "invalid DownloadRequest: thru_date: a date (YYYY-MM-DD) or one of today, end_of_last_month, "
        "end_of_last_week"
    )


def test_a_recreate_takes_all_kinds_unless_told() -> None:
    every = parse_request({"connection": "main", "batch_id": "b"}, RecreateRequest)
    assert every.kinds == ["expenses", "invoices", "procurement"]
    some = parse_request(
        {"connection": "main", "batch_id": "b", "kinds": ["procurement"] * 2}, RecreateRequest
    )
    assert some.kinds == ["procurement"]
    with pytest.raises(InvalidRequestError, match="kinds: List should have at least 1 item"):
        parse_request({"connection": "main", "batch_id": "b", "kinds": []}, RecreateRequest)


def test_a_recreate_filter_of_a_kind_not_recreated_is_refused() -> None:
    request = {"connection": "main", "batch_id": "b", "kinds": ["expenses"]}
    with pytest.raises(InvalidRequestError, match=r"filters\.exclude_invoice_ids: invoices are not among"):
        parse_request(request | {"filters": {"exclude_invoice_ids": [30001]}}, RecreateRequest)
    kept = parse_request(request | {"filters": {"include_expense_ids": [1100]}}, RecreateRequest)
    assert kept.filters.include_expense_ids == [1100]


LOGINS = [
    (Connection, {"company": "c", "username": "u", "password": "p", "site": "h"}),
    (
        RestConnection,
        {
            "backend": "rest",
            "company": "c",
            "public_key": "k",
            "private_key": "s",
            "client_id": "i",
            "site": "h",
        },
    ),
]


@pytest.mark.parametrize(("model", "login"), LOGINS)
def test_a_connection_has_a_time_zone_utc_by_default(model: type[SiteLogin], login: dict[str, str]) -> None:
    assert model.model_validate(login).zone == UTC
    chosen = model.model_validate(login | {"time_zone": "Pacific/Auckland"})
    assert chosen.time_zone == "Pacific/Auckland" and chosen.zone == ZoneInfo("Pacific/Auckland")


@pytest.mark.parametrize(
    "zone", ["Mars/Olympus_Mons", "", "../../etc/passwd", "/etc/localtime", "localtime", "utc"]
)
@pytest.mark.parametrize(("model", "login"), LOGINS)
def test_a_time_zone_that_is_not_an_iana_zone_is_refused(
    model: type[SiteLogin], login: dict[str, str], zone: str
) -> None:
    with pytest.raises(ValidationError, match="time_zone\n  Value error, not an IANA time zone name"):
        model.model_validate(login | {"time_zone": zone})


def test_time_zones_resolve_without_a_system_database() -> None:
    """The python3.13 Lambda runtime has no /usr/share/zoneinfo: the tzdata package serves them."""
    import zoneinfo

    zoneinfo.reset_tzpath(to=[])
    try:
        assert ZoneInfo.no_cache("Pacific/Auckland").utcoffset(datetime(2026, 12, 1)) == timedelta(hours=13)
        login = Connection.model_validate(LOGINS[0][1] | {"time_zone": "America/New_York"})
        assert login.time_zone == "America/New_York"
    finally:
        zoneinfo.reset_tzpath()
