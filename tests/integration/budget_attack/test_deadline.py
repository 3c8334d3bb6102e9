"""Attack: deadlines. The budget may hand a turn up to `remaining - 1` s away (budget._reserve:
latest = now + min(MAX_WAIT, remaining - 1)), and the call then gets what is left as its
timeout: a write whose turn comes late is sent with ~1 s to answer, so a reply that would have
come is lost (OutcomeUnknownError) where, unpaced, the same write was known.

Run: PYTHONPATH=layers/connectwise:. /work/main/.venv/bin/python -m pytest -q tests/integration/budget_attack/test_deadline.py
"""

import time
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest
import zeep

from connectwise.accounting_interface.client import AccountingClient
from connectwise.errors import OutcomeUnknownError, TransportError
from connectwise.soap.client import IntegratorLogin, SoapClient
from connectwise.transport import Deadline
from sandbox.server import SandboxServer
from tests.conftest import sandbox_connection
from tests.integration.budget_attack.conftest import budget, now_ms, put_budget_item

PAID = datetime(2026, 11, 2, 10, tzinfo=UTC)


def target(sandbox: SandboxServer) -> Any:
    return max(sandbox.accounting.site.invoices, key=lambda i: i.total)


def test_a_write_is_not_sent_too_late_to_hear_its_reply(
    sandbox: SandboxServer, dynamodb: Any, table: str
) -> None:
    """6 s left for calls (Deadline 16 s, RESERVE 10); ConnectWise answers in 2 s; other invocations
    hold the budget for the next 4.6 s. Unpaced, the write is sent at once and answered. Paced, it
    waits 4.6 s, goes with a 1.4 s read timeout, lands, and its outcome is unknown."""
    sandbox.faults.set({"latency_ms": 2000})
    invoice = target(sandbox)
    unpaced = AccountingClient(sandbox_connection(sandbox), retries=0).within(Deadline(16))
    unpaced.update_invoice_payment(invoice.number, Decimal("5.00"), PAID)  # control: fine unpaced
    assert invoice.paid_amount == Decimal("5.00")

    put_budget_item(dynamodb, table, next_at={"N": str(now_ms() + 4600)})
    paced = AccountingClient(sandbox_connection(sandbox), retries=0, pacer=budget(dynamodb, table))
    try:
        paced.within(Deadline(16)).update_invoice_payment(invoice.number, Decimal("10.00"), PAID)
    except OutcomeUnknownError as exc:
        time.sleep(1)
        pytest.fail(f"sent too late to hear the reply: {exc}; ConnectWise now holds {invoice.paid_amount}")
    except TransportError:
        assert invoice.paid_amount == Decimal("5.00")  # refused by the budget, not sent: fine


def test_a_soap_call_after_its_turn_still_fits_the_invocation(
    sandbox: SandboxServer, dynamodb: Any, table: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """SoapClient._call set the operation timeout from the deadline, THEN waited for its turn: after
    a 2 s wait the call may still run for the timeout computed before it, past what is left."""
    login = IntegratorLogin(
        company="sandbox",
        integrator_login_id="integrator",
        integrator_password="sandbox-integrator",
        site=sandbox.site_address,
        use_ssl=False,
    )
    deadline = Deadline(16)  # 6 s for calls
    client = SoapClient(login, retries=0, pacer=budget(dynamodb, table)).within(deadline)
    seen: list[tuple[float, float]] = []
    original = zeep.Transport.post

    def post(self: zeep.Transport, *args: Any, **kwargs: Any) -> Any:
        seen.append((float(self.operation_timeout), deadline.remaining()))
        return original(self, *args, **kwargs)

    monkeypatch.setattr(zeep.Transport, "post", post)
    put_budget_item(dynamodb, table, next_at={"N": str(now_ms() + 2000)})  # a turn may take half of 6 s
    client.get_reports()
    [(timeout, left)] = seen
    assert timeout <= left + 0.05, f"read timeout {timeout:.1f} s with {left:.1f} s left for calls"
