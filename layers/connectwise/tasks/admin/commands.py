"""What an operator does to the registry, as plain functions (the command line is
tasks.admin.__main__). Everything is checked before anything is written, so bad input changes
nothing; a change that takes two writes makes the one that can do no harm first.

A connection file is the registry entry without its bookkeeping:
    {"name": "acme", "time_zone": "America/New_York", "jobs": [{"id": "nightly-gl",
     "task": "download_gl_batch", "schedule": "cron(0 2 * * ? *)", "input": {"kinds": ["invoices"]}}]}
A secret file is the connection's login (docs/backends.md), which goes to Secrets Manager only.
"""

import contextlib
import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from connectwise.backends import AnyConnection
from tasks.connections.checks import Check, check_connection
from tasks.connections.jobs import check_jobs
from tasks.platform.errors import ConfigurationError
from tasks.platform.registry import ConnectionEntry, Registry, parse_entry
from tasks.platform.requests import is_connection_name
from tasks.platform.runs import Runs
from tasks.platform.secrets import parse_secret, site_of

BOOKKEEPING = ("version", "updated_at", "enabled")  # kept by the registry, not set by a file
RECOVERY_DAYS = 7  # a removed connection's secret can be restored for this long
OWNER_TAG = "connectwise:registry"  # on each secret: the registry table of the stack that made it


@dataclass
class Admin:
    registry: Registry
    secrets: Any  # a boto3 Secrets Manager client
    secret_prefix: str
    runs: Runs
    check: Callable[[ConnectionEntry, AnyConnection], list[Check]] = check_connection

    def secret_id(self, name: str) -> str:
        return f"{self.secret_prefix}{name}"


class ChecksFailed(ConfigurationError):
    def __init__(self, name: str, checks: list[Check]) -> None:
        failed = "; ".join(f"{c.name}: {c.detail}" for c in checks if not c.ok)
        super().__init__(
            f"connection {name!r} failed its checks against ConnectWise, nothing enabled: {failed}"
        )
        self.checks = checks


def add(admin: Admin, spec: Any, secret: Any | None, enable: bool = False) -> ConnectionEntry:
    """Register a connection with its secret and jobs; disabled unless `enable` (which checks it
    against ConnectWise first). The name is claimed before the secret is written, so of two
    operators adding one name, one is refused before touching the other's secret. Without
    `secret`, the secret `<prefix><name>` made beforehand is used (it must carry this stack's
    owner tag: `aws secretsmanager create-secret ... --tags Key=connectwise:registry,Value=<RegistryTableName>`)."""
    stored = secret is None
    if stored:
        secret = _existing_secret(admin, spec.get("name") if isinstance(spec, dict) else None)
    entry, login = _read(spec, secret, None)
    if admin.registry.get(entry.name):
        raise ConfigurationError(f"connection {entry.name!r} exists already; use update")
    _no_shared_records(admin, entry)
    if enable:
        _must_pass(admin, entry, login)
    _may_write_secret(admin, entry.name)
    claimed = admin.registry.put(entry.model_copy(update={"enabled": False}))
    if not stored:
        _write_secret(admin, entry.name, secret)
    return admin.registry.put(claimed.model_copy(update={"enabled": True})) if enable else claimed


def update(admin: Admin, spec: Any, secret: Any | None = None, check: bool = True) -> ConnectionEntry:
    """Replace a connection's settings and jobs (its enabled state stays); with `secret`, its login
    too, checked against ConnectWise first if the connection is enabled and `check`."""
    name = spec.get("name") if isinstance(spec, dict) else None
    current = admin.registry.get(str(name)) if isinstance(name, str) else None
    if current is None:
        raise ConfigurationError(f"connection {name!r} is not registered; use add")
    entry, login = _read(spec, secret, current)
    entry = entry.model_copy(update={"enabled": current.enabled, "version": current.version})
    if current.site and company_of(entry.site) != company_of(current.site):
        raise ConfigurationError(
            f"connection {entry.name!r} logs into {current.site}; a login for another company "
            f"({entry.site}) would inherit its batches and payments: add a new connection instead. "
            "Nothing was changed"
        )
    _no_shared_records(admin, entry)
    if login is not None and current.enabled and check:
        _must_pass(admin, entry, login)
    if secret is not None:  # first: the entry written next makes the functions read it afresh
        _may_write_secret(admin, entry.name)
        _write_secret(admin, entry.name, secret)
    try:
        return admin.registry.put(entry)
    except ConfigurationError:
        if secret is None:
            raise
        raise ConfigurationError(
            f"connection {entry.name!r} was changed by someone else meanwhile: its new secret was written, "
            "its entry was not; run the update again"
        ) from None


