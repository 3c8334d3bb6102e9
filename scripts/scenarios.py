"""What `make run` does: three connections of two companies registered in one stack, a simulated
night of their schedules, then each one's GL batch life cycle, payments and reports and records,
each through the functions' handlers as Lambda would invoke them; and the S3 mirror."""

import json
import shutil
from collections import Counter
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

import requests

from scripts.harness import (
    DEFAULT_JOBS,
    LocalEnvironment,
    admin_for,
    job_event,
    observe_events,
    reconcile,
    sandbox_login,
    sandbox_process,
)
from scripts.lambda_local import cold_start, fire_schedules, invoke, poll_sqs
from scripts.local_aws import Stack, create_stack, stack_outputs, use_endpoint
from tasks.admin import dead_letter_queues as dlq
from tasks.admin.__main__ import OUTPUTS
from tasks.admin.commands import add, listing
from tasks.admin.operations import Operations, batches

CENT = Decimal("0.01")


def run_life_cycle(env: LocalEnvironment, first: dict[str, Any]) -> dict[str, Any]:
    """After the night's download (`first`): confirm through SQS, update, download again (the
    schedule's input once more), recreate. Returns what happened."""
    stack = env.stack
    schedule_event = job_event(stack, env.connection, "nightly-gl")
    report: dict[str, Any] = {"schedule_event": schedule_event, "first_download": first}
    batch_id = first["batch_id"]

    # The accounting system posted the batch and confirms it on the queue.
    stack.client("sqs").send_message(
        QueueUrl=stack.physical["ConfirmationQueue"],
        MessageBody=json.dumps({"connection": env.connection, "batch_id": batch_id}),
        MessageGroupId=env.connection,
    )
    report["update_responses"] = poll_sqs(stack, "ConfirmationQueue", "UpdateGLBatchFunction")
    report["second_download"] = invoke(stack, "DownloadGLBatchFunction", schedule_event)

    first_invoice_id = _first_invoice_id(stack, first)
    report["recreate"] = invoke(
        stack,
        "RecreateGLBatchFunction",
        {
            "connection": env.connection,
            "batch_id": batch_id,
            "filters": {"exclude_invoice_ids": [first_invoice_id]},
        },
    )
    report["ledger"] = _ledger_items(stack, env.connection)
    report["events"] = [
        {"detail-type": e["detail-type"], "batch_id": e["detail"].get("batch_id")} for e in env.events()
    ]
    return report


