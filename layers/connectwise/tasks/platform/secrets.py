"""Connection credentials from Secrets Manager: the secret `<prefix><connection>` of a connection
the registry serves, cached for 5 minutes."""

from typing import Any

from aws_lambda_powertools.utilities import parameters
from botocore.exceptions import ClientError
from pydantic import ValidationError

from connectwise.backends import AnyConnection, parse_connection
from connectwise.rest.api import RestConnection
from tasks.platform.errors import ConfigurationError, describe_validation
from tasks.platform.registry import ConnectionEntry, Registry
from tasks.platform.settings import Settings

CACHE_SECONDS = 300
_versions: dict[str, int] = {}  # the registry version each connection's cached secret was read at


def secret_name(settings: Settings, connection: str) -> str:
    """Derived from the name alone (which holds no `/`): no entry can point at another's secret."""
    return f"{settings.secret_prefix}{connection}"


def refusal(name: str, entry: ConnectionEntry | None) -> str | None:
    """Why the stack does not serve this connection now, or None when it does."""
    if entry is None:
        return (
            f"unknown connection {name!r}: it is not in the connection registry (python -m tasks.admin list)"
        )
    if not entry.enabled:
        return f"connection {name!r} is disabled in the connection registry"
    return None


def load_connection(name: str, settings: Settings, registry: Registry, fresh: bool = False) -> AnyConnection:
    """The named connection's credentials, with its registry settings; errors name the
    connection, never a secret value. `fresh` reads the secret again instead of the cached value
    (after ConnectWise refused it)."""
    entry = registry.cached(name)
    refused = refusal(name, entry)
    if refused or entry is None:
        raise ConfigurationError(refused or name)
    # A changed entry (a new login written by the admin, a connection removed and added again)
    # reads its secret afresh: the admin writes a new secret before the entry that goes with it.
    fresh = fresh or _versions.get(name) != entry.version
    try:
        value: Any = parameters.get_secret(
            secret_name(settings, name), transform="json", max_age=CACHE_SECONDS, force_fetch=fresh
        )
    except parameters.exceptions.TransformParameterError:
        raise ConfigurationError(f"secret of connection {name!r} is not valid JSON") from None
    except (ClientError, parameters.exceptions.GetParameterError) as exc:
        # boto's message names the error code and the secret id, never its value.
        raise ConfigurationError(f"cannot read the secret of connection {name!r}: {exc}") from None
    connection = parse_secret(name, value, entry)
    _versions[name] = entry.version
    return connection


def site_of(login: AnyConnection) -> str:
    """The ConnectWise company a login reaches, as the registry keeps it."""
    return f"{login.company.lower()}@{login.site.lower()}"


def parse_secret(name: str, value: Any, entry: ConnectionEntry) -> AnyConnection:
    """A secret's login, in the registry's time zone; a secret of another backend than the
    registry says is refused (a REST entry must not quietly run on an old login)."""
    if not isinstance(value, dict):
        raise ConfigurationError(f"secret of connection {name!r} must be a JSON object")
    try:
        connection = parse_connection(value | {"time_zone": entry.time_zone})
    except ValidationError as exc:
        raise ConfigurationError(
            f"secret of connection {name!r} is invalid: {describe_validation(exc)}"
        ) from None
    backend = "rest" if isinstance(connection, RestConnection) else "accounting_interface"
    if backend != entry.backend:
        raise ConfigurationError(
            f"secret of connection {name!r} holds a {backend} login, but the registry says {entry.backend}"
        )
    if entry.site and site_of(connection) != entry.site:  # changed behind the admin's back
        raise ConfigurationError(
            f"secret of connection {name!r} logs into {site_of(connection)}, but the registry says {entry.site}"
        )
    return connection
