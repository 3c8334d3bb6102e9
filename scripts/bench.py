"""`make bench`: benchmarks with a baseline measured in the same run; prints ratios.

payments: 500 invoice payments through SQS against the sandbox with 50 ms of latency on every
ConnectWise call and a rate limit answered with 429 + Retry-After. The connector as built (3
concurrent invocations of the template's batch size, as an event source mapping runs several)
against a one-at-a-time baseline (one invocation of one message at a time). Afterwards ConnectWise's amounts are
compared with the capped sum of each invoice's distinct payments: duplicated and lost must be 0.

rest-export: a REST download of 10,000 unposted invoices (list them, export exactly those) with
pages of 1000, against ConnectWise's default page size of 25, same sandbox and 50 ms per call.
"""

import argparse
import json
import multiprocessing
import os
import random
import subprocess
import sys
import time
from collections import defaultdict
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import requests

from scripts.harness import CONNECTION, SANDBOX_LOGIN, SANDBOX_LOGINS, register, sandbox_process
from scripts.lambda_local import acknowledge, cold_start, invoke, sqs_event
from scripts.local_aws import create_stack, load_template, use_endpoint

LATENCY_MS = 50
RATE_LIMIT_PER_SECOND = 100


@contextmanager
def moto_process() -> Iterator[str]:
    """moto in its own process, so the connector's threads do not share its interpreter lock."""
    port = _free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "scripts.moto_serial", "--port", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    endpoint = f"http://127.0.0.1:{port}"
    try:
        for _ in range(100):
            try:
                requests.get(f"{endpoint}/moto-api/", timeout=1)
                break
            except requests.ConnectionError:
                time.sleep(0.1)
        yield endpoint
    finally:
        process.terminate()
        process.wait(timeout=10)


def _free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@dataclass
class Run:
    seconds: float
    duplicated: int
    lost: int
    invocations: int
    throttled: int


def payments_run(concurrency: int, batch_size: int, count: int, seed: int) -> Run:
    with (
        moto_process() as endpoint,
        moto_process() as ledger_endpoint,
        sandbox_process(seed=seed, invoices=count) as site,
    ):
        use_endpoint(endpoint)
        # The ledger's DynamoDB gets a moto process of its own: moto serves one request at a time
        # per process, and on 2 cores the emulator, not the connector, would set the pace.
        os.environ["AWS_ENDPOINT_URL_DYNAMODB"] = ledger_endpoint
        os.environ["AWS_ENDPOINT_URL_DYNAMODBSTREAMS"] = ledger_endpoint  # the registry's stream
        cold_start()
        stack = create_stack(endpoint, {})
        register(stack, CONNECTION, SANDBOX_LOGIN | {"site": site, "use_ssl": False}, jobs=[])
        invoices = requests.get(f"http://{site}/_sandbox/invoices", timeout=10).json()
        payments = _payments(invoices, count, seed)
        sqs = stack.client("sqs")
        url = stack.physical["PaymentsQueue"]
        for start in range(0, len(payments), 10):
            sqs.send_message_batch(
                QueueUrl=url,
                Entries=[
                    {"Id": str(i), "MessageBody": json.dumps(p)}
                    for i, p in enumerate(payments[start : start + 10])
                ],
            )
        requests.post(
            f"http://{site}/_sandbox/faults",
            json={"latency_ms": LATENCY_MS, "max_per_second": RATE_LIMIT_PER_SECOND},
            timeout=10,
        ).raise_for_status()
        throttled_before = _throttled(site)

        # Each poller is its own process, as each Lambda execution environment is; they start
        # warm and wait for the signal, so the clock measures settling payments, not imports.
        context = multiprocessing.get_context("spawn")
        go, results = context.Event(), context.Queue()
        workers = [
            context.Process(target=_poller, args=(stack, ledger_endpoint, batch_size, go, results))
            for _ in range(concurrency)
        ]
        for worker in workers:
            worker.start()
        ready = [results.get(timeout=120) for _ in workers]
        assert all(r == "ready" for r in ready)
        started = time.perf_counter()
        go.set()
        invocations = sum(results.get(timeout=900) for _ in workers)
        elapsed = time.perf_counter() - started
        for worker in workers:
            worker.join(timeout=30)

        final = {i["number"]: i for i in requests.get(f"http://{site}/_sandbox/invoices", timeout=10).json()}
        duplicated, lost = _compare(payments, final)
        return Run(elapsed, duplicated, lost, invocations, _throttled(site) - throttled_before)


