"""Attack: sharing the budget between functions, and a budget changed while running (held).

Run: PYTHONPATH=layers/connectwise:. /work/main/.venv/bin/python -m pytest -q tests/integration/budget_attack/test_sharing.py
"""

from typing import Any

from connectwise.transport import Deadline
from tasks.platform.budget import Budget
from tests.unit.test_budget import most_in_a_minute


class Process:
    def __init__(self, dynamodb: Any, table: str, per_minute: Any, latency: float) -> None:
        self.now, self.latency = 1_000.0, latency
        self.budget = Budget(dynamodb, table, "acme", per_minute, clock=lambda: self.now)

    def call(self) -> float:
        sent = max(self.now, self.budget.turn(Deadline(), "GET /x"))
        self.now = sent + self.latency
        return sent


def test_a_busy_download_does_not_starve_payments(dynamodb: Any, table: str) -> None:
    download = Process(dynamodb, table, lambda: 600, latency=0.0)  # as fast as it may
    payments = Process(dynamodb, table, lambda: 600, latency=0.3)  # slower, one call at a time
    sent: dict[str, list[float]] = {"download": [], "payments": []}
    for _ in range(1500):
        name, process = min((("download", download), ("payments", payments)), key=lambda p: p[1].now)
        sent[name].append(process.call())
    span = max(sent["payments"]) - min(sent["payments"])
    # Held, not starved: measured 1.9 calls/s (one per download block of ~0.42 s): 20% of the pace
    # for a caller whose own demand is 3.3/s (35%); the download takes the rest (7.6/s).
    assert len(sent["payments"]) / span >= 1.5
    assert most_in_a_minute(sent["download"] + sent["payments"]) <= 600


def test_a_budget_lowered_while_running_takes_hold_at_once_for_new_blocks(dynamodb: Any, table: str) -> None:
    per_minute = [600]
    processes = [Process(dynamodb, table, lambda: per_minute[0], latency=0.02) for _ in range(3)]
    sent: list[float] = []
    while not sent or sent[-1] < 1_000 + 200:
        if sent and sent[-1] >= 1_060 and per_minute[0] == 600:
            per_minute[0] = 60
        process = min(processes, key=lambda p: p.now)
        sent.append(process.call())
    after = [t for t in sent if t >= 1_062]
    assert most_in_a_minute(after) <= 60
