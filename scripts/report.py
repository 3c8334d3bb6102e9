"""How `make run` prints what happened: one report per backend and both side by side."""

from collections import Counter
from pathlib import Path
from typing import Any


def print_records(report: dict[str, Any]) -> None:
    print(f"\nReports and record downloads ({report['api']})\n")
    print(
        f"   reports listed: {', '.join(report['listed']['reports'])} (catalog {report['listed']['catalog']})"
    )
    ran = report["report"]
    where = ran["conditions"]
    print(
        f"   report {ran['report']!r} where {where['field']} {where['op']} {where['value']['decimal']}: "
        f"{ran['rows']} rows, Invoice_Amount {report['report_total']} -> {ran['files'].get('csv', '-')}"
    )
    print(
        f"\n   {'records':<16} {'first run':>10} {'total':>12} {'second run':>11}   (invoice {report['paid_invoice']} paid in between)"
    )
    for entity in report["first"]:
        total = report["first_totals"][entity]
        print(
            f"   {entity:<16} {report['first'][entity]['count']:>10} {total if total is not None else '-':>12} "
            f"{report['second'][entity]['count']:>11}"
        )


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
    row("reports and records through", lambda r: r["records"]["api"])
    row("reports listed", lambda r: len(r["records"]["listed"]["reports"]))
    row(
        "report Invoices > 1000.00",
        lambda r: f"{r['records']['report']['rows']} rows, {r['records']['report_total']}",
    )
    for entity in results[0]["records"]["first"]:

        def records(r: dict[str, Any], e: str = entity) -> str:
            total = r["records"]["first_totals"][e]
            counts = f"{r['records']['first'][e]['count']} then {r['records']['second'][e]['count']}"
            return counts + (f", {total}" if total is not None else "")

        row(f"download {entity}", records)
