"""`make bench`: benchmarks with a baseline measured in the same run; prints ratios.

payments: 500 invoice payments through SQS against the sandbox with 50 ms of latency on every
ConnectWise call and a rate limit answered with 429 + Retry-After. The connector as built (3
concurrent invocations of the template's batch size, as an event source mapping runs several)
against a one-at-a-time baseline (one invocation of one message at a time). Afterwards ConnectWise's amounts are
compared with the capped sum of each invoice's distinct payments: duplicated and lost must be 0.

rest-export: a REST download of 10,000 unposted invoices (list them, export exactly those) with
pages of 1000, against ConnectWise's default page size of 25, same sandbox and 50 ms per call.

gl-stream: a GL batch of 10,000 and 50,000 invoices (--gl-invoices) read as a stream, XML and JSON,
against the DOM reader it replaced (peak memory) and a bare iterparse / ijson pass over the same
bytes (time); scripts/bench_stream.py.

connections: 1000 connections (--connections, $BENCH_CONNECTIONS) registered through the admin
path, each on its own sandbox company (every tenth company has two, one per location), half on
each backend; the reconciler makes their schedules from the registry's stream, a sweep finds them
unchanged, then every schedule's target is invoked once with its input (a simulated day). Jobs
missed, doubled and crossed into another connection are counted from what the day left (the
bucket, the bus, the ledger, the sandbox's calls); `--self-check` shows each check can fail.
"""

import argparse
import copy
import json
import multiprocessing
import os
import random
import re
import subprocess
import sys
import time
from collections import defaultdict
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field, replace
from decimal import Decimal
from pathlib import Path
from typing import Any

import requests

from sandbox.company_ids import DEFAULT_COMPANY, company_marker
from scripts.harness import (
    BACKENDS,
    CONNECTION,
    SANDBOX_LOGIN,
    SANDBOX_LOGINS,
    admin_for,
    reconcile,
    register,
    sandbox_login,
    sandbox_process,
)
from scripts.lambda_local import (
    Fired,
    acknowledge,
    cold_start,
    fire,
    invoke,
    load_module,
    scheduled,
    sqs_event,
)
from scripts.local_aws import ACCOUNT, REGION, create_stack, load_template, use_endpoint

LATENCY_MS = 50
RATE_LIMIT_PER_SECOND = 100


