"""When a Scheduler expression last fired (tasks.connections.cron.last_due): examples of every
syntax element, month ends, leap years and DST edges, and a property against a brute-force
evaluator that walks minute by minute."""

import re
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tasks.connections.cron import ScheduleError, last_due, parse
from tasks.platform.registry import schedule_problem


def utc(*parts: int) -> datetime:
    return datetime(*parts, tzinfo=UTC)  # type: ignore[misc]


@pytest.mark.parametrize(
    ("expression", "now", "due"),
    [
        # plain values, at exactly the time and just before it
        ("cron(0 2 * * ? *)", utc(2026, 6, 10, 2, 0), utc(2026, 6, 10, 2, 0)),
        ("cron(0 2 * * ? *)", utc(2026, 6, 10, 1, 59, 59), utc(2026, 6, 9, 2, 0)),
        # lists, ranges, steps from *, from a value and within a range
        ("cron(5,35 * * * ? *)", utc(2026, 6, 10, 7, 34), utc(2026, 6, 10, 7, 5)),
        ("cron(10-20/5 8 * * ? *)", utc(2026, 6, 10, 8, 19), utc(2026, 6, 10, 8, 15)),
        ("cron(*/15 * * * ? *)", utc(2026, 6, 10, 8, 44), utc(2026, 6, 10, 8, 30)),
        ("cron(7/20 * * * ? *)", utc(2026, 6, 10, 9, 6), utc(2026, 6, 10, 8, 47)),
        ("cron(0 9-17/4 * * ? *)", utc(2026, 6, 10, 16, 0), utc(2026, 6, 10, 13, 0)),
        # month and weekday names (1 = SUN), ranges of them, a step over weekdays
        ("cron(0 9 ? JAN,MAR MON-FRI *)", utc(2026, 2, 15, 0, 0), utc(2026, 1, 30, 9, 0)),
        ("cron(0 9 ? * 2-6 *)", utc(2026, 6, 14, 12, 0), utc(2026, 6, 12, 9, 0)),  # Sun -> Fri
        ("cron(0 9 ? * SUN/3 *)", utc(2026, 6, 17, 12, 0), utc(2026, 6, 17, 9, 0)),  # SUN, WED, SAT
        ("cron(0 9 ? * 1/3 *)", utc(2026, 6, 15, 12, 0), utc(2026, 6, 14, 9, 0)),
        ("cron(0 0 1 JUL-SEP ? *)", utc(2026, 6, 30, 0, 0), utc(2025, 9, 1, 0, 0)),
        # L, LW and nW in day-of-month: month ends of 28, 29, 30 and 31 days
        ("cron(0 0 L * ? *)", utc(2024, 3, 15), utc(2024, 2, 29)),
        ("cron(0 0 L * ? *)", utc(2025, 3, 15), utc(2025, 2, 28)),
        ("cron(0 0 L * ? *)", utc(2026, 5, 1), utc(2026, 4, 30)),
        ("cron(0 0 L * ? *)", utc(2026, 6, 1), utc(2026, 5, 31)),
        ("cron(0 0 LW * ? *)", utc(2026, 6, 1), utc(2026, 5, 29)),  # the 31st is a Sunday
        ("cron(0 0 LW * ? *)", utc(2026, 2, 28, 12), utc(2026, 2, 27)),  # the 28th is a Saturday
        ("cron(0 0 1W * ? *)", utc(2026, 8, 4), utc(2026, 8, 3)),  # Sat the 1st: Monday the 3rd
        ("cron(0 0 31W * ? *)", utc(2026, 6, 1), utc(2026, 5, 29)),  # Sun the 31st: Friday the 29th
        ("cron(0 0 15W * ? *)", utc(2026, 2, 20), utc(2026, 2, 16)),  # Sun the 15th: Monday the 16th
        ("cron(0 0 14W * ? *)", utc(2026, 2, 20), utc(2026, 2, 13)),  # Sat the 14th: Friday the 13th
        ("cron(0 0 10W * ? *)", utc(2026, 2, 20), utc(2026, 2, 10)),  # a Tuesday
        ("cron(0 0 31W * ? *)", utc(2026, 5, 1), utc(2026, 3, 31)),  # April has no 31st
        ("cron(0 0 L,15 * ? *)", utc(2026, 6, 20), utc(2026, 6, 15)),
        # L, dL, d#n in day-of-week
        ("cron(0 8 ? * L *)", utc(2026, 6, 12), utc(2026, 6, 6, 8)),  # Saturdays
        ("cron(0 8 ? * 6L *)", utc(2026, 6, 25), utc(2026, 5, 29, 8)),  # the last Friday
        ("cron(0 8 ? * FRIL *)", utc(2026, 6, 27), utc(2026, 6, 26, 8)),
        ("cron(0 8 ? * 2#1 *)", utc(2026, 6, 10), utc(2026, 6, 1, 8)),  # the first Monday
        ("cron(0 8 ? * 6#5 *)", utc(2026, 6, 30), utc(2026, 5, 29, 8)),  # June 2026 has 4 Fridays
        ("cron(0 8 ? * MON#2,FRI#3 *)", utc(2026, 6, 20), utc(2026, 6, 19, 8)),
        # years, leap days, and what never comes
        ("cron(0 0 1 1 ? 2020)", utc(2026, 6, 1), utc(2020, 1, 1)),
        ("cron(0 12 29 2 ? *)", utc(2026, 6, 1), utc(2024, 2, 29, 12)),
        ("cron(0 12 29 2 ? *)", utc(2101, 3, 1), utc(2096, 2, 29, 12)),  # 2100 is not a leap year
        ("cron(0 12 29 FEB ? 2023-2199)", utc(2024, 2, 29, 11), None),  # 2024's is still to come
        ("cron(0 0 1 1 ? 2030)", utc(2026, 6, 1), None),
        ("cron(0 0 30 2 ? *)", utc(2026, 6, 1), None),
        ("cron(0 0 1 1 ? 2000)", utc(2026, 6, 1), None),  # longer ago than anyone asks
    ],
)
def test_cron_examples_in_utc(expression: str, now: datetime, due: datetime | None) -> None:
    assert schedule_problem(expression) is None  # what the registry accepts
    assert last_due(expression, "UTC", now) == due


