"""Attack: garbage Retry-After values on a 429, through the real Budget.

Run: PYTHONPATH=layers/connectwise:. /work/main/.venv/bin/python -m pytest -q tests/integration/budget_attack/test_retry_after_garbage.py
"""

import time
from datetime import UTC, datetime
from decimal import Decimal
from email.utils import format_datetime
from typing import Any

import pytest
import requests

from connectwise.accounting_interface.client import AccountingClient
from connectwise.errors import TransportError, surely_not_run
from connectwise.soap.client import IntegratorLogin, SoapClient
from sandbox.server import SandboxServer
from tasks.platform.budget import MAX_PAUSE, budget_key
from tests.conftest import sandbox_connection
from tests.integration.budget_attack.conftest import budget

PAID = datetime(2026, 11, 2, 10, tzinfo=UTC)


def target(sandbox: SandboxServer) -> Any:
    return max(sandbox.accounting.site.invoices, key=lambda i: i.total)


def paused_until(dynamodb: Any, table: str) -> float:
    item = dynamodb.get_item(TableName=table, Key=budget_key("acme"), ConsistentRead=True)["Item"]
    return int(item["next_at"]["N"]) / 1000


@pytest.mark.parametrize("retry_after", ["inf", "Infinity", "1e400"])
def test_an_infinite_retry_after_on_a_write_is_a_not_run_transport_error(
    sandbox: SandboxServer, dynamodb: Any, table: str, retry_after: str
) -> None:
    """float() reads these as infinity; Budget.throttled computes `_ms(retry_after)` unclamped
    (int(inf) -> OverflowError) after it has already paused the connection. Before the budget,
    send() raised TransportError(429) ("more than this invocation can wait")."""
    client = AccountingClient(
        sandbox_connection(sandbox), retries=2, backoff=0.01, pacer=budget(dynamodb, table)
    )
    sandbox.faults.set({"statuses": [429] * 3, "retry_after": retry_after})
    invoice = target(sandbox)
    with pytest.raises(Exception) as raised:
        client.update_invoice_payment(invoice.number, Decimal("10.00"), PAID)
    assert invoice.paid_amount == 0
    assert surely_not_run(raised.value), f"{type(raised.value).__name__}: {raised.value}"


def test_a_huge_retry_after_pauses_the_connection_at_most_max_pause(
    sandbox: SandboxServer, dynamodb: Any, table: str
) -> None:
    """Held: "1e9" pauses every function of the connection for MAX_PAUSE (an hour), not longer."""
    client = AccountingClient(
        sandbox_connection(sandbox), retries=2, backoff=0.01, pacer=budget(dynamodb, table)
    )
    sandbox.faults.set({"statuses": [429], "retry_after": "1e9"})
    with pytest.raises(TransportError):
        client.update_invoice_payment(target(sandbox).number, Decimal("10.00"), PAID)
    assert paused_until(dynamodb, table) <= time.time() + MAX_PAUSE + 1


def test_an_http_date_retry_after_pauses_the_connection_until_that_date(
    sandbox: SandboxServer, dynamodb: Any, table: str
) -> None:
    """RFC 9110 allows Retry-After as an HTTP-date. transport._retry_after cannot parse it and
    tells the budget a random backoff (~0.25-0.5 s): every other invocation resumes at once and
    meets more 429s. (ConnectWise documents seconds; a proxy or gateway in front may send a date.)"""
    client = AccountingClient(
        sandbox_connection(sandbox), retries=0, backoff=0.01, pacer=budget(dynamodb, table)
    )
    when = datetime.fromtimestamp(time.time() + 40, UTC)
    sandbox.faults.set({"statuses": [429], "retry_after": format_datetime(when, usegmt=True)})
    with pytest.raises(TransportError):
        client.update_invoice_payment(target(sandbox).number, Decimal("10.00"), PAID)
    assert paused_until(dynamodb, table) >= when.timestamp() - 1


def test_the_soap_429_hook_never_raises_on_a_header_isdigit_accepts(dynamodb: Any, table: str) -> None:
    """SoapClient's 429 hook was `float(v) if v.isdigit() else 1.0`. str.isdigit() is true for
    superscripts ("²", latin-1 0xB2, so a header can carry it) that float() refuses: the response
    hook raises ValueError out of the zeep call (not a ConnectWiseError)."""
    login = IntegratorLogin(
        company="x", integrator_login_id="i", integrator_password="p", site="127.0.0.1:9", use_ssl=False
    )
    client = SoapClient(login, pacer=budget(dynamodb, table))
    response = requests.Response()
    response.status_code = 429
    response.headers["Retry-After"] = "\u00b2"
    client._listen(response)  # must not raise
