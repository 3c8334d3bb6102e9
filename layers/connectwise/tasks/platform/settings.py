"""Settings read from the function's environment (set by template.yaml, whose values are the
defaults here too)."""

import os
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from tasks.platform.errors import ConfigurationError, describe_validation

ENVIRONMENT = {  # field -> environment variable
    "table_name": "LEDGER_TABLE",
    "bucket_name": "OUTPUT_BUCKET",
    "event_bus_name": "EVENT_BUS_NAME",
    "registry_table": "REGISTRY_TABLE",
    "secret_prefix": "SECRET_PREFIX",
    "dead_letter_queue_url": "DEAD_LETTER_QUEUE_URL",
    "stale_after_seconds": "STALE_AFTER_SECONDS",
}


class Settings(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    table_name: str = Field(min_length=1)
    bucket_name: str = Field(min_length=1)
    event_bus_name: str = "default"
    registry_table: str = Field(min_length=1)  # the connection registry (tasks.platform.registry)
    # A connection's secret is named <prefix><connection>; the functions may read only that prefix.
    secret_prefix: str = Field("connectwise/", pattern=r"^([A-Za-z0-9_+=.@-]+/)+$")  # as template.yaml
    dead_letter_queue_url: str = ""
    stale_after_seconds: int = Field(300, gt=0)  # a claim older than this is from a crashed invocation

    @classmethod
    def from_env(cls) -> "Settings":
        values: dict[str, Any] = {
            field: os.environ[name] for field, name in ENVIRONMENT.items() if os.environ.get(name)
        }
        for field in ("table_name", "bucket_name", "registry_table"):
            if field not in values:
                raise ConfigurationError(f"environment variable {ENVIRONMENT[field]} is not set")
        try:
            return cls.model_validate(values)
        except ValidationError as exc:
            raise ConfigurationError(f"invalid settings: {describe_validation(exc)}") from None
