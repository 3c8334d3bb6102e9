"""Connection credentials from Secrets Manager: one secret per connection, cached for 5 minutes."""

from typing import Any

from aws_lambda_powertools.utilities import parameters
from botocore.exceptions import ClientError
from pydantic import ValidationError

from connector.errors import ConfigurationError, describe_validation
from connector.settings import Settings
from connectwise.backends import AnyConnection, parse_connection

CACHE_SECONDS = 300


def load_connection(name: str, settings: Settings, fresh: bool = False) -> AnyConnection:
    """The named connection's credentials; errors name the connection, never a secret value.
    `fresh` reads the secret again instead of the cached value (after ConnectWise refused it)."""
    secret_id = settings.connection_secrets.get(name)
    if not secret_id:
        known = ", ".join(sorted(settings.connection_secrets)) or "none"
        raise ConfigurationError(f"unknown connection {name!r} (configured: {known})")
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