def set_enabled(admin: Admin, name: str, enabled: bool, check: bool = True) -> ConnectionEntry:
    """Enable (after its checks pass, unless `check` is False) or disable a connection."""
    entry = _registered(admin, name)
    if enabled and check:
        _must_pass(admin, entry, _stored_login(admin, entry))
    if entry.enabled == enabled:
        return entry
    return admin.registry.put(entry.model_copy(update={"enabled": enabled}))


def remove(admin: Admin, name: str, keep_secret: bool = False) -> None:
    """Take a connection out of the registry (its schedules go with it); its secret is deleted
    with a recovery window unless kept. Its batches, payments and outputs stay."""
    entry = _registered(admin, name)
    if not keep_secret:
        _may_write_secret(admin, name)
    if entry.enabled:  # first: nothing runs for it while its secret goes (a re-run finishes the job)
        entry = admin.registry.put(entry.model_copy(update={"enabled": False}))
    if not keep_secret:
        try:
            _must_own(admin, name)
            admin.secrets.delete_secret(SecretId=admin.secret_id(name), RecoveryWindowInDays=RECOVERY_DAYS)
        except admin.secrets.exceptions.ResourceNotFoundException:
            pass  # never written (an add that died), or already gone
        except admin.secrets.exceptions.InvalidRequestException as exc:
            if "deletion" not in str(exc):
                raise  # already scheduled for deletion by an earlier run: go on
    admin.registry.delete(entry)


def validate(admin: Admin, name: str) -> list[Check]:
    entry = _registered(admin, name)
    return admin.check(entry, _stored_login(admin, entry))


def listing(admin: Admin, invalid: list[str] | None = None) -> list[dict[str, Any]]:
    """Every connection with its jobs and each job's last run; an entry that cannot be read is
    named in `invalid` with its problem (or stops the listing if no list is given)."""
    rows = []
    for entry in sorted(admin.registry.scan(invalid), key=lambda e: e.name):
        runs = admin.runs.last(entry.name, [job.id for job in entry.jobs])
        rows.append(
            {
                "name": entry.name,
                "backend": entry.backend,
                "time_zone": entry.time_zone,
                "enabled": entry.enabled,
                "updated_at": entry.updated_at,
                "jobs": [
                    {
                        "id": job.id,
                        "task": job.task,
                        "schedule": job.schedule,
                        "enabled": job.enabled,
                        "last_run": vars(runs[job.id]) if job.id in runs else None,
                    }
                    for job in entry.jobs
                ],
            }
        )
    return rows


def _read(spec: Any, secret: Any | None, current: ConnectionEntry | None) -> tuple[ConnectionEntry, Any]:
    """The entry of a connection file (its backend from the secret, or kept) and the secret's
    login, both checked; a ConfigurationError names what is wrong."""
    if not isinstance(spec, dict):
        raise ConfigurationError("a connection file must hold a JSON object")
    set_here = sorted(key for key in (*BOOKKEEPING, "site") if key in spec)
    if set_here:
        raise ConfigurationError(
            f"a connection file does not set {', '.join(set_here)} (enable/disable do; the registry keeps the rest)"
        )
    if secret is None:
        if current is None:
            raise ConfigurationError("a new connection needs its secret file")
        backend: str = current.backend
    else:
        if not isinstance(secret, dict):
            raise ConfigurationError("a secret file must hold a JSON object")
        if "time_zone" in secret:
            raise ConfigurationError("time_zone is set in the connection file, not in its secret")
        backend = str(secret.get("backend", "accounting_interface"))
    if spec.get("backend", backend) != backend:
        raise ConfigurationError(
            f"the connection file says backend {spec['backend']!r} but its secret is {backend!r}"
        )
    name = spec.get("name")
    entry = check_jobs(parse_entry(spec | {"backend": backend}, f"connection {name!r}"))
    if secret is None:
        assert current is not None
        return entry.model_copy(update={"site": current.site}), None
    login = parse_secret(entry.name, secret, entry)
    return entry.model_copy(update={"site": site_of(login)}), login


def _no_shared_records(admin: Admin, entry: ConnectionEntry) -> None:
    """Refuses GL downloads that could hand out the records another connection of the same
    ConnectWise company downloads: an open batch holds its records only within its connection,
    so two would post the same records in two books. Two downloads of one company may share a
    kind only at two different owner levels (the company's locations that post to separate
    books; ConnectWise cannot say whether one location lies within another, so that is the
    operator's to know)."""
    mine = _gl_scopes(entry)
    if not mine:
        return
    for other in admin.registry.scan(invalid=[]):  # an unreadable entry is `list`'s to show
        # One company, whatever host reaches it (a REST API host, the site's, with a port or not).
        if other.name == entry.name or not other.site or company_of(other.site) != company_of(entry.site):
            continue
        for kinds, owner in mine:
            for their_kinds, their_owner in _gl_scopes(other):
                same_owner = (
                    owner is None or their_owner is None or owner.casefold() == their_owner.casefold()
                )
                if kinds & their_kinds and same_owner:
                    raise ConfigurationError(
                        f"connection {entry.name!r} would download the {', '.join(sorted(kinds & their_kinds))} of "
                        f"{entry.site} that connection {other.name!r} downloads too"
                        + (f" (owner level {owner})" if owner else " (no owner level)")
                        + "; give each a different owner level, or different kinds. Nothing was changed"
                    )