def run_payments(env: LocalEnvironment) -> dict[str, Any]:
    """The accounting system's payments through SQS: one of each case the connector handles."""
    stack = env.stack
    invoices = requests.get(
        f"http://{env.sandbox_site}/_sandbox/invoices?company={env.company}", timeout=10
    ).json()
    normal, partial, over, zynk = invoices[0], invoices[1], invoices[2], invoices[3]
    first_part = (Decimal(partial["total"]) * Decimal("0.4")).quantize(Decimal("0.01"))

    def paid_to_date(invoice: str, amount: Decimal, day: int) -> str:
        """Zynk's XML without PaymentId: the invoice's paid-to-date amount, set, not added."""
        return (
            "<ArrayOfUpdateInvoicePayment><UpdateInvoicePayment>"
            f"<InvoiceNumber>{invoice}</InvoiceNumber><PaidAmount>{amount}</PaidAmount>"
            f"<DatePaid>2026-11-{day:02d}T10:00:00+00:00</DatePaid>"
            "</UpdateInvoicePayment></ArrayOfUpdateInvoicePayment>"
        )

    zynk_total = Decimal(zynk["total"])

    def payment(invoice: str, amount: Decimal | str, payment_id: str, day: int) -> str:
        return json.dumps(
            {
                "connection": env.connection,
                "invoice_number": invoice,
                "paid_amount": str(amount),
                "date_paid": f"2026-11-{day:02d}T10:00:00+00:00",
                "payment_id": payment_id,
                "currency": "USD",
            }
        )

    cases = [
        ("normal payment", payment(normal["number"], "100.00", "PAY-1001", 20)),
        ("partial payment 1 of 2", payment(partial["number"], first_part, "PAY-1002", 21)),
        (
            "partial payment 2 of 2",
            payment(partial["number"], Decimal(partial["total"]) - first_part, "PAY-1003", 22),
        ),
        ("duplicate of PAY-1001", payment(normal["number"], "100.00", "PAY-1001", 20)),
        ("overpayment by 25.00", payment(over["number"], Decimal(over["total"]) + 25, "PAY-1004", 23)),
        ("unknown invoice", payment("CW-99999", "50.00", "PAY-1005", 24)),
        ("malformed message", "this is not a payment"),
        ("paid to date: 30%", paid_to_date(zynk["number"], (zynk_total * Decimal("0.3")).quantize(CENT), 25)),
        (
            "paid to date: 70% (replaces the 30%)",
            paid_to_date(zynk["number"], (zynk_total * Decimal("0.7")).quantize(CENT), 26),
        ),
    ]
    sqs = stack.client("sqs")
    kept_before = _queue_depth(stack, "PaymentsDeadLetterQueue")
    for _, body in cases:
        sqs.send_message(
            QueueUrl=stack.physical["PaymentsQueue"], MessageBody=body, MessageGroupId=env.connection
        )
    responses = poll_sqs(stack, "PaymentsQueue", "UploadInvoicePaymentsFunction")
    outcomes = _payment_rows(env, "success.jsonl") + _payment_rows(env, "fail.jsonl")
    final = {
        i["number"]: i
        for i in requests.get(
            f"http://{env.sandbox_site}/_sandbox/invoices?company={env.company}", timeout=10
        ).json()
    }
    return {
        "cases": [name for name, _ in cases],
        "responses": responses,
        "outcomes": outcomes,
        "dead_letters": _queue_depth(stack, "PaymentsDeadLetterQueue") - kept_before,
        "invoices": [final[i["number"]] for i in (normal, partial, over, zynk)],
        "events": Counter(e["detail-type"] for e in env.events()),
    }


DOWNLOADS = ["agreements", "companies", "invoices", "opportunities", "purchase_orders"]


AMOUNTS = {  # the column of each record type's money, per API (REST opportunities have none)
    "accounting_interface": {
        "agreements": "BillAmount",
        "invoices": "InvoiceAmount",
        "opportunities": "EstimatedTotal",
        "purchase_orders": "Total",
    },
    "rest": {"agreements": "billAmount", "invoices": "total", "purchase_orders": "total"},
}


def run_records_tasks(env: LocalEnvironment, night: dict[str, Any]) -> dict[str, Any]:
    """After the night's report catalog and record downloads (`night`, by job id): run a report,
    pay an invoice, run every download again; through SOAP for a secret with an integrator login,
    through REST for a REST secret without one."""
    stack = env.stack
    listed = night["report-catalog"]
    report_request = {
        "connection": env.connection,
        "report": "Invoices",
        "conditions": {"field": "Invoice_Amount", "op": ">", "value": {"decimal": "1000.00"}},
        "order_by": "Invoice_Amount DESC",
        "fields": ["Invoice_Number", "Company_Name", "Invoice_Amount", "Paid_Amount"],
    }
    ran = invoke(stack, "RunReportFunction", report_request)

    def download_all() -> dict[str, dict[str, Any]]:
        return {
            entity: invoke(
                stack,
                _download_function(entity),
                job_event(stack, env.connection, entity.replace("_", "-")),
            )
            for entity in DOWNLOADS
        }

    first = {entity: night[entity.replace("_", "-")] for entity in DOWNLOADS}
    invoice = requests.get(
        f"http://{env.sandbox_site}/_sandbox/invoices?company={env.company}", timeout=10
    ).json()[5]
    stack.client("sqs").send_message(
        QueueUrl=stack.physical["PaymentsQueue"],
        MessageBody=json.dumps(
            {
                "connection": env.connection,
                "invoice_number": invoice["number"],
                "paid_amount": "10.00",
                "date_paid": "2026-11-25T10:00:00+00:00",
                "payment_id": "PAY-2001",
            }
        ),
        MessageGroupId=env.connection,  # the fair queue's tenant: one connection's backlog waits alone
    )
    poll_sqs(stack, "PaymentsQueue", "UploadInvoicePaymentsFunction")
    second = download_all()
    amounts = AMOUNTS[env.backend]
    return {
        "api": "SOAP" if env.backend == "accounting_interface" else "REST",
        "listed": listed,
        "report": ran,
        "report_total": _total(stack, ran["files"].get("jsonl"), "Invoice_Amount"),
        "first": first,
        "first_totals": {e: _total(stack, first[e]["files"].get("jsonl"), amounts.get(e)) for e in DOWNLOADS},
        "second": second,
        "paid_invoice": invoice["number"],
    }


