"""The project's own promises: pins agree, the template says what the README says, lint passes."""

import json
import re
import shutil
import subprocess
import sys
import tomllib

import pytest

from scripts.local_aws import load_template
from tests.conftest import ROOT


def pins(lines: list[str]) -> dict[str, str]:
    found = {}
    for line in lines:
        match = re.match(r"^\s*([A-Za-z0-9_.-]+)(\[[^\]]*\])?==([^\s;]+)", line)
        if match:
            found[match.group(1).lower()] = match.group(3)
    return found


def test_layer_requirements_pin_the_same_versions_as_pyproject() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    declared = pins(project["dependencies"])
    layer = pins((ROOT / "layers/connectwise/requirements.txt").read_text().splitlines())
    assert layer, "the layer requirements pin nothing"
    assert {name: declared.get(name) for name in layer} == layer
    assert all("==" in dep for dep in project["dependencies"] + project["optional-dependencies"]["dev"])


def test_the_layer_is_built_from_a_lock_with_hashes_that_agrees_with_its_requirements() -> None:
    layer = ROOT / "layers/connectwise"
    lock = (layer / "requirements.lock").read_text()
    requirements = [line for line in lock.splitlines() if line and not line.startswith((" ", "#"))]
    assert requirements and all(line.endswith("\\") for line in requirements)  # each has its hashes
    assert lock.count("--hash=sha256:") >= len(requirements)
    locked = pins(requirements)
    direct = pins((layer / "requirements.txt").read_text().splitlines())
    assert {name: locked.get(name) for name in direct} == direct
    assert {"pydantic-core", "urllib3", "lxml"} <= set(locked)  # transitive ones are pinned too
    assert (
        "--require-hashes" in (layer / "Makefile").read_text()
        and "requirements.lock" in (layer / "Makefile").read_text()
    )


def test_the_layer_leaves_boto3_and_botocore_to_the_runtime() -> None:
    """The X-Ray SDK asks for botocore; a copy in the layer would shadow the runtime's, which
    its boto3 was built with."""
    locked = pins((ROOT / "layers/connectwise/requirements.lock").read_text().splitlines())
    assert "aws-xray-sdk" in locked and not {"boto3", "botocore"} & set(locked)
    assert "--no-deps" in (ROOT / "layers/connectwise/Makefile").read_text()


def test_every_function_logs_json_to_its_own_log_group_with_retention_and_alarms() -> None:
    template = load_template()
    function_globals = template["Globals"]["Function"]
    assert function_globals["LoggingConfig"] == {"LogFormat": "JSON"}
    assert function_globals["Tracing"] == {"Ref": "TracingMode"}
    on_failure = function_globals["EventInvokeConfig"]["DestinationConfig"]["OnFailure"]
    assert on_failure == {"Type": "SQS", "Destination": {"Fn::GetAtt": ["FailedRunsQueue", "Arn"]}}
    resources = template["Resources"]
    functions = [name for name, r in resources.items() if r["Type"] == "AWS::Serverless::Function"]
    assert len(functions) >= 12
    for name in functions:
        stem = name.removesuffix("Function")
        group = resources[stem + "LogGroup"]
        assert group["Properties"]["RetentionInDays"] == {"Ref": "LogRetentionDays"}
        assert resources[name]["Properties"]["LoggingConfig"]["LogGroup"] in (
            {"Ref": stem + "LogGroup"},
            {"Fn::Sub": "${" + stem + "LogGroup}"},
        ), name
        for alarm in ("ErrorsAlarm", "ThrottlesAlarm"):
            assert resources[stem + alarm]["Properties"]["AlarmActions"] == [{"Ref": "AlarmTopic"}]


def test_every_queue_refuses_requests_without_tls() -> None:
    resources = load_template()["Resources"]
    queues = {name for name, r in resources.items() if r["Type"] == "AWS::SQS::Queue"}
    covered = set()
    for resource in resources.values():
        if resource["Type"] != "AWS::SQS::QueuePolicy":
            continue
        for statement in resource["Properties"]["PolicyDocument"]["Statement"]:
            if statement["Effect"] == "Deny" and statement["Condition"] == {
                "Bool": {"aws:SecureTransport": "false"}
            }:
                covered |= {arn["Fn::GetAtt"][0] for arn in statement["Resource"]}
                assert {q["Ref"] for q in resource["Properties"]["Queues"]} >= covered
    assert queues and covered == queues


def test_template_runtime_architecture_and_queue_settings() -> None:
    template = load_template()
    function_globals = template["Globals"]["Function"]
    assert function_globals["Runtime"] == "python3.13"
    assert function_globals["Architectures"] == ["arm64"]
    resources = template["Resources"]
    layer = resources["ConnectWiseLayer"]
    assert layer["Metadata"] == {"BuildMethod": "makefile", "BuildArchitecture": "arm64"}
    sqs_event = resources["UpdateGLBatchFunction"]["Properties"]["Events"]["Confirmations"]["Properties"]
    assert sqs_event["FunctionResponseTypes"] == ["ReportBatchItemFailures"]
    queue = resources["ConfirmationQueue"]["Properties"]
    assert queue["RedrivePolicy"]["deadLetterTargetArn"] == {
        "Fn::GetAtt": ["ConfirmationDeadLetterQueue", "Arn"]
    }
    assert queue["VisibilityTimeout"] >= 6 * function_globals["Timeout"]
    bucket = resources["OutputBucket"]["Properties"]
    assert all(bucket["PublicAccessBlockConfiguration"].values())
    assert bucket["BucketEncryption"]["ServerSideEncryptionConfiguration"]
    assert resources["ConfirmationDeadLetterAlarm"]["Properties"]["Dimensions"][0]["Value"] == {
        "Fn::GetAtt": ["ConfirmationDeadLetterQueue", "QueueName"]
    }


