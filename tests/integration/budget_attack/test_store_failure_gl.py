"""Attack: a GL batch update answered 429 (surely not run) while the budget's DynamoDB fails.

update.py keeps the batch in doubt unless the update "surely did not run" (a transient
ConnectWiseError). A 429 is surely not run; but Budget.throttled's DynamoDB error escapes send()
as ClientError, so the batch is recorded in doubt: a known outcome made unknown (an abandon is
then refused for HOLD_AFTER_UNKNOWN and the next post must first ask ConnectWise).

Run: PYTHONPATH=layers/connectwise:. /work/main/.venv/bin/python -m pytest -q tests/integration/budget_attack/test_store_failure_gl.py
"""

from typing import Any

import pytest
from botocore.exceptions import ClientError

from sandbox.server import SandboxServer
from scripts.harness import LocalEnvironment
from tasks.platform.batch_ledger import Ledger
from tasks.platform.budget import Budget
from tests.integration.test_gl_life_cycle import confirm, download


def test_a_throttled_update_is_not_put_in_doubt_when_the_budget_store_fails(
    env: LocalEnvironment, sandbox: SandboxServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    batch_id = download(env)["batch_id"]
    original = Budget.throttled

    def throttled_while_dynamodb_throttles(self: Budget, retry_after: float) -> None:
        def update(*args: Any, **kwargs: Any) -> Any:
            raise ClientError(
                {"Error": {"Code": "ProvisionedThroughputExceededException", "Message": "slow down"}},
                "UpdateItem",
            )

        monkeypatch.setattr(self, "_update", update)
        original(self, retry_after)

    monkeypatch.setattr(Budget, "throttled", throttled_while_dynamodb_throttles)
    sandbox.faults.set({"statuses": [429] * 10, "retry_after": 0, "methods": ["POST"]})
    [response] = confirm(env, {"connection": "main", "batch_id": batch_id})
    assert len(response["batchItemFailures"]) == 1  # retried later
    assert sandbox.accounting.unposted_invoice_numbers()  # nothing posted: ConnectWise ran nothing
    record = Ledger(env.stack.client("dynamodb"), env.stack.physical["LedgerTable"]).get("main", batch_id)
    assert record is not None and record.status == "DOWNLOADED"
    assert record.doubt_since == 0, "a batch ConnectWise surely did not post is recorded in doubt"