def _total(stack: Stack, key: str | None, column: str | None) -> Decimal | None:
    """The sum of a money column of a JSON Lines file (None when there is no such column)."""
    if key is None or column is None:
        return None
    text = stack.client("s3").get_object(Bucket=stack.physical["OutputBucket"], Key=key)["Body"].read()
    return sum((Decimal(json.loads(line)[column] or "0") for line in text.splitlines()), Decimal("0.00"))


def _download_function(entity: str) -> str:
    return "Download" + "".join(part.title() for part in entity.split("_")) + "Function"


def _payment_rows(env: LocalEnvironment, suffix: str) -> list[dict[str, Any]]:
    s3 = env.stack.client("s3")
    bucket = env.stack.physical["OutputBucket"]
    rows = []
    for item in s3.list_objects_v2(Bucket=bucket, Prefix=f"payments/{env.connection}/").get("Contents", []):
        if item["Key"].endswith(suffix):
            body = s3.get_object(Bucket=bucket, Key=item["Key"])["Body"].read()
            rows += [json.loads(line) for line in body.splitlines()]
    return rows


def _queue_depth(stack: Stack, logical_id: str) -> int:
    attributes = stack.client("sqs").get_queue_attributes(
        QueueUrl=stack.physical[logical_id], AttributeNames=["ApproximateNumberOfMessages"]
    )["Attributes"]
    return int(attributes["ApproximateNumberOfMessages"])


def _first_invoice_id(stack: Stack, download: dict[str, Any]) -> int:
    """The sandbox numbers invoices <company's prefix>-<record id>; excluding one shows the
    recreate filters."""
    s3 = stack.client("s3")
    body = s3.get_object(Bucket=stack.physical["OutputBucket"], Key=download["keys"]["records"])[
        "Body"
    ].read()
    for line in body.splitlines():
        row = json.loads(line)
        if row["element"] == "Transaction":
            return int(row["DocumentNumber"].rsplit("-", 1)[1])
    raise RuntimeError("the first batch has no invoice")


def _ledger_items(stack: Stack, connection: str) -> list[dict[str, Any]]:
    items = stack.client("dynamodb").scan(TableName=stack.physical["LedgerTable"])["Items"]
    return [
        {
            "pk": item["pk"]["S"],
            "status": item.get("status", item.get("state", item.get("outcome", {"S": ""})))["S"],
        }
        for item in sorted(items, key=lambda i: i["pk"]["S"])
        if f"#{connection}#" in item["pk"]["S"]
    ]


def mirror_bucket(stack: Stack, target: Path) -> list[str]:
    """Copy every object of the output bucket under target/ (replacing what was there)."""
    shutil.rmtree(target, ignore_errors=True)
    s3 = stack.client("s3")
    bucket = stack.physical["OutputBucket"]
    keys = [o["Key"] for o in s3.list_objects_v2(Bucket=bucket).get("Contents", [])]
    for key in keys:
        path = target / key
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(s3.get_object(Bucket=bucket, Key=key)["Body"].read())
    return keys


@dataclass(frozen=True)
class LocalConnection:
    """A connection `make run` registers: `full` ones also take payments and download records."""

    name: str
    company: str
    backend: str
    owner_level: str | None = None
    full: bool = True


# Two companies seeded alike (the same site through either backend); acme's two locations post
# to different books, so acme has a connection per owner level (REST filters by location id).
CONNECTIONS = (
    LocalConnection("globex", "globex", "accounting_interface"),
    LocalConnection("acme-tampa", "acme", "rest", owner_level="1"),
    LocalConnection("acme-london", "acme", "rest", owner_level="2", full=False),
)