@pytest.mark.parametrize(
    ("expression", "zone", "now", "due"),
    [
        ("cron(0 9 * * ? *)", "Asia/Kolkata", utc(2026, 6, 10, 4), utc(2026, 6, 10, 3, 30)),
        ("cron(0 9 * * ? *)", "America/New_York", utc(2026, 1, 10, 14), utc(2026, 1, 10, 14)),
        ("cron(0 9 * * ? *)", "America/New_York", utc(2026, 7, 10, 14), utc(2026, 7, 10, 13)),
        # spring forward (New York, 2026-03-08 02:00 -> 03:00): 02:30 does not exist, skipped
        ("cron(30 2 * * ? *)", "America/New_York", utc(2026, 3, 8, 12), utc(2026, 3, 7, 7, 30)),
        ("cron(30 2 * * ? *)", "America/New_York", utc(2026, 3, 9, 12), utc(2026, 3, 9, 6, 30)),
        ("cron(30 3 * * ? *)", "America/New_York", utc(2026, 3, 8, 12), utc(2026, 3, 8, 7, 30)),
        # fall back (2026-11-01 02:00 -> 01:00): 01:30 happens at 05:30Z and 06:30Z; due once
        # both passed, as the earlier
        ("cron(30 1 * * ? *)", "America/New_York", utc(2026, 11, 1, 6, 0), utc(2026, 10, 31, 5, 30)),
        ("cron(30 1 * * ? *)", "America/New_York", utc(2026, 11, 1, 6, 30), utc(2026, 11, 1, 5, 30)),
        ("cron(30 1 * * ? *)", "America/New_York", utc(2026, 11, 2, 7), utc(2026, 11, 2, 6, 30)),
        # Lord Howe moves its clocks by half an hour (2026-10-04 02:00 -> 02:30)
        ("cron(15 2 * * ? *)", "Australia/Lord_Howe", utc(2026, 10, 4, 12), utc(2026, 10, 2, 15, 45)),
        # the day of the month in the zone, not in UTC
        ("cron(0 0 L * ? *)", "Pacific/Auckland", utc(2026, 6, 30, 13), utc(2026, 6, 29, 12)),
        # at(): one time, in the zone; a time the clocks skip never fires
        ("at(2026-05-01T10:00:00)", "Europe/Paris", utc(2026, 5, 1, 8), utc(2026, 5, 1, 8)),
        ("at(2026-05-01T10:00:00)", "Europe/Paris", utc(2026, 5, 1, 7, 59), None),
        ("at(2026-03-29T02:30:00)", "Europe/Paris", utc(2026, 4, 1), None),
        # rate(): the start of the last period (its anchor is not known)
        ("rate(15 minutes)", "Europe/Paris", utc(2026, 5, 1, 8), utc(2026, 5, 1, 7, 45)),
        ("rate(1 day)", "America/New_York", utc(2026, 3, 8, 12), utc(2026, 3, 7, 12)),  # 24 h
        ("rate(2 hours)", "UTC", utc(2026, 3, 8, 12), utc(2026, 3, 8, 10)),
    ],
)
def test_zones_dst_at_and_rate(expression: str, zone: str, now: datetime, due: datetime | None) -> None:
    assert last_due(expression, zone, now) == due


