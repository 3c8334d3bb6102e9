"""The local environment that `make run`, the tests and the benchmarks share: moto (server mode)
and the ConnectWise sandbox on free loopback ports, the template's resources, and one
connection registered through the admin path, its secret holding the sandbox's login for a backend."""

import json
import subprocess
import sys
from collections.abc import Iterator, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from typing import Any

from scripts.lambda_local import cold_start, poll_stream
from scripts.local_aws import ROOT, Stack, create_stack, moto_server, use_endpoint
from tasks.admin.commands import Admin, add, set_enabled
from tasks.connections.schedules import schedule_name
from tasks.platform.registry import DEFAULT_CALLS_PER_MINUTE, Registry
from tasks.platform.runs import Runs

CONNECTION = "main"


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
    company: str = "sandbox"  # the sandbox company its secret logs in to
    # Events drained for the other connections of a stack they share (one dict for all of them).
    others: dict[str, list[dict[str, Any]]] | None = None

    def events(self) -> list[dict[str, Any]]:
        """Events the functions published, in order (drained from the observer queue); with
        `others`, only this connection's (the rest kept there for theirs)."""
        sqs = self.stack.client("sqs")
        seen: list[dict[str, Any]] = []
        while True:
            batch = sqs.receive_message(QueueUrl=self.observer_url, MaxNumberOfMessages=10).get(
                "Messages", []
            )
            if not batch:
                break
            for message in batch:
                seen.append(json.loads(message["Body"]))
                sqs.delete_message(QueueUrl=self.observer_url, ReceiptHandle=message["ReceiptHandle"])
        if self.others is None:
            return seen
        for event in seen:
            self.others.setdefault(event["detail"].get("connection", ""), []).append(event)
        return self.others.pop(self.connection, [])


@contextmanager
def sandbox_process(
    seed: int = 1,
    invoices: int = 40,
    companies: Sequence[str] = (),
    budget_calls: int = 0,
    budget_window_seconds: float = 60.0,
) -> Iterator[str]:
    """`python -m sandbox` on a free loopback port, serving `companies` besides `sandbox`, with a
    rate budget of `budget_calls` per credential in `budget_window_seconds` (0: none); yields
    host:port."""
    budget = ["--budget-calls", str(budget_calls), "--budget-window-seconds", str(budget_window_seconds)]
    process = subprocess.Popen(
        [sys.executable, "-m", "sandbox", "--port", "0", "--seed", str(seed), "--invoices", str(invoices)]
        + (["--companies", ",".join(companies)] if companies else [])
        + (budget if budget_calls else []),
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


# The jobs a local connection is registered with: the nightly GL download, the record
# downloads and the report catalog, as an operator's connection file would list them.
RECORD_TASKS = (
    "download_agreements",
    "download_companies",
    "download_invoices",
    "download_opportunities",
    "download_purchase_orders",
)
DEFAULT_JOBS: list[dict[str, Any]] = [
    {
        "id": "nightly-gl",
        "task": "download_gl_batch",
        "schedule": "cron(0 2 * * ? *)",
        "input": {"kinds": ["invoices", "expenses", "procurement"]},
    },
    *(
        {
            "id": task.removeprefix("download_").replace("_", "-"),
            "task": task,
            "schedule": "cron(30 2 * * ? *)",
        }
        for task in RECORD_TASKS
    ),
    {"id": "report-catalog", "task": "list_reports", "schedule": "cron(0 6 * * ? *)"},
]


def admin_for(stack: Stack) -> Admin:
    """The operator's commands against the local stack (as `python -m tasks.admin` against AWS)."""
    dynamodb = stack.client("dynamodb")
    return Admin(
        Registry(dynamodb, stack.physical["ConnectionsTable"]),
        stack.client("secretsmanager"),
        stack.parameters["SecretPrefix"],
        Runs(dynamodb, stack.physical["LedgerTable"]),
    )


def register(
    stack: Stack,
    connection: str,
    secret: dict[str, Any],
    jobs: list[dict[str, Any]] | None = None,
    time_zone: str = "UTC",
    calls_per_minute: int = DEFAULT_CALLS_PER_MINUTE,
) -> None:
    """Add and enable a connection through the admin path (without its ConnectWise checks, which
    tests make on their own), then let the reconciler make its schedules from the stream."""
    admin = admin_for(stack)
    spec = {
        "name": connection,
        "time_zone": time_zone,
        "calls_per_minute": calls_per_minute,
        "jobs": DEFAULT_JOBS if jobs is None else jobs,
    }
    add(admin, spec, secret)
    set_enabled(admin, connection, True, check=False)
    reconcile(stack)


def reconcile(stack: Stack) -> list[Any]:
    """The registry's new stream records delivered to the reconciler, as Lambda would."""
    return poll_stream(stack, "ConnectionsTable", "ReconcileSchedulesFunction")


def job_event(stack: Stack, connection: str, job: str) -> dict[str, Any]:
    """What the job's schedule sends its function (read from Scheduler, as it would fire)."""
    schedule = stack.client("scheduler").get_schedule(
        GroupName=stack.physical["JobSchedules"], Name=schedule_name(connection, job)
    )
    event: dict[str, Any] = json.loads(schedule["Target"]["Input"])
    return event


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
    with one connection whose secret uses `backend`, registered with DEFAULT_JOBS."""
    with ExitStack() as stop:
        endpoint = endpoint or stop.enter_context(moto_server())
        use_endpoint(endpoint)
        site = sandbox_site or stop.enter_context(sandbox_process(seed, invoices))
        stack = create_stack(endpoint, {})
        cold_start()
        register(stack, connection, SANDBOX_LOGINS[backend] | {"site": site, "use_ssl": False})
        yield LocalEnvironment(stack, site, observe_events(stack), connection, backend)


def observe_events(stack: Stack) -> str:
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


def sandbox_login(backend: str, company: str = "sandbox") -> dict[str, Any]:
    """The secret's login fields for `company` of the sandbox on `backend` (the shape of
    SANDBOX_LOGINS[backend]; sandbox/companies.py has the pattern). Its invoice numbers start with
    `sandbox.company_ids.invoice_prefix(company)`."""
    # Imported here, not at the top: the harness runs the sandbox in another process.
    from sandbox.companies import accounting_credentials, integrator_credentials, rest_credentials

    if backend == "accounting_interface":
        login, integrator = accounting_credentials(company), integrator_credentials(company)
        return {
            "company": login.company,
            "username": login.username,
            "password": login.password,
            "integrator": {"login_id": integrator.login_id, "password": integrator.password},
        }
    if backend == "rest":
        keys = rest_credentials(company)
        return {
            "backend": "rest",
            "company": keys.company,
            "public_key": keys.public_key,
            "private_key": keys.private_key,
            "client_id": keys.client_id,
        }
    raise ValueError(f"unknown backend {backend!r}: one of {', '.join(BACKENDS)}")
