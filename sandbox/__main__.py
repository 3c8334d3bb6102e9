"""`python -m sandbox --port N --seed S`: run the ConnectWise sandbox until interrupted."""

import argparse
import contextlib
import signal
import sys
import threading

from sandbox.accounting import AccountingInterface, Credentials
from sandbox.data import generate
from sandbox.server import SandboxServer


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m sandbox", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1", help="loopback address to bind (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=0, help="port; 0 picks a free one (printed on start)")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--invoices", type=int, default=40)
    parser.add_argument("--expenses", type=int, default=10)
    parser.add_argument("--purchases", type=int, default=8)
    args = parser.parse_args(argv)
    if not args.host.startswith("127.") and args.host not in {"localhost", "::1"}:
        parser.error("the sandbox only binds loopback addresses")

    site = generate(args.seed, invoices=args.invoices, expenses=args.expenses, purchases=args.purchases)
    credentials = Credentials()
    server = SandboxServer(AccountingInterface(site, credentials), args.host, args.port)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    server.start()
    print(
        f"sandbox listening on {server.site_address} (seed {args.seed}, {args.invoices} invoices); "
        f"company={credentials.company} username={credentials.username}",
        flush=True,
    )
    with contextlib.suppress(KeyboardInterrupt):
        stop.wait()
    server.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
