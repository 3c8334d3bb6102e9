"""Shared pieces of the attacks on the connection's budget (tasks.platform.budget)."""

import time
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from botocore.exceptions import ClientError

from scripts.local_aws import aws_client
from tasks.platform.budget import Budget, budget_key
from tests.unit.test_budget import new_table


@pytest.fixture(scope="module")
def dynamodb(moto_endpoint: str) -> Any:
    return aws_client(moto_endpoint, "dynamodb")


@pytest.fixture
def table(dynamodb: Any) -> Iterator[str]:
    name = f"attack-{uuid.uuid4().hex[:8]}"
    new_table(dynamodb, name)
    yield name
    dynamodb.delete_table(TableName=name)


class FailingDynamoDB:
    """The real client, but every GetItem/UpdateItem raises DynamoDB's throttling error once
    `armed` (as DynamoDB does after botocore's own retries are spent)."""

    def __init__(self, real: Any) -> None:
        self.real, self.armed, self.failures = real, False, 0
        self.exceptions = real.exceptions

    def _maybe_fail(self, operation: str) -> None:
        if self.armed:
            self.failures += 1
            raise ClientError(
                {"Error": {"Code": "ProvisionedThroughputExceededException", "Message": "slow down"}},
                operation,
            )

    def get_item(self, **kwargs: Any) -> Any:
        self._maybe_fail("GetItem")
        return self.real.get_item(**kwargs)

    def update_item(self, **kwargs: Any) -> Any:
        self._maybe_fail("UpdateItem")
        return self.real.update_item(**kwargs)


def put_budget_item(
    dynamodb: Any, table: str, connection: str = "acme", **attributes: dict[str, str]
) -> None:
    dynamodb.put_item(TableName=table, Item=budget_key(connection) | attributes)


def now_ms() -> int:
    return int(time.time() * 1000)


def budget(db: Any, table: str, per_minute: int = 600, connection: str = "acme", **kw: Any) -> Budget:
    return Budget(db, table, connection, lambda: per_minute, **kw)
