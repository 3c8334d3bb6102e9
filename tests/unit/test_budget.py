"""The connection's budget of ConnectWise calls (tasks.platform.budget), against DynamoDB (moto),
on virtual clocks: each Budget is one process with its own clock, as each Lambda environment is."""

import uuid
from collections.abc import Iterator
from decimal import Decimal
from itertools import pairwise
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from connectwise.errors import TransportError
from connectwise.transport import Deadline
from scripts.local_aws import aws_client
from tasks.platform.budget import (
    BLOCK_SECONDS,
    PACE,
    RECOVERY_SECONDS,
    SLOWDOWN,
    Budget,
    budget_key,
    factor_at,
)

MINUTE = 60.0


@pytest.fixture(scope="module")
def dynamodb(moto_endpoint: str) -> Any:
    return aws_client(moto_endpoint, "dynamodb")


@pytest.fixture
def table(dynamodb: Any) -> Iterator[str]:
    name = f"budget-{uuid.uuid4().hex[:8]}"
    new_table(dynamodb, name)
    yield name
    dynamodb.delete_table(TableName=name)


def new_table(dynamodb: Any, name: str) -> None:
    dynamodb.create_table(
        TableName=name,
        AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
        BillingMode="PAY_PER_REQUEST",
    )


class Process:
    """One Lambda environment calling ConnectWise for the connection: a clock of its own."""

    def __init__(self, dynamodb: Any, table: str, per_minute: int, now: float, connection: str = "acme"):
        self.now = now
        self.budget = Budget(dynamodb, table, connection, lambda: per_minute, clock=lambda: self.now)

    def call(self, latency: float = 0.0, deadline: Deadline | None = None) -> float:
        """Wait for the turn, send, take `latency`; returns when the call was sent."""
        sent = max(self.now, self.budget.turn(deadline or Deadline(), "GET /x"))
        self.now = sent + latency
        return sent


def most_in_a_minute(sent: list[float]) -> int:
    times, most, first = sorted(sent), 0, 0
    for last, at in enumerate(times):
        while times[first] <= at - MINUTE:
            first += 1
        most = max(most, last - first + 1)
    return most


def test_one_process_calls_at_the_pace_of_the_budget(dynamodb: Any, table: str) -> None:
    process = Process(dynamodb, table, per_minute=600, now=1_000.0)
    sent = [process.call() for _ in range(200)]
    gaps = {round(b - a, 3) for a, b in pairwise(sent)}
    assert min(gaps) >= round(60 / (600 * PACE), 3) - 0.001
    assert most_in_a_minute(sent) <= 600
    # Blocks grow, so 200 calls took far fewer than 200 writes.
    assert process.budget._size > 1


def test_processes_share_one_budget(dynamodb: Any, table: str) -> None:
    processes = [Process(dynamodb, table, per_minute=300, now=1_000.0) for _ in range(3)]
    sent: list[float] = []
    for _ in range(300):  # the process whose clock is earliest calls next, as in real time
        process = min(processes, key=lambda p: p.now)
        sent.append(process.call(latency=0.01))
    assert most_in_a_minute(sent) <= 300
    # Alone, each would have used the whole budget: together they used it once, almost fully.
    span = max(sent) - min(sent)
    assert len(sent) / (span / MINUTE) >= 300 * PACE * 0.9


def test_two_connections_have_budgets_of_their_own(dynamodb: Any, table: str) -> None:
    acme = Process(dynamodb, table, per_minute=60, now=1_000.0, connection="acme")
    globex = Process(dynamodb, table, per_minute=60, now=1_000.0, connection="globex")
    assert acme.call() == globex.call() == 1_000.0


def test_a_turn_later_than_the_invocation_can_wait_is_not_taken(dynamodb: Any, table: str) -> None:
    busy = Process(dynamodb, table, per_minute=60, now=1_000.0)
    busy.budget.turn(Deadline(), "x")
    item = dynamodb.update_item(  # another invocation holds the budget for the next 90 s
        TableName=table,
        Key=budget_key("acme"),
        UpdateExpression="SET next_at = :at",
        ExpressionAttributeValues={":at": {"N": str(1_090_000)}},
        ReturnValues="ALL_NEW",
    )["Attributes"]
    late = Process(dynamodb, table, per_minute=60, now=1_000.0)
    with pytest.raises(TransportError, match="budget is taken for the next 90 s") as raised:
        late.call(deadline=Deadline(300))  # waits are capped at a minute
    assert raised.value.transient
    stored = dynamodb.get_item(TableName=table, Key=budget_key("acme"), ConsistentRead=True)["Item"]
    assert stored["next_at"] == item["next_at"]  # nothing reserved


def test_a_429_pauses_every_process_and_slows_the_pace(dynamodb: Any, table: str) -> None:
    first, second = (Process(dynamodb, table, per_minute=600, now=1_000.0) for _ in range(2))
    for _ in range(5):
        first.call()
    first.budget.throttled(7.0)
    second.budget.throttled(7.0)  # the same 429 seen by another process: slows the pace once
    sent = [second.call() for _ in range(50)]
    assert sent[0] >= 1_007.0
    stored = dynamodb.get_item(TableName=table, Key=budget_key("acme"), ConsistentRead=True)["Item"]
    assert Decimal(stored["factor"]["N"]) == SLOWDOWN
    assert stored["throttles"]["N"] == "2"
    # After the pause the calls go at the slowed pace, growing back from the 429 on.
    for a, b in pairwise(sent[:10]):
        assert b - a >= 60 / (600 * PACE * float(factor_at(SLOWDOWN, 1_000_000, int(b * 1000)))) - 0.001
        assert b - a > 60 / (600 * PACE) * 1.15
    # The first process, which reserved before the 429, also waits for the pause.
    assert first.call() >= 1_007.0


