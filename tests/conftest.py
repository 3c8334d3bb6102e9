"""Shared fixtures: one moto server per session (reset per test), a sandbox per test."""

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

# Built here, at collection, so the functions' logger writes to the session's stdout and not
# to the capture buffer of whichever test first imports it.
import tasks.runtime  # noqa: F401
from connectwise.accounting_interface.client import AccountingClient, Connection
from connectwise.rest.api import RestConnection
from connectwise.rest.client import RestClient
from sandbox.server import SandboxServer, start_sandbox
from scripts.harness import SANDBOX_LOGINS, LocalEnvironment, local_environment
from scripts.local_aws import moto_server

ROOT = Path(__file__).resolve().parent.parent
SAMPLES = ROOT.parent / "shared" / "reference" / "samples"


@pytest.fixture(scope="session")
def moto_endpoint() -> Iterator[str]:
    with moto_server() as endpoint:
        yield endpoint


@pytest.fixture(autouse=True)
def rest_contract(monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    """Every REST request an in-process sandbox receives and every reply it gives, in every
    test, is validated against the OpenAPI subset (tests/rest_contract.py)."""
    from sandbox.rest import RestApi
    from tests.rest_contract import Contract

    contract = Contract()
    original = RestApi.handle

    def checked(self: RestApi, method: str, target: str, headers: Any, body: bytes, host: str) -> Any:
        reply = original(self, method, target, headers, body, host)
        contract.check(method, target, dict(headers), body, reply)
        return reply

    monkeypatch.setattr(RestApi, "handle", checked)
    yield contract
    assert not contract.violations, "REST exchanges outside the OpenAPI subset:\n" + "\n".join(
        contract.violations[:10]
    )


@pytest.fixture
def sandbox() -> Iterator[SandboxServer]:
    server = start_sandbox(seed=7, invoices=12, expenses=4, purchases=3)
    yield server
    server.stop()


@pytest.fixture
def backend() -> str:
    """The backend of the `env` connection's secret; GL and payment tests parametrise it."""
    return "accounting_interface"


@pytest.fixture
def env(moto_endpoint: str, sandbox: SandboxServer, backend: str) -> Iterator[LocalEnvironment]:
    """Fresh AWS state (moto reset), the template's resources, a secret for the sandbox."""
    from aws_lambda_powertools.utilities import parameters

    requests.post(f"{moto_endpoint}/moto-api/reset", timeout=10).raise_for_status()
    parameters.clear_caches()
    with local_environment(
        sandbox_site=sandbox.site_address, endpoint=moto_endpoint, backend=backend
    ) as environment:
        yield environment


@pytest.fixture
def client(sandbox: SandboxServer) -> AccountingClient:
    return AccountingClient(sandbox_connection(sandbox), retries=2, backoff=0.01)


@pytest.fixture
def rest_client(sandbox: SandboxServer) -> RestClient:
    return RestClient(rest_connection(sandbox), name="main", retries=2, backoff=0.01)


def rest_connection(sandbox: SandboxServer, **changes: str) -> RestConnection:
    login = SANDBOX_LOGINS["rest"] | {"site": sandbox.site_address, "use_ssl": False} | changes
    return RestConnection.model_validate(login)


def sandbox_connection(sandbox: SandboxServer, password: str = "sandbox-password") -> Connection:
    return Connection(
        company="sandbox", username="accounting", password=password, site=sandbox.site_address, use_ssl=False
    )


@pytest.fixture(scope="session")
def generated_client(tmp_path_factory: pytest.TempPathFactory) -> Any:
    """The package openapi-python-client generates from the OpenAPI subset (once per session)."""
    from tests.generated_client import generate

    return generate(tmp_path_factory.mktemp("generated-client"))


@pytest.fixture
def api(generated_client: Any, sandbox: SandboxServer) -> Any:
    """The generated client bound to this test's sandbox (tests/generated_client.py `Api`)."""
    from tests.generated_client import Api

    return Api.of(generated_client, sandbox)
