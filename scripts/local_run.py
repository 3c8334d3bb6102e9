"""`make run`: the GL batch life cycle end to end, locally, with no AWS account.

For each backend (Accounting Interface, then REST) it starts moto (server mode) and the
ConnectWise sandbox on free loopback ports, creates the resources from template.yaml, stores
the sandbox login of that backend as the connection's secret, then runs: download -> the
accounting system's confirmation through SQS -> update -> a second download that finds nothing
new -> recreate, and the payments. The SOAP tasks run once. Prints a report per backend and one
side by side, and mirrors S3 under out/<backend>/. Everything started here is stopped on exit,
Ctrl-C or failure.
"""

import argparse
import json
import os
import shutil
import subprocess
import sys
from collections import Counter
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

import requests

from scripts.lambda_local import invoke, poll_sqs, schedule_input
from scripts.local_aws import ROOT, Stack, aws_client, create_stack, moto_server, use_endpoint

CONNECTION = "main"
CENT = Decimal("0.01")
BACKENDS = ("accounting_interface", "rest")
INTEGRATOR = {"login_id": "integrator", "password": "sandbox-integrator"}
SANDBOX_LOGINS: dict[str, dict[str, Any]] = {  # the sandbox's well-known logins, per backend
    "accounting_interface": {
        "company": "sandbox",
        "username": "accounting",
        "password": "sandbox-password",
        "integrator": INTEGRATOR,
    },
    "rest": {
        "backend": "rest",
        "company": "sandbox",
        "public_key": "sandbox-public",
        "private_key": "sandbox-private",
        "client_id": "8c4b2f4e-6a1d-4e3b-9f57-2d0c1b7a9e10",
        "integrator": INTEGRATOR,
    },
}
SANDBOX_LOGIN = SANDBOX_LOGINS["accounting_interface"]


@dataclass
class LocalEnvironment:
    stack: Stack
    sandbox_site: str
    observer_url: str
    connection: str = CONNECTION
    backend: str = "accounting_interface"

    def events(self) -> list[dict[str, Any]]:
        """Events the functions published, in order (drained from the observer queue)."""
        sqs = self.stack.client("sqs")
        seen: list[dict[str, Any]] = []
        while True:
            batch = sqs.receive_message(QueueUrl=self.observer_url, MaxNumberOfMessages=10).get(
                "Messages", []
            )
            if not batch:
                return seen
            for message in batch:
                seen.append(json.loads(message["Body"]))
                sqs.delete_message(QueueUrl=self.observer_url, ReceiptHandle=message["ReceiptHandle"])


