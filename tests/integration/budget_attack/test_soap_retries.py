"""Attack: the SOAP client's retries bypass the budget.

SoapClient mounts urllib3 Retry (429/502/503/504, up to `retries` more attempts, Retry-After
respected) under zeep, and waits for a turn once per operation. So every attempt urllib3 repeats
is sent without a turn, and a 429 urllib3 waits out is never told to the budget (the response hook
sees only the last answer): the other invocations keep going at full pace into the 429s.

Run: PYTHONPATH=layers/connectwise:. /work/main/.venv/bin/python -m pytest -q tests/integration/budget_attack/test_soap_retries.py
"""

from typing import Any

from connectwise.soap.client import IntegratorLogin, SoapClient
from connectwise.transport import Deadline
from sandbox.server import SandboxServer
from tasks.platform.budget import Budget


class Counting(Budget):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.turns, self.throttles = 0, 0

    def wait_turn(self, deadline: Deadline, what: str) -> None:
        self.turns += 1
        super().wait_turn(deadline, what)

    def throttled(self, retry_after: float) -> None:
        self.throttles += 1
        super().throttled(retry_after)


def soap(sandbox: SandboxServer, pacer: Budget) -> SoapClient:
    login = IntegratorLogin(
        company="sandbox",
        integrator_login_id="integrator",
        integrator_password="sandbox-integrator",
        site=sandbox.site_address,
        use_ssl=False,
    )
    return SoapClient(login, retries=3, backoff=0.01, pacer=pacer)


def test_every_soap_attempt_waits_for_a_turn(sandbox: SandboxServer, dynamodb: Any, table: str) -> None:
    pacer = Counting(dynamodb, table, "acme", lambda: 600)
    sandbox.faults.set({"statuses": [503, 503, 503], "retry_after": 0})
    before = sandbox.requests_seen
    soap(sandbox, pacer).get_reports()
    sent = sandbox.requests_seen - before
    assert sent == 4
    assert pacer.turns == sent, f"{sent} requests sent to ConnectWise on {pacer.turns} turn(s) of the budget"


def test_a_soap_429_is_told_to_the_budget(sandbox: SandboxServer, dynamodb: Any, table: str) -> None:
    pacer = Counting(dynamodb, table, "acme", lambda: 600)
    sandbox.faults.set({"statuses": [429, 429], "retry_after": 1})
    soap(sandbox, pacer).get_reports()  # urllib3 waits 1 s twice, then succeeds
    assert pacer.throttles == 2, f"two 429s met, {pacer.throttles} told to the budget"
