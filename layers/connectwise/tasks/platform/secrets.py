"""Connection credentials from Secrets Manager: one secret per connection, cached for 5 minutes."""

from typing import Any

from aws_lambda_powertools.utilities import parameters
from botocore.exceptions import ClientError
from pydantic import ValidationError

from connectwise.backends import AnyConnection, parse_connection
from tasks.platform.errors import ConfigurationError, describe_validation
from tasks.platform.settings import Settings

CACHE_SECONDS = 300


def load_connection(name: str, settings: Settings, fresh: bool = False) -> AnyConnection:
    """The named connection's credentials; errors name the connection, never a secret value.
    `fresh` reads the secret again instead of the cached value (after ConnectWise refused it)."""
    secret_id = settings.connection_secrets.get(name)
    if not secret_id:
        raise ConfigurationError(unknown_connection(name, settings))
    try:
        value: Any = parameters.get_secret(
            secret_id, transform="json", max_age=CACHE_SECONDS, force_fetch=fresh
        )
    except parameters.exceptions.TransformParameterError:
        raise ConfigurationError(f"secret of connection {name!r} is not valid JSON") from None
    except (ClientError, parameters.exceptions.GetParameterError) as exc:
        # boto's message names the error code and the secret id, never its value.
        raise ConfigurationError(f"cannot read the secret of connection {name!r}: {exc}") from None
    if not isinstance(value, dict):
        raise ConfigurationError(f"secret of connection {name!r} must be a JSON object")
    try:
        return parse_connection(value)
    except ValidationError as exc:
        raise ConfigurationError(
            f"secret of connection {name!r} is invalid: {describe_validation(exc)}"
        ) from None


def unknown_connection(name: str, settings: Settings) -> str:
    """The error for a connection this stack does not serve, naming the ones it does."""
    known = ", ".join(sorted(settings.connection_secrets)) or "none"
    return f"unknown connection {name!r} (configured: {known})"