@contextmanager
def sandbox_process(seed: int = 1, invoices: int = 40) -> Iterator[str]:
    """`python -m sandbox` on a free loopback port; yields host:port."""
    process = subprocess.Popen(
        [sys.executable, "-m", "sandbox", "--port", "0", "--seed", str(seed), "--invoices", str(invoices)],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None
        line = process.stdout.readline()
        if not line.startswith("sandbox listening on "):
            raise RuntimeError(f"sandbox did not start: {line!r}")
        yield line.split()[3]
    finally:
        process.terminate()
        try:
            process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            process.kill()


@contextmanager
def local_environment(
    sandbox_site: str | None = None,
    endpoint: str | None = None,
    seed: int = 1,
    invoices: int = 40,
    backend: str = "accounting_interface",
    connection: str = CONNECTION,
) -> Iterator[LocalEnvironment]:
    """moto (started here unless `endpoint` is given) + the sandbox + the template's resources,
    with one connection whose secret uses `backend`."""
    with ExitStack() as stop:
        endpoint = endpoint or stop.enter_context(moto_server())
        use_endpoint(endpoint)
        site = sandbox_site or stop.enter_context(sandbox_process(seed, invoices))
        secrets = aws_client(endpoint, "secretsmanager")
        secret_value = SANDBOX_LOGINS[backend] | {"site": site, "use_ssl": False}
        arn = secrets.create_secret(Name=f"connectwise/{connection}", SecretString=json.dumps(secret_value))[
            "ARN"
        ]
        stack = create_stack(endpoint, {"ConnectionName": connection, "ConnectionSecretArn": arn})
        yield LocalEnvironment(stack, site, _observe_events(stack), connection, backend)


def _observe_events(stack: Stack) -> str:
    """A rule on the connector's bus copying every event to a queue, so the run can show them."""
    sqs, events = stack.client("sqs"), stack.client("events")
    url = sqs.create_queue(QueueName="local-event-observer")["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    bus = stack.physical["ConnectorEventBus"]
    events.put_rule(
        Name="local-observer",
        EventBusName=bus,
        EventPattern=json.dumps({"source": ["connectwise.connector"]}),
    )
    events.put_targets(Rule="local-observer", EventBusName=bus, Targets=[{"Id": "observer", "Arn": arn}])
    return str(url)


def run_life_cycle(env: LocalEnvironment) -> dict[str, Any]:
    """Download, confirm through SQS, update, download again, recreate. Returns what happened."""
    stack = env.stack
    schedule_event = schedule_input(stack, "DownloadGLBatchFunction", "Nightly")
    report: dict[str, Any] = {"schedule_event": schedule_event}

    first = invoke(stack, "DownloadGLBatchFunction", schedule_event)
    report["first_download"] = first
    batch_id = first["batch_id"]

    # The accounting system posted the batch and confirms it on the queue.
    stack.client("sqs").send_message(
        QueueUrl=stack.physical["ConfirmationQueue"],
        MessageBody=json.dumps({"connection": env.connection, "batch_id": batch_id}),
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
    report["ledger"] = _ledger_items(stack)
    report["events"] = [
        {"detail-type": e["detail-type"], "batch_id": e["detail"].get("batch_id")} for e in env.events()
    ]
    return report


def run_payments(env: LocalEnvironment) -> dict[str, Any]:
    """The accounting system's payments through SQS: one of each case the connector handles."""
    stack = env.stack
    invoices = requests.get(f"http://{env.sandbox_site}/_sandbox/invoices", timeout=10).json()
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
    for _, body in cases:
        sqs.send_message(QueueUrl=stack.physical["PaymentsQueue"], MessageBody=body)
    responses = poll_sqs(stack, "PaymentsQueue", "UploadInvoicePaymentsFunction")
    outcomes = _payment_rows(stack, "success.jsonl") + _payment_rows(stack, "fail.jsonl")
    final = {
        i["number"]: i
        for i in requests.get(f"http://{env.sandbox_site}/_sandbox/invoices", timeout=10).json()
    }
    return {
        "cases": [name for name, _ in cases],
        "responses": responses,
        "outcomes": outcomes,
        "dead_letters": _queue_depth(stack, "PaymentsDeadLetterQueue"),
        "invoices": [final[i["number"]] for i in (normal, partial, over, zynk)],
        "events": Counter(e["detail-type"] for e in env.events()),
    }


DOWNLOADS = ["agreements", "companies", "invoices", "opportunities", "purchase_orders"]


def run_soap_tasks(env: LocalEnvironment) -> dict[str, Any]:
    """List reports, run one, run every download twice with one invoice paid in between."""
    stack = env.stack
    listed = invoke(stack, "ListReportsFunction", {"connection": env.connection})
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
                schedule_input(stack, _download_function(entity), "Nightly"),
            )
            for entity in DOWNLOADS
        }

    first = download_all()
    invoice = requests.get(f"http://{env.sandbox_site}/_sandbox/invoices", timeout=10).json()[5]
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
    )
    poll_sqs(stack, "PaymentsQueue", "UploadInvoicePaymentsFunction")
    second = download_all()
    return {
        "listed": listed,
        "report": ran,
        "first": first,
        "second": second,
        "paid_invoice": invoice["number"],
    }


def _download_function(entity: str) -> str:
    return "Download" + "".join(part.title() for part in entity.split("_")) + "Function"


def print_soap(report: dict[str, Any]) -> None:
    print("\nSOAP reports and record downloads\n")
    print(
        f"   reports listed: {', '.join(report['listed']['reports'])} (catalog {report['listed']['catalog']})"
    )
    ran = report["report"]
    print(
        f"   report {ran['report']!r} where {ran['conditions']}: {ran['rows']} rows -> {ran['files'].get('csv', '-')}"
    )
    print(
        f"\n   {'records':<16} {'first run':>10} {'second run':>11}   (invoice {report['paid_invoice']} paid in between)"
    )
    for entity in DOWNLOADS:
        print(
            f"   {entity:<16} {report['first'][entity]['count']:>10} {report['second'][entity]['count']:>11}"
        )


def _payment_rows(stack: Stack, suffix: str) -> list[dict[str, Any]]:
    s3 = stack.client("s3")
    bucket = stack.physical["OutputBucket"]
    rows = []
    for item in s3.list_objects_v2(Bucket=bucket, Prefix="payments/").get("Contents", []):
        if item["Key"].endswith(suffix):
            body = s3.get_object(Bucket=bucket, Key=item["Key"])["Body"].read()
            rows += [json.loads(line) for line in body.splitlines()]
    return rows


