"""The sandbox's REST side through a typed client generated from the OpenAPI subset (as an
independent user of ConnectWise's spec would build one): every served path answers in a shape
the client reads, and a REST download agrees with the SOAP records of the same site."""

import re
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest

from sandbox import soap
from sandbox.rest_records import AMOUNTS
from sandbox.server import SandboxServer
from tests.generated_client import Api, exact
from tests.rest_contract import Contract

pytestmark = pytest.mark.slow  # the client is generated once per session (a few seconds)

# SOAP entity -> the generated module of its REST list operation (count and by-id follow the name)
RECORDS = {
    "agreements": "agreements.get_finance_agreements",
    "companies": "companies.get_company_companies",
    "invoices": "invoices.get_finance_invoices",
    "opportunities": "opportunities.get_sales_opportunities",
    "purchase_orders": "purchase_orders.get_procurement_purchaseorders",
}
LAST_UPDATED = {"agreements": "LastUpdate"}  # the others' SOAP field is LastUpdated
TIMESTAMP = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ")

SERVED = {
    "GET /company/companies", "GET /company/companies/count", "GET /company/companies/{id}",
    "GET /finance/agreements", "GET /finance/agreements/count", "GET /finance/agreements/{id}",
    "GET /finance/invoices", "GET /finance/invoices/count", "GET /finance/invoices/{id}",
    "GET /sales/opportunities", "GET /sales/opportunities/count", "GET /sales/opportunities/{id}",
    "GET /procurement/purchaseorders", "GET /procurement/purchaseorders/count",
    "GET /procurement/purchaseorders/{id}",
    "GET /system/reports", "GET /system/reports/{name}", "GET /system/reports/{name}/columns",
    "GET /system/reports/{name}/count",
    "GET /finance/accounting/unpostedinvoices", "GET /finance/accounting/unpostedinvoices/count",
    "GET /finance/accounting/unpostedexpenses", "GET /finance/accounting/unpostedexpenses/count",
    "GET /finance/accounting/unpostedprocurement", "GET /finance/accounting/unpostedprocurement/count",
    "POST /finance/accounting/export", "GET /finance/accounting/batches", "POST /finance/accounting/batches",
    "GET /finance/accounting/batches/count", "GET /finance/accounting/batches/{id}",
    "POST /finance/accounting/batches/{id}/export",
    "GET /finance/invoices/{id}/payments", "POST /finance/invoices/{id}/payments",
    "GET /finance/invoices/{id}/payments/{id}", "PUT /finance/invoices/{id}/payments/{id}",
}  # fmt: skip


def download(api: Api, operation: str, page_size: int = 4, **params: Any) -> list[Any]:
    """Every page of a list through the typed operation, as a user pages: until a short page."""
    records, number = [], 1
    while True:
        response = api(operation, page=number, page_size=page_size, **params)
        assert response.status_code == 200, response.content
        records.extend(response.parsed)
        if len(response.parsed) < page_size:
            return records
        number += 1


def soap_records(sandbox: SandboxServer, entity: str) -> list[dict[str, Any]]:
    with sandbox.accounting.lock:
        return soap.records(sandbox.accounting.site, entity)


def moment(text: str) -> datetime:
    assert TIMESTAMP.fullmatch(text), text
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