@pytest.mark.parametrize(
    ("expression", "zone", "problem"),
    [
        ("every day", "UTC", "neither cron"),
        ("cron(0 2 * *)", "UTC", "six fields"),
        ("cron(0 2 * * * *)", "UTC", "exactly one of"),
        ("cron(0 22-2 * * ? *)", "UTC", "runs backwards"),
        ("cron(61 2 * * ? *)", "UTC", "'61' is not 0-59"),
        ("cron(? 2 * * ? *)", "UTC", "minutes"),
        ("cron(0/0 2 * * ? *)", "UTC", "positive"),
        ("cron(0 2 ? * 2#6 *)", "UTC", "#n takes 1-5"),
        ("cron(0 2 * * ? *)", "Mars/Olympus", "unknown time zone"),
        ("at(2026-02-30T00:00:00)", "UTC", "at() takes"),
    ],
)
def test_what_cannot_be_evaluated_is_an_error_naming_it(expression: str, zone: str, problem: str) -> None:
    with pytest.raises(ScheduleError, match=re.escape(problem)):
        last_due(expression, zone, utc(2026, 6, 1))


# --- the property: against a minute-by-minute walk --------------------------------------------

WINDOW = timedelta(days=2)
MINUTE = timedelta(minutes=1)
ZONES = [
    "UTC",
    "America/New_York",
    "Europe/London",
    "Australia/Lord_Howe",
    "America/Santiago",
    "Asia/Kolkata",
]
# Around DST changes of those zones (and one ordinary day), so the walk crosses them often.
MOMENTS = [
    utc(2026, 3, 8, 7),
    utc(2026, 11, 1, 6),
    utc(2026, 3, 29, 1),
    utc(2026, 10, 25, 1),
    utc(2026, 4, 4, 15),
    utc(2026, 10, 3, 15),
    utc(2026, 4, 5, 3),
    utc(2026, 9, 6, 4),
    utc(2024, 2, 29, 12),
    utc(2026, 6, 17, 12),
]
MONTH_NAMES = ["JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC"]
DAY_NAMES = ["SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT"]