def jobs_of(connection: LocalConnection) -> list[dict[str, Any]]:
    gl: dict[str, Any] = dict(DEFAULT_JOBS[0])
    if connection.owner_level:
        gl["input"] = gl["input"] | {"owner_level": connection.owner_level}
    return [gl, *DEFAULT_JOBS[1:]] if connection.full else [gl]


def run_connections(out: Path, endpoint: str) -> dict[str, Any]:
    """One stack, one sandbox of two companies, three connections registered through the admin
    path (checked against ConnectWise before they are enabled); a simulated night fires every
    schedule; then each connection's life cycle, payments and records. Mirrors S3 under out/."""
    with sandbox_process(companies=()) as site:
        for company in sorted({c.company for c in CONNECTIONS}):
            requests.post(
                f"http://{site}/_sandbox/companies", json={"company": company, "seed": 1}, timeout=10
            ).raise_for_status()
        use_endpoint(endpoint)
        stack = create_stack(endpoint, {})
        cold_start()
        observer, others = observe_events(stack), dict[str, list[dict[str, Any]]]()
        admin = admin_for(stack)
        for c in CONNECTIONS:
            spec = {"name": c.name, "time_zone": "UTC", "jobs": jobs_of(c)}
            add(
                admin,
                spec,
                sandbox_login(c.backend, c.company) | {"site": site, "use_ssl": False},
                enable=True,
            )
        reconcile(stack)
        night = fire_schedules(stack)
        failed = [f"{f.schedule}: {f.error}" for f in night if f.error]
        if failed:
            raise RuntimeError("scheduled jobs failed: " + "; ".join(failed))
        listed = listing(admin)  # as the operator sees the morning after
        results = []
        for c in CONNECTIONS:
            env = LocalEnvironment(stack, site, observer, c.name, c.backend, company=c.company, others=others)
            ran = {f.input["job"]: f.result for f in night if f.input["connection"] == c.name}
            result: dict[str, Any] = {"connection": c.name, "backend": c.backend, "company": c.company}
            result["owner_level"] = c.owner_level
            result["night"] = {job: (r or {}).get("status", "") for job, r in ran.items()}
            result["life_cycle"] = run_life_cycle(env, ran["nightly-gl"])
            if c.full:
                result["payments"] = run_payments(env)
                result["records"] = run_records_tasks(env, ran)
            results.append(result)
        mirrored = mirror_bucket(stack, out)
        operator = operator_view(stack, admin)
    return {"connections": results, "listing": listed, "mirrored": mirrored, "operator": operator}


def operator_view(stack: Stack, admin: Any) -> dict[str, Any]:
    """What the operator's command shows at the end of the run (make admin ARGS="list",
    "batches", "dlq list ..."), the watcher's look, and each connection's payments."""
    ops = Operations(stack.client("dynamodb"), operator_resources(stack), stack.client("sqs"))
    watched = invoke(stack, "WatchOperationsFunction", {"watch": True})
    s3, bucket = stack.client("s3"), stack.physical["OutputBucket"]
    payments: dict[str, dict[str, int]] = {}
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix="payments/"):
        for item in page.get("Contents", []):
            key = item["Key"]
            if key.endswith(".jsonl"):
                rows = s3.get_object(Bucket=bucket, Key=key)["Body"].read().decode().splitlines()
                for row in rows:
                    status = json.loads(row).get("status", "")
                    counts = payments.setdefault(key.split("/")[1], {})
                    counts[status] = counts.get(status, 0) + 1
    return {
        "listing": listing(admin),
        "batches": batches(ops),
        "dead_letters": {queue: len(dlq.peek(ops, queue, 50)) for queue in sorted(dlq.QUEUES)},
        "payments": payments,
        "watched": watched,
    }


def operator_resources(stack: Stack) -> dict[str, str]:
    """What the operator's command reads from the stack's outputs, for the local stack."""
    outputs = stack_outputs(stack)
    return {option: outputs[name] for option, name in OUTPUTS.items() if name in outputs}
