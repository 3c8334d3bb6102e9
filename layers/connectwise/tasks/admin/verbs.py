"""The operator's verbs of `python -m tasks.admin` for a running stack: batches, batch, abandon,
dlq (list, inspect, replay, delete) and run; their arguments, the resources each reads, and how
their results are printed (text, or JSON with --json). The work is in tasks.admin.operations and
tasks.admin.dead_letter_queues."""

import argparse
import json
import re
import sys
from collections.abc import Callable
from typing import Any

import boto3
from botocore.exceptions import BotoCoreError, ClientError

from tasks.admin import dead_letter_queues as dlq
from tasks.admin.operations import STATUSES, Operations, abandon, batch, batches, run_job
from tasks.platform.errors import ConfigurationError
from tasks.platform.registry import JOB_ID
from tasks.platform.requests import is_connection_name

OPERATOR_VERBS = ("batches", "batch", "abandon", "dlq", "run")
CLIENT: Callable[[str], Any] = boto3.client  # a test gives its own (a Lambda that runs locally)

ABANDON_HELP = """\
Give a DOWNLOADED or FAILED batch's records back to ConnectWise's unposted lists: they come again
in the next download. Only for a batch the accounting system will never post. Checked here first
(the batch exists, is DOWNLOADED or FAILED, its connection is enabled), then sent to the
confirmation queue as the accounting system would send it ({"action": "abandon"}): update_gl_batch
applies every rule (a batch in doubt that ConnectWise holds is not abandoned) within a minute or
so. Then `batch` shows ABANDONED and GLBatchAbandoned is published, or the message is in the
confirmation DLQ with the reason (`dlq list confirmations`). A POSTED batch is never abandoned."""

REPLAY_HELP = """\
Send a dead letter back to its source queue, then delete it from the DLQ (scheduler, failed-runs: run its job
now, as `run` does, then delete it). Fix the cause first (docs/operations.md#dlq-runbook). Not
replayed, with the reason: a message refused for its connection itself or one its batch can never
take (refused again as it is), one whose connection is unknown or disabled, or changed less than a
minute ago, and a reconciler failure (reconcile the connection, then `dlq delete` it). If the
command dies between sending and deleting, the message is in both queues and a second replay sends
it twice: harmless (payments are deduplicated by their id, confirmations are idempotent per
batch, a job run twice finds its open batch, watermark or claim)."""