@contextmanager
def moto_process(lean: bool = False) -> Iterator[str]:
    """moto in its own process, so the connector's threads do not share its interpreter lock;
    `lean`: without the emulator costs that grow with the run (serve_lean_moto)."""
    port = _free_port()
    command = (
        ["-c", f"from scripts.bench import serve_lean_moto; serve_lean_moto({port})"]
        if lean
        else ["-m", "scripts.moto_serial", "--port", str(port)]
    )
    process = subprocess.Popen(
        [sys.executable, *command],
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


def serve_lean_moto(port: int) -> None:
    """scripts.moto_serial's server without three costs of the emulator that are no part of AWS,
    which the connections benchmark (thousands of connections' items, objects and events) would
    otherwise time:

    * TransactWriteItems deep-copies every table it touches before it starts, to roll back if it
      fails: time and memory in the size of the table, per transaction. With thousands of ledger
      items that set the pace, and one run's copies took moto past 20 GB until the kernel killed
      it. Here a table's copy shares its items, and the items the transaction names are copied
      instead and put back if it fails: still all or nothing, as moto_serial runs DynamoDB
      requests one at a time.
    * Every request lists moto's package directory (a stat per service, ~2 ms) to find its service.
    * Every event delivered to a target parses the same eight JSONPath expressions again (~16 ms).
    """
    import functools

    import jsonpath_ng.ext
    from moto import backends
    from moto.dynamodb.models import DynamoDBBackend
    from moto.dynamodb.models.dynamo_type import DynamoType
    from moto.dynamodb.models.table import Table

    from scripts.moto_serial import make_moto_server

    whole_tables = DynamoDBBackend.transact_write_items

    def transact_write_items(backend: Any, transact_items: list[dict[str, Any]]) -> None:
        touched = []
        for entry in transact_items:
            operation = next(iter(entry.values()))
            table = backend.tables.get(operation.get("TableName"))
            key = operation.get("Key") or operation.get("Item")
            if (
                table is None
                or not isinstance(key, dict)
                or table.range_key_attr
                or table.hash_key_attr not in key
            ):
                return whole_tables(backend, transact_items)  # only the ledger's shape is kept lean
            hash_value = DynamoType(key[table.hash_key_attr])
            touched.append((operation["TableName"], hash_value, copy.deepcopy(table.items.get(hash_value))))
        Table.__deepcopy__ = lambda table, memo: copy.copy(table)  # type: ignore[attr-defined]
        try:
            whole_tables(backend, transact_items)
        except Exception:
            for name, hash_value, item in reversed(touched):
                items = backend.tables[name].items
                if item is None:
                    items.pop(hash_value, None)
                else:
                    items[hash_value] = item
            raise
        finally:
            del Table.__deepcopy__  # type: ignore[attr-defined]

    DynamoDBBackend.transact_write_items = transact_write_items  # type: ignore[method-assign,assignment]
    modules = tuple(backends.list_of_moto_modules())
    backends.list_of_moto_modules = lambda: modules
    jsonpath_ng.ext.parse = functools.cache(jsonpath_ng.ext.parse)  # type: ignore[attr-defined]
    make_moto_server("127.0.0.1", port).serve_forever()


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
    peak: int  # the most ConnectWise calls the sandbox admitted in any second


def payments_run(concurrency: int, batch_size: int, count: int, seed: int) -> Run:
    with (
        moto_process() as endpoint,
        moto_process() as ledger_endpoint,
        sandbox_process(
            seed=seed, invoices=count, budget_calls=RATE_LIMIT_PER_SECOND, budget_window_seconds=1
        ) as site,
    ):
        use_endpoint(endpoint)
        # The ledger's DynamoDB gets a moto process of its own: moto serves one request at a time
        # per process, and on 2 cores the emulator, not the connector, would set the pace.
        os.environ["AWS_ENDPOINT_URL_DYNAMODB"] = ledger_endpoint
        os.environ["AWS_ENDPOINT_URL_DYNAMODBSTREAMS"] = ledger_endpoint  # the registry's stream
        cold_start()
        stack = create_stack(endpoint, {})
        register(
            stack,
            CONNECTION,
            SANDBOX_LOGIN | {"site": site, "use_ssl": False},
            jobs=[],
            calls_per_minute=RATE_LIMIT_PER_SECOND * 60,  # the connection's budget is ConnectWise's limit
        )
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
            f"http://{site}/_sandbox/faults", json={"latency_ms": LATENCY_MS}, timeout=10
        ).raise_for_status()

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
        # One credential (the connection's login), budgeted since the sandbox started.
        used = requests.get(f"http://{site}/_sandbox/budget", timeout=10).json()
        peak = max((c["peak"] for c in used["credentials"]), default=0)
        return Run(elapsed, duplicated, lost, invocations, used["throttled"], peak)


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
        f"a budget of {RATE_LIMIT_PER_SECOND} calls in any second (429 + Retry-After above it)"
    )
    baseline = payments_run(concurrency=1, batch_size=1, count=count, seed=11)
    print(
        f"  baseline  one message at a time:               {baseline.seconds:6.1f} s, {baseline.invocations} "
        f"invocations, {baseline.throttled} throttled calls (peak {baseline.peak}/s), "
        f"duplicated {baseline.duplicated}, lost {baseline.lost}"
    )
    built = payments_run(concurrency=concurrency, batch_size=batch_size, count=count, seed=11)
    print(
        f"  connector {concurrency} invocations x {batch_size} messages at a time: {built.seconds:6.1f} s, "
        f"{built.invocations} invocations, {built.throttled} throttled calls (peak {built.peak}/s), "
        f"duplicated {built.duplicated}, "
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


# --- connections: N connections registered, reconciled and run for a simulated day ------------

# The sandbox's two locations as each backend names an owner level (REST filters by the id).
OWNER_LEVELS = {"accounting_interface": ("Tampa", "London"), "rest": ("1", "2")}
SHARED_EVERY = 10  # every tenth company is an MSP with two connections, one per location
TIME_ZONES = ("UTC", "America/New_York", "Europe/London", "Australia/Sydney")
GL_JOB, RECORDS_JOB = "nightly-gl", "invoices"
# What names a sandbox company in a document (sandbox/company_ids.py): its marker in invoice
# numbers (`<marker>-<id>`) and at the end of its customers' and vendors' names; the default
# company's invoice numbers are `CW-<id>`. Read from the bytes (about 500 KB of output per connection).
COMPANY_NAMED = re.compile(rb"\b(?:[A-Z2-7]{7}\b|CW-\d)")  # a marker, or the default company's invoice
INVOICE_NUMBER = re.compile(rb"\b(?:[A-Z2-7]{7}|CW)-\d+\b")


@dataclass(frozen=True)
class Planned:
    """A connection of the benchmark: its sandbox company, backend and owner level (None: all)."""

    name: str
    company: str
    backend: str
    owner_level: str | None = None
    time_zone: str = "UTC"


def plan_connections(count: int) -> list[Planned]:
    """`count` connections, each its own company, except every SHARED_EVERY-th company: an MSP
    with two connections whose locations post to different books (one owner level each). The
    backends alternate, so a shared company has one connection of each."""
    planned: list[Planned] = []
    number = 0
    while len(planned) < count:
        number += 1
        company = f"msp{number:04d}"
        shared = number % SHARED_EVERY == 0 and count - len(planned) >= 2
        for location in range(2 if shared else 1):
            backend = BACKENDS[len(planned) % len(BACKENDS)]
            zone = TIME_ZONES[number % len(TIME_ZONES)]
            if shared:
                place = OWNER_LEVELS["accounting_interface"][location].lower()
                planned.append(
                    Planned(f"{company}-{place}", company, backend, OWNER_LEVELS[backend][location], zone)
                )
            else:
                planned.append(Planned(company, company, backend, time_zone=zone))
    return planned


def connection_file(connection: Planned) -> dict[str, Any]:
    """What an operator registers: the nightly GL download (at the connection's owner level) and
    the invoice download."""
    gl_input: dict[str, Any] = {"kinds": ["invoices", "expenses", "procurement"]}
    if connection.owner_level:
        gl_input["owner_level"] = connection.owner_level
    return {
        "name": connection.name,
        "time_zone": connection.time_zone,
        "jobs": [
            {"id": GL_JOB, "task": "download_gl_batch", "schedule": "cron(0 2 * * ? *)", "input": gl_input},
            {"id": RECORDS_JOB, "task": "download_invoices", "schedule": "cron(30 2 * * ? *)"},
        ],
    }


@dataclass(frozen=True)
class Sabotage:
    """Deliberate faults for `--self-check`, each naming the connection it is done to: every one
    must show in its counter, and nothing else may."""

    crossed_secret: str = ""  # gets the login of the next connection's company
    same_owner_level: str = ""  # gets the owner level of its company's other connection
    fired_twice: str = ""  # its GL job fires twice
    unscheduled: str = ""  # its record job's schedule is deleted before the day

    def involved(self, planned: list[Planned]) -> set[str]:
        """The connections and companies the faults touch (a crossed secret touches the other's)."""
        names = {self.crossed_secret, self.same_owner_level, self.fired_twice, self.unscheduled} - {""}
        touched = set(names)
        for index, connection in enumerate(planned):
            if connection.name in names:
                touched.add(connection.company)
            if connection.name == self.crossed_secret:
                touched |= {planned[index + 1].name, planned[index + 1].company}
            if connection.name == self.same_owner_level:
                touched |= {c.name for c in planned if c.company == connection.company}
        return touched


def sabotaged(planned: list[Planned], sabotage: Sabotage) -> list[Planned]:
    """The plan with the owner-level fault applied (the secret fault is applied at registration)."""
    result = []
    for connection in planned:
        if connection.name == sabotage.same_owner_level:
            connection = replace(connection, owner_level=OWNER_LEVELS[connection.backend][0])
        result.append(connection)
    return result


def secret_of(planned: list[Planned], index: int, site: str, sabotage: Sabotage) -> dict[str, Any]:
    connection = planned[index]
    company = planned[index + 1].company if connection.name == sabotage.crossed_secret else connection.company
    return sandbox_login(connection.backend, company) | {"site": site, "use_ssl": False}


@dataclass
class Evidence:
    """What the simulated day left, gathered outside the code under test where it can be."""

    jobs: dict[tuple[str, str], str]  # every enabled job of an enabled registry entry -> its task
    fired: list[Fired]
    objects: dict[str, bytes]  # every output object in the bucket, by key
    events: list[dict[str, Any]]  # every event on the connector's bus
    ledger: list[dict[str, Any]]  # every item of the ledger table
    calls: dict[str, dict[str, int]]  # the sandbox's calls per company and interface
    invoices: dict[str, set[str]]  # each company's invoice numbers, from the sandbox's own view


@dataclass
class Findings:
    """Each counter's subjects (a job `<connection>/<job>`, an object, an event, a ledger item,
    a company) with the reasons found."""

    missed: dict[str, list[str]] = field(default_factory=lambda: defaultdict(list))
    doubled: dict[str, list[str]] = field(default_factory=lambda: defaultdict(list))
    crossed: dict[str, list[str]] = field(default_factory=lambda: defaultdict(list))

    def counts(self) -> str:
        return f"missed {len(self.missed)}, doubled {len(self.doubled)}, crossed {len(self.crossed)}"

    def lines(self) -> list[str]:
        return [
            f"  {counter} {subject}: {'; '.join(reasons)}"
            for counter, found in (
                ("missed", self.missed),
                ("doubled", self.doubled),
                ("crossed", self.crossed),
            )
            for subject, reasons in sorted(found.items())
        ]


def judge(planned: list[Planned], evidence: Evidence) -> Findings:
    """missed: an enabled job with no successful run, output, announcement or run record, or
    whose company's invoices are in none of its connections' GL batches. doubled: a job with two
    schedules, fired twice, or with two batches, downloads or announcements. crossed: an output,
    event or ledger item of a connection holding another's keys, batches or company data, two
    connections of one company exporting the same invoice, and a company whose ConnectWise calls
    are not its connections'."""
    found = Findings()
    by_name = {c.name: c for c in planned}
    tasks = {(name, task): job for (name, job), task in evidence.jobs.items()}
    _judge_runs(evidence, found)
    outputs = _judge_outputs(by_name, evidence, found)
    _judge_events(by_name, evidence, tasks, outputs, found)
    _judge_ledger(by_name, evidence, outputs, found)
    _judge_calls(planned, evidence, found)
    return found


def _judge_runs(evidence: Evidence, found: Findings) -> None:
    firings: dict[tuple[str, str], list[Fired]] = defaultdict(list)
    for run in evidence.fired:
        firings[(str(run.input.get("connection")), str(run.input.get("job")))].append(run)
    for key, runs in firings.items():
        subject = "/".join(key)
        if key not in evidence.jobs:
            found.doubled[subject].append("ran but is no enabled job of the registry")
        if len({run.schedule for run in runs}) > 1:
            found.doubled[subject].append(f"{len({run.schedule for run in runs})} schedules")
        if len(runs) > 1:
            found.doubled[subject].append(f"fired {len(runs)} times")
    for key in evidence.jobs:
        errors = [str(run.error) for run in firings.get(key, []) if run.error is not None]
        if not any(run.error is None for run in firings.get(key, [])):
            found.missed["/".join(key)].append(
                f"failed: {errors[0][:200]}" if errors else "no schedule fired"
            )
    recorded = {
        tuple(item["pk"]["S"].split("#", 2)[1:]): item["outcome"]["S"]
        for item in evidence.ledger
        if item["pk"]["S"].startswith("run#")
    }
    for key in evidence.jobs:
        if recorded.get(key) != "succeeded":
            found.missed["/".join(key)].append(f"last run recorded: {recorded.get(key, 'none')}")


@dataclass
class Outputs:
    batches: dict[str, set[str]]  # connection -> its GL batch ids in the bucket
    downloads: dict[tuple[str, str], set[str]]  # (connection, record type) -> its downloads


def _judge_outputs(by_name: dict[str, Planned], evidence: Evidence, found: Findings) -> Outputs:
    markers = {company_marker(c.company): c.company for c in by_name.values()}
    batches: dict[str, set[str]] = defaultdict(set)
    downloads: dict[tuple[str, str], set[str]] = defaultdict(set)
    exported: dict[str, dict[str, set[str]]] = defaultdict(dict)  # company -> connection -> invoice numbers
    for key, body in evidence.objects.items():
        area, connection, rest = key.split("/", 2)
        owner = by_name.get(connection)
        if owner is None:
            found.crossed[key].append("under no registered connection's prefix")
            continue
        if area == "gl-batches":
            batch_id, _, name = rest.partition("/")
            batches[connection].add(batch_id)
            if name.startswith("glexport."):
                numbers = {number.decode() for number in INVOICE_NUMBER.findall(body)}
                exported[owner.company].setdefault(connection, set()).update(numbers)
        elif area == "records":
            entity, _, name = rest.partition("/")
            downloads[(connection, entity)].add(name.rsplit(".", 1)[0])
        named = {
            DEFAULT_COMPANY if token.startswith(b"CW-") else markers[token.decode()]
            for token in set(COMPANY_NAMED.findall(body))
            if token.startswith(b"CW-") or token.decode() in markers
        }
        if named - {owner.company}:
            found.crossed[key].append(f"holds data of {', '.join(sorted(named - {owner.company}))}")
    for (connection, job), task in evidence.jobs.items():
        subject = f"{connection}/{job}"
        made = (
            len(batches.get(connection, ()))
            if task == "download_gl_batch"
            else len(downloads.get((connection, task.removeprefix("download_")), ()))
        )
        if made == 0:
            found.missed[subject].append("no output in the bucket")
        elif made > 1:
            found.doubled[subject].append(f"{made} outputs in the bucket")
    for run in evidence.fired:
        connection = str(run.input.get("connection"))
        written = (run.result or {}).get("keys") or (run.result or {}).get("files") or {}
        for key in written.values():
            if key.split("/")[1:2] != [connection]:
                found.crossed[key].append(f"written by a job of {connection}")
            elif key not in evidence.objects:
                found.missed[f"{connection}/{run.input.get('job')}"].append(f"{key} is not in the bucket")
    gl_jobs = {name: job for (name, job), task in evidence.jobs.items() if task == "download_gl_batch"}
    for company, by_connection in exported.items():
        _judge_company_batches(company, by_connection, evidence.invoices.get(company, set()), gl_jobs, found)
    return Outputs(batches, downloads)


def _judge_company_batches(
    company: str,
    by_connection: dict[str, set[str]],
    invoices: set[str],
    gl_jobs: dict[str, str],
    found: Findings,
) -> None:
    """A company's connections export disjoint invoices (one owner level each) and together all of
    them (nothing is posted: every invoice of the sandbox is unposted and dated before today)."""
    seen: dict[str, str] = {}
    for connection, numbers in sorted(by_connection.items()):
        for number in sorted(numbers):
            if number in seen and seen[number] != connection:
                found.crossed[f"company {company} invoices"].append(
                    f"{number} exported by {seen[number]} and {connection}"
                )
            seen.setdefault(number, connection)
    left_out = invoices - set(seen)
    for connection in by_connection if left_out else ():
        found.missed[f"{connection}/{gl_jobs.get(connection)}"].append(
            f"{len(left_out)} invoices of {company} in no GL batch of its connections"
        )


def _judge_events(
    by_name: dict[str, Planned],
    evidence: Evidence,
    tasks: dict[tuple[str, str], str],
    outputs: Outputs,
    found: Findings,
) -> None:
    announced: dict[str, int] = defaultdict(int)
    for event in evidence.events:
        kind, detail = event["detail-type"], event["detail"]
        connection = detail.get("connection")
        subject = f"event {kind} of {connection} ({detail.get('batch_id') or detail.get('entity')})"
        if connection not in by_name:
            found.crossed[subject].append("names no registered connection")
            continue
        for key in [*(detail.get("keys") or {}).values(), *(detail.get("files") or {}).values()]:
            if key.split("/")[1:2] != [connection]:
                found.crossed[subject].append(f"announces {key}")
        if kind == "GLBatchDownloaded":
            if detail["batch_id"] not in outputs.batches.get(connection, set()):
                found.crossed[subject].append("names a batch not in its connection's prefix")
            job = tasks.get((connection, "download_gl_batch"))
        else:
            job = tasks.get((connection, f"download_{detail.get('entity')}"))
        announced[f"{connection}/{job}"] += 1
    for connection, job in evidence.jobs:
        subject = f"{connection}/{job}"
        if not announced.get(subject):
            found.missed[subject].append("never announced")
        elif announced[subject] > 1:
            found.doubled[subject].append(f"announced {announced[subject]} times")


def _judge_ledger(by_name: dict[str, Planned], evidence: Evidence, outputs: Outputs, found: Findings) -> None:
    batch_items: dict[str, int] = defaultdict(int)
    for item in evidence.ledger:
        pk = item["pk"]["S"]
        kind, connection = pk.split("#")[:2]
        if connection not in by_name:
            found.crossed[pk].append("names no registered connection")
            continue
        named = item.get("connection", {}).get("S", connection)
        if named != connection:
            found.crossed[pk].append(f"holds connection {named}")
        batch_id = item.get("batch_id", {}).get("S", "")
        if batch_id and batch_id not in outputs.batches.get(connection, set()):
            found.crossed[pk].append(f"names batch {batch_id}, not in its connection's prefix")
        if kind == "batch":
            batch_items[connection] += 1
    for (connection, job), task in evidence.jobs.items():
        if task == "download_gl_batch" and batch_items.get(connection, 0) > 1:
            found.doubled[f"{connection}/{job}"].append(f"{batch_items[connection]} batches in the ledger")


def _judge_calls(planned: list[Planned], evidence: Evidence, found: Findings) -> None:
    """Each company answered calls only on the interfaces its connections' jobs use, on each of
    those, and one Accounting Interface export (one GL-page call) per GL job of its connections
    that ran (the GL page's only call for a download is the export)."""
    ran = {
        (str(run.input.get("connection")), str(run.input.get("job")))
        for run in evidence.fired
        if run.error is None
    }
    by_name = {c.name: c for c in planned}
    interfaces: dict[str, set[str]] = defaultdict(set)
    exports: dict[str, int] = defaultdict(int)
    for (name, job), task in evidence.jobs.items():
        connection = by_name.get(name)
        if connection is None or (name, job) not in ran:
            continue
        if connection.backend == "rest":
            interfaces[connection.company].add("rest")
        elif task == "download_gl_batch":
            interfaces[connection.company].add("gl")
            exports[connection.company] += 1
        else:
            interfaces[connection.company].add("soap")
    for company, calls in evidence.calls.items():
        subject = f"company {company} calls"
        for interface, count in sorted(calls.items()):
            if count and interface not in interfaces[company]:
                found.crossed[subject].append(f"{count} {interface} calls, not from its connections")
            if not count and interface in interfaces[company]:
                found.crossed[subject].append(f"no {interface} call, though its connections ran")
        if calls.get("gl", 0) != exports[company]:
            found.crossed[subject].append(f"{calls.get('gl', 0)} exports for {exports[company]} GL jobs")


@dataclass
class ConnectionsRun:
    connections: int
    jobs: int  # enabled jobs in the registry
    schedules_created: int
    swept: dict[str, int]  # the sweep's summary
    seconds: dict[str, float]  # by phase, in order
    findings: Findings
    evidence: Evidence


class Phases(dict[str, float]):
    """Seconds by phase, in the order they ran."""

    @contextmanager
    def timed(self, phase: str) -> Iterator[None]:
        started = time.perf_counter()
        yield
        self[phase] = time.perf_counter() - started


def connections_run(count: int, workers: int, sabotage: Sabotage = Sabotage()) -> ConnectionsRun:
    """Register `count` connections through the admin path, let the reconciler make their
    schedules from the registry's stream, sweep them, then fire every schedule once."""
    from tasks.admin.commands import add, set_enabled

    planned = sabotaged(plan_connections(count), sabotage)
    companies = sorted({c.company for c in planned})
    phases = Phases()
    with ExitStack() as stop:
        with phases.timed("setup"):
            endpoint = stop.enter_context(moto_process(lean=True))
            # The registry, its stream and the ledger get a moto of their own (moto serves
            # DynamoDB one request at a time per process), as in the payments benchmark.
            dynamodb_endpoint = stop.enter_context(moto_process(lean=True))
            site = stop.enter_context(sandbox_process(seed=13, companies=companies))
            use_endpoint(endpoint)
            os.environ["AWS_ENDPOINT_URL_DYNAMODB"] = dynamodb_endpoint
            os.environ["AWS_ENDPOINT_URL_DYNAMODBSTREAMS"] = dynamodb_endpoint
            cold_start()
            stack = create_stack(endpoint, {})
            _observe_events(stack)
            invoices = sandbox_invoices(site, companies)
        with phases.timed("register"):
            admin = admin_for(stack)
            honest = plan_connections(count)
            for index, connection in enumerate(honest):
                add(admin, connection_file(connection), secret_of(honest, index, site, Sabotage()))
                set_enabled(admin, connection.name, True, check=False)
            _behind_the_admins_back(stack, planned, site, sabotage)
        with phases.timed("reconcile"):
            created = sum(changes["created"] for changes in reconcile(stack))
        with phases.timed("sweep"):
            swept = invoke(stack, "ReconcileSchedulesFunction", {"sweep": True})
        with phases.timed("read schedules"):
            runs = _sabotage_schedules(stack, scheduled(stack), sabotage)
        fired, phases["day"] = run_day(stack, dynamodb_endpoint, runs, workers)
        with phases.timed("gather"):
            evidence = gather(stack, site, invoices, fired)
    with phases.timed("judge"):
        findings = judge(planned, evidence)
    return ConnectionsRun(len(planned), len(evidence.jobs), created, swept, phases, findings, evidence)


def _behind_the_admins_back(stack: Any, planned: list[Planned], site: str, sabotage: Sabotage) -> None:
    """The self-check's registry faults, which the admin refuses (a login of another company, an
    owner level its company's other connection downloads): written straight into the secret and
    the registry, as a connector without those checks would have let them through."""
    db, table = stack.client("dynamodb"), stack.physical["ConnectionsTable"]
    for index, connection in enumerate(planned):
        key = {"name": {"S": connection.name}}
        if connection.name == sabotage.crossed_secret:
            login = secret_of(planned, index, site, sabotage)
            stack.client("secretsmanager").put_secret_value(
                SecretId=f"{stack.parameters['SecretPrefix']}{connection.name}",
                SecretString=json.dumps(login),
            )
            db.update_item(  # so the functions' own check (the login's company) lets it through
                TableName=table,
                Key=key,
                UpdateExpression="SET site = :site",
                ExpressionAttributeValues={":site": {"S": f"{login['company'].lower()}@{site.lower()}"}},
            )
        if connection.name == sabotage.same_owner_level:
            db.update_item(
                TableName=table,
                Key=key,
                UpdateExpression="SET jobs = :jobs",
                ExpressionAttributeValues={":jobs": {"S": json.dumps(connection_file(connection)["jobs"])}},
            )


def _sabotage_schedules(stack: Any, runs: list[Fired], sabotage: Sabotage) -> list[Fired]:
    """The day's runs with the schedule faults applied: a deleted schedule, a job fired twice."""
    result = []
    for run in runs:
        connection, job = run.input["connection"], run.input["job"]
        if connection == sabotage.unscheduled and job == RECORDS_JOB:
            stack.client("scheduler").delete_schedule(
                GroupName=stack.physical["JobSchedules"], Name=run.schedule
            )
            continue
        result.append(run)
        if connection == sabotage.fired_twice and job == GL_JOB:
            result.append(Fired(run.schedule, run.function, run.input))
    return result


def run_day(stack: Any, dynamodb_endpoint: str, runs: list[Fired], workers: int) -> tuple[list[Fired], float]:
    """Every run invoked once, by `workers` processes (each one Lambda execution environment
    after another), as Scheduler's invocations land on many environments at once.

    Processes, not threads: `invoke` sets os.environ to the function's and clears the services
    cache when the function changes, and the policy check is process-wide, so two functions must
    never run at once in one interpreter; each process runs one invocation at a time (as a Lambda
    environment does), and the CPU-bound connector gets both cores past the interpreter lock.
    The runs are queued one function's after another, so an environment seldom changes function.
    The workers start warm (modules imported) and wait for the signal: the clock measures the
    day's runs, not the imports."""
    context = multiprocessing.get_context("spawn")
    tasks, results, go = context.Queue(), context.Queue(), context.Event()
    for run in sorted(runs, key=lambda r: (r.function, r.schedule)):
        tasks.put(run)
    for _ in range(workers):
        tasks.put(None)
    functions = sorted({run.function for run in runs})
    environments = [
        context.Process(target=_environment, args=(stack, dynamodb_endpoint, functions, tasks, results, go))
        for _ in range(workers)
    ]
    for environment in environments:
        environment.start()
    assert all(results.get(timeout=120) == "ready" for _ in environments)
    started = time.perf_counter()
    go.set()
    fired = [results.get(timeout=900) for _ in runs]
    elapsed = time.perf_counter() - started
    for environment in environments:
        environment.join(timeout=30)
    return fired, elapsed


def _environment(
    stack: Any, dynamodb_endpoint: str, functions: list[str], tasks: Any, results: Any, go: Any
) -> None:
    """One Lambda execution environment: runs from the queue, one at a time, until None."""
    use_endpoint(stack.endpoint)
    os.environ["AWS_ENDPOINT_URL_DYNAMODB"] = dynamodb_endpoint
    os.environ.setdefault("POWERTOOLS_LOG_LEVEL", "ERROR")
    os.environ.setdefault("POWERTOOLS_METRICS_DISABLED", "true")
    sys.stdout = open(os.devnull, "w")  # noqa: SIM115 (Powertools' metric lines; for this process's life)
    for logical_id in functions:
        load_module(Path(stack.functions[logical_id]["code_uri"]).name)
    results.put("ready")
    go.wait()
    while (run := tasks.get()) is not None:
        fire(stack, run)
        if run.error is not None:  # as text: not every exception survives pickling
            run.error = RuntimeError(f"{type(run.error).__name__}: {run.error}")
        results.put(run)


OBSERVER_LOG_GROUP = "/bench/connector-events"


def _observe_events(stack: Any) -> None:
    """A rule on the connector's bus copying every event to a log group of the benchmark's (not a
    queue: moto counts a queue's messages on every send, so thousands of events cost it
    quadratic time)."""
    from tasks.platform.notices import SOURCE

    stack.client("logs").create_log_group(logGroupName=OBSERVER_LOG_GROUP)
    arn = f"arn:aws:logs:{REGION}:{ACCOUNT}:log-group:{OBSERVER_LOG_GROUP}"
    events, bus = stack.client("events"), stack.physical["ConnectorEventBus"]
    events.put_rule(Name="bench-observer", EventBusName=bus, EventPattern=json.dumps({"source": [SOURCE]}))
    events.put_targets(Rule="bench-observer", EventBusName=bus, Targets=[{"Id": "observer", "Arn": arn}])


def _observed_events(stack: Any) -> list[dict[str, Any]]:
    pages = stack.client("logs").get_paginator("filter_log_events").paginate(logGroupName=OBSERVER_LOG_GROUP)
    return [json.loads(event["message"]) for page in pages for event in page["events"]]


def gather(stack: Any, site: str, invoices: dict[str, set[str]], fired: list[Fired]) -> Evidence:
    """What the day left: the registry's jobs, every output object, the events, the ledger and
    the sandbox's calls (read after the day, not timed)."""
    admin = admin_for(stack)
    jobs = {
        (entry.name, job.id): job.task
        for entry in admin.registry.scan()
        if entry.enabled
        for job in entry.jobs
        if job.enabled
    }
    s3, bucket = stack.client("s3"), stack.physical["OutputBucket"]
    keys = [
        item["Key"]
        for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket)
        for item in page.get("Contents", [])
    ]
    with ThreadPoolExecutor(8) as pool:
        bodies = pool.map(lambda key: s3.get_object(Bucket=bucket, Key=key)["Body"].read(), keys)
        objects = dict(zip(keys, bodies, strict=True))
    dynamodb = stack.client("dynamodb")
    ledger = [
        item
        for page in dynamodb.get_paginator("scan").paginate(TableName=stack.physical["LedgerTable"])
        for item in page["Items"]
    ]
    calls = requests.get(f"http://{site}/_sandbox/calls", timeout=30).json()
    return Evidence(jobs, fired, objects, _observed_events(stack), ledger, calls, invoices)