@pytest.mark.parametrize("entity", RECORDS)
def test_a_rest_download_agrees_with_the_soap_records(api: Api, sandbox: SandboxServer, entity: str) -> None:
    operation = RECORDS[entity]
    records = download(api, operation)
    soap_side = {r["Id"]: r for r in soap_records(sandbox, entity)}
    assert [r.id for r in records] == sorted(soap_side) and len(records) == len(soap_side)
    assert api(operation + "_count").parsed.count == len(soap_side)
    stamp = LAST_UPDATED.get(entity, "LastUpdated")
    for record in records:
        updated = moment(record.field_info["lastUpdated"])
        assert updated == soap_side[record.id][stamp].astimezone(UTC)
    exact_list = exact(api(operation, page_size=1000))
    if entity in AMOUNTS:
        soap_field, rest_field = AMOUNTS[entity]
        amounts = {r["id"]: r[rest_field] for r in exact_list}
        assert amounts == {i: r[soap_field] for i, r in soap_side.items()}
        assert all(isinstance(a, Decimal) for a in amounts.values())
    some = records[len(records) // 2]
    one = api(operation + "_by_id", some.id)
    assert one.status_code == 200 and one.parsed.to_dict() == some.to_dict()
    assert exact(one) == next(r for r in exact_list if r["id"] == some.id)


@pytest.mark.parametrize("entity", RECORDS)
def test_an_unknown_id_is_a_404_with_connectwise_error_body(api: Api, entity: str) -> None:
    response = api(RECORDS[entity] + "_by_id", 999_999)
    error = api.model("ErrorResponseMessage").from_dict(exact(response))
    assert response.status_code == 404 and error.code == "NotFound" and "999999" in error.message
    assert error.errors == []


def test_a_payment_moves_the_invoice_for_rest_and_soap_alike(
    api: Api, sandbox: SandboxServer, client: Any
) -> None:
    before = {r.id: r for r in download(api, RECORDS["invoices"], page_size=100)}
    first, second = sorted(before)[:2]
    payment = api.model("InvoicePayment").from_dict(
        {"type": "Payment", "invoice": {"id": first}, "amount": 1.5, "paymentDate": "2026-09-01T10:00:00Z"}
    )
    assert (
        api("invoice_payments.post_finance_invoices_by_parent_id_payments", first, body=payment).status_code
        == 201
    )
    client.update_invoice_payment(before[second].invoice_number, Decimal("2.00"), datetime.now(UTC))
    after = {r.id: r for r in download(api, RECORDS["invoices"], page_size=100)}
    soap_side = {r["Id"]: r for r in soap_records(sandbox, "invoices")}
    for paid, amount in ((first, Decimal("1.50")), (second, Decimal("2.00"))):
        updated = moment(after[paid].field_info["lastUpdated"])
        assert updated > moment(before[paid].field_info["lastUpdated"])
        assert updated == soap_side[paid]["LastUpdated"]
        assert (
            exact(api(RECORDS["invoices"] + "_by_id", paid))["payments"]
            == amount
            == soap_side[paid]["PaidAmount"]
        )
    untouched = sorted(before)[2]
    assert after[untouched].field_info["lastUpdated"] == before[untouched].field_info["lastUpdated"]


def test_reports_are_the_soap_reports(api: Api, sandbox: SandboxServer) -> None:
    listed = api("reports.get_system_reports").parsed
    assert [r.name for r in listed] == list(soap.REPORTS)
    for name, (entity, columns) in soap.REPORTS.items():
        definitions = api("reports.get_system_reports_by_report_name_columns", name).parsed
        assert [list(d.additional_properties) for d in definitions] == [[c] for c in columns]
        assert [d[c].type_ for d, c in zip(definitions, columns, strict=True)] == [
            t for _, t in columns.values()
        ]
        data = api("reports.get_system_reports_by_report_name", name, page_size=1000)
        assert data.status_code == 200 and [
            list(d.additional_properties) for d in data.parsed.column_definitions
        ] == [[c] for c in columns]
        expected = [
            [_cell(record.get(source)) for source, _ in columns.values()]
            for record in soap_records(sandbox, entity)
        ]
        assert exact(data)["row_values"] == expected
        assert api("reports.get_system_reports_by_report_name_count", name).parsed.count == len(expected)


def _cell(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.astimezone(UTC).isoformat().replace("+00:00", "Z")
    return value


def test_a_report_honours_conditions_order_columns_and_pages(api: Api, sandbox: SandboxServer) -> None:
    rows = [r for r in soap_records(sandbox, "invoices") if r["InvoiceAmount"] > Decimal("500")]
    rows.sort(key=lambda r: (-r["InvoiceAmount"], r["InvoiceNumber"]))
    query = {
        "conditions": "Invoice_Amount > 500 and Closed_Flag = False",
        "order_by": "Invoice_Amount desc, Invoice_Number",
    }
    pages = []
    for number in (1, 2, 3, 4):
        response = api(
            "reports.get_system_reports_by_report_name", "Invoices", page=number, page_size=3, **query
        )
        pages.append(exact(response)["row_values"])
    assert rows and pages[-1] == []  # the last page asked for is beyond the rows
    columns = list(soap.REPORTS["Invoices"][1])
    expected = [[_cell(r[soap.REPORTS["Invoices"][1][c][0]]) for c in columns] for r in rows]
    assert [row for rows_ in pages for row in rows_] == expected
    columns = "Invoice_Amount,Invoice_Number,Company_Name,Closed_Flag"  # the typed operation has no `columns`
    chosen = api.get(
        "/system/reports/Invoices", columns=columns, conditions=query["conditions"], orderBy=query["order_by"]
    )
    cells = exact(chosen)
    assert [list(d) for d in cells["column_definitions"]] == [
        ["Invoice_Amount"], ["Invoice_Number"], ["Company_Name"], ["Closed_Flag"]
    ]  # fmt: skip
    assert cells["row_values"] == [
        [r["InvoiceAmount"], r["InvoiceNumber"], r["CompanyName"], False] for r in rows
    ]
    counted = api(
        "reports.get_system_reports_by_report_name_count", "Invoices", conditions=query["conditions"]
    )
    assert counted.parsed.count == len(rows)


def test_an_unknown_report_or_column_is_refused_with_the_error_body(api: Api) -> None:
    missing = api("reports.get_system_reports_by_report_name", "No Such Report")
    assert missing.status_code == 404 and exact(missing)["code"] == "NotFound"
    assert "No Such Report" in exact(missing)["message"] and exact(missing)["errors"] == []
    column = api.get("/system/reports/Invoices", columns="Invoice_Number,Nope")
    assert column.status_code == 400 and "Nope" in exact(column)["message"]
    assert exact(column)["errors"][0]["field"] == "columns"


def test_counts_honour_conditions(api: Api, sandbox: SandboxServer) -> None:
    lists = {
        "accounting_unposted_invoices.get_finance_accounting_unpostedinvoices": "locationId = 1",
        "accounting_unposted_expenses.get_finance_accounting_unpostedexpenses": "total > 40",
        "accounting_unposted_procurements.get_finance_accounting_unpostedprocurement": "total < 500",
        "invoices.get_finance_invoices": 'balance >= 1000 OR company/identifier contains "1"',
    }
    for operation, condition in lists.items():
        every = exact(api(operation, page_size=1000))
        chosen = exact(api(operation, page_size=1000, conditions=condition))
        assert api(operation + "_count").parsed.count == len(every)
        assert api(operation + "_count", conditions=condition).parsed.count == len(chosen)


def test_every_served_path_is_called_through_the_generated_client(
    api: Api, sandbox: SandboxServer, rest_contract: Contract
) -> None:
    """A user's tour: each operation answers in a shape the typed client parses."""
    for entity, operation in RECORDS.items():
        first = api(operation, page_size=2).parsed[0]
        assert api(operation + "_count").parsed.count >= 1
        assert api(operation + "_by_id", first.id).parsed.id == first.id, entity
    for name in soap.REPORTS:
        assert api("reports.get_system_reports_by_report_name", name, page_size=2).parsed.row_values
        assert api("reports.get_system_reports_by_report_name_columns", name).parsed
        assert api("reports.get_system_reports_by_report_name_count", name).parsed.count >= 1
    assert api("reports.get_system_reports").parsed
    for kind in ("unpostedinvoices", "unpostedexpenses", "unpostedprocurement"):
        tag = {"unpostedprocurement": "accounting_unposted_procurements"}.get(
            kind, f"accounting_unposted_{kind.removeprefix('unposted')}"
        )
        assert api(f"{tag}.get_finance_accounting_{kind}").parsed
        assert api(f"{tag}.get_finance_accounting_{kind}_count").parsed.count >= 1
    request = api.model("ExportAccountingBatchRequest").from_dict({"exportInvoicesFlag": True})
    export = api("accounting_batches.post_finance_accounting_export", body=request).parsed
    ids = [int(i) for t in export.transactions for i in t.gl_entry_ids.split(",")]
    create = api.model("CreateAccountingBatchRequest").from_dict(
        {"batchIdentifier": "tour-1", "exportInvoicesFlag": True, "processedRecordIds": ids}
    )
    assert api("accounting_batches.post_finance_accounting_batches", body=create).status_code == 201
    [batch] = api("accounting_batches.get_finance_accounting_batches").parsed
    assert api("accounting_batches.get_finance_accounting_batches_count").parsed.count == 1
    assert (
        api("accounting_batches.get_finance_accounting_batches_by_id", batch.id).parsed.batch_identifier
        == "tour-1"
    )
    again = api("accounting_batches.post_finance_accounting_batches_by_id_export", batch.id, body=request)
    assert again.status_code == 201 and again.parsed.transactions
    invoice = api(RECORDS["invoices"], page_size=1).parsed[0]
    payment = api.model("InvoicePayment").from_dict(
        {"type": "Payment", "invoice": {"id": invoice.id}, "amount": 3, "paymentDate": "2026-09-01T10:00:00Z"}
    )
    payments = "invoice_payments.{}_finance_invoices_by_parent_id_payments"
    created = api(payments.format("post"), invoice.id, body=payment).parsed
    assert [p.id for p in api(payments.format("get"), invoice.id).parsed] == [created.id]
    assert api(payments.format("get") + "_by_id", invoice.id, created.id).parsed.amount == 3
    payment.amount = 4
    assert api(payments.format("put") + "_by_id", invoice.id, created.id, body=payment).parsed.amount == 4
    assert api(RECORDS["invoices"] + "_by_id", invoice.id).parsed.payments == 4
    called = {re.sub(r"(/system/reports)/[^/{]+", r"\1/{name}", key) for key in sandbox.rest.calls}
    assert called == {f"{method} {path.lower()}" for method, path in (s.split() for s in SERVED)}
    assert rest_contract.checked and not rest_contract.violations
