"""The conditions builder: correct literals, refusals for what cannot be quoted safely, and a
round trip through the sandbox's independent parser for any input."""

from datetime import UTC, date, datetime, timedelta, timezone
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from connectwise.conditions import REST, all_of, any_of, render, where
from sandbox.conditions import ConditionsError, parse


def test_literals_follow_connectwise_syntax() -> None:
    plus_two = timezone(timedelta(hours=2))
    expression = all_of(
        where("LastUpdated", ">", datetime(2026, 1, 2, 3, 4, 5, tzinfo=plus_two)),
        where("BillDate", ">=", date(2026, 1, 31)),
        any_of(where("CompanyName", "like", "Acme*"), where("Closed", "=", False)),
        where("Id", "!=", 42),
        where("Total", "<", Decimal("10.50")),
    )
    assert render(expression) == (
        "LastUpdated > [2026-01-02T01:04:05Z] AND BillDate >= [2026-01-31T00:00:00Z] AND "
        '(CompanyName like "Acme%" OR Closed = false) AND Id != 42 AND Total < 10.50'
    )
    assert render(None) == ""


def test_the_rest_dialect_nests_with_slashes_and_escapes_brackets() -> None:
    expression = all_of(
        where("company.identifier", "=", "[Acme] Ltd"),
        any_of(where("closedFlag", "=", False), where("name", "like", "Ren*")),
        where("name", "contains", "x"),
    )
    assert render(expression, REST) == (
        'company/identifier = "[[]Acme] Ltd" AND (closedFlag = False OR name like "Ren*") AND name contains "x"'
    )


@pytest.mark.parametrize(
    ("build", "message"),
    [
        (lambda: where("Name", "=", 'x" OR Id > "0'), "contains '\"'"),
        (lambda: where("Name", "=", "x\\"), "contains '\\\\\\\\'"),
        (lambda: where("Name", "=", "line\nbreak"), "contains '\\\\n'"),
        (lambda: render(where("Name", "=", "a]b")), "contains ']'"),
        (lambda: render(where("Name", "=", "a*b"), REST), "contains '\\*'"),
        (lambda: render(where("Name", "contains", "x")), "REST only"),
        (lambda: render(where("Name", "like", "100%")), "contains '%'"),  # a SOAP wildcard: `*` is asked for
        (lambda: where("Total", "=", Decimal("1E+200000000")), "out of range"),
        (lambda: render(any_of(*(where("Id", "=", n) for n in range(400)))), "more than ConnectWise takes"),
        (lambda: where("Name = 1 OR Id", ">", 0), "is not a plain field name"),
        (lambda: where("Name", "; DROP", "x"), "is not one of"),
        (lambda: where("Total", "=", 1.5), "float values are not supported"),
        (lambda: where("Total", "=", Decimal("NaN")), "not a finite number"),
        (lambda: where("Updated", ">", datetime(2026, 1, 1)), "has no time zone"),
        (lambda: where("Id", "like", 3), "`like` needs a string"),
        (lambda: all_of(), "needs at least one condition"),
    ],
)
def test_what_cannot_be_said_safely_is_refused_with_the_field_named(build: object, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        build()  # type: ignore[operator]


hostile_text = st.text(st.characters(codec="utf-8", exclude_categories=("Cs",)), max_size=40)


@given(value=hostile_text)
def test_any_string_either_round_trips_as_one_condition_or_is_refused(value: str) -> None:
    try:
        text = render(all_of(where("Name", "=", value), where("Id", "=", 7)))
    except ValueError:
        assert any(c in value for c in '"\\[]') or any(ord(c) < 32 or ord(c) == 127 for c in value)
        return
    matches = parse(text)
    assert matches({"Name": value, "Id": 7})
    assert not matches({"Name": value + "x", "Id": 7})
    assert not matches({"Name": value, "Id": 8})


@given(
    moment=st.datetimes(
        timezones=st.just(UTC), min_value=datetime(2000, 1, 1), max_value=datetime(2100, 1, 1)
    ),
    amount=st.decimals(allow_nan=False, allow_infinity=False, places=2, min_value=-(10**9), max_value=10**9),
)
def test_dates_and_numbers_round_trip(moment: datetime, amount: Decimal) -> None:
    matches = parse(render(all_of(where("LastUpdated", "=", moment), where("Total", "=", amount))))
    assert matches({"LastUpdated": moment, "Total": amount})
    assert not matches({"LastUpdated": moment + timedelta(seconds=1), "Total": amount})


@pytest.mark.parametrize("text", ['Name = "open', "Name =", "(Id = 1", "Id = 1 Id = 2", "Id ~ 1", "Id = [x]"])
def test_the_sandbox_refuses_malformed_conditions(text: str) -> None:
    with pytest.raises(ConditionsError):
        parse(text)({"Name": "x", "Id": 1})
