"""`python -m sandbox --port N --seed S [--companies acme,globex] [--budget-calls N
[--budget-window-seconds S]]`: run the ConnectWise sandbox until interrupted."""

import argparse
import contextlib
import signal
import sys
import threading

from sandbox.budget import DEFAULT_WINDOW_SECONDS
from sandbox.companies import CompanyConflict, Sizes, accounting_credentials
from sandbox.company_ids import DEFAULT_COMPANY, check_company_id
from sandbox.server import SandboxServer


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m sandbox", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1", help="loopback address to bind (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=0, help="port; 0 picks a free one (printed on start)")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--invoices", type=int, default=40)
    parser.add_argument("--expenses", type=int, default=10)
    parser.add_argument("--purchases", type=int, default=8)
    parser.add_argument(
        "--companies",
        type=_company_list,
        default=[],
        help="more companies (comma list), each with the same sizes and its own seed and logins",
    )
    parser.add_argument(
        "--budget-calls",
        type=int,
        default=0,
        help="rate budget: at most this many calls per credential in the window, above it 429 (0: off)",
    )
    parser.add_argument(
        "--budget-window-seconds",
        type=float,
        default=DEFAULT_WINDOW_SECONDS,
        help=f"the rate budget's sliding window (default {DEFAULT_WINDOW_SECONDS:g})",
    )
    args = parser.parse_args(argv)
    if not args.host.startswith("127.") and args.host not in {"localhost", "::1"}:
        parser.error("the sandbox only binds loopback addresses")

    sizes = Sizes(args.invoices, args.expenses, args.purchases)
    try:
        server = SandboxServer(
            args.seed,
            sizes,
            args.host,
            args.port,
            companies=args.companies,
            budget_calls=args.budget_calls,
            budget_window_seconds=args.budget_window_seconds,
        )
    except (CompanyConflict, ValueError) as exc:
        parser.error(str(exc))
    credentials = accounting_credentials(DEFAULT_COMPANY)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    server.start()
    more = len(server.companies.all()) - 1
    print(
        f"sandbox listening on {server.site_address} (seed {args.seed}, {args.invoices} invoices); "
        f"company={credentials.company} username={credentials.username}"
        + (f"; and {more} more companies" if more else "")
        + (
            f"; budget {args.budget_calls} calls/{args.budget_window_seconds:g} s"
            if args.budget_calls
            else ""
        ),
        flush=True,
    )
    with contextlib.suppress(KeyboardInterrupt):
        stop.wait()
    server.stop()
    return 0


def _company_list(text: str) -> list[str]:
    try:
        return [check_company_id(name.strip()) for name in text.split(",") if name.strip()]
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


if __name__ == "__main__":
    sys.exit(main())