def plain_items(low: int, high: int, names: list[str] | None = None) -> st.SearchStrategy[str]:
    def show(n: int, name: bool) -> str:
        return names[n - low] if names and name else str(n)

    number = st.builds(show, st.integers(low, high), st.booleans())
    pair = st.tuples(st.integers(low, high), st.integers(low, high)).map(sorted)
    span = st.builds(lambda p, a, b: f"{show(p[0], a)}-{show(p[1], b)}", pair, st.booleans(), st.booleans())
    step = st.integers(1, max(1, (high - low) // 2))
    return st.one_of(
        st.just("*"),
        number,
        span,
        st.builds(lambda s: f"*/{s}", step),
        st.builds(lambda n, s: f"{n}/{s}", number, step),
        st.builds(lambda r, s: f"{r}/{s}", span, step),
    )


def listed(item: st.SearchStrategy[str]) -> st.SearchStrategy[str]:
    return st.lists(item, min_size=1, max_size=3).map(",".join)


@st.composite
def expressions(draw: st.DrawFn) -> str:
    minutes = draw(listed(plain_items(0, 59)))
    hours = draw(listed(plain_items(0, 23)))
    day_of_month_items = st.one_of(
        plain_items(1, 31), st.sampled_from(["L", "LW"]), st.integers(1, 31).map(lambda n: f"{n}W")
    )
    day_of_week_items = st.one_of(
        plain_items(1, 7, DAY_NAMES),
        st.just("L"),
        st.sampled_from(DAY_NAMES + [str(n) for n in range(1, 8)]).map(lambda d: f"{d}L"),
        st.builds(lambda d, n: f"{d}#{n}", st.sampled_from(DAY_NAMES), st.integers(1, 5)),
    )
    if draw(st.booleans()):
        days = f"{draw(listed(day_of_month_items))} * ?"
    else:
        days = f"? * {draw(listed(day_of_week_items))}"
    day_of_month, _, day_of_week = days.split(" ")
    month = draw(st.one_of(st.just("*"), listed(plain_items(1, 12, MONTH_NAMES))))
    year = draw(st.sampled_from(["*", "*", "2024-2026", "2026", "2024,2026", "2025"]))
    return f"cron({minutes} {hours} {day_of_month} {month} {day_of_week} {year})"


def item_holds(item: str, value: int, low: int, high: int, names: list[str] | None = None) -> bool:
    def number(text: str) -> int:
        return names.index(text) + low if names and text in names else int(text)

    base, slash, step = item.partition("/")
    first, _, last = base.partition("-")
    start = low if base == "*" else number(first)
    end = high if base == "*" or (slash and not last) else number(last or first)
    return start <= value <= end and (value - start) % (int(step) if slash else 1) == 0


def day_of_month_holds(item: str, wall: datetime) -> bool:
    days = [(wall.replace(day=1) + timedelta(days=n)) for n in range(31)]
    month = [d for d in days if d.month == wall.month]
    weekdays = [d.day for d in month if d.isoweekday() <= 5]
    if item == "L":
        return wall.day == month[-1].day
    if item == "LW":
        return wall.day == weekdays[-1]
    if item.endswith("W"):
        n = int(item[:-1])
        return n <= len(month) and wall.day == min(weekdays, key=lambda d: abs(d - n))
    return item_holds(item, wall.day, 1, 31)


def day_of_week_holds(item: str, wall: datetime) -> bool:
    today = wall.isoweekday() % 7 + 1  # SUN = 1

    def day(text: str) -> int:
        return DAY_NAMES.index(text) + 1 if text in DAY_NAMES else int(text)

    if item == "L":
        return today == 7
    if item.endswith("L"):
        return today == day(item[:-1]) and (wall + timedelta(days=7)).month != wall.month
    if "#" in item:
        name, _, nth = item.partition("#")
        return today == day(name) and (wall.day + 6) // 7 == int(nth)
    return item_holds(item, today, 1, 7, DAY_NAMES)


def fires_at(expression: str, wall: datetime) -> bool:
    minutes, hours, dom, month, dow, year = expression[5:-1].split(" ")
    return (
        any(item_holds(i, wall.minute, 0, 59) for i in minutes.split(","))
        and any(item_holds(i, wall.hour, 0, 23) for i in hours.split(","))
        and any(item_holds(i, wall.month, 1, 12, MONTH_NAMES) for i in month.split(","))
        and any(item_holds(i, wall.year, 1970, 2199) for i in year.split(","))
        and (
            any(day_of_month_holds(i, wall) for i in dom.split(","))
            if dom != "?"
            else any(day_of_week_holds(i, wall) for i in dow.split(","))
        )
    )


def walked(expression: str, zone: str, now: datetime) -> datetime | None:
    """The latest local time both of whose instants are at or before now, as its earlier
    instant, among those whose instants lie within WINDOW before now: every minute looked at."""
    instants: dict[datetime, list[datetime]] = {}
    at = (now - WINDOW - timedelta(hours=3)).replace(second=0, microsecond=0)
    while at <= now + timedelta(hours=3):
        wall = at.astimezone(ZoneInfo(zone)).replace(tzinfo=None, fold=0)
        if fires_at(expression, wall):
            instants.setdefault(wall, []).append(at)
        at += MINUTE
    due = [min(found) for found in instants.values() if min(found) >= now - WINDOW and max(found) <= now]
    return max(due, default=None)


@pytest.mark.slow
@settings(max_examples=50, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    expression=expressions(),
    zone=st.sampled_from(ZONES),
    moment=st.sampled_from(MOMENTS),
    offset=st.integers(-36 * 3600, 36 * 3600),
)
def test_last_due_agrees_with_a_minute_by_minute_walk(
    expression: str, zone: str, moment: datetime, offset: int
) -> None:
    assert schedule_problem(expression) is None, expression
    try:
        parse(expression)
    except ScheduleError as exc:
        assert "runs backwards" in str(exc)  # the one form accepted but not evaluated
        return
    now = moment + timedelta(seconds=offset)
    expected = walked(expression, zone, now)
    found = last_due(expression, zone, now)
    if expected is not None:
        assert found == expected
    else:  # nothing within the window: anything found is older
        assert found is None or found < now - WINDOW
