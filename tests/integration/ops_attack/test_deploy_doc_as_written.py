"""Attack: docs/deploy.md as a new user runs it on a real account.

1. Steps 7 and 9 run `make admin ARGS="run ..."` and `make admin ARGS="batch ..."`: verbs the
   admin command on main does not have (argparse refuses them; tests/e2e/test_deploy_steps.py
   fails at step `posted`, and replaces `run-now` by firing the schedule, so `run` is never tried).
2. The prerequisites say credentials "and `AWS_REGION`". boto3 (the admin command) and SAM CLI
   (`make deploy` with resolve_s3) read only AWS_DEFAULT_REGION or the profile's region; the e2e
   test sets both variables, so it cannot notice."""

import os
import re
import subprocess
import sys

import pytest
import requests

from tasks.admin.__main__ import parser
from tests.conftest import ROOT

DOC = (ROOT / "docs" / "deploy.md").read_text()


def admin_verbs_in_doc() -> list[str]:
    return re.findall(r'make admin ARGS="(\w+)', DOC)


def known_verbs() -> set[str]:
    import argparse

    (verbs,) = [a for a in parser()._actions if isinstance(a, argparse._SubParsersAction)]
    return set(verbs.choices)


def test_every_admin_verb_the_walkthrough_uses_exists() -> None:
    used = admin_verbs_in_doc()
    assert used, "the walkthrough runs the admin command"
    missing = sorted(set(used) - known_verbs())
    assert not missing, f"docs/deploy.md runs admin verbs that do not exist: {missing}"


def test_the_admin_command_works_with_the_region_the_prerequisites_name(
    moto_endpoint: str, tmp_path: os.PathLike[str]
) -> None:
    """Only what the doc asks for: credentials and AWS_REGION (no AWS_DEFAULT_REGION, no config file)."""
    assert "`AWS_REGION`" in DOC
    requests.post(f"{moto_endpoint}/moto-api/reset", timeout=10).raise_for_status()
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")} | {
        "AWS_ENDPOINT_URL": moto_endpoint,
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_REGION": "us-east-1",
        "AWS_CONFIG_FILE": str(tmp_path) + "/none",
        "AWS_SHARED_CREDENTIALS_FILE": str(tmp_path) + "/none",
        "PYTHONPATH": f"{ROOT / 'layers/connectwise'}:{ROOT}",
    }
    done = subprocess.run(
        [sys.executable, "-m", "tasks.admin", "--stack", "connectwise-connector", "list"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        cwd=tmp_path,
    )
    # With a region, the stack is simply not there (moto was reset); without one, boto3 cannot start.
    assert "region" not in (done.stdout + done.stderr).lower(), done.stdout + done.stderr
    if done.returncode == 0:
        pytest.fail("expected the missing stack to be reported")
