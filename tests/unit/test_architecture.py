"""The shape of the house, kept true: import directions (import-linter contracts in
pyproject.toml), the ConnectWise clients free of AWS, thin handlers, rooms of a readable size."""

import ast
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import ROOT

LAYER = ROOT / "layers" / "connectwise"
HANDLERS = sorted((ROOT / "functions").glob("*/app.py"))
MAX_MODULE_LINES = 450
MAX_HANDLER_LINES = 40
AWS = ("boto3", "botocore", "aws_lambda_powertools", "tasks")


def test_the_import_contracts_hold() -> None:
    """No circle, and every arrow points down (the contracts name the layers)."""
    result = subprocess.run(
        [str(Path(sys.executable).parent / "lint-imports"), "--config", str(ROOT / "pyproject.toml")],
        cwd=ROOT,
        capture_output=True,
        text=True,
        env=os.environ | {"PYTHONPATH": str(LAYER)},
        check=False,
    )
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]
    assert "0 broken" in result.stdout


def test_the_connectwise_clients_load_no_aws_library() -> None:
    """Importing every ConnectWise client module loads nothing of AWS or of the tasks."""
    modules = sorted(
        ".".join(path.relative_to(LAYER).with_suffix("").parts).removesuffix(".__init__")
        for path in (LAYER / "connectwise").rglob("*.py")
    )
    probe = (
        "import importlib, sys\n"
        f"for name in {modules!r}: importlib.import_module(name)\n"
        f"print(sorted({{m.split('.')[0] for m in sys.modules}} & {set(AWS)!r}))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", probe],
        cwd=LAYER,
        capture_output=True,
        text=True,
        env=os.environ | {"PYTHONPATH": str(LAYER)},
        check=True,
    )
    assert len(modules) > 15 and result.stdout.strip() == "[]", result.stdout + result.stderr


@pytest.mark.parametrize("handler", HANDLERS, ids=lambda path: path.parent.name)
def test_every_handler_is_thin(handler: Path) -> None:
    """One shape: the entry_point decorators, parse the event, one call into the task, return."""
    source = handler.read_text()
    tree = ast.parse(source)
    functions = [node for node in tree.body if isinstance(node, ast.FunctionDef)]
    assert len(source.splitlines()) <= MAX_HANDLER_LINES
    assert [f.name for f in functions] == ["lambda_handler"]
    (function,) = functions
    decorators = [ast.unparse(d) for d in function.decorator_list]
    # A scheduled task's run is recorded under its job (tasks.runtime.scheduled_job).
    assert decorators[0].startswith("entry_point(") and decorators[1:] in ([], ["scheduled_job"]), decorators
    body = function.body
    assert len(body) == 2, "parse the event, then return one call"
    assert isinstance(body[0], ast.Assign) and isinstance(body[0].value, ast.Call)
    assert ast.unparse(body[0].value.func) in {"parse_request", "sqs_records", "object_created"}
    assert isinstance(body[1], ast.Return) and isinstance(body[1].value, ast.Call)
    imported = {node.module for node in ast.walk(tree) if isinstance(node, ast.ImportFrom) and node.module}
    assert "tasks.runtime" in imported and not any(m.startswith("boto") for m in imported)


def test_there_are_fourteen_handlers() -> None:
    """The eleven tasks, the schedule reconciler, the payment file split and the watcher."""
    assert len(HANDLERS) == 14


@pytest.mark.parametrize("module", sorted(LAYER.rglob("*.py")), ids=lambda path: str(path.relative_to(LAYER)))
def test_no_layer_module_is_a_warehouse(module: Path) -> None:
    assert len(module.read_text().splitlines()) <= MAX_MODULE_LINES