def sandbox_invoices(site: str, companies: list[str]) -> dict[str, set[str]]:
    """Each company's invoice numbers, from the sandbox's own view, before the day (which also
    makes each company's data now: the sandbox makes it on a company's first call, and the day
    times the connector, not that)."""

    def numbers(company: str) -> set[str]:
        reply = requests.get(f"http://{site}/_sandbox/invoices", params={"company": company}, timeout=30)
        reply.raise_for_status()
        return {invoice["number"] for invoice in reply.json()}

    with ThreadPoolExecutor(8) as pool:
        return dict(zip(companies, pool.map(numbers, companies), strict=True))


def bench_connections(count: int, workers: int) -> str:
    run = connections_run(count, workers)
    seconds, swept = run.seconds, run.swept
    print(
        f"connections registration: {run.connections} connections through the admin path in "
        f"{seconds['register']:.1f} s",
        flush=True,
    )
    changed = ", ".join(f"{swept[k]} {k}" for k in ("created", "updated", "deleted") if swept[k])
    print(
        f"connections reconciler: {run.connections} connections, {run.schedules_created} schedules created in "
        f"{seconds['reconcile']:.1f} s; sweep of {swept['unchanged'] + swept['unchecked']} in "
        f"{seconds['sweep']:.1f} s ({swept['unchanged']} unchanged, {swept['unchecked']} left unchecked"
        + (f", {changed}" if changed else "")
        + ")",
        flush=True,
    )
    line = (
        f"connections: {run.connections} connections, {run.jobs} scheduled jobs run once each in "
        f"{seconds['day']:.1f} s; {run.findings.counts()}"
    )
    print(line, flush=True)
    print("  seconds by phase: " + ", ".join(f"{phase} {s:.1f}" for phase, s in seconds.items()), flush=True)
    for finding in run.findings.lines():
        print(finding)
    return line