def _queue_depth(stack: Stack, logical_id: str) -> int:
    attributes = stack.client("sqs").get_queue_attributes(
        QueueUrl=stack.physical[logical_id], AttributeNames=["ApproximateNumberOfMessages"]
    )["Attributes"]
    return int(attributes["ApproximateNumberOfMessages"])


def print_payments(report: dict[str, Any]) -> None:
    print("\nInvoice payments through SQS\n")
    print(f"   sent: {', '.join(report['cases'])}")
    failures = sum(len(r.get("batchItemFailures", [])) for r in report["responses"])
    print(f"   delivered in {len(report['responses'])} batch(es); messages returned for retry: {failures}\n")
    print(f"   {'payment':<12} {'invoice':<10} {'amount':>10}  outcome")
    for row in sorted(report["outcomes"], key=lambda r: (r["kind"], r["payment_id"] or "~")):
        status = row["status"]
        detail = {
            "applied": f"ConnectWise now holds {row['connectwise_amount']} of {row['invoice_total']}",
            "failed": row["error"],
            "overage": row["error"],
        }[status]
        shown = "paid-to-date" if row["kind"] == "paid_to_date" else row["payment_id"] or "-"
        print(
            f"   {shown:<12} {row['invoice_number'] or '-':<10} {row['paid_amount'] or '-':>10}  {status}: {detail}"
        )
    applied_1001 = sum(
        1 for row in report["outcomes"] if row["payment_id"] == "PAY-1001" and row["status"] == "applied"
    )
    print(f"   PAY-1001 was sent twice and applied {applied_1001} time(s)")
    zynk = report["invoices"][-1]
    print(
        f"   {zynk['number']} was sent paid-to-date amounts of 30% and 70% (Zynk's XML without PaymentId): "
        f"it holds {zynk['paid_amount']} of {zynk['total']}, the latest amount, not their sum"
    )
    print(f"   dead-letter queue: {report['dead_letters']} message(s) (the malformed one, with its error)")
    print(f"\n   {'invoice':<10} {'total':>10} {'paid':>10}  date paid")
    for invoice in report["invoices"]:
        print(
            f"   {invoice['number']:<10} {invoice['total']:>10} {invoice['paid_amount']:>10}  {invoice['date_paid'] or '(not fully paid)'}"
        )
    print(f"\n   events: {dict(report['events'])}")


def _first_invoice_id(stack: Stack, download: dict[str, Any]) -> int:
    """The sandbox numbers invoices CW-<record id>; excluding one shows the recreate filters."""
    s3 = stack.client("s3")
    body = s3.get_object(Bucket=stack.physical["OutputBucket"], Key=download["keys"]["records"])[
        "Body"
    ].read()
    for line in body.splitlines():
        row = json.loads(line)
        if row["element"] == "Transaction":
            return int(row["DocumentNumber"].removeprefix("CW-"))
    raise RuntimeError("the first batch has no invoice")


