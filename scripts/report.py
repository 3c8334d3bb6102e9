"""How `make run` prints what happened: the registry, one report per connection, where each
connection's outputs are, and the two companies (one per backend) side by side."""

from collections import Counter
from decimal import Decimal
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
        f"\n   {'records':<16} {'first run':>10} {'total':>12} {'second run':>11}   (the payments above and invoice {report['paid_invoice']} paid in between)"
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
    print(f"\nS3 objects of this connection, mirrored under {out}/ ({len(mirrored)}):")
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

    print("\nBoth backends side by side (two companies seeded alike; acme's two owner levels added up)\n")
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
            f"{r['life_cycle']['recreate']['counts']['invoices']} of {r['life_cycle']['full_batch_invoices']} invoices"
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


def print_registry(listing: list[dict[str, Any]]) -> None:
    """The operator's `python -m tasks.admin list` after the simulated night."""
    print(
        "Connections in the registry (added through the admin path, checked against ConnectWise, enabled)\n"
    )
    for row in listing:
        state = "enabled" if row["enabled"] else "DISABLED"
        print(f"   {row['name']:<12} {row['backend']:<21} {row['time_zone']:<4} {state}")
        for job in row["jobs"]:
            run = job["last_run"]
            last = f"{run['outcome']} ({run['detail']})" if run else "never run"
            print(f"      {job['id']:<16} {job['task']:<26} {job['schedule']:<20} last run: {last}")


def print_prefixes(results: list[dict[str, Any]], mirrored: list[str]) -> None:
    """Every output is under its connection's prefix: objects per area and connection."""
    areas = ("gl-batches", "records", "reports", "payments")
    print("\nOutputs by connection (S3 keys <area>/<connection>/...)\n")
    print(f"   {'connection':<14}" + "".join(f"{area:>12}" for area in areas))
    for result in results:
        name = result["connection"]
        counts = [sum(1 for k in mirrored if k.startswith(f"{area}/{name}/")) for area in areas]
        print(f"   {name:<14}" + "".join(f"{n:>12}" for n in counts))
    placed = {k for k in mirrored for r in results if k.split("/")[1:2] == [r["connection"]]}
    print(f"   objects under no connection's prefix: {len(set(mirrored) - placed)}")


def side_by_side(results: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One column per company: a company's GL downloads added up over its connections (its owner
    levels), its payments and records from the connection that ran them."""
    columns = []
    for company in dict.fromkeys(r["company"] for r in results):
        own = [r for r in results if r["company"] == company]
        full = next(r for r in own if "payments" in r)
        firsts = [r["life_cycle"]["first_download"] for r in own]
        first = dict(firsts[0]) | {
            "batch_id": f"{len(firsts)} batches" if len(firsts) > 1 else firsts[0]["batch_id"],
            "counts": {k: sum(f["counts"][k] for f in firsts) for k in firsts[0]["counts"]},
            "totals": {k: str(sum(Decimal(f["totals"][k]) for f in firsts)) for k in firsts[0]["totals"]},
            "gl_entry_ids": sum(f["gl_entry_ids"] for f in firsts),
        }
        seconds = {r["life_cycle"]["second_download"]["status"] for r in own}
        life_cycle = full["life_cycle"] | {
            "first_download": first,
            "second_download": {"status": ", ".join(sorted(seconds))},
            "ledger": [i for r in own for i in r["life_cycle"]["ledger"]],
            "full_batch_invoices": full["life_cycle"]["first_download"]["counts"]["invoices"],
        }
        names = " + ".join(r["connection"] for r in own)
        columns.append(full | {"connection": names, "life_cycle": life_cycle})
    return columns


def print_operator_view(view: dict[str, Any]) -> None:
    """The morning after, as the operator sees it (make admin ARGS="list" / "batches" / "dlq list
    QUEUE", the watcher's metrics, the payment result files)."""
    print('\n===== The operator\'s view (make admin ARGS="list", "batches", "dlq list QUEUE") =====')
    print("\nLast runs")
    for row in view["listing"]:
        for job in row["jobs"]:
            last = job["last_run"]
            shown = f"{last['outcome']} at {last['finished_at']} ({last['detail']})" if last else "never run"
            print(f"   {row['name']:<12} {job['id']:<16} {shown}")
    print("\nGL batches")
    counted = Counter((row["connection"], row["status"]) for row in view["batches"])
    for (connection, status), count in sorted(counted.items()):
        print(f"   {connection:<12} {status:<11} {count}")
    for row in view["batches"]:
        if row["status"] not in ("POSTED", "ABANDONED"):
            print(
                f"   open: {row['connection']} {row['batch_id']} {row['status']} for {row['age_seconds']} s"
            )
    print("\nPayments (result files)")
    for connection, counts in sorted(view["payments"].items()):
        print(f"   {connection:<12} " + ", ".join(f"{status} {n}" for status, n in sorted(counts.items())))
    print("\nDead letters waiting")
    print("   " + ", ".join(f"{queue} {n}" for queue, n in view["dead_letters"].items()))
    watched = view["watched"]
    print(
        f"\nThe watcher: {len(watched['stale_batches'])} GL batch(es) waiting too long, "
        f"{len(watched['overdue_jobs'])} job(s) overdue, {watched['connections']} connection(s) watched"
    )
