"""Settings read from the function's environment (set by template.yaml, whose values are the
defaults here too)."""

import json
import os
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from tasks.platform.errors import ConfigurationError, describe_validation

ENVIRONMENT = {  # field -> environment variable
    "table_name": "LEDGER_TABLE",
    "bucket_name": "OUTPUT_BUCKET",
    "event_bus_name": "EVENT_BUS_NAME",
    "connection_secrets": "CONNECTION_SECRETS",
    "dead_letter_queue_url": "DEAD_LETTER_QUEUE_URL",
    "default_connection": "DEFAULT_CONNECTION",
    "stale_after_seconds": "STALE_AFTER_SECONDS",
}


class Settings(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    table_name: str = Field(min_length=1)
    bucket_name: str = Field(min_length=1)
    event_bus_name: str = "default"
    connection_secrets: dict[str, str] = Field(default_factory=dict)  # name -> secret id/ARN
    dead_letter_queue_url: str = ""
    default_connection: str = ""  # for payment messages that name no connection (XML)
    stale_after_seconds: int = Field(300, gt=0)  # a claim older than this is from a crashed invocation

    @classmethod
    def from_env(cls) -> "Settings":
        values: dict[str, Any] = {
            field: os.environ[name] for field, name in ENVIRONMENT.items() if os.environ.get(name)
        }
        for field in ("table_name", "bucket_name"):
            if field not in values:
                raise ConfigurationError(f"environment variable {ENVIRONMENT[field]} is not set")
        values["connection_secrets"] = _secret_map(values.get("connection_secrets", "{}"))
        try:
            return cls.model_validate(values)
        except ValidationError as exc:
            raise ConfigurationError(f"invalid settings: {describe_validation(exc)}") from None


def _secret_map(text: str) -> dict[str, str]:
    try:
        secrets = json.loads(text)
    except json.JSONDecodeError:
        raise ConfigurationError("CONNECTION_SECRETS is not a JSON object") from None
    if not isinstance(secrets, dict) or not all(isinstance(v, str) for v in secrets.values()):
        raise ConfigurationError(
            'CONNECTION_SECRETS must map connection names to secret ARNs: {"main": "arn:..."}'
        )
    return secrets
