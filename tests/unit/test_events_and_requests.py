"""Sample events (events/) are real Lambda shapes and parse into the task requests."""

import json

import pytest
from aws_lambda_powertools.utilities.parser import parse
from aws_lambda_powertools.utilities.parser.models import EventBridgeModel, SqsModel

from tasks.gl.requests import DownloadRequest, PostingConfirmation, RecreateRequest
from tasks.platform.errors import InvalidRequestError
from tasks.platform.requests import parse_request
from tests.conftest import ROOT

EVENTS = ROOT / "events"


def load(name: str) -> dict:
    return json.loads((EVENTS / name).read_text())


def test_every_function_has_a_sample_event_and_every_event_a_function() -> None:
    functions = {p.name for p in (ROOT / "functions").iterdir() if (p / "app.py").exists()}
    events = {p.stem for p in EVENTS.glob("*.json")}
    assert functions <= events
    assert all(any(event.startswith(name) for name in functions) for event in events)


def test_download_event_is_the_schedule_input() -> None:
    request = parse_request(load("download_gl_batch.json"), DownloadRequest)
    assert request.kinds == ["expenses", "invoices", "procurement"]
    assert request.thru_date == "end_of_last_month"  # resolved in the connection's time zone


def test_update_event_is_an_sqs_event_of_confirmations() -> None:
    event = load("update_gl_batch.json")
    sqs = parse(event=event, model=SqsModel)
    confirmation = parse_request(json.loads(sqs.Records[0].body), PostingConfirmation)
    assert confirmation.gl_entry_ids == [1000, 1001, 1002]


def test_recreate_event_is_an_eventbridge_event() -> None:
    event = load("recreate_gl_batch.json")
    assert parse(event=event, model=EventBridgeModel).detail_type == "RecreateGLBatch"
    request = parse_request(event, RecreateRequest)
    assert request.filters.exclude_invoice_ids == [30001]
    assert request.kinds == ["expenses", "invoices"] and request.thru_date == "end_of_last_month"


@pytest.mark.parametrize(
    ("payload", "message"),
    [
        ({"connection": "main", "kinds": []}, "kinds: List should have at least 1 item"),
        ({"connection": "main; drop", "kinds": ["invoices"]}, "connection: String should match pattern"),
        ({"connection": "main", "kinds": ["invoices"], "thru_date": "yesterday"}, "thru_date"),
        ({"connection": "main"}, "kinds: Field required"),
    ],
)
def test_bad_download_requests_are_clear(payload: dict, message: str) -> None:
    with pytest.raises(InvalidRequestError, match=message):
        parse_request(payload, DownloadRequest)


def test_errors_do_not_echo_input_values() -> None:
    with pytest.raises(InvalidRequestError) as caught:
        parse_request({"connection": "main", "batch_id": "b", "action": "s3cr3t-value"}, PostingConfirmation)
    assert "s3cr3t-value" not in caught.value.message
    assert "action" in caught.value.message


def test_kinds_are_deduplicated() -> None:
    request = parse_request({"connection": "main", "kinds": ["invoices", "invoices"]}, DownloadRequest)
    assert request.kinds == ["invoices"]


@pytest.mark.parametrize(
    "name", ["agreements", "companies", "invoices", "invoices_full", "opportunities", "purchase_orders"]
)
def test_download_events_are_schedule_inputs(name: str) -> None:
    from tasks.records.requests import DownloadRecordsRequest

    request = parse_request(load(f"download_{name}.json"), DownloadRecordsRequest)
    assert request.connection == "main" and request.full == name.endswith("_full")


def test_report_events_parse_and_build_safe_conditions() -> None:
    from tasks.records.requests import ListReportsRequest, RunReportRequest

    assert parse_request(load("list_reports.json"), ListReportsRequest).include_fields
    request = parse_request(load("run_report.json"), RunReportRequest)
    assert request.conditions is not None
    assert str(request.conditions.expression()) == (
        "Closed_Flag = false AND Invoice_Date >= [2026-08-01T00:00:00Z] AND "
        '(Company_Name like "A%" OR Invoice_Amount > 1000.00)'
    )


