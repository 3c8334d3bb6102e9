"""The rate-budget benchmark: one connection's ConnectWise budget shared by concurrent invocations.

Per latency (20, 50, 200 ms a call), one REST connection with a budget of BUDGET calls a minute,
and a sandbox that enforces the same budget on its login over a sliding window of WINDOW seconds
(BUDGET/6 calls in any 10 s: shorter than a line, so any burst above the pace is answered 429).
Three invocations run at once, each its own process as each Lambda environment is: two payments
pollers draining a backlog, and one records download paging invoices a few at a time. The sandbox
counts what it admitted (first and last call, the peak in any window) and what it throttled:

    U = calls admitted / (minutes from the first call to the last x BUDGET)

Duplicated and lost: invoices whose ConnectWise amount is above or below their payments' (capped
at the total), plus invoices the download wrote twice or missed.
"""

import json
import multiprocessing
import os
import sys
import time
from dataclasses import dataclass
from typing import Any

import boto3
import requests

from scripts.bench import _compare, _payments, _poller, moto_process
from scripts.harness import CONNECTION, register, sandbox_login, sandbox_process
from scripts.lambda_local import cold_start, invoke
from scripts.local_aws import create_stack, use_endpoint

BUDGET = 300  # calls a minute: below what the four invocations could send at 200 ms (about 8 a second)
WINDOW = 20.0  # seconds of the sandbox's sliding window (shorter than a line)
LATENCIES_MS = (20, 50, 200)
PAYMENTS = 30
INVOICES = 200  # the payments go to the first half, few to one invoice (no waiting for its lease)
PAGE = 5  # invoices a page of the download: 41 calls
POLLERS = 3


@dataclass
class Line:
    latency_ms: int
    calls: int
    span: float
    throttled: int
    peak: int
    duplicated: int
    lost: int
    download_calls: int  # pages the download read: one call each

    @property
    def used(self) -> float:
        return self.calls / (self.span / 60 * BUDGET) * 100

    def __str__(self) -> str:
        return (
            f"rate-budget: {self.calls} calls at {self.latency_ms} ms by {POLLERS + 1} concurrent invocations, "
            f"{self.used:.0f}% of the {BUDGET}/min budget, 429s {self.throttled}, "
            f"duplicated {self.duplicated}, lost {self.lost}"
        )


def budget_run(latency_ms: int, seed: int = 5) -> Line:
    with (
        moto_process() as endpoint,
        moto_process() as ledger_endpoint,
        sandbox_process(
            seed=seed,
            invoices=INVOICES,
            budget_calls=int(BUDGET * WINDOW / 60),
            budget_window_seconds=WINDOW,
        ) as site,
    ):
        use_endpoint(endpoint)
        os.environ["AWS_ENDPOINT_URL_DYNAMODB"] = ledger_endpoint
        os.environ["AWS_ENDPOINT_URL_DYNAMODBSTREAMS"] = ledger_endpoint
        cold_start()
        stack = create_stack(endpoint, {})

        login = sandbox_login("rest") | {"site": site, "use_ssl": False}
        register(stack, CONNECTION, login, jobs=[], calls_per_minute=BUDGET)
        invoices = requests.get(f"http://{site}/_sandbox/invoices", timeout=10).json()
        payments = _payments(invoices, PAYMENTS, seed)
        sqs = stack.client("sqs")
        for start in range(0, len(payments), 10):
            sqs.send_message_batch(
                QueueUrl=stack.physical["PaymentsQueue"],
                Entries=[
                    {"Id": str(i), "MessageBody": json.dumps(p)}
                    for i, p in enumerate(payments[start : start + 10])
                ],
            )
        requests.post(
            f"http://{site}/_sandbox/faults", json={"latency_ms": latency_ms}, timeout=10
        ).raise_for_status()

        context = multiprocessing.get_context("spawn")
        go, results = context.Event(), context.Queue()
        workers = [
            context.Process(target=_poller, args=(stack, ledger_endpoint, 10, go, results))
            for _ in range(POLLERS)
        ]
        workers.append(context.Process(target=_downloader, args=(stack, ledger_endpoint, go, results)))
        for worker in workers:
            worker.start()
        assert all(results.get(timeout=120) == "ready" for _ in workers)
        # Counted from here: the budget's counters start again (and nothing before is admitted).
        requests.post(
            f"http://{site}/_sandbox/budget",
            json={"calls": int(BUDGET * WINDOW / 60), "window_seconds": WINDOW},
            timeout=10,
        ).raise_for_status()
        go.set()
        outcomes = [results.get(timeout=900) for _ in workers]
        for worker in workers:
            worker.join(timeout=30)

        used = requests.get(f"http://{site}/_sandbox/budget", timeout=10).json()
        [credential] = used["credentials"]
        final = {i["number"]: i for i in requests.get(f"http://{site}/_sandbox/invoices", timeout=10).json()}
        duplicated, lost = _compare(payments, final)
        rows = next(o for o in outcomes if isinstance(o, dict))
        numbers = rows["numbers"]
        duplicated += len(numbers) - len(set(numbers))
        lost += len({i["number"] for i in invoices} - set(numbers))
        return Line(
            latency_ms=latency_ms,
            calls=credential["admitted"],
            span=credential["last_admitted"] - credential["first_admitted"],
            throttled=used["throttled"],
            peak=credential["peak"],
            duplicated=duplicated,
            lost=lost,
            download_calls=rows["calls"],
        )


def _downloader(stack: Any, ledger_endpoint: str, go: Any, results: Any) -> None:
    """One records download of every invoice, a page of one at a time; reports the ids written."""
    use_endpoint(stack.endpoint)
    os.environ["AWS_ENDPOINT_URL_DYNAMODB"] = ledger_endpoint
    os.environ.setdefault("POWERTOOLS_LOG_LEVEL", "ERROR")
    os.environ.setdefault("POWERTOOLS_METRICS_DISABLED", "true")
    sys.stdout = open(os.devnull, "w")  # noqa: SIM115 (for the life of this process)
    results.put("ready")
    go.wait()
    reply = invoke(
        stack, "DownloadInvoicesFunction", {"connection": CONNECTION, "page_size": PAGE, "full": True}
    )
    s3 = boto3.client("s3")
    body = s3.get_object(Bucket=stack.physical["OutputBucket"], Key=reply["files"]["jsonl"])["Body"].read()
    numbers = [json.loads(line)["invoiceNumber"] for line in body.splitlines()]
    results.put({"numbers": numbers, "calls": len(numbers) // PAGE + 1})  # and a last, short page


def bench_budget() -> list[Line]:
    print(
        f"rate-budget: one REST connection, budget {BUDGET} calls/min, the sandbox enforcing "
        f"{int(BUDGET * WINDOW / 60)} calls in any {WINDOW:g} s; {POLLERS} payments pollers "
        f"({PAYMENTS} payments) and one download of {INVOICES} invoices, {PAGE} a page, at once"
    )
    lines = []
    for latency in LATENCIES_MS:
        started = time.perf_counter()
        line = budget_run(latency)
        print(
            f"  {latency} ms: {line.calls} calls over {line.span:.1f} s ({line.download_calls} by the download), "
            f"peak {line.peak} in any {WINDOW:g} s; {time.perf_counter() - started:.0f} s with set-up"
        )
        print(line)
        lines.append(line)
    return lines