SELF_CHECK_CONNECTIONS = 20
NAMED = re.compile(r"msp\d{4}(?:-[a-z]+)?")  # a benchmark connection's or company's name


def self_check(environments: int) -> int:
    """A small run with one deliberate fault of each kind (Sabotage): each counter must catch its
    fault, and no finding may name a connection or company the faults did not touch. Then every
    single check is shown able to fail: the run's evidence, copied with one fault each
    (evidence_faults), must be judged so. 1 if any of this does not hold."""
    planned = plan_connections(SELF_CHECK_CONNECTIONS)
    singles = [c.name for c in planned if c.owner_level is None]
    second = next(c.name for c in planned if c.owner_level == OWNER_LEVELS[c.backend][1])
    sabotage = Sabotage(
        crossed_secret=singles[0], same_owner_level=second, fired_twice=singles[3], unscheduled=singles[5]
    )
    run = connections_run(SELF_CHECK_CONNECTIONS, environments, sabotage)
    found, involved = run.findings, sabotage.involved(planned)
    print(f"self-check: {run.connections} connections with {sabotage}: {found.counts()}")
    for line in found.lines():
        print(line)
    company = {c.name: c.company for c in planned}
    expected = {
        "missed: the unscheduled job": f"{sabotage.unscheduled}/{RECORDS_JOB}" in found.missed,
        "doubled: the job fired twice": f"{sabotage.fired_twice}/{GL_JOB}" in found.doubled,
        "crossed: the crossed secret": any(
            sabotage.crossed_secret in subject or company[sabotage.crossed_secret] in subject
            for subject in found.crossed
        ),
        "crossed: the shared owner level": f"company {company[second]} invoices" in found.crossed,
        "nothing else named": all(
            set(NAMED.findall(subject)) <= involved
            for subject in [*found.missed, *found.doubled, *found.crossed]
        ),
    }
    untouched = [c for c in planned if c.name not in involved and c.owner_level is None]
    victim = next(c for c in untouched if c.backend == "accounting_interface")
    other = next(c for c in untouched if c.backend == "rest")
    for counter, what, fault in EVIDENCE_FAULTS:
        evidence = copy.deepcopy(run.evidence)
        named = fault(evidence, victim, other)
        caught = getattr(judge(planned, evidence), counter)
        expected[f"{counter}: {what}"] = any(
            named in subject or any(named in reason for reason in reasons)
            for subject, reasons in caught.items()
        )
    for check, held in expected.items():
        print(f"  {'ok  ' if held else 'FAIL'} {check}")
    return 0 if all(expected.values()) else 1


