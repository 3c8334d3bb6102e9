"""A typed client generated from the OpenAPI subset with openapi-python-client, used as a user of
ConnectWise's published spec would use one; generated once per test session into a temporary
folder. It is generated from ../shared/reference/connectwise_openapi_finance_subset.json with one
change, the report cells (tests/rest_contract.py `as_served` says why)."""

import base64
import importlib
import json
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

import httpx

from connectwise import jsonmoney
from sandbox.rest import API_PREFIX, RestCredentials
from sandbox.server import SandboxServer
from tests.rest_contract import as_served, spec

PACKAGE = "connectwise_generated_client"
CREDENTIALS = RestCredentials()


def generate(folder: Path) -> ModuleType:
    source, config = folder / "subset.json", folder / "config.json"
    source.write_text(json.dumps(as_served(spec())))
    config.write_text(json.dumps({"post_hooks": []}))  # no formatter run: the code is only imported
    command = [sys.executable, "-m", "openapi_python_client", "generate", "--path", str(source)]
    command += ["--meta", "none", "--output-path", str(folder / PACKAGE), "--config", str(config)]
    subprocess.run(command, check=True, capture_output=True, timeout=300)
    sys.path.insert(0, str(folder))
    return importlib.import_module(PACKAGE)


@dataclass
class Api:
    """The generated client bound to one sandbox: `api("agreements.get_finance_agreements",
    page_size=5)` calls that operation's `sync_detailed` with the client and the clientId header."""

    package: ModuleType
    client: Any  # the generated package's Client

    @classmethod
    def of(cls, package: ModuleType, sandbox: SandboxServer) -> "Api":
        login = f"{CREDENTIALS.company}+{CREDENTIALS.public_key}:{CREDENTIALS.private_key}"
        client = package.Client(
            base_url=f"http://{sandbox.site_address}{API_PREFIX}",
            headers={"Authorization": "Basic " + base64.b64encode(login.encode()).decode()},
            timeout=httpx.Timeout(30.0),
        )
        return cls(package, client)

    def __call__(self, operation: str, *args: Any, **kwargs: Any) -> Any:
        module = importlib.import_module(f"{self.package.__name__}.api.{operation}")
        return module.sync_detailed(*args, client=self.client, client_id=CREDENTIALS.client_id, **kwargs)

    def model(self, name: str) -> Any:
        return getattr(importlib.import_module(f"{self.package.__name__}.models"), name)

    def get(self, path: str, headers: dict[str, str] | None = None, **params: Any) -> httpx.Response:
        """A GET through the generated client's own HTTP session, for what its typed operations
        cannot say (a partial response, a malformed parameter)."""
        extra = {"clientId": CREDENTIALS.client_id} | (headers or {})
        return self.client.get_httpx_client().get(path, params=params, headers=extra)


def exact(response: Any) -> Any:
    """A reply's JSON with exact money (the generated models read numbers as float)."""
    return jsonmoney.loads(response.content)
