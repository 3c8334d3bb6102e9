"""The SOAP tasks: list and run reports, download records incrementally.

Imported only by the SOAP functions (it imports zeep through connectwise.soap).

Downloads are incremental by each record type's last-updated field. The watermark (the newest
LastUpdated written, and the ids written at exactly that instant) is kept per connection and
record type in the ledger table, and moved only after the S3 files are written: a run that dies
leaves the watermark where it was and the next run downloads the same records again. Pages are
walked by the watermark itself (`LastUpdated >= [cursor]`, ordered by it), not by a growing
skip: a record updated while a download pages moves behind the cursor and is picked up, instead
of shifting the pages and making the download skip another record. Skip is only used to step
through more than a page of records sharing one LastUpdated.
"""

import csv
import io
import json
import re
from collections.abc import Callable
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator

from connector.errors import ConfigurationError, InvalidRequestError
from connector.runtime import ClientsByConnection, logger, parse_request, services
from connector.secrets import load_connection
from connector.services import Services
from connector.settings import Settings
from connector.watermarks import Watermark
from connectwise.conditions import Expression, all_of, any_of, render, where
from connectwise.soap import DEFAULT_PAGE_SIZE, ENTITIES, IntegratorLogin, SoapClient
from connectwise.transport import Deadline

ORDER_BY = re.compile(r"[A-Za-z_][A-Za-z0-9_]*( (ASC|DESC|asc|desc))?")


# Requests


class DownloadRecordsRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    connection: str = Field(min_length=1)
    full: bool = False  # a complete resync: ignore the watermark
    page_size: int = Field(DEFAULT_PAGE_SIZE, ge=1, le=1000)