def _poller(stack: Any, ledger_endpoint: str, batch_size: int, go: Any, results: Any) -> None:
    """Receive, invoke, acknowledge until the queue is drained; report the invocation count."""
    use_endpoint(stack.endpoint)
    os.environ["AWS_ENDPOINT_URL_DYNAMODB"] = ledger_endpoint
    os.environ.setdefault("POWERTOOLS_LOG_LEVEL", "ERROR")
    os.environ.setdefault("POWERTOOLS_METRICS_DISABLED", "true")
    # Powertools still prints its metrics each time 100 values pile up: keep them off the report.
    sys.stdout = open(os.devnull, "w")  # noqa: SIM115 (for the life of this process)
    invoke(stack, "UploadInvoicePaymentsFunction", {"Records": []})  # a warm container
    sqs = stack.client("sqs")
    url, arn = stack.physical["PaymentsQueue"], stack.arns["PaymentsQueue"]
    results.put("ready")
    go.wait()
    invocations = 0
    while True:
        messages = _gather(sqs, url, batch_size)
        if not messages:
            if _queue_empty(sqs, url):
                break
            time.sleep(0.05)
            continue
        response = invoke(stack, "UploadInvoicePaymentsFunction", sqs_event(messages, arn))
        invocations += 1
        acknowledge(sqs, url, messages, response)
    results.put(invocations)


def _gather(sqs: Any, url: str, batch_size: int) -> list[dict[str, Any]]:
    """Up to `batch_size` messages, 10 per receive, as an event source mapping batches them.

    Short polls: moto's long poll waits for a full receive, which would time the emulator."""
    messages: list[dict[str, Any]] = []
    while len(messages) < batch_size:
        wanted = min(10, batch_size - len(messages))
        received = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=wanted).get("Messages", [])
        messages += received
        if len(received) < wanted:
            break
    return messages


def _queue_empty(sqs: Any, url: str) -> bool:
    """Nothing visible and nothing in flight: every message was deleted."""
    names = ["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"]
    attributes = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=names)["Attributes"]
    return all(attributes[name] == "0" for name in names)


def _throttled(site: str) -> int:
    state = requests.get(f"http://{site}/_sandbox/state", timeout=10).json()
    return int(state.get("throttled", 0))


