"""Attack: secrets in the budget's logs and errors (held).

Run: PYTHONPATH=layers/connectwise:. /work/main/.venv/bin/python -m pytest -q tests/integration/budget_attack/test_logs.py
"""

from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest

from connectwise.errors import TransportError
from connectwise.rest.client import RestClient
from connectwise.transport import Deadline
from sandbox.server import SandboxServer
from tests.conftest import rest_connection
from tests.integration.budget_attack.conftest import budget, now_ms, put_budget_item


def test_the_429_warning_and_the_budget_refusal_hold_no_key(
    sandbox: SandboxServer, dynamodb: Any, table: str, capsys: pytest.CaptureFixture[str], caplog: Any
) -> None:
    client = RestClient(
        rest_connection(sandbox), name="main", retries=1, backoff=0.01, pacer=budget(dynamodb, table)
    )
    invoice = max(sandbox.accounting.site.invoices, key=lambda i: i.total)
    sandbox.faults.set({"statuses": [429, 429], "retry_after": 120})
    with pytest.raises(TransportError) as first:
        client.update_invoice_payment(invoice.number, Decimal("1.00"), datetime(2026, 11, 2, tzinfo=UTC))
    put_budget_item(dynamodb, table, next_at={"N": str(now_ms() + 600_000)})
    with pytest.raises(TransportError) as second:
        client.within(Deadline(100)).update_invoice_payment(
            invoice.number, Decimal("1.00"), datetime(2026, 11, 2, tzinfo=UTC)
        )
    out = capsys.readouterr()
    text = out.out + out.err + caplog.text + str(first.value) + str(second.value)
    assert "429" in text
    for secret in (
        "sandbox-private",
        "sandbox-public:sandbox-private",
        "c2FuZGJveCtzYW5kYm94LXB1YmxpYzpzYW5kYm94LXByaXZhdGU",
    ):
        assert secret not in text
