"""Attack: a garbled `budget#<connection>` item (hand-edited, written by an older/other version,
or by a process with a wrong clock). The Pacer contract: wait_turn returns or raises a transient
TransportError; a bad item should neither crash the caller with another exception, nor stop the
connection forever, nor let calls through faster than the budget.

Run: PYTHONPATH=layers/connectwise:. /work/main/.venv/bin/python -m pytest -q tests/integration/budget_attack/test_garbled_item.py
"""

from typing import Any

import pytest

from connectwise.errors import TransportError
from connectwise.transport import Deadline
from tasks.platform.budget import MAX_PAUSE, budget_key
from tests.integration.budget_attack.conftest import budget, put_budget_item
from tests.unit.test_budget import most_in_a_minute

T0 = 1_000_000.0  # the processes' clock, epoch seconds


class Process:
    def __init__(self, dynamodb: Any, table: str, per_minute: int = 600, now: float = T0) -> None:
        self.now = now
        self.budget = budget(dynamodb, table, per_minute, clock=lambda: self.now, sleep=lambda s: None)

    def call(self) -> float:
        sent = max(self.now, self.budget.turn(Deadline(), "GET /x"))
        self.now = sent
        return sent


def ms(seconds: float) -> dict[str, str]:
    return {"N": str(int(seconds * 1000))}


def stored(dynamodb: Any, table: str) -> dict[str, Any]:
    return dynamodb.get_item(TableName=table, Key=budget_key("acme"), ConsistentRead=True)["Item"]


@pytest.mark.parametrize(
    "garbled",
    [
        {"next_at": ms(T0 - 5), "factor": {"N": "0"}, "slowed_at": ms(T0)},
        {"next_at": ms(T0 - 5), "factor": {"N": "0.5"}},  # slowed_at missing
        {"next_at": ms(T0 - 5), "factor": {"S": "0.5"}, "slowed_at": ms(T0)},
    ],
    ids=["factor-0", "slowed_at-missing", "factor-a-string"],
)
def test_a_garbled_item_never_escapes_as_another_exception(
    dynamodb: Any, table: str, garbled: dict[str, Any]
) -> None:
    put_budget_item(dynamodb, table, **garbled)
    process = Process(dynamodb, table)
    try:
        process.budget.wait_turn(Deadline(), "GET /x")
    except TransportError:
        pass  # refused, transient, nothing sent: within the contract
    except Exception as exc:
        pytest.fail(f"wait_turn raised {type(exc).__name__}: {exc}")


def test_a_negative_factor_never_lets_calls_go_faster_than_the_budget(dynamodb: Any, table: str) -> None:
    put_budget_item(dynamodb, table, next_at=ms(T0 - 5), factor={"N": "-1"}, slowed_at=ms(T0))
    process = Process(dynamodb, table, per_minute=60)
    sent = []
    for _ in range(120):
        try:
            sent.append(process.call())
        except Exception:
            break
    assert most_in_a_minute(sent) <= 60, f"{most_in_a_minute(sent)} calls in a minute, budget 60"


def test_a_far_future_next_at_does_not_stop_the_connection_for_more_than_max_pause(
    dynamodb: Any, table: str
) -> None:
    """MAX_PAUSE bounds what a 429 may write, but nothing bounds what is read: a next_at 30 days
    ahead (garbled, or written by a process whose clock was 30 days ahead) refuses every call of
    every function of the connection, until someone edits DynamoDB by hand."""
    put_budget_item(dynamodb, table, next_at=ms(T0 + 30 * 86400))
    process = Process(dynamodb, table, now=T0 + MAX_PAUSE + 120)
    try:
        process.call()
    except TransportError as exc:
        pytest.fail(f"still refused {MAX_PAUSE + 120:.0f} s later: {exc}")


def test_a_negative_next_at_is_idle(dynamodb: Any, table: str) -> None:
    """Held: a next_at in the past (even negative) is a free budget."""
    put_budget_item(dynamodb, table, next_at={"N": "-5000"})
    assert Process(dynamodb, table).call() == T0