def _payments(invoices: list[dict[str, Any]], count: int, seed: int) -> list[dict[str, Any]]:
    """`count` distinct payments: most invoices get one or two, a few are overpaid."""
    rng = random.Random(seed)
    payments = []
    for n in range(count):
        invoice = invoices[rng.randrange(len(invoices) // 2)]
        share = Decimal(rng.choice(("0.25", "0.40", "0.50", "0.75")))
        amount = max(Decimal("0.01"), (Decimal(invoice["total"]) * share).quantize(Decimal("0.01")))
        payments.append(
            {
                "connection": CONNECTION,
                "invoice_number": invoice["number"],
                "paid_amount": str(amount),
                "date_paid": f"2026-11-{1 + n % 28:02d}T10:00:00+00:00",
                "payment_id": f"BENCH-{n:04d}",
            }
        )
    return payments


def _compare(payments: list[dict[str, Any]], final: dict[str, dict[str, Any]]) -> tuple[int, int]:
    """Invoices whose ConnectWise amount is above (duplicated) or below (lost) the capped sum."""
    sums: dict[str, Decimal] = defaultdict(Decimal)
    for payment in payments:
        sums[payment["invoice_number"]] += Decimal(payment["paid_amount"])
    duplicated = lost = 0
    for number, total_paid in sums.items():
        expected = min(total_paid, Decimal(final[number]["total"]))
        held = Decimal(final[number]["paid_amount"])
        duplicated += held > expected
        lost += held < expected
    return duplicated, lost


def bench_payments(count: int, concurrency: int) -> None:
    batch_size = int(load_template()["Parameters"]["PaymentsBatchSize"]["Default"])
    print(
        f"payments: {count} payments, {LATENCY_MS} ms per ConnectWise call, "
        f"{RATE_LIMIT_PER_SECOND} calls/s limit (429)"
    )
    baseline = payments_run(concurrency=1, batch_size=1, count=count, seed=11)
    print(
        f"  baseline  one message at a time:               {baseline.seconds:6.1f} s, {baseline.invocations} "
        f"invocations, {baseline.throttled} throttled calls, duplicated {baseline.duplicated}, lost {baseline.lost}"
    )
    built = payments_run(concurrency=concurrency, batch_size=batch_size, count=count, seed=11)
    print(
        f"  connector {concurrency} invocations x {batch_size} messages at a time: {built.seconds:6.1f} s, "
        f"{built.invocations} invocations, {built.throttled} throttled calls, duplicated {built.duplicated}, "
        f"lost {built.lost}"
    )
    ratio = baseline.seconds / built.seconds
    print(
        f"payments: {count} in {built.seconds:.1f} s vs baseline {baseline.seconds:.1f} s, ratio {ratio:.1f}x, "
        f"duplicated {built.duplicated + baseline.duplicated}, lost {built.lost + baseline.lost}"
    )


def bench_rest_export(invoices: int) -> str:
    """A REST download of `invoices` unposted invoices: pages of 1000 (the connector) against
    ConnectWise's default 25 (the baseline), same sandbox, same 50 ms per call. The listing is
    also timed on its own: the one export call that follows it is the same in both runs."""
    from connectwise.rest.api import RestConnection
    from connectwise.rest.client import RestClient

    def client(site: str, page_size: int) -> RestClient:
        login = SANDBOX_LOGINS["rest"] | {"site": site, "use_ssl": False}
        made = RestClient(RestConnection.model_validate(login), page_size=page_size)
        made.codebase()  # looked up once per container; not part of the download
        return made

    def listing(site: str, page_size: int) -> tuple[int, float]:
        lister = client(site, page_size)
        start = time.perf_counter()
        listed = len(lister.unposted("invoices"))
        if listed != invoices:
            raise RuntimeError(f"expected {invoices} invoices, listed {listed}")
        return lister.calls, time.perf_counter() - start

    def download(site: str, page_size: int) -> tuple[int, float]:
        downloader = client(site, page_size)
        start = time.perf_counter()
        count = downloader.download_gl_batch(["invoices"]).counts()["invoices"]
        if count != invoices:
            raise RuntimeError(f"expected {invoices} invoices, downloaded {count}")
        return downloader.calls, time.perf_counter() - start

    with sandbox_process(seed=3, invoices=invoices) as site:
        faults = {"latency_ms": LATENCY_MS}
        requests.post(f"http://{site}/_sandbox/faults", json=faults, timeout=10).raise_for_status()
        base_list_calls, base_list_seconds = listing(site, 25)
        list_calls, list_seconds = listing(site, 1000)
        base_calls, base_seconds = download(site, 25)
        calls, seconds = download(site, 1000)
    print(
        f"rest-listing: {invoices} unposted invoices, {list_calls} calls in {list_seconds:.1f} s vs "
        f"{base_list_calls} calls in {base_list_seconds:.1f} s, ratio {base_list_seconds / list_seconds:.1f}x",
        flush=True,
    )
    line = (
        f"rest-export: {invoices} invoices, {calls} calls in {seconds:.1f} s vs {base_calls} calls "
        f"in {base_seconds:.1f} s, ratio {base_seconds / seconds:.1f}x"
    )
    print(line, flush=True)
    return line


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m scripts.bench", description=__doc__)
    parser.add_argument("--payments", type=int, default=500)
    parser.add_argument("--rest-invoices", type=int, default=10_000)
    parser.add_argument("--only", choices=("payments", "rest-export"), help="run one benchmark")
    parser.add_argument(
        "--concurrency",
        type=int,
        default=3,
        help="concurrent invocations for the connector run (default 3: on 2 cores more only add contention "
        "and trip the rate limit)",
    )
    args = parser.parse_args(argv)
    os.environ.setdefault("POWERTOOLS_LOG_LEVEL", "ERROR")
    os.environ.setdefault("POWERTOOLS_METRICS_DISABLED", "true")
    if args.only != "rest-export":
        bench_payments(args.payments, args.concurrency)
    if args.only != "payments":
        bench_rest_export(args.rest_invoices)
    return 0


if __name__ == "__main__":
    sys.exit(main())
