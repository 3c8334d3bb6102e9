"""What the GL tasks are asked: a download (by a schedule), a posting confirmation (by the
accounting system, through SQS), a recreate (on demand)."""

from datetime import date
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from connectwise.models import Kind, RecreateFilters
from tasks.platform.requests import ConnectionName


class DownloadRequest(BaseModel):
    """What a schedule asks for: which connection, which kinds of unposted records."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    connection: str = ConnectionName
    kinds: list[Kind] = Field(min_length=1)
    thru_date: date | None = None
    owner_level: str | None = None

    @field_validator("kinds")
    @classmethod
    def _distinct(cls, kinds: list[Kind]) -> list[Kind]:
        return sorted(set(kinds))


class PostingConfirmation(BaseModel):
    """The accounting system's word on a batch: posted (all or the listed GL entries) or abandon."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    connection: str = ConnectionName
    batch_id: str = Field(min_length=1, max_length=64)
    gl_entry_ids: list[int] | None = None
    action: Literal["post", "abandon"] = "post"


class RecreateRequest(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    connection: str = ConnectionName
    batch_id: str = Field(min_length=1, max_length=64)
    filters: RecreateFilters = Field(default_factory=RecreateFilters)
    thru_date: date | None = None
    owner_level: str | None = None