def _gl_keys(evidence: Evidence, connection: str) -> list[str]:
    return sorted(key for key in evidence.objects if key.startswith(f"gl-batches/{connection}/"))


def _gl_event(evidence: Evidence, connection: str) -> dict[str, Any]:
    return next(
        e
        for e in evidence.events
        if e["detail-type"] == "GLBatchDownloaded" and e["detail"]["connection"] == connection
    )


def _gl_run(evidence: Evidence, connection: str) -> Fired:
    return next(r for r in evidence.fired if r.input == {**r.input, "connection": connection, "job": GL_JOB})


def _batch_item(evidence: Evidence, connection: str) -> dict[str, Any]:
    return next(i for i in evidence.ledger if i["pk"]["S"].startswith(f"batch#{connection}#"))


def _lose_outputs(e: Evidence, victim: Planned, other: Planned) -> str:
    for key in _gl_keys(e, victim.name):
        del e.objects[key]
    return victim.name


def _fail_run(e: Evidence, victim: Planned, other: Planned) -> str:
    _gl_run(e, victim.name).error = RuntimeError("injected")
    return victim.name


def _record_failure(e: Evidence, victim: Planned, other: Planned) -> str:
    item = next(i for i in e.ledger if i["pk"]["S"] == f"run#{victim.name}#{GL_JOB}")
    item["outcome"] = {"S": "failed"}
    return victim.name


