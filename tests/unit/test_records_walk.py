"""The download walk against a fake backend (records that are not as the walk expects), and
conditions as a request gives them; written as an outside review's attacks."""

import signal
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from connectwise.conditions import REST, SOAP, render, where
from connectwise.errors import ConnectWiseError
from connectwise.records import Record, RecordQuery
from tasks.platform.watermarks import Watermark
from tasks.records.downloads import changed_records
from tasks.records.requests import ConditionSpec, DownloadRecordsRequest, conditions_of

T0 = datetime(2026, 7, 1, 9, 0, tzinfo=UTC)


class Fake:
    """Records in last-updated order (nulls first, as SQL Server orders ascending), honouring
    `>=`, `>` and `=` on last-updated exactly as `Record.last_updated` says, unless `stored`
    gives the instant ConnectWise compares (a finer one than it writes)."""

    dialect = REST

    def __init__(self, records: list[Record], stored: dict[int, datetime] | None = None) -> None:
        self.records, self.stored, self.calls = records, stored or {}, 0

    def _at(self, r: Record) -> datetime | None:
        return self.stored.get(r.id, r.last_updated)

    def records_from(
        self, entity: str, since: datetime | None, *, after: bool, query: RecordQuery, limit: int
    ) -> list[Record]:
        self.calls += 1
        if since is not None:  # as both backends do: the window as a condition
            render(where("lastUpdated", ">" if after else ">=", since), REST)
        if self.calls > 200:
            raise RuntimeError(
                f"{self.calls} pages asked for {len(self.records)} records: the walk does not end"
            )
        rows = [
            r
            for r in self.records
            if since is None
            or (self._at(r) is not None and (self._at(r) > since if after else self._at(r) >= since))
        ]
        rows.sort(key=lambda r: (self._at(r) is not None, self._at(r) or T0, r.id))
        return rows[:limit]

    def records_at(self, entity: str, instant: datetime, query: RecordQuery) -> Iterator[Record]:
        yield from sorted((r for r in self.records if self._at(r) == instant), key=lambda r: r.id)


def rec(id_: int, at: datetime | None) -> Record:
    return Record(id_, at, {"id": id_})


def test_records_without_last_updated_are_downloaded_when_met() -> None:
    """Two records have no last-updated: a first (or full) download meets them and writes them."""
    records = [rec(1, None), rec(2, None), *(rec(10 + n, T0 + timedelta(minutes=n)) for n in range(5))]
    found, *_ = changed_records(Fake(records), "companies", Watermark(None, {}), RecordQuery(), 3)
    assert sorted(r.id for r in found) == [1, 2, 10, 11, 12, 13, 14]


def test_a_page_of_records_without_last_updated_is_refused_loudly() -> None:
    """As many records without last-updated as a page: they cannot be paged by it, and the
    download says so rather than loop or skip them."""
    records = [rec(1, None), rec(2, None), rec(3, None), rec(10, T0)]
    with pytest.raises(ConnectWiseError, match="same page twice"):
        changed_records(Fake(records), "companies", Watermark(None, {}), RecordQuery(), 3)


def test_the_walk_ends_when_connectwise_compares_finer_instants_than_it_writes() -> None:
    """ConnectWise writes whole seconds (or truncates 7-digit fractions to Python's 6) but
    compares its stored instants: `lastUpdated = [T]` then finds nothing and `> [T]` finds the
    same records again. The walk stops with a clear error instead of looping."""
    records = [rec(n, T0) for n in range(1, 5)] + [rec(9, T0 + timedelta(seconds=5))]
    stored = {n: T0 + timedelta(milliseconds=100 * n) for n in range(1, 5)}
    fake = Fake(records, stored)
    with pytest.raises(ConnectWiseError, match="same page twice"):
        changed_records(fake, "companies", Watermark(None, {}), RecordQuery(), 2)
    assert fake.calls < 10


