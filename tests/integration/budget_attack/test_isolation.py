"""Attack: isolation and sharing of budgets between connections.

Run: PYTHONPATH=layers/connectwise:. /work/main/.venv/bin/python -m pytest -q tests/integration/budget_attack/test_isolation.py
"""

from typing import Any

import pytest

from connectwise.transport import Deadline
from tasks.platform.budget import Budgets, budget_key
from tasks.platform.errors import ConfigurationError
from tasks.platform.registry import ConnectionEntry, Registry, parse_entry
from tests.unit.test_budget import most_in_a_minute


@pytest.mark.parametrize("name", ["a#b", "budget#x", "a b", "", "-a", "a/b", "a\n"])
def test_a_name_that_could_reach_another_ledger_key_is_refused(name: str) -> None:
    """Held: '#' (the ledger's key separator) and other odd names are refused by the registry."""
    with pytest.raises(ConfigurationError):
        parse_entry({"name": name, "backend": "rest"}, "entry")


def test_two_connections_of_one_connectwise_company_share_its_budget(dynamodb: Any, table: str) -> None:
    """The admin commands allow several connections of one ConnectWise company (same `site`,
    e.g. different owner levels posting to separate books: tasks.admin.commands._no_shared_records).
    Each gets its own budget#<connection> at the default 600 a minute: together 1,140 calls a
    minute reach one site whose limit is ~1,000 (budget.py's premise), for the default alone."""
    registry_table = f"{table}-registry"
    dynamodb.create_table(
        TableName=registry_table,
        AttributeDefinitions=[{"AttributeName": "name", "AttributeType": "S"}],
        KeySchema=[{"AttributeName": "name", "KeyType": "HASH"}],
        BillingMode="PAY_PER_REQUEST",
    )
    try:
        registry = Registry(dynamodb, registry_table)
        for name in ("acme-books-east", "acme-books-west"):
            registry.put(ConnectionEntry(name=name, backend="rest", site="acme@na.myconnectwise.net"))
        budgets = Budgets(dynamodb, table, registry)
        clocks = {"acme-books-east": [1_000.0], "acme-books-west": [1_000.0]}
        pacers = {}
        for name, now in clocks.items():
            pacer = budgets(name)
            pacer.clock = lambda now=now: now[0]  # type: ignore[method-assign]
            pacers[name] = pacer
        sent: list[float] = []
        for _ in range(1400):
            name = min(clocks, key=lambda n: clocks[n][0])
            at = max(clocks[name][0], pacers[name].turn(Deadline(), "GET /x"))
            clocks[name][0] = at + 0.01
            sent.append(at)
        limit = max(registry.get(n).calls_per_minute for n in clocks)  # type: ignore[union-attr]
        assert most_in_a_minute(sent) <= limit, (
            f"{most_in_a_minute(sent)} calls a minute to one ConnectWise company "
            f"(keys {budget_key('acme-books-east')['pk']['S']}, {budget_key('acme-books-west')['pk']['S']})"
        )
    finally:
        dynamodb.delete_table(TableName=registry_table)
