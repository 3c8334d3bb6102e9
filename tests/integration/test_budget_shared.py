"""One connection's budget shared by processes (each Lambda environment is one), against the
sandbox's ConnectWise-like budget: together they stay under it, though each alone would not."""

import multiprocessing
import uuid
from typing import Any

import pytest
import requests

from connectwise.rest.api import RestApi, RestConnection
from sandbox.server import SandboxServer, start_sandbox
from scripts.harness import SANDBOX_LOGINS
from scripts.local_aws import aws_client
from tasks.platform.budget import Budget

PROCESSES, CALLS = 3, 15
PER_MINUTE = 600  # the connection's budget: 10 a second
SANDBOX_CALLS, SANDBOX_WINDOW = 40, 3.0  # ConnectWise's: 40 in any 3 s (the budget asks 30)


def dynamodb(endpoint: str) -> Any:
    return aws_client(endpoint, "dynamodb")


def calls_from_a_process(endpoint: str, table: str, site: str, go: Any, done: Any) -> None:
    """One Lambda environment: its own client and its own Budget object for the connection."""
    budget = Budget(dynamodb(endpoint), table, "acme", lambda: PER_MINUTE)
    login = SANDBOX_LOGINS["rest"] | {"site": site, "use_ssl": False}
    api = RestApi(RestConnection.model_validate(login), pacer=budget)
    api.get(
        "/finance/accounting/batches/count"
    )  # warm: the codebase lookup (not an API call) and the connection
    done.put("ready")
    go.wait()
    for _ in range(CALLS):
        api.get("/finance/accounting/batches/count")
    done.put("done")


@pytest.fixture
def budgeted_sandbox() -> Any:
    server = start_sandbox(
        seed=3, invoices=4, budget_calls=SANDBOX_CALLS, budget_window_seconds=SANDBOX_WINDOW
    )
    yield server
    server.stop()


def test_processes_of_one_connection_share_its_budget(
    moto_endpoint: str, budgeted_sandbox: SandboxServer
) -> None:
    table = f"ledger-{uuid.uuid4().hex[:8]}"
    dynamodb(moto_endpoint).create_table(
        TableName=table,
        AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
        BillingMode="PAY_PER_REQUEST",
    )
    site = budgeted_sandbox.site_address
    context = multiprocessing.get_context("spawn")
    go, done = context.Event(), context.Queue()
    processes = [
        context.Process(target=calls_from_a_process, args=(moto_endpoint, table, site, go, done))
        for _ in range(PROCESSES)
    ]
    for process in processes:
        process.start()
    try:
        assert [done.get(timeout=120) for _ in processes] == ["ready"] * PROCESSES
        control = f"http://{site}/_sandbox/budget"
        requests.post(control, json={"calls": SANDBOX_CALLS, "window_seconds": SANDBOX_WINDOW}, timeout=5)
        go.set()
        assert [done.get(timeout=120) for _ in processes] == ["done"] * PROCESSES
    finally:
        for process in processes:
            process.join(timeout=30)
    used = requests.get(control, timeout=5).json()
    [credential] = used["credentials"]
    # Alone, each process would send its 15 calls within 1.5 s: 45 in 3 s, over ConnectWise's 40.
    assert credential["admitted"] == PROCESSES * CALLS
    assert used["throttled"] == 0
    assert credential["peak"] <= SANDBOX_CALLS