def test_a_soap_site_that_writes_local_times_is_read_in_the_connections_time_zone() -> None:
    """A Find result's LastUpdated without an offset (a .NET DateTime of kind Unspecified) is the
    site's local time: it is read in the connection's time zone, so conditions can say it."""
    from zoneinfo import ZoneInfo

    from connectwise.soap.client import IntegratorLogin, SoapClient
    from connectwise.soap.records import SoapRecords

    login = IntegratorLogin(
        site="127.0.0.1:1",
        use_ssl=False,
        company="c",
        integrator_login_id="i",
        integrator_password="p",
        time_zone="Europe/London",
    )
    record = SoapRecords(SoapClient(login))._record(
        "companies", {"Id": 1, "LastUpdated": datetime(2026, 7, 1, 9, 0)}, RecordQuery()
    )
    assert record.last_updated == datetime(2026, 7, 1, 9, 0, tzinfo=ZoneInfo("Europe/London"))
    render(where("LastUpdated", ">=", record.last_updated), SOAP)  # a condition can say it


# Conditions as the request gives them ---------------------------------------------------------


def test_a_condition_with_a_group_beside_it_is_not_silently_dropped() -> None:
    spec = {
        "field": "Invoice_Amount",
        "op": ">",
        "value": {"decimal": "500"},
        "all": [{"field": "Closed_Flag", "op": "=", "value": False}],
    }
    try:
        request = DownloadRecordsRequest.model_validate({"connection": "main", "conditions": spec})
        rendered = render(conditions_of(request, SOAP), SOAP)
    except Exception:
        return  # refused: fine
    assert "Invoice_Amount" in rendered, f"sent {rendered!r}: the amount condition is gone"


def test_any_beside_all_is_not_silently_dropped() -> None:
    spec = {"all": [{"field": "A", "op": "=", "value": 1}], "any": [{"field": "B", "op": "=", "value": 2}]}
    try:
        request = DownloadRecordsRequest.model_validate({"connection": "main", "conditions": spec})
        rendered = render(conditions_of(request, REST), REST)
    except Exception:
        return
    assert "B" in rendered, f"sent {rendered!r}"


@pytest.mark.parametrize("number", ["1.0", "0.0", "-0.0", "2.0"])
def test_a_json_number_is_never_taken_for_a_boolean_or_an_integer(number: str) -> None:
    with pytest.raises(ValueError, match="value"):
        ConditionSpec.model_validate_json(f'{{"field": "Paid_Amount", "op": "=", "value": {number}}}')


def test_a_huge_decimal_is_refused_before_it_is_written_out() -> None:
    def too_slow(*_: Any) -> None:
        raise TimeoutError("still rendering after 5 s")

    signal.signal(signal.SIGALRM, too_slow)
    signal.alarm(5)
    try:
        request = DownloadRecordsRequest.model_validate(
            {
                "connection": "main",
                "conditions": {"field": "total", "op": ">", "value": {"decimal": "1E+200000000"}},
            }
        )
        with pytest.raises(Exception, match="invalid"):
            conditions_of(request, REST)
    finally:
        signal.alarm(0)


def test_more_records_at_the_watermark_than_it_can_keep_are_written_again_never_lost() -> None:
    """5,001 records share the newest instant (an import): too many ids for one ledger item, so
    the watermark keeps none and the next run writes that instant's records again."""
    from tasks.platform.watermarks import MAX_SEEN

    records = [rec(n, T0) for n in range(1, MAX_SEEN + 2)]
    found, reached, complete = changed_records(
        Fake(records), "companies", Watermark(None, {}), RecordQuery(), 1000
    )
    assert len(found) == MAX_SEEN + 1 and complete and reached == Watermark(T0, {})
    again, *_ = changed_records(Fake(records), "companies", reached, RecordQuery(), 1000)
    assert len(again) == MAX_SEEN + 1
    few = records[:3]
    _, kept, _ = changed_records(Fake(few), "companies", Watermark(None, {}), RecordQuery(), 1000)
    assert set(kept.seen) == {1, 2, 3}
    assert changed_records(Fake(few), "companies", kept, RecordQuery(), 1000)[0] == []


@pytest.mark.parametrize(
    ("kind", "text"), [("decimal", "abc"), ("datetime", "yesterday"), ("date", "2026-13-01")]
)
def test_a_typed_value_that_is_not_one_names_itself(kind: str, text: str) -> None:
    request = DownloadRecordsRequest.model_validate(
        {"connection": "main", "conditions": {"field": "total", "op": ">", "value": {kind: text}}}
    )
    with pytest.raises(Exception, match=f"conditions: '{text}' is not a {kind}"):
        conditions_of(request, REST)