def add_operator_verbs(verbs: Any) -> None:
    v = verbs.add_parser("batches", help="the GL batches, oldest first, with status and age")
    v.add_argument("--connection", type=_connection)
    v.add_argument("--status", action="append", choices=STATUSES, help="only these (repeatable)")
    v.add_argument("--open", action="store_true", help="only those not POSTED or ABANDONED")

    v = verbs.add_parser("batch", help="one GL batch: counts, totals, keys, posting history")
    v.add_argument("connection", type=_connection)
    v.add_argument("batch_id", type=_batch_id)

    v = verbs.add_parser(
        "abandon",
        help="abandon a GL batch (asynchronous; see --help)",
        description=ABANDON_HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    v.add_argument("connection", type=_connection)
    v.add_argument("batch_id", type=_batch_id)
    v.add_argument("--yes", action="store_true", help="required: its records go back to ConnectWise's lists")

    v = verbs.add_parser("run", help="run a job now with its schedule's input (asynchronous)")
    v.add_argument("connection", type=_connection)
    v.add_argument("job", type=_job_id)

    dlq_verb = verbs.add_parser("dlq", help="read, replay or delete dead letters (dlq VERB --help)")
    actions = dlq_verb.add_subparsers(dest="action", required=True, metavar="ACTION")
    queues = {"choices": sorted(dlq.QUEUES), "help": "confirmations, payments, scheduler or failed-runs"}
    v = actions.add_parser("list", help="the messages with their error and connection, left in the queue")
    v.add_argument("queue", **queues)
    v.add_argument("--limit", type=_limit, default=50, help=f"at most this many (up to {dlq.SCAN_LIMIT})")
    v = actions.add_parser("inspect", help="one message whole, left in the queue")
    v.add_argument("queue", **queues)
    v.add_argument("message_id", type=_message_id)
    v = actions.add_parser(
        "replay",
        help="re-drive a message, or --all (see --help)",
        description=REPLAY_HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    v.add_argument("queue", **queues)
    v.add_argument("message_id", nargs="?", type=_message_id)
    v.add_argument("--all", action="store_true", help=f"every message (up to {dlq.SCAN_LIMIT} a run)")
    v = actions.add_parser("delete", help="delete a message once its cause is dealt with otherwise")
    v.add_argument("queue", **queues)
    v.add_argument("message_id", type=_message_id)
    v.add_argument("--yes", action="store_true", help="required: the message is gone for good")


def needs(args: argparse.Namespace) -> tuple[str, ...]:
    """The resources (stack outputs) a verb reads."""
    if args.verb in ("batches", "batch"):
        return ("ledger_table",)
    if args.verb == "abandon":
        return ("ledger_table", "registry_table", "confirmation_queue")
    if args.verb == "run":
        return ("registry_table", "schedule_group")
    dead, source = dlq.QUEUES[args.queue]
    if args.action != "replay":
        return (dead,)
    return (dead, "registry_table", source or "schedule_group")


def run_operator_verb(args: argparse.Namespace, resolve: Callable[[tuple[str, ...]], dict[str, str]]) -> int:
    """Run the verb with the resources `resolve` reads (from the stack's outputs, or options),
    once its arguments are complete."""
    if args.verb == "abandon" and not args.yes:
        return _usage("abandon gives the batch's records back to ConnectWise's unposted lists: add --yes")
    if args.verb == "dlq" and args.action == "delete" and not args.yes:
        return _usage("dlq delete removes the message for good: add --yes")
    if args.verb == "dlq" and args.action == "replay" and bool(args.message_id) == args.all:
        return _usage("dlq replay takes a MESSAGE_ID or --all")
    resources = resolve(needs(args))
    ops = Operations(CLIENT("dynamodb"), resources, CLIENT("sqs"), CLIENT("scheduler"), CLIENT("lambda"))
    try:
        return _run(args, ops)
    except (ClientError, BotoCoreError) as exc:
        raise ConfigurationError(f"AWS refused a call: {exc}") from None


def _run(args: argparse.Namespace, ops: Operations) -> int:
    if args.verb == "batches":
        invalid: list[str] = []
        statuses = list(args.status or []) + (["DOWNLOADED", "POSTING", "FAILED"] if args.open else [])
        rows = batches(ops, args.connection, statuses, invalid)
        _show(args, rows, _batch_lines)
        for problem in invalid:
            print(f"unreadable batch: {_clean(problem)}", file=sys.stderr)
        return 1 if invalid else 0
    if args.verb == "batch":
        _show(args, batch(ops, args.connection, args.batch_id), _fields)
    elif args.verb == "abandon":
        _show(args, abandon(ops, args.connection, args.batch_id), _fields)
    elif args.verb == "run":
        _show(args, run_job(ops, args.connection, args.job), _fields)
    elif args.action == "list":
        letters = dlq.peek(ops, args.queue, args.limit)
        _show(args, [letter.public(body_chars=160) for letter in letters], _letter_lines)
    elif args.action == "inspect":
        _show(args, dlq.inspect(ops, args.queue, args.message_id).public(), _letter_whole)
    elif args.action == "delete":
        _show(args, dlq.delete(ops, args.queue, args.message_id), _fields)
    else:
        results = dlq.replay(ops, args.queue, args.message_id)
        _show(args, results, lambda rows: [line for row in rows for line in (*_fields(row), "")])
        return 0 if all(r["status"] == "replayed" for r in results) else 1
    return 0


def _show(args: argparse.Namespace, value: Any, lines: Callable[[Any], list[str]]) -> None:
    if args.json:
        print(json.dumps(value, indent=2, default=str))
        return
    for line in lines(value) if value else ["(none)"]:
        print(line)


def _batch_lines(rows: list[dict[str, Any]]) -> list[str]:
    shown = []
    for row in rows:
        flags = [flag for flag in ("adopted", "in_doubt") if row[flag]]
        shown.append(
            f"{row['created_at']}  {_age(row['age_seconds']):>6}  {row['status']:<10} {_clean(row['connection'])}  "
            f"{_clean(row['batch_id'])}  {','.join(row['kinds'])}  {row['gl_entry_count']} entries  "
            f"posted {row['posted_count']}  totals {_totals(row['totals'])}  "
            f"unchanged {_age(row['unchanged_seconds'])}" + (f"  [{' '.join(flags)}]" if flags else "")
        )
        if row["error"]:
            shown.append(f"    error: {_clean(row['error'], 200)}")
    return shown


def _fields(value: dict[str, Any]) -> list[str]:
    return [f"{key}: {_clean(_text(item))}" for key, item in value.items()]


def _letter_lines(rows: list[dict[str, Any]]) -> list[str]:
    shown = []
    for row in rows:
        shown.append(
            f"{row['message_id']}  sent {row['sent_at']}  received {row['receive_count']}x  "
            f"connection {_clean(row['connection']) or '-'}  group {_clean(row['group']) or '-'}"
        )
        shown.append(
            f"    error: {_clean(row['error'], 300) or '(none: moved by SQS after its retries; see the logs)'}"
        )
        shown.append(f"    body: {_clean(row['body'])}")
    return shown


def _letter_whole(row: dict[str, Any]) -> list[str]:
    head = _fields({k: v for k, v in row.items() if k != "body"})
    try:
        body = json.dumps(json.loads(row["body"]), indent=2, sort_keys=True, ensure_ascii=False)
    except (ValueError, RecursionError):
        body = row["body"]
    return [*head, "body:", *(_clean(line) for line in body.splitlines())]


def _text(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value, default=str)


def _totals(totals: dict[str, str]) -> str:
    return ", ".join(f"{kind} {amount}" for kind, amount in sorted(totals.items())) or "-"


def _age(seconds: int) -> str:
    days, rest = divmod(seconds, 86400)
    hours, rest = divmod(rest, 3600)
    if days:
        return f"{days}d{hours:02d}h"
    if hours:
        return f"{hours}h{rest // 60:02d}m"
    return f"{rest // 60}m" if rest >= 60 else f"{rest}s"


def _clean(text: str, limit: int | None = None) -> str:
    """One printable line: what came from outside (a message body, an id) cannot move the cursor,
    clear the screen or forge another line of output."""
    shown = "".join(c if c.isprintable() else c.encode("unicode_escape").decode("ascii") for c in text)
    return shown if limit is None or len(shown) <= limit else shown[:limit] + "..."


def _usage(message: str) -> int:
    print(f"usage error: {message}; nothing was changed", file=sys.stderr)
    return 2


def _connection(value: str) -> str:
    if not is_connection_name(value):
        raise argparse.ArgumentTypeError(f"{value!r} is not a connection's name (letters, digits, _ . -)")
    return value


def _batch_id(value: str) -> str:
    if not 1 <= len(value) <= 64 or not value.isprintable():
        raise argparse.ArgumentTypeError(f"{value!r} is not a batch id (1 to 64 printable characters)")
    return value


def _job_id(value: str) -> str:
    if not re.fullmatch(JOB_ID, value):
        raise argparse.ArgumentTypeError(f"{value!r} is not a job id (lower-case letters, digits and -)")
    return value


def _message_id(value: str) -> str:
    if not re.fullmatch(r"[A-Za-z0-9-]{1,100}", value):
        raise argparse.ArgumentTypeError(f"{value!r} is not an SQS message id")
    return value


def _limit(value: str) -> int:
    if not value.isdigit() or not 1 <= int(value) <= dlq.SCAN_LIMIT:
        raise argparse.ArgumentTypeError(f"--limit takes a number from 1 to {dlq.SCAN_LIMIT}")
    return int(value)
