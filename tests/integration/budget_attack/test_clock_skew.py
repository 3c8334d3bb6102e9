"""Attack: clocks of the Lambda environments that disagree. Every reservation and every send is
timed by the process's own clock (time.time): a process whose clock is behind sends its block
late in real time, on top of the blocks reserved after it; one whose clock is ahead takes the
budget as idle while others still hold turns. HELD in this simulation (single-threaded processes,
skew of +-5 and +-30 s): the skewed process mostly delays itself.

Run: PYTHONPATH=layers/connectwise:. /work/main/.venv/bin/python -m pytest -q tests/integration/budget_attack/test_clock_skew.py
"""

from typing import Any

import pytest

from connectwise.transport import Deadline
from tests.integration.budget_attack.conftest import budget
from tests.unit.test_budget import most_in_a_minute

T0 = 1_000_000.0


class Process:
    """`real` is the true time; the process reads real + skew."""

    def __init__(self, dynamodb: Any, table: str, per_minute: int, skew: float) -> None:
        self.real, self.skew = T0, skew
        self.budget = budget(dynamodb, table, per_minute, clock=lambda: self.real + self.skew)

    def call(self, latency: float) -> float:
        at = self.budget.turn(Deadline(), "GET /x") - self.skew  # its turn, in real time
        self.real = max(self.real, at)
        sent = self.real
        self.real += latency
        return sent


@pytest.mark.parametrize("skew", [5.0, 30.0, -5.0, -30.0])
def test_a_process_with_a_late_clock_does_not_push_a_minute_over_the_budget(
    dynamodb: Any, table: str, skew: float
) -> None:
    per_minute = 300
    processes = [Process(dynamodb, table, per_minute, 0.0), Process(dynamodb, table, per_minute, -skew)]
    sent = []
    for _ in range(900):  # three minutes of demand above the budget
        process = min(processes, key=lambda p: p.real)
        sent.append(process.call(latency=0.05))
    assert most_in_a_minute(sent) <= per_minute, (
        f"{most_in_a_minute(sent)} calls in one real minute, budget {per_minute} (clock {skew} s behind)"
    )
