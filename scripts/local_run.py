"""`make run`: the GL batch life cycle end to end, locally, with no AWS account.

For each backend (Accounting Interface, then REST) it starts moto (server mode) and the
ConnectWise sandbox on free loopback ports, creates the resources from template.yaml, stores
the sandbox login of that backend as the connection's secret, then runs: download -> the
accounting system's confirmation through SQS -> update -> a second download that finds nothing
new -> recreate, the payments, then the reports and record downloads (through SOAP with the
legacy secret's integrator login, through REST with the REST secret). Prints a report per backend
and one side by side, and mirrors S3 under out/<backend>/. Everything started here is stopped on exit,
Ctrl-C or failure.
"""

import argparse
import os
import shutil
import sys
from pathlib import Path

from scripts.harness import BACKENDS
from scripts.local_aws import ROOT, moto_server
from scripts.report import print_payments, print_records, print_report, print_side_by_side
from scripts.scenarios import run_backend


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
        print_records(result["records"])
    print_side_by_side(results)
    return 0


if __name__ == "__main__":
    sys.exit(main())