def company_of(site: str) -> str:
    """The company of a registry entry's `company@host`; "" for an entry made before sites were kept."""
    return site.split("@")[0].casefold()


def _gl_scopes(entry: ConnectionEntry) -> list[tuple[set[str], str | None]]:
    return [
        (set(job.input.get("kinds", [])), str(job.input.get("owner_level") or "") or None)
        for job in entry.jobs
        if job.task == "download_gl_batch"
    ]


def _registered(admin: Admin, name: str) -> ConnectionEntry:
    entry = admin.registry.get(name)
    if entry is None:
        raise ConfigurationError(f"connection {name!r} is not registered")
    return entry


def _stored_login(admin: Admin, entry: ConnectionEntry) -> AnyConnection:
    try:
        text = admin.secrets.get_secret_value(SecretId=admin.secret_id(entry.name))["SecretString"]
    except admin.secrets.exceptions.ResourceNotFoundException:
        raise ConfigurationError(
            f"connection {entry.name!r} has no secret {admin.secret_id(entry.name)!r}; update it with --secret-file"
        ) from None
    try:
        value = json.loads(text)
    except json.JSONDecodeError:
        raise ConfigurationError(f"secret of connection {entry.name!r} is not valid JSON") from None
    return parse_secret(entry.name, value, entry)


def _existing_secret(admin: Admin, name: Any) -> Any:
    """The login of a connection whose secret was made beforehand, for this stack."""
    if not is_connection_name(name):
        raise ConfigurationError(f"a connection file must name the connection (got {str(name)[:64]!r})")
    try:
        _must_own(admin, name)
        text = admin.secrets.get_secret_value(SecretId=admin.secret_id(name))["SecretString"]
    except admin.secrets.exceptions.ResourceNotFoundException:
        raise ConfigurationError(
            f"no secret {admin.secret_id(name)!r}: give --secret-file, or create it first"
        ) from None
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        raise ConfigurationError(f"secret {admin.secret_id(name)!r} is not valid JSON") from None


def _must_pass(admin: Admin, entry: ConnectionEntry, login: AnyConnection) -> None:
    checks = admin.check(entry, login)
    if not all(c.ok for c in checks):
        raise ChecksFailed(entry.name, checks)


def _write_secret(admin: Admin, name: str, secret: Any) -> None:
    """Create the secret, tagged with this stack's registry, or put a new value in the one that
    exists (a re-run after a crash, an update), restoring one that a removal scheduled for
    deletion; never one another stack's admin made (or that no admin made)."""
    text, secrets, secret_id = json.dumps(secret), admin.secrets, admin.secret_id(name)
    try:
        secrets.create_secret(
            Name=secret_id,
            SecretString=text,
            Description=f"ConnectWise connection {name}",
            Tags=[{"Key": OWNER_TAG, "Value": admin.registry.table}],
        )
        return
    except secrets.exceptions.ResourceExistsException:
        _must_own(admin, name)
    except secrets.exceptions.InvalidRequestException as exc:
        if "deletion" not in str(exc):
            raise
        _must_own(admin, name)
        secrets.restore_secret(SecretId=secret_id)
    secrets.put_secret_value(SecretId=secret_id, SecretString=text)


def _may_write_secret(admin: Admin, name: str) -> None:
    """Refuses, before anything is written, a secret of this name that another stack (or no
    admin) made; a missing one is fine."""
    with contextlib.suppress(admin.secrets.exceptions.ResourceNotFoundException):
        _must_own(admin, name)


def _must_own(admin: Admin, name: str) -> None:
    """Refuses a secret of the connection's name that this stack's registry did not create."""
    described = admin.secrets.describe_secret(SecretId=admin.secret_id(name))
    owner = {t["Key"]: t["Value"] for t in described.get("Tags", [])}.get(OWNER_TAG)
    if owner != admin.registry.table:
        raise ConfigurationError(
            f"secret {admin.secret_id(name)!r} exists and belongs to "
            + (f"another stack (registry {owner!r})" if owner else "no connector stack")
            + "; nothing was changed (give each stack its own SecretPrefix, or delete that secret)"
        )