def test_the_pace_grows_back_without_429s() -> None:
    assert factor_at(Decimal("0.5"), 0, 0) == Decimal("0.5")
    assert factor_at(Decimal("0.5"), 0, RECOVERY_SECONDS * 500) == Decimal("1.0")
    assert factor_at(Decimal("0.5"), 0, RECOVERY_SECONDS * 5000) == 1


def test_a_block_left_unused_is_not_sent_late_in_a_burst(dynamodb: Any, table: str) -> None:
    process = Process(dynamodb, table, per_minute=600, now=1_000.0)
    for _ in range(20):  # grows the block to several calls
        process.call()
    assert process.budget._size > 2
    process.now += 30  # the invocation did something else meanwhile
    sent = [process.call() for _ in range(3)]
    assert all(b - a >= 60 / 600 for a, b in pairwise(sent))


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    per_minute=st.integers(60, 1200),
    latencies=st.lists(st.floats(0.0, 0.4), min_size=1, max_size=8),
    calls=st.integers(50, 400),
    restarts=st.lists(st.integers(0, 400), max_size=4),
)
def test_never_more_than_the_budget_in_any_minute(
    dynamodb: Any, per_minute: int, latencies: list[float], calls: int, restarts: list[int]
) -> None:
    """Any number of processes, each with its own latency, some ending and replaced by new ones
    (losing what they had reserved): never more calls in a minute than the budget, and with more
    demand than budget, most of it used."""
    table = f"budget-{uuid.uuid4().hex[:8]}"
    new_table(dynamodb, table)
    try:
        processes = [Process(dynamodb, table, per_minute, now=1_000.0) for _ in latencies]
        sent: list[float] = []
        for n in range(calls):
            i = min(range(len(processes)), key=lambda k: processes[k].now)
            if n in restarts:  # a new Lambda environment: its predecessor's block is lost
                processes[i] = Process(dynamodb, table, per_minute, now=processes[i].now)
            sent.append(processes[i].call(latency=latencies[i]))
        assert most_in_a_minute(sent) <= per_minute
        span = max(sent) - min(sent)
        demand = sum(1 / max(latency, 60 / per_minute) for latency in latencies) * 60  # calls a minute
        if demand > 2 * per_minute and span > 10:
            assert len(sent) / (span / MINUTE) >= 0.8 * per_minute * PACE
    finally:
        dynamodb.delete_table(TableName=table)


def test_a_download_and_payments_share_the_budget_without_starving_either(dynamodb: Any, table: str) -> None:
    """Payments (a busy invocation: calls back to back) and a download (one call at a time, 0.3 s
    each) of one connection: the download gets what it asks for, the payments the rest."""
    payments = Process(dynamodb, table, per_minute=600, now=1_000.0)
    download = Process(dynamodb, table, per_minute=600, now=1_000.0)
    sent: dict[str, list[float]] = {"payments": [], "download": []}
    while download.now < 1_060.0:
        name, process, latency = min(
            [("payments", payments, 0.0), ("download", download, 0.3)], key=lambda p: p[1].now
        )
        sent[name].append(process.call(latency=latency))
    minute = 60 * 600 * PACE / 60  # turns the budget gives in the minute
    # The download asked for a call every 0.3 s (200 in the minute): it waits at most for the
    # payments' block (half a second of budget) before each call, so it gets more than half.
    assert len(sent["download"]) >= 0.5 * 60 / 0.3
    assert max(b - a for a, b in pairwise(sent["download"])) <= 0.3 + BLOCK_SECONDS + 0.11
    assert len(sent["payments"]) + len(sent["download"]) >= 0.95 * minute
    assert len(sent["payments"]) >= 0.5 * minute
    assert most_in_a_minute(sent["payments"] + sent["download"]) <= 600


def test_a_turn_handed_out_before_a_429_waits_for_the_pause(dynamodb: Any, table: str) -> None:
    now = [1_000.0]
    slept: list[float] = []
    budget = Budget(dynamodb, table, "acme", lambda: 600, clock=lambda: now[0], sleep=slept.append)

    def sleep(seconds: float) -> None:  # another thread meets a 429 while this one waits its turn
        slept.append(seconds)
        if len(slept) == 1:
            budget.throttled(5.0)

    budget.sleep = sleep
    for _ in range(10):  # a block of several turns
        budget.turn(Deadline(), "x")
    budget.wait_turn(Deadline(), "x")
    assert slept[-1] >= 5.0  # not sent on its old turn: after the pause


def test_the_registry_keeps_a_connections_budget(moto_endpoint: str, dynamodb: Any) -> None:
    from tasks.platform.registry import ConnectionEntry, Registry

    name = f"registry-{uuid.uuid4().hex[:8]}"
    dynamodb.create_table(
        TableName=name,
        AttributeDefinitions=[{"AttributeName": "name", "AttributeType": "S"}],
        KeySchema=[{"AttributeName": "name", "KeyType": "HASH"}],
        BillingMode="PAY_PER_REQUEST",
    )
    registry = Registry(dynamodb, name)
    registry.put(ConnectionEntry(name="acme", backend="rest", calls_per_minute=250))
    stored = registry.get("acme")
    assert stored is not None and stored.calls_per_minute == 250
    item = dynamodb.get_item(TableName=name, Key={"name": {"S": "acme"}})["Item"]
    del item["calls_per_minute"]  # an entry written before budgets existed
    dynamodb.put_item(TableName=name, Item=item)
    old = registry.get("acme")
    assert old is not None and old.calls_per_minute == 600
