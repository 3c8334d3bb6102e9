"""python -m tasks.admin: add, update, enable, disable, remove, list and validate the stack's
ConnectWise connections, and reconcile their schedules; list, show and abandon GL batches, read,
replay and delete dead letters, and run a job now (`VERB --help` says more of each).

The stack's resources are read from its CloudFormation outputs (--stack, default the stack name
in samconfig.toml), or given one by one. Credentials come from a file and go to Secrets Manager
only; they are never printed. Exit status: 0 done, 1 refused (nothing changed), 2 bad usage.
"""

import argparse
import json
import os
import re
import sys
import tomllib
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import boto3

from tasks.admin.commands import Admin, ChecksFailed, add, listing, remove, set_enabled, update, validate
from tasks.admin.verbs import OPERATOR_VERBS, add_operator_verbs, run_operator_verb
from tasks.platform.errors import ConfigurationError
from tasks.platform.registry import Registry
from tasks.platform.runs import Runs
from tasks.platform.settings import SECRET_PREFIX_PATTERN

OUTPUTS = {  # option -> the stack output it defaults to
    "registry_table": "RegistryTableName",
    "ledger_table": "LedgerTableName",
    "secret_prefix": "SecretPrefix",
    "reconciler": "ReconcileSchedulesFunctionName",
    "schedule_group": "ScheduleGroupName",
    "confirmation_queue": "ConfirmationQueueUrl",
    "confirmation_dlq": "ConfirmationDeadLetterQueueUrl",
    "payments_queue": "PaymentsQueueUrl",
    "payments_dlq": "PaymentsDeadLetterQueueUrl",
    "scheduler_dlq": "SchedulerDeadLetterQueueUrl",
    "failed_runs": "FailedRunsQueueUrl",
}
CONNECTIONS = ("registry_table", "ledger_table", "secret_prefix")  # what the connection verbs read


