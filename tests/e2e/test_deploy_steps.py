"""docs/deploy.md, run as a new user would: every command block, as written, in order, with the
real AWS CLI against local AWS (moto) and the admin command against the sandbox. `make deploy`
is replaced by the template's resources made locally (and a stack holding its outputs, so
`aws cloudformation describe-stacks` answers); what AWS does between the steps is done by the
local harness: the reconciler on the registry's stream, the queues' functions, the schedule."""

import json
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import requests

from sandbox.server import SandboxServer
from scripts.harness import SANDBOX_LOGINS, reconcile
from scripts.lambda_local import cold_start, fire, poll_sqs, scheduled
from scripts.local_aws import REGION, Stack, create_stack, stack_outputs, use_endpoint
from tests.conftest import ROOT

DOC = ROOT / "docs" / "deploy.md"
STACK = "connectwise-connector"
# The one `make install` puts in .awscli (a pyenv shim on the PATH may refuse under PYENV_VERSION).
AWS = ROOT / ".awscli" / "bin" / "aws"


def blocks() -> list[tuple[str, str, str]]:
    """(kind, name, text) of every marked block, in order: `step` blocks are shell commands,
    `file` blocks the files the reader writes."""
    found = re.findall(r"<!-- (step|file): ([^ ]+) -->\n```[a-z]*\n(.*?)```", DOC.read_text(), re.S)
    return [(kind, name, text) for kind, name, text in found]


def outputs_stack(stack: Stack) -> None:
    """A CloudFormation stack in moto whose outputs are the local resources' names, as a
    deployed stack's would be (the alarm topic made for real)."""
    outputs: dict[str, Any] = {key: {"Value": value} for key, value in stack_outputs(stack).items()}
    outputs["AlarmTopicArn"] = {"Value": {"Ref": "AlarmTopic"}}
    body = {"Resources": {"AlarmTopic": {"Type": "AWS::SNS::Topic"}}, "Outputs": outputs}
    stack.client("cloudformation").create_stack(StackName=STACK, TemplateBody=json.dumps(body))


@pytest.mark.slow
def test_the_deploy_walkthrough_runs_as_written(
    moto_endpoint: str, sandbox: SandboxServer, tmp_path: Path
) -> None:
    requests.post(f"{moto_endpoint}/moto-api/reset", timeout=10).raise_for_status()
    use_endpoint(moto_endpoint)
    cold_start()
    env = os.environ | {
        "AWS_ENDPOINT_URL": moto_endpoint,
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": REGION,  # as the prerequisites ask (not AWS_REGION)
        "PYTHONPATH": f"{ROOT / 'layers/connectwise'}:{ROOT}",
    }
    env.pop("AWS_REGION", None)
    (tmp_path / "samconfig.toml").write_text(f'[default.deploy.parameters]\nstack_name = "{STACK}"\n')
    # `make admin ARGS="..."` as the Makefile runs it, here in the reader's folder.
    shim = f'make() {{ [ "$1" = admin ] || return 9; {sys.executable} -m tasks.admin ${{2#ARGS=}}; }}\n'
    # AWS CLI v1 sends SQS calls to the legacy queue.amazonaws.com unless --endpoint-url is
    # given, whatever AWS_ENDPOINT_URL says (awscli/customizations/overridesslcommonname.py).
    shim += f'aws() {{ {AWS} --endpoint-url "$AWS_ENDPOINT_URL" "$@"; }}\n'
    (tmp_path / "state.sh").write_text(shim)
    stack: Stack | None = None
    seen: list[str] = []

    def shell(name: str, text: str) -> str:
        script = (
            "set -euo pipefail\nsource state.sh\n"
            + text
            + "\n{ declare -p | grep -E '^declare -- [A-Z_]+=' || true; declare -f; } > state.sh\n"
        )
        done = subprocess.run(
            ["bash", "-c", script], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120
        )
        assert done.returncode == 0, (
            f"step {name} failed:\n{text}\n{done.stdout[-2000:]}\n{done.stderr[-2000:]}"
        )
        return done.stdout

    for kind, name, text in blocks():
        seen.append(name)
        if kind == "file":
            content = json.loads(text)
            if name.endswith(".secret.json"):  # the reader's login: the sandbox's, same fields
                login = SANDBOX_LOGINS["rest"] | {"site": sandbox.site_address, "use_ssl": False}
                assert set(content) <= set(login), f"{name} shows fields a login does not have"
                content = login
            (tmp_path / name).write_text(json.dumps(content))
            continue
        if name == "deploy":
            assert text.strip() == "make deploy"
            stack = create_stack(moto_endpoint, {}, name=STACK)
            outputs_stack(stack)
            continue
        assert stack is not None
        if name == "run-now":  # Lambda is not local: the job's schedule fires, as at 02:00
            (job,) = re.findall(r'run (\S+) (\S+)"', text)
            (run,) = [
                r
                for r in scheduled(stack)
                if r.input.get("job") == job[1] and r.input["connection"] == job[0]
            ]
            assert fire(stack, run).error is None
            continue
        out = shell(name, text)
        if name == "add":
            reconcile(stack)  # the registry's stream reaches the reconciler within seconds
            assert "acme-tampa" in out and "nightly-gl" in out
        elif name == "payment":
            poll_sqs(stack, "PaymentsQueue", "UploadInvoicePaymentsFunction")
        elif name == "payment-result":
            assert "-success.xml" in out and "-fail" not in out, out
        elif name == "read":
            assert out.count("\n") == 3 and all(
                isinstance(json.loads(line), dict) for line in out.splitlines()
            )
        elif name == "confirm":
            poll_sqs(stack, "ConfirmationQueue", "UpdateGLBatchFunction")
        elif name == "posted":
            assert "POSTED" in out, out
    assert seen == [
        "deploy",
        "outputs",
        "acme-tampa.secret.json",
        "secret",
        "acme-tampa.json",
        "add",
        "payment",
        "payment-result",
        "subscribe",
        "run-now",
        "read",
        "confirm",
        "posted",
    ]