class ConditionSpec(BaseModel):
    """One condition, or an all/any group, as JSON; values are typed, never pasted into text."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    field: str | None = None
    op: str | None = None
    value: str | bool | int | dict[str, str] | None = (
        None  # {"decimal": "1.50"}, {"datetime": ...}, {"date": ...}
    )
    all: list["ConditionSpec"] | None = None
    any: list["ConditionSpec"] | None = None

    def expression(self) -> Expression:
        if self.all is not None:
            return all_of(*(part.expression() for part in self.all))
        if self.any is not None:
            return any_of(*(part.expression() for part in self.any))
        if self.field is None or self.op is None or self.value is None:
            raise ValueError("a condition needs field, op and value (or all / any)")
        return where(self.field, self.op, _typed_value(self.value))


class RunReportRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    connection: str = Field(min_length=1)
    report: str = Field(min_length=1)
    conditions: ConditionSpec | None = None
    order_by: str = ""
    fields: list[str] = Field(default_factory=list)  # the report's columns to keep; all if empty
    limit: int | None = Field(None, ge=1)  # rows at most
    page_size: int = Field(DEFAULT_PAGE_SIZE, ge=1, le=1000)

    @field_validator("order_by")
    @classmethod
    def _plain_order(cls, order_by: str) -> str:
        if order_by and not ORDER_BY.fullmatch(order_by):
            raise ValueError("order_by is a field name, optionally followed by ASC or DESC")
        return order_by


class ListReportsRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    connection: str = Field(min_length=1)
    include_fields: bool = True


def _typed_value(value: str | bool | int | dict[str, str]) -> Any:
    if not isinstance(value, dict):
        return value
    if len(value) != 1:
        raise ValueError('a typed value is one of {"decimal": ...}, {"datetime": ...}, {"date": ...}')
    ((kind, text),) = value.items()
    if kind == "decimal":
        return Decimal(text)
    if kind == "datetime":
        return datetime.fromisoformat(text.replace("Z", "+00:00"))
    if kind == "date":
        return date.fromisoformat(text)
    raise ValueError(f"unknown value type {kind!r}")


# Clients


def soap_clients(settings: Settings) -> ClientsByConnection[IntegratorLogin, SoapClient]:
    return ClientsByConnection(
        lambda name, fresh: integrator_login(name, settings, fresh), lambda login, _: SoapClient(login)
    )


def integrator_login(name: str, settings: Settings, fresh: bool = False) -> IntegratorLogin:
    connection = load_connection(name, settings, fresh)
    if connection.integrator is None:
        raise ConfigurationError(
            f"connection {name!r} has no integrator login: add "
            '"integrator": {"login_id": ..., "password": ...} to its secret'
        )
    return IntegratorLogin(
        company=connection.company,
        integrator_login_id=connection.integrator.login_id,
        integrator_password=connection.integrator.password,
        site=connection.site,
        directory=connection.directory,
        use_ssl=connection.use_ssl,
    )


# Tasks


def download_handler(entity: str) -> Callable[[dict[str, Any], Any], dict[str, Any]]:
    """The Lambda handler of `download_<entity>`: the five download functions share this one."""

    @logger.inject_lambda_context(clear_state=True)
    def lambda_handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
        request = parse_request(event, DownloadRecordsRequest)
        logger.append_keys(connection=request.connection, entity=entity)
        svc = services()
        return download_records(
            entity,
            request,
            svc,
            svc.soap_for(request.connection).within(Deadline.of(context)),
            context.aws_request_id,
        )

    return lambda_handler


def download_records(
    entity: str,
    request: DownloadRecordsRequest,
    services: Services,
    client: SoapClient,
    request_id: str,
) -> dict[str, Any]:
    """Records of `entity` changed since the watermark (all of them if `full`) to S3, then the
    watermark moves, then `RecordsDownloaded` is announced."""
    watermarks = services.watermarks
    read = watermarks.read(request.connection, entity)
    start = Watermark(None, ()) if request.full else read
    records, reached = changed_records(client, entity, start, request.page_size)
    keys = {}
    if records:
        prefix = _prefix("records", request.connection, entity, services, request_id)
        keys = _write_rows(services, prefix, records)
    moved = reached == start or watermarks.advance(request.connection, entity, read, reached)
    detail = {
        "connection": request.connection,
        "entity": entity,
        "full": request.full,
        "count": len(records),
        "files": keys,
        "watermark": reached.at.isoformat() if reached.at else None,
        "watermark_moved_by_another_run": not moved,
    }
    services.notices.publish("RecordsDownloaded", detail)
    return detail


def changed_records(
    client: SoapClient, entity: str, since: Watermark, page_size: int
) -> tuple[list[dict[str, Any]], Watermark]:
    """Records with last-updated >= the watermark not written at it; and the watermark they reach."""
    field = ENTITIES[entity].last_updated
    cursor, seen, skip = since.at, set(since.ids), 0
    found: dict[Any, dict[str, Any]] = {}
    while True:
        conditions = render(where(field, ">=", cursor)) if cursor else ""
        page = client.find_page(entity, conditions, order_by=field, limit=page_size, skip=skip)
        for record in page:
            at = record[field]
            if at is None or (at == cursor and record["Id"] in seen):
                continue
            found[record["Id"]] = record
            if cursor is None or at > cursor:
                cursor, seen = at, set()
            seen.add(record["Id"])
        if len(page) < page_size:
            break
        one_instant = all(record[field] == cursor for record in page)
        skip = skip + page_size if one_instant else 0  # a page of ties: step over it, else follow the cursor
    return list(found.values()), Watermark(cursor, tuple(sorted(seen)))


def run_report(
    request: RunReportRequest, services: Services, client: SoapClient, request_id: str
) -> dict[str, Any]:
    try:
        conditions = render(request.conditions.expression()) if request.conditions else ""
    except (ValueError, ArithmeticError) as exc:  # ArithmeticError: a decimal that is not a number
        raise InvalidRequestError(f"invalid RunReportRequest: conditions: {exc}") from None
    rows = []
    for row in client.run_report(request.report, conditions, request.order_by, request.page_size):
        rows.append({name: row.get(name) for name in request.fields} if request.fields else row)
        if request.limit and len(rows) >= request.limit:
            break
    prefix = _prefix("reports", request.connection, _slug(request.report), services, request_id)
    keys = _write_rows(services, prefix, rows) if rows else {}
    detail = {
        "connection": request.connection,
        "report": request.report,
        "conditions": conditions,
        "rows": len(rows),
        "files": keys,
    }
    services.notices.publish("ReportReady", detail)
    return detail


def list_reports(request: ListReportsRequest, services: Services, client: SoapClient) -> dict[str, Any]:
    reports = [
        {
            "name": r["Name"],
            "id": r["Id"],
            "custom": r["IsCustom"],
            "fields": [{"name": f["Name"], "type": f["Type"]} for f in r.get("Field") or []],
        }
        for r in client.get_reports(include_fields=request.include_fields)
    ]
    key = services.store.put_json(f"reports/{request.connection}/catalog.json", reports)
    return {"connection": request.connection, "reports": [r["name"] for r in reports], "catalog": key}


# Outputs


def _prefix(kind: str, connection: str, name: str, services: Services, request_id: str) -> str:
    now = datetime.fromtimestamp(services.clock(), UTC)
    return f"{kind}/{connection}/{name}/{now:%Y/%m/%d/%H%M%S}-{request_id}"


def _slug(name: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-") or "report"


def _write_rows(services: Services, prefix: str, rows: list[dict[str, Any]]) -> dict[str, str]:
    columns = list(dict.fromkeys(name for row in rows for name in row))
    plain = [{name: _json_value(row.get(name)) for name in columns} for row in rows]
    text = io.StringIO()
    writer = csv.DictWriter(text, fieldnames=columns, lineterminator="\n")
    writer.writeheader()
    writer.writerows({k: _csv_value(v) for k, v in row.items()} for row in plain)
    return {
        "jsonl": services.store.put_json_lines(f"{prefix}.jsonl", plain),
        "csv": services.store.put(f"{prefix}.csv", text.getvalue().encode(), "text/csv"),
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
