"""Settings read from the function's environment (set by template.yaml)."""

import json
import os
from dataclasses import dataclass

from connector.errors import ConfigurationError


@dataclass(frozen=True)
class Settings:
    table_name: str
    bucket_name: str
    event_bus_name: str
    connection_secrets: dict[str, str]  # connection name -> Secrets Manager secret id/ARN
    dead_letter_queue_url: str = ""
    default_connection: str = ""  # for payment messages that name no connection (XML)
    stale_after_seconds: int = 900  # a claim older than this is from a crashed invocation

    @classmethod
    def from_env(cls) -> "Settings":
        def required(name: str) -> str:
            value = os.environ.get(name, "")
            if not value:
                raise ConfigurationError(f"environment variable {name} is not set")
            return value

        try:
            secrets = json.loads(os.environ.get("CONNECTION_SECRETS") or "{}")
        except json.JSONDecodeError:
            raise ConfigurationError("CONNECTION_SECRETS is not a JSON object") from None
        if not isinstance(secrets, dict) or not all(isinstance(v, str) for v in secrets.values()):
            raise ConfigurationError(
                'CONNECTION_SECRETS must map connection names to secret ARNs: {"main": "arn:..."}'
            )
        return cls(
            table_name=required("LEDGER_TABLE"),
            bucket_name=required("OUTPUT_BUCKET"),
            event_bus_name=os.environ.get("EVENT_BUS_NAME", "default"),
            connection_secrets=secrets,
            dead_letter_queue_url=os.environ.get("DEAD_LETTER_QUEUE_URL", ""),
            default_connection=os.environ.get("DEFAULT_CONNECTION", ""),
            stale_after_seconds=int(os.environ.get("STALE_AFTER_SECONDS", "900")),
        )