def _ledger_items(stack: Stack) -> list[dict[str, Any]]:
    items = stack.client("dynamodb").scan(TableName=stack.physical["LedgerTable"])["Items"]
    return [
        {"pk": item["pk"]["S"], "status": item.get("status", item.get("state", {"S": ""}))["S"]}
        for item in sorted(items, key=lambda i: i["pk"]["S"])
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


def print_report(report: dict[str, Any], mirrored: list[str], out: Path) -> None:
    first, second, recreate = report["first_download"], report["second_download"], report["recreate"]
    print("\nConnectWise GL batch life cycle (local sandbox + moto)\n")
    print(f"1. download      {first['status']:<12} batch {first['batch_id']}")
    for kind in ("invoices", "expenses", "procurement"):
        print(
            f"                 {kind:<12} {first['counts'][kind]:>5} records   total {first['totals'][kind]:>12}"
        )
    print(f"                 GL entries   {first['gl_entry_ids']:>5}")
    for response in report["update_responses"]:
        failures = response.get("batchItemFailures", [])
        print(f"2. confirmation  {'delivered':<12} via SQS, failed items: {len(failures)}")
    print(f"3. second run    {second['status']:<12} (records already posted are not downloaded again)")
    print(
        f"4. recreate      {recreate['status']:<12} batch {recreate['batch_id']}: "
        f"{recreate['counts']['invoices']} invoices (one excluded by filter), total {recreate['totals']['invoices']}"
    )
    print("\nLedger:")
    for item in report["ledger"]:
        print(f"   {item['pk']:<60} {item['status']}")
    print("\nEvents published:")
    for event in report["events"]:
        print(f"   {event['detail-type']:<20} {event['batch_id'] or ''}")
    print(f"\nS3 objects mirrored under {out}/ ({len(mirrored)}):")
    for key in mirrored:
        print(f"   {key}")


def run_backend(backend: str, out: Path, endpoint: str) -> dict[str, Any]:
    """The GL life cycle and the payments for one connection of `backend`, on fresh AWS state and
    its own sandbox (the same seed: the same site), plus the SOAP tasks once, on the legacy one."""
    from aws_lambda_powertools.utilities import parameters

    requests.post(f"{endpoint}/moto-api/reset", timeout=10).raise_for_status()
    parameters.clear_caches()  # type: ignore[no-untyped-call]
    connection = CONNECTION if backend == "accounting_interface" else "cw-rest"
    with local_environment(endpoint=endpoint, backend=backend, connection=connection) as env:
        result: dict[str, Any] = {"backend": backend, "connection": connection}
        result["life_cycle"] = run_life_cycle(env)
        result["payments"] = run_payments(env)
        if backend == "accounting_interface":
            result["soap"] = run_soap_tasks(env)
        result["mirrored"] = mirror_bucket(env.stack, out / backend)
    return result


def print_side_by_side(results: list[dict[str, Any]]) -> None:
    """One column per backend: the same site, the same steps, the same outcomes expected."""

    def row(label: str, cell: Any) -> None:
        print(f"   {label:<28}" + "".join(f"{cell(r)!s:<40}" for r in results))

    def download(r: dict[str, Any], kind: str) -> str:
        first = r["life_cycle"]["first_download"]
        return f"{first['counts'][kind]} records, {first['totals'][kind]}"

    def outcomes(r: dict[str, Any]) -> str:
        return ", ".join(
            f"{n} {s}" for s, n in sorted(Counter(o["status"] for o in r["payments"]["outcomes"]).items())
        )

    print("\nBoth backends side by side (same seeded site)\n")
    row("", lambda r: f"{r['backend']} ({r['connection']})")
    row("batch id", lambda r: r["life_cycle"]["first_download"]["batch_id"])
    for kind in ("invoices", "expenses", "procurement"):
        row(f"download {kind}", lambda r, k=kind: download(r, k))
    row("GL entries", lambda r: r["life_cycle"]["first_download"]["gl_entry_ids"])
    row("raw document", lambda r: r["life_cycle"]["first_download"]["keys"]["glexport"].rsplit("/", 1)[1])
    row(
        "confirmation -> ledger",
        lambda r: ", ".join(i["status"] for i in r["life_cycle"]["ledger"] if i["pk"].startswith("batch#")),
    )
    row("second download", lambda r: r["life_cycle"]["second_download"]["status"])
    row(
        "recreate (one excluded)",
        lambda r: (
            f"{r['life_cycle']['recreate']['counts']['invoices']} invoices, {r['life_cycle']['recreate']['totals']['invoices']}"
        ),
    )
    row("payments", outcomes)
    for n in range(3):
        row(
            "invoice paid / total" if n == 0 else "",
            lambda r, i=n: (
                f"{r['payments']['invoices'][i]['number']} {r['payments']['invoices'][i]['paid_amount']} / {r['payments']['invoices'][i]['total']}"
            ),
        )
    row("payment dead letters", lambda r: r["payments"]["dead_letters"])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m scripts.local_run", description=__doc__)
    parser.add_argument("--out", type=Path, default=ROOT / "out", help="where to mirror the S3 objects")
    out = parser.parse_args(argv).out
    os.environ.setdefault("POWERTOOLS_LOG_LEVEL", "WARNING")  # the report, not the JSON logs; INFO shows them
    os.environ.setdefault("POWERTOOLS_METRICS_DISABLED", "true")  # nor the EMF metric lines
    shutil.rmtree(out, ignore_errors=True)
    try:
        with moto_server() as endpoint:
            results = [run_backend(backend, out, endpoint) for backend in BACKENDS]
    except KeyboardInterrupt:
        print("interrupted; everything started was stopped", file=sys.stderr)
        return 130
    for result in results:
        print(f"\n===== backend {result['backend']}: connection {result['connection']!r} =====")
        print_report(result["life_cycle"], result["mirrored"], out / result["backend"])
        print_payments(result["payments"])
    print_soap(results[0]["soap"])
    print_side_by_side(results)
    return 0


if __name__ == "__main__":
    sys.exit(main())
