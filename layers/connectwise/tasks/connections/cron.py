"""When a job's EventBridge Scheduler expression last fired: `last_due`, for the watcher
(tasks.connections.watch), which asks whether each job succeeded since.

Scheduler evaluates cron() and at() in the schedule's time zone (the connection's), and says of
daylight saving time: a local time that does not exist (the clocks jump over it) is skipped, and
a local time that happens twice (the clocks go back) fires once. Which of its two instants it
fires at is not said, so a time counts as due only once both have passed, and is given as the
earlier one: a run at either instant is then a run since it, and no job is ever reported late
because of a DST edge. rate() is 24 hours a day whatever the clocks say; its anchor (when the
schedule was made) is not known here, so its due time is the start of its last period.

The search walks back by year, month and day (only the days the expression names), and within a
matching day by hour and minute: cheap for thousands of jobs. It gives up (None) rather than guess:
an expression that never fires within HORIZON_YEARS, or an at() still to come.
"""

import calendar
import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from functools import lru_cache
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

# Scheduler's rate(): as tasks.platform.registry accepts it.
RATE = re.compile(r"^rate\((\d+) (minutes?|hours?|days?)\)$")
UNITS = {"minute": timedelta(minutes=1), "hour": timedelta(hours=1), "day": timedelta(days=1)}
MONTHS = ["JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC"]
DAYS = ["SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT"]  # 1-7, as Scheduler numbers them
FIRST_YEAR, LAST_YEAR = 1970, 2199
# Feb 29 recurs within 8 years (2096 -> 2104); an expression silent for longer is "not known".
HORIZON_YEARS = 9


class ScheduleError(ValueError):
    """An expression this module cannot evaluate (malformed, or a form whose meaning it does not know)."""