def parser() -> argparse.ArgumentParser:
    main = argparse.ArgumentParser(
        prog="python -m tasks.admin",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    main.add_argument("--stack", help="the deployed stack (default: stack_name in samconfig.toml)")
    main.add_argument("--registry-table", help="instead of the stack's RegistryTableName output")
    main.add_argument("--ledger-table", help="instead of the stack's LedgerTableName output")
    main.add_argument("--secret-prefix", help="instead of the stack's SecretPrefix output")
    main.add_argument("--reconciler", help="instead of the stack's ReconcileSchedulesFunctionName output")
    for option, output in list(OUTPUTS.items())[4:]:
        main.add_argument(f"--{option.replace('_', '-')}", help=f"instead of the stack's {output} output")
    main.add_argument("--json", action="store_true", help="print JSON instead of text")
    verbs = main.add_subparsers(dest="verb", required=True, metavar="VERB")

    v = verbs.add_parser("add", help="register a connection (disabled unless --enable)")
    v.add_argument("file", type=Path, help="the connection file (JSON: name, time_zone, jobs)")
    v.add_argument(
        "--secret-file",
        type=Path,
        help="the connection's login (JSON); without it, the secret <SecretPrefix><name> made beforehand, "
        "tagged connectwise:registry=<RegistryTableName>",
    )
    v.add_argument("--enable", action="store_true", help="check it against ConnectWise, then enable it")

    v = verbs.add_parser("update", help="replace a connection's time zone and jobs (and login)")
    v.add_argument("file", type=Path)
    v.add_argument(
        "--secret-file", type=Path, help="a new login (checked first if the connection is enabled)"
    )
    v.add_argument("--no-check", action="store_true", help="do not check a new login against ConnectWise")

    v = verbs.add_parser("enable", help="check a connection against ConnectWise, then enable it")
    v.add_argument("name")
    v.add_argument("--no-check", action="store_true", help="enable without checking")

    v = verbs.add_parser("disable", help="stop a connection's jobs; its messages are kept in the DLQs")
    v.add_argument("name")

    v = verbs.add_parser("remove", help="unregister a connection; its secret can be restored for 7 days")
    v.add_argument("name")
    v.add_argument("--keep-secret", action="store_true")

    verbs.add_parser("list", help="the connections, their jobs and each job's last run")

    v = verbs.add_parser("validate", help="check a registered connection against ConnectWise")
    v.add_argument("name")

    v = verbs.add_parser("reconcile", help="make the schedules as the registry says now (all, or the named)")
    v.add_argument("names", nargs="*")
    add_operator_verbs(verbs)
    return main


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    if os.environ.get("AWS_REGION") and not os.environ.get("AWS_DEFAULT_REGION"):
        os.environ["AWS_DEFAULT_REGION"] = os.environ["AWS_REGION"]  # boto3 reads only the latter
    try:
        if args.verb in OPERATOR_VERBS:
            return run_operator_verb(args, lambda needed: _resources(args, needed))
        resources = _resources(
            args, (*CONNECTIONS, "reconciler") if args.verb == "reconcile" else CONNECTIONS
        )
        admin = Admin(
            Registry(boto3.client("dynamodb"), resources["registry_table"]),
            boto3.client("secretsmanager"),
            resources["secret_prefix"],
            Runs(boto3.client("dynamodb"), resources["ledger_table"]),
        )
        return _run(args, admin, resources)
    except ChecksFailed as exc:
        _show(args, [vars(c) for c in exc.checks])
        print(f"refused: {exc.message}", file=sys.stderr)
        return 1
    except ConfigurationError as exc:
        print(f"refused: {exc.message}", file=sys.stderr)
        return 1


def _run(args: argparse.Namespace, admin: Admin, resources: dict[str, str]) -> int:
    if args.verb == "add":
        secret = _json(args.secret_file) if args.secret_file else None
        entry = add(admin, _json(args.file), secret, enable=args.enable)
        _show(args, _public(entry))
    elif args.verb == "update":
        secret = _json(args.secret_file) if args.secret_file else None
        _show(args, _public(update(admin, _json(args.file), secret, check=not args.no_check)))
    elif args.verb in ("enable", "disable"):
        _show(
            args,
            _public(
                set_enabled(
                    admin, args.name, args.verb == "enable", check=not getattr(args, "no_check", False)
                )
            ),
        )
    elif args.verb == "remove":
        remove(admin, args.name, keep_secret=args.keep_secret)
        _show(args, {"removed": args.name})
    elif args.verb == "list":
        invalid: list[str] = []
        _show(args, listing(admin, invalid))
        for problem in invalid:
            print(f"unreadable entry: {problem}", file=sys.stderr)
        return 1 if invalid else 0
    elif args.verb == "validate":
        checks = validate(admin, args.name)
        _show(args, [vars(c) for c in checks])
        return 0 if all(c.ok for c in checks) else 1
    elif args.verb == "reconcile":
        event: dict[str, Any] = (
            {"sweep": True}
            if not args.names
            else {"Records": [{"dynamodb": {"Keys": {"name": {"S": n}}}} for n in args.names]}
        )
        # The sweep may outlast a client's wait (and a retried wait would start it again):
        # it is started, and its summary goes to the function's log.
        kind = "RequestResponse" if args.names else "Event"
        reply = boto3.client("lambda").invoke(
            FunctionName=resources["reconciler"], InvocationType=kind, Payload=json.dumps(event).encode()
        )
        if kind == "Event":
            _show(args, {"sweep": "started", "function": resources["reconciler"]})
            return 0
        _show(args, json.loads(reply["Payload"].read() or b"null"))
        return 1 if reply.get("FunctionError") else 0
    return 0


def _resources(args: argparse.Namespace, needed: Sequence[str]) -> dict[str, str]:
    """The `needed` resources: given as options, else read from the stack's outputs."""
    given = {key: getattr(args, key) for key in needed if getattr(args, key) is not None}
    if "secret_prefix" in given and not re.fullmatch(SECRET_PREFIX_PATTERN, given["secret_prefix"]):
        raise ConfigurationError(
            "--secret-prefix must be one or more segments each ending in / (connectwise/)"
        )
    if len(given) == len(needed):
        return given
    stack = args.stack or _samconfig_stack()
    try:
        described = boto3.client("cloudformation").describe_stacks(StackName=stack)["Stacks"][0]
    except Exception as exc:
        raise ConfigurationError(f"cannot read the outputs of stack {stack!r}: {exc}") from None
    outputs = {o["OutputKey"]: o["OutputValue"] for o in described.get("Outputs", [])}
    missing = [OUTPUTS[key] for key in needed if key not in given and OUTPUTS[key] not in outputs]
    if missing:
        raise ConfigurationError(
            f"stack {stack!r} has no output {', '.join(missing)} (deployed before connections were data?)"
        )
    return {key: given.get(key) or outputs[OUTPUTS[key]] for key in needed}


def _samconfig_stack() -> str:
    """The stack `sam deploy --guided` saved (under deploy), or one set for every command (global)."""
    path = Path("samconfig.toml")
    if path.exists():
        default = tomllib.loads(path.read_text()).get("default", {})
        for section in ("deploy", "global"):
            stack = default.get(section, {}).get("parameters", {}).get("stack_name")
            if stack:
                return str(stack)
    raise ConfigurationError("name the stack with --stack (no samconfig.toml stack_name here)")


def _json(path: Path) -> Any:
    try:
        return json.loads(path.read_text())
    except OSError as exc:
        raise ConfigurationError(f"cannot read {path}: {exc.strerror}") from None
    except json.JSONDecodeError as exc:
        raise ConfigurationError(f"{path} is not JSON: {exc.msg} at line {exc.lineno}") from None


def _public(entry: Any) -> dict[str, Any]:
    return dict(entry.model_dump())


def _show(args: argparse.Namespace, value: Any) -> None:
    if args.json or not isinstance(value, list) or not value or "jobs" not in value[0]:
        print(json.dumps(value, indent=2, default=str))
        return
    for row in value:
        state = "enabled" if row["enabled"] else "DISABLED"
        print(f"{row['name']}  {row['backend']}  {row['time_zone']}  {state}  (updated {row['updated_at']})")
        for job in row["jobs"]:
            run = job["last_run"]
            last = f"last run {run['finished_at']} {run['outcome']} {run['detail']}" if run else "never run"
            print(
                f"  {job['id']:<24} {job['task']:<26} {job['schedule']:<22} {'on ' if job['enabled'] else 'off'}  {last}"
            )


if __name__ == "__main__":
    sys.exit(main())
