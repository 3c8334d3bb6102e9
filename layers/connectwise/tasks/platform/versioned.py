"""DynamoDB items written whole under a version: a write lands only on the version it read."""

from typing import Any

from botocore.exceptions import ClientError


def error_code(exc: ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Code", ""))


def put_if_version(db: Any, table: str, item: dict[str, Any], read_version: int) -> bool:
    """Write the whole item with version read_version + 1, only if its version is still
    `read_version` (0: no version yet). False, writing nothing, if another writer came first."""
    item = item | {"version": {"N": str(read_version + 1)}}
    condition: dict[str, Any] = (
        {
            "ConditionExpression": "version = :read",
            "ExpressionAttributeValues": {":read": {"N": str(read_version)}},
        }
        if read_version
        else {"ConditionExpression": "attribute_not_exists(version)"}
    )
    try:
        db.put_item(TableName=table, Item=item, **condition)
    except ClientError as exc:
        if error_code(exc) != "ConditionalCheckFailedException":
            raise
        return False
    return True