def _lose_event(e: Evidence, victim: Planned, other: Planned) -> str:
    e.events.remove(_gl_event(e, victim.name))
    return victim.name


def _second_schedule(e: Evidence, victim: Planned, other: Planned) -> str:
    run = _gl_run(e, victim.name)
    e.fired.append(Fired(run.schedule + "-copy", run.function, run.input, run.result))
    return victim.name


def _second_batch(e: Evidence, victim: Planned, other: Planned) -> str:
    for key in _gl_keys(e, victim.name):
        area, connection, _, name = key.split("/", 3)
        e.objects[f"{area}/{connection}/another-batch/{name}"] = e.objects[key]
    return victim.name


def _announce_twice(e: Evidence, victim: Planned, other: Planned) -> str:
    e.events.append(copy.deepcopy(_gl_event(e, victim.name)))
    return victim.name


def _second_batch_item(e: Evidence, victim: Planned, other: Planned) -> str:
    item = copy.deepcopy(_batch_item(e, victim.name))
    item["pk"] = {"S": f"batch#{victim.name}#another-batch"}
    item.pop("batch_id")
    e.ledger.append(item)
    return victim.name


def _write_elsewhere(e: Evidence, victim: Planned, other: Planned) -> str:
    keys = _gl_run(e, victim.name).result["keys"]
    keys["manifest"] = keys["manifest"].replace(f"/{victim.name}/", f"/{other.name}/")
    return victim.name