@dataclass(frozen=True)
class Days:
    """The day-of-month or day-of-week field, as the days of a given month it names."""

    plain: frozenset[int] = frozenset()  # days of the month, or weekdays 1-7 (SUN-SAT)
    last: bool = False  # day-of-month L
    last_weekday: bool = False  # day-of-month LW
    nearest_weekday: frozenset[int] = frozenset()  # day-of-month nW
    last_of: frozenset[int] = frozenset()  # day-of-week dL: the month's last weekday d
    nth: frozenset[tuple[int, int]] = frozenset()  # day-of-week d#n: the month's n-th weekday d
    of_week: bool = False

    def of(self, year: int, month: int) -> list[int]:
        """The days of the month this field names, latest first."""
        length = calendar.monthrange(year, month)[1]
        found: set[int] = set()
        if self.of_week:
            first = weekday(date(year, month, 1))
            for day in range(1, length + 1):
                wd = (first + day - 2) % 7 + 1
                if (
                    wd in self.plain
                    or (wd in self.last_of and day + 7 > length)
                    or (wd, (day - 1) // 7 + 1) in self.nth
                ):
                    found.add(day)
        else:
            found |= {day for day in self.plain if day <= length}
            if self.last:
                found.add(length)
            if self.last_weekday:
                found.add(_nearest_weekday(year, month, length, length))
            found |= {_nearest_weekday(year, month, d, length) for d in self.nearest_weekday if d <= length}
        return sorted(found, reverse=True)


@dataclass(frozen=True)
class Cron:
    minutes: tuple[int, ...]  # each field latest first
    hours: tuple[int, ...]
    days: Days
    months: tuple[int, ...]
    years: tuple[int, ...]

    def local_times(self, latest: datetime) -> Iterator[datetime]:
        """Every local (naive) time the expression names at or before `latest`, latest first."""
        for year in self.years:
            if year > latest.year or year < latest.year - HORIZON_YEARS:
                continue
            for month in self.months:
                if (year, month) > (latest.year, latest.month):
                    continue
                for day in self.days.of(year, month):
                    today = (year, month, day) == (latest.year, latest.month, latest.day)
                    if (year, month, day) > (latest.year, latest.month, latest.day):
                        continue
                    for hour in self.hours:
                        if today and hour > latest.hour:
                            continue
                        for minute in self.minutes:
                            if today and hour == latest.hour and minute > latest.minute:
                                continue
                            yield datetime(year, month, day, hour, minute)


def last_due(expression: str, time_zone: str, now: datetime) -> datetime | None:
    """The latest time at or before `now` (aware) that `expression` surely fired, in UTC; None if
    there is none that can be known (see the module's docstring). Raises ScheduleError for an
    expression or a time zone it cannot evaluate."""
    now = now.astimezone(UTC)
    rate = RATE.match(expression)
    if rate:
        return now - int(rate.group(1)) * UNITS[rate.group(2).rstrip("s")]
    zone = _zone(time_zone)
    if expression.startswith("at(") and expression.endswith(")"):
        try:
            at = datetime.strptime(expression[3:-1], "%Y-%m-%dT%H:%M:%S")
        except ValueError:
            raise ScheduleError(f"{expression!r}: at() takes yyyy-mm-ddThh:mm:ss") from None
        return _fired(at, zone, now)
    cron = parse(expression)
    # A local time later than now's has not passed at both of its instants, even just after the
    # clocks went back (its second instant is still to come).
    for local in cron.local_times(now.astimezone(zone).replace(tzinfo=None)):
        fired = _fired(local, zone, now)
        if fired is not None:
            return fired
    return None


def _fired(local: datetime, zone: ZoneInfo, now: datetime) -> datetime | None:
    """The earlier instant of a local time if both of its instants are at or before `now`; None
    if it is still to come or does not exist (Scheduler skips it)."""
    first = local.replace(tzinfo=zone, fold=0).astimezone(UTC)
    second = local.replace(tzinfo=zone, fold=1).astimezone(UTC)
    earlier, later = min(first, second), max(first, second)
    if earlier.astimezone(zone).replace(tzinfo=None) != local:
        return None  # the clocks jump over it
    return earlier if later <= now else None


def _zone(name: str) -> ZoneInfo:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise ScheduleError(f"unknown time zone {name!r}") from None


@lru_cache(maxsize=4096)  # thousands of jobs share a few expressions
def parse(expression: str) -> Cron:
    """A cron() expression, as tasks.platform.registry's schedule_problem accepts it."""
    if not (expression.startswith("cron(") and expression.endswith(")")):
        raise ScheduleError(f"{expression!r} is neither cron(), rate() nor at()")
    fields = expression[5:-1].split(" ")
    if len(fields) != 6:
        raise ScheduleError(f"{expression!r}: cron() takes six fields")
    minutes, hours, day_of_month, month, day_of_week, year = fields
    if (day_of_month == "?") == (day_of_week == "?"):
        raise ScheduleError(f"{expression!r}: exactly one of day-of-month and day-of-week must be ?")
    days = _day_of_week(day_of_week) if day_of_month == "?" else _day_of_month(day_of_month)
    return Cron(
        minutes=_latest_first(_values(minutes, "minutes", 0, 59)),
        hours=_latest_first(_values(hours, "hours", 0, 23)),
        days=days,
        months=_latest_first(_values(month, "month", 1, 12, MONTHS)),
        years=_latest_first(_values(year, "year", FIRST_YEAR, LAST_YEAR)),
    )


def _latest_first(values: set[int]) -> tuple[int, ...]:
    return tuple(sorted(values, reverse=True))


def _values(text: str, field: str, low: int, high: int, names: list[str] | None = None) -> set[int]:
    """The numbers a plain field names: lists of *, n, a-b, each with an optional /step."""
    found: set[int] = set()
    for item in text.split(","):
        base, slash, step_text = item.partition("/")
        if slash and not (step_text.isdigit() and int(step_text) > 0):
            raise ScheduleError(f"{field} {text!r}: a step must be a positive number")
        step = int(step_text) if slash else 1
        if base == "*":
            first, last = low, high
        else:
            start, dash, end = base.partition("-")
            first = _number(start, field, text, low, high, names)
            last = _number(end, field, text, low, high, names) if dash else (high if slash else first)
            if last < first:  # Quartz wraps such a range around; Scheduler does not say
                raise ScheduleError(f"{field} {text!r}: a range that runs backwards is not evaluated")
        found.update(range(first, last + 1, step))
    return found


def _number(text: str, field: str, whole: str, low: int, high: int, names: list[str] | None) -> int:
    if names and text.upper() in names:
        return names.index(text.upper()) + 1
    if not text.isdigit() or not low <= int(text) <= high:
        raise ScheduleError(f"{field} {whole!r}: {text!r} is not {low}-{high}")
    return int(text)


def _day_of_month(text: str) -> Days:
    plain: set[int] = set()
    nearest: set[int] = set()
    last = last_weekday = False
    for item in text.split(","):
        if item == "L":
            last = True
        elif item == "LW":
            last_weekday = True
        elif item.endswith("W"):
            nearest.add(_number(item[:-1], "day-of-month", text, 1, 31, None))
        else:
            plain |= _values(item, "day-of-month", 1, 31)
    return Days(frozenset(plain), last, last_weekday, frozenset(nearest))


def _day_of_week(text: str) -> Days:
    plain: set[int] = set()
    last_of: set[int] = set()
    nth: set[tuple[int, int]] = set()
    for item in text.split(","):
        if item == "L":  # the last day of the week
            plain.add(7)
        elif item.endswith("L"):
            last_of.add(_number(item[:-1], "day-of-week", text, 1, 7, DAYS))
        elif "#" in item:
            day, _, n = item.partition("#")
            if n not in {"1", "2", "3", "4", "5"}:
                raise ScheduleError(f"day-of-week {text!r}: #n takes 1-5")
            nth.add((_number(day, "day-of-week", text, 1, 7, DAYS), int(n)))
        else:
            plain |= _values(item, "day-of-week", 1, 7, DAYS)
    return Days(frozenset(plain), last_of=frozenset(last_of), nth=frozenset(nth), of_week=True)


def weekday(day: date) -> int:
    """Scheduler's day-of-week number: 1 (SUN) to 7 (SAT)."""
    return (day.weekday() + 1) % 7 + 1


def _nearest_weekday(year: int, month: int, day: int, length: int) -> int:
    """The weekday (MON-FRI) nearest to `day`, never in another month (as Quartz's W)."""
    wd = weekday(date(year, month, day))
    if wd == 7:  # Saturday: the Friday before, or the Monday after the 1st
        return day - 1 if day > 1 else day + 2
    if wd == 1:  # Sunday: the Monday after, or the Friday before the month's last day
        return day + 1 if day < length else day - 2
    return day
