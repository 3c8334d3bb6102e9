"""Rows to S3 as JSON Lines and CSV with exact values: decimals as text, date-times in UTC."""

import csv
import io
import json
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

from tasks.platform.storage import Store


def write_rows(store: Store, prefix: str, rows: list[dict[str, Any]]) -> dict[str, str]:
    """`<prefix>.jsonl` and `<prefix>.csv`: the columns of every row, in first-seen order."""
    columns = list(dict.fromkeys(name for row in rows for name in row))
    plain = [{name: _json_value(row.get(name)) for name in columns} for row in rows]
    text = io.StringIO()
    writer = csv.DictWriter(text, fieldnames=columns, lineterminator="\n")
    writer.writeheader()
    writer.writerows({k: _csv_value(v) for k, v in row.items()} for row in plain)
    return {
        "jsonl": store.put_json_lines(f"{prefix}.jsonl", plain),
        "csv": store.put(f"{prefix}.csv", text.getvalue().encode(), "text/csv"),
    }


def _json_value(value: Any) -> Any:
    """Decimals as strings (exact), date-times as ISO 8601 in UTC; nested lists and maps kept."""
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, datetime):
        return value.astimezone(UTC).isoformat().replace("+00:00", "Z") if value.tzinfo else value.isoformat()
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, dict):
        return {k: _json_value(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_json_value(v) for v in value]
    return value


def _csv_value(value: Any) -> Any:
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return ""
    if isinstance(value, dict | list):
        return json.dumps(value)
    return value