def test_policies_are_least_privilege() -> None:
    resources = load_template()["Resources"]
    for name, resource in resources.items():
        if resource["Type"] != "AWS::Serverless::Function":
            continue
        for policy in resource["Properties"]["Policies"]:
            for statement in policy["Statement"]:
                assert "*" not in statement["Action"] and not any(
                    a.endswith(":*") for a in statement["Action"]
                ), name
                # ListSchedules has no resource-level permission: AWS only grants it on "*".
                assert statement["Resource"] != "*" or statement["Action"] == ["scheduler:ListSchedules"], (
                    name
                )


def test_secrets_are_never_in_function_environment() -> None:
    template = load_template()
    variables = template["Globals"]["Function"]["Environment"]["Variables"]
    assert not [key for key in variables if re.search("PASSWORD|PRIVATE|SECRET_VALUE", key)]


def _tool(name: str) -> str:
    path = shutil.which(name, path=str(ROOT / ".tools/bin")) or shutil.which(
        name, path=str(ROOT / ".venv/bin")
    )
    if path is None:
        pytest.fail(f"{name} is not installed; run make install")
    return path


def test_sam_validate_lint_passes() -> None:
    result = subprocess.run(
        [_tool("sam"), "validate", "--lint"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        env={"PATH": "/usr/bin:/bin", "HOME": str(ROOT / ".tools"), "SAM_CLI_TELEMETRY": "0"},
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_cfn_lint_passes() -> None:
    result = subprocess.run(
        [_tool("cfn-lint"), "template.yaml"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.slow
def test_sam_build_puts_arm64_wheels_in_the_layer(tmp_path) -> None:
    build_dir = tmp_path / "build"
    python_dir = ROOT / ".venv" / "bin"
    result = subprocess.run(
        [_tool("sam"), "build", "--build-dir", str(build_dir)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
        env={"PATH": f"{python_dir}:/usr/bin:/bin", "HOME": str(tmp_path), "SAM_CLI_TELEMETRY": "0"},
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    layer = build_dir / "ConnectWiseLayer" / "python"
    assert (layer / "connectwise" / "glexport" / "models.py").exists() and (
        layer / "tasks" / "runtime.py"
    ).exists()
    compiled = [p.name for p in layer.glob("pydantic_core/*.so")]
    assert compiled and all("aarch64" in name for name in compiled), compiled
    assert (layer / "zeep" / "client.py").exists()
    lxml = [p.name for p in layer.glob("lxml/*.so")]
    assert lxml and all("aarch64" in name for name in lxml), lxml
    for function in ("DownloadGLBatchFunction", "UpdateGLBatchFunction", "RecreateGLBatchFunction"):
        assert (build_dir / function / "app.py").exists()


@pytest.mark.slow
def test_lint_passes() -> None:
    """`make lint` as a test, so CI keeps ruff and mypy green."""
    venv = ROOT / ".venv" / "bin"
    for command in (
        [venv / "ruff", "check", "."],
        [venv / "ruff", "format", "--check", "."],
        [venv / "mypy", "layers/connectwise", "functions", "sandbox", "scripts"],
    ):
        result = subprocess.run(
            [str(part) for part in command],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )
        assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]


@pytest.mark.parametrize(
    "handler", ["download_gl_batch", "update_gl_batch", "recreate_gl_batch", "upload_invoice_payments"]
)
def test_the_accounting_functions_never_import_the_soap_stack(handler: str) -> None:
    """Their cold start must not pay for zeep and lxml, although the shared layer carries them."""
    code = (
        "import importlib.util, sys\n"
        f"spec = importlib.util.spec_from_file_location('app', 'functions/{handler}/app.py')\n"
        "spec.loader.exec_module(importlib.util.module_from_spec(spec))\n"
        "from tasks.runtime import services; services()\n"  # what a first invocation builds
        "print(sorted(m for m in ('zeep', 'lxml') if m in sys.modules))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        env={
            "PYTHONPATH": "layers/connectwise:.",
            "AWS_DEFAULT_REGION": "us-east-1",
            "LEDGER_TABLE": "t",
            "OUTPUT_BUCKET": "b",
            "REGISTRY_TABLE": "r",
            "PATH": "/usr/bin:/bin",
        },
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.strip() == "[]"


def test_the_watcher_knows_each_scheduled_tasks_timeout() -> None:
    """A job is late only after its function's last attempt: TASK_TIMEOUTS must say each task's
    function timeout as the template sets it."""
    from tasks.connections.jobs import TASKS

    template = load_template()
    resources = template["Resources"]
    default = template["Globals"]["Function"]["Timeout"]
    variables = resources["WatchOperationsFunction"]["Properties"]["Environment"]["Variables"]
    timeouts = json.loads(variables["TASK_TIMEOUTS"])
    assert timeouts == {
        task: resources[function]["Properties"].get("Timeout", default)
        for task, (_, function) in TASKS.items()
    }
