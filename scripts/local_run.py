"""`make run`: one stack serving three ConnectWise connections end to end, locally, with no AWS account.

It starts moto (server mode) and the ConnectWise sandbox on free loopback ports, the sandbox
serving two companies seeded alike, creates the resources from template.yaml, and registers
three connections through the admin path (each checked against ConnectWise before it is
enabled): globex through the Accounting Interface and SOAP, and acme through REST twice, once
per owner level (its Tampa and London books). The reconciler makes their schedules; a simulated
night fires every one; then each connection runs: the accounting system's confirmation through
SQS -> update -> a second download that finds nothing new -> recreate, the payments, the reports
and record downloads again. Prints a report per connection, the two companies side by side, and
mirrors S3 under out/. Everything started here is stopped on exit, Ctrl-C or failure.
"""

import argparse
import os
import shutil
import sys
from pathlib import Path

from scripts.local_aws import ROOT, moto_server
from scripts.report import (
    print_operator_view,
    print_payments,
    print_prefixes,
    print_records,
    print_registry,
    print_report,
    print_side_by_side,
    side_by_side,
)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m scripts.local_run", description=__doc__)
    parser.add_argument("--out", type=Path, default=ROOT / "out", help="where to mirror the S3 objects")
    out = parser.parse_args(argv).out
    os.environ.setdefault("POWERTOOLS_LOG_LEVEL", "WARNING")  # the report, not the JSON logs; INFO shows them
    os.environ.setdefault("POWERTOOLS_METRICS_DISABLED", "true")  # nor the EMF metric lines
    shutil.rmtree(out, ignore_errors=True)
    from scripts.scenarios import run_connections  # after the log level: the tasks' logger reads it once

    try:
        with moto_server() as endpoint:
            ran = run_connections(out, endpoint)
    except KeyboardInterrupt:
        print("interrupted; everything started was stopped", file=sys.stderr)
        return 130
    print_registry(ran["listing"])
    for result in ran["connections"]:
        owner = f", owner level {result['owner_level']}" if result["owner_level"] else ""
        print(
            f"\n===== connection {result['connection']!r}: company {result['company']}, "
            f"{result['backend']}{owner} ====="
        )
        mirrored = [k for k in ran["mirrored"] if f"/{result['connection']}/" in k]
        print_report(result["life_cycle"], mirrored, out)
        if "payments" in result:
            print_payments(result["payments"])
            print_records(result["records"])
    print_prefixes(ran["connections"], ran["mirrored"])
    print_side_by_side(side_by_side(ran["connections"]))
    print_operator_view(ran["operator"])
    return 0


if __name__ == "__main__":
    sys.exit(main())