def _other_company_invoice(e: Evidence, victim: Planned, other: Planned) -> str:
    key = next(k for k in _gl_keys(e, victim.name) if k.endswith("records.jsonl"))
    number = min(e.invoices[other.company])
    e.objects[key] += json.dumps({"invoice_number": number}).encode() + b"\n"
    return key


def _ownerless_object(e: Evidence, victim: Planned, other: Planned) -> str:
    e.objects["records/nobody/invoices/x.jsonl"] = b"{}\n"
    return "records/nobody/"


def _event_of_another_batch(e: Evidence, victim: Planned, other: Planned) -> str:
    _gl_event(e, victim.name)["detail"]["batch_id"] = _gl_event(e, other.name)["detail"]["batch_id"]
    return victim.name


def _ledger_item_of_another(e: Evidence, victim: Planned, other: Planned) -> str:
    _batch_item(e, victim.name)["connection"] = {"S": other.name}
    return victim.name


def _stray_calls(e: Evidence, victim: Planned, other: Planned) -> str:
    e.calls[other.company]["gl"] += 1  # a REST connection's company: no export is its connections'
    return other.company


# (counter, what the copy of the evidence gets, the fault: returns a name its finding must hold)
EVIDENCE_FAULTS: list[tuple[str, str, Callable[[Evidence, Planned, Planned], str]]] = [
    ("missed", "a job's outputs deleted", _lose_outputs),
    ("missed", "a job's run failed", _fail_run),
    ("missed", "a job's run recorded as failed", _record_failure),
    ("missed", "a job's announcement lost", _lose_event),
    ("doubled", "a second schedule for a job", _second_schedule),
    ("doubled", "a second batch in a job's prefix", _second_batch),
    ("doubled", "a job announced twice", _announce_twice),
    ("doubled", "a second batch item in the ledger", _second_batch_item),
    ("crossed", "an output key of a job under another connection", _write_elsewhere),
    ("crossed", "another company's invoice in an output", _other_company_invoice),
    ("crossed", "an object under no connection", _ownerless_object),
    ("crossed", "an event naming another connection's batch", _event_of_another_batch),
    ("crossed", "a ledger item naming another connection", _ledger_item_of_another),
    ("crossed", "calls on a company that none of its connections made", _stray_calls),
]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m scripts.bench", description=__doc__)
    parser.add_argument("--payments", type=int, default=500)
    parser.add_argument("--rest-invoices", type=int, default=10_000)
    parser.add_argument(
        "--connections",
        type=int,
        default=int(os.environ.get("BENCH_CONNECTIONS", "1000")),
        help="connections for the connections benchmark (default 1000, or $BENCH_CONNECTIONS)",
    )
    parser.add_argument(
        "--environments",
        type=int,
        default=4,
        help="Lambda execution environments (processes) running the connections benchmark's day (default 4)",
    )
    parser.add_argument(
        "--gl-invoices",
        default="10000,50000",
        help="gl-stream: batch sizes in invoices, comma-separated (default 10000,50000)",
    )
    parser.add_argument(
        "--gl-runs", type=int, default=3, help="gl-stream: timed runs, best taken (default 3)"
    )
    parser.add_argument(
        "--only",
        choices=("payments", "rate-budget", "rest-export", "gl-stream", "connections", "cold-start"),
        help="run one benchmark",
    )
    parser.add_argument(
        "--cold-runs",
        type=int,
        default=7,
        help="cold-start: fresh processes per case, median taken (default 7)",
    )
    parser.add_argument(
        "--self-check",
        action="store_true",
        help="instead: a small connections run with deliberate faults, each of which its counter must catch",
    )
    parser.add_argument(
        "--concurrency",
        type=int,
        default=max(2, os.cpu_count() or 2),
        help="concurrent invocations for the connector run (default: one per core, at least 2; on 2 cores "
        "more only add contention: the budget, not their number, sets the pace of ConnectWise calls)",
    )
    args = parser.parse_args(argv)
    os.environ.setdefault("POWERTOOLS_LOG_LEVEL", "ERROR")
    os.environ.setdefault("POWERTOOLS_METRICS_DISABLED", "true")
    from tasks.platform.observability import logger

    # The reconciler runs in this process (registering a connection), and the connector's logger
    # took its level when the harness imported it, before the line above.
    logger.setLevel(os.environ["POWERTOOLS_LOG_LEVEL"])
    if args.self_check:
        return self_check(args.environments)
    if args.only in (None, "payments"):
        bench_payments(args.payments, args.concurrency)
    if args.only in (None, "rate-budget"):
        from scripts.bench_budget import bench_budget

        bench_budget()
    if args.only in (None, "rest-export"):
        bench_rest_export(args.rest_invoices)
    if args.only in (None, "gl-stream"):
        from scripts.bench_stream import bench_gl_stream, sizes

        bench_gl_stream(sizes(args.gl_invoices), args.gl_runs)
    if args.only in (None, "connections"):
        bench_connections(args.connections, args.environments)
    if args.only in (None, "cold-start"):
        from scripts.bench_cold import bench_cold_start

        bench_cold_start(args.cold_runs)
    return 0


if __name__ == "__main__":
    sys.exit(main())