RECORDS_EVENTS = sorted(
    p.stem
    for p in EVENTS.glob("*.json")
    if p.stem.startswith(("list_reports", "run_report", "download_")) and not p.stem.startswith("download_gl")
)


@pytest.mark.parametrize("name", RECORDS_EVENTS)
def test_every_report_and_record_event_is_a_valid_request(name: str) -> None:
    from connectwise.conditions import REST, SOAP, Dialect
    from tasks.records.requests import (
        DownloadRecordsRequest,
        ListReportsRequest,
        RunReportRequest,
        conditions_of,
    )

    model = (
        ListReportsRequest
        if name.startswith("list_reports")
        else RunReportRequest
        if name.startswith("run_report")
        else DownloadRecordsRequest
    )
    request = parse_request(load(f"{name}.json"), model)
    if isinstance(request, DownloadRecordsRequest | RunReportRequest) and request.conditions:

        def speaks(dialect: Dialect, asked: DownloadRecordsRequest | RunReportRequest = request) -> bool:
            try:
                conditions_of(asked, dialect)
            except InvalidRequestError:
                return False
            return True

        assert speaks(REST) or speaks(SOAP)  # a sample's conditions are said in one API's dialect


def test_narrowed_download_event_is_in_rest_names_and_keeps_a_feed_of_its_own() -> None:
    from connectwise.conditions import REST, SOAP, render
    from tasks.records.downloads import feed_name
    from tasks.records.requests import DownloadRecordsRequest, conditions_of

    request = parse_request(load("download_invoices_narrowed.json"), DownloadRecordsRequest)
    assert render(conditions_of(request, REST), REST) == 'company/name like "*Ltd*" AND total > 1000.00'
    assert request.fields == ["invoiceNumber", "company.name", "date", "total", "balance"]
    assert request.order_by == "total DESC" and not request.full
    assert feed_name("invoices", request, tuple(request.fields)).startswith("invoices#")
    with pytest.raises(InvalidRequestError, match="REST only"):
        conditions_of(request, SOAP)  # `company/name` is a REST name: a SOAP site refuses it by name


def test_report_count_and_page_events() -> None:
    from tasks.records.requests import RunReportRequest

    counted = parse_request(load("run_report_count.json"), RunReportRequest)
    assert counted.count and counted.conditions is not None
    assert str(counted.conditions.expression()) == "Closed_Flag = false"
    page = parse_request(load("run_report_page.json"), RunReportRequest)
    assert (page.skip, page.limit, page.page_size, page.count) == (10, 10, 10, False)
    assert page.fields == ["Invoice_Number", "Company_Name", "Invoice_Amount"]


@pytest.mark.parametrize("path", sorted((EVENTS / "connections").glob("*.json")), ids=lambda p: p.name)
def test_sample_connection_files_are_what_the_admin_command_accepts(path: object) -> None:
    from tasks.connections.jobs import check_jobs
    from tasks.platform.registry import parse_entry

    spec = json.loads(path.read_text())  # type: ignore[attr-defined]
    entry = check_jobs(parse_entry(spec | {"backend": "rest"}, path.name))  # type: ignore[attr-defined]
    assert entry.jobs and len({job.task for job in entry.jobs}) == len(entry.jobs)


def test_split_payment_file_event_is_an_object_created_event_of_a_payment_file() -> None:
    from tasks.payments.drop import upload_of
    from tasks.platform.requests import object_created

    upload = upload_of(object_created(load("split_payment_file.json")), "local-outputbucket")
    assert upload is not None and (upload.connection, upload.name, upload.form) == (
        "main",
        "november-payments.xml",
        "xml",
    )
    assert upload.results.startswith("payment-results/main/november-payments.xml/20261130T091502Z-")
    assert upload_of(object_created(load("split_payment_file.json")), "another-bucket") is None
    with pytest.raises(InvalidRequestError, match="not an S3 Object Created event"):
        object_created(load("recreate_gl_batch.json"))
