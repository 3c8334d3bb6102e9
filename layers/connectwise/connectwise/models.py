"""What every ConnectWise client shares: where a site is, the kinds of GL records, recreate
filters and what a payment update leaves. No client protocol lives here."""

import ipaddress
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Literal, Self
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator, model_validator

Kind = Literal["invoices", "expenses", "procurement"]
KINDS: tuple[Kind, ...] = ("invoices", "expenses", "procurement")  # the kinds of a GL batch


class IntegratorSecret(BaseModel):
    """The site's Integrator Login for the SOAP APIs (reports, record downloads)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    login_id: str = Field(min_length=1)
    password: SecretStr = Field(min_length=1)


class SiteLogin(BaseModel):
    """Where a ConnectWise site is; shared by its member login and its integrator login."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    site: str = Field(min_length=1, description="host[:port] of the ConnectWise site, no scheme")
    directory: str = "v4_6_release"
    use_ssl: bool = True
    # The IANA zone the site's finance team works in: relative thru dates ("end_of_last_month")
    # are dates there, not in UTC.
    time_zone: str = "UTC"

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.time_zone)

    @field_validator("site")
    @classmethod
    def _bare_host(cls, site: str) -> str:
        if "://" in site or "/" in site:
            raise ValueError("site is a host name (e.g. na.myconnectwise.net), without scheme or path")
        return site

    @field_validator("time_zone")
    @classmethod
    def _iana_zone(cls, name: str) -> str:
        try:
            ZoneInfo(name)
        except (ZoneInfoNotFoundError, ValueError):
            name = ""
        if not name or name == "localtime":  # "localtime" is whatever zone the machine is in
            raise ValueError("not an IANA time zone name (for example America/New_York or Europe/London)")
        return name

    @model_validator(mode="after")
    def _https_unless_loopback(self) -> Self:
        if not self.use_ssl and not _is_loopback(self.site):
            raise ValueError("use_ssl may only be false for a loopback sandbox")
        return self


def _is_loopback(site: str) -> bool:
    host = urlsplit(f"//{site}").hostname or ""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def horizon() -> date:
    """A thru date past any record's date (ten years ahead): for a re-export whose question is
    "everything ConnectWise holds", which ConnectWise's default thru date (its today) would cut
    short for records dated ahead. Near enough for a date column of any SQL Server type."""
    return date.today() + timedelta(days=3652)


class RecreateFilters(BaseModel):
    """The six optional record-id lists of a recreate: include narrows, exclude removes."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    include_invoice_ids: list[int] = Field(default_factory=list)
    exclude_invoice_ids: list[int] = Field(default_factory=list)
    include_expense_ids: list[int] = Field(default_factory=list)
    exclude_expense_ids: list[int] = Field(default_factory=list)
    include_inventory_ids: list[int] = Field(default_factory=list)
    exclude_inventory_ids: list[int] = Field(default_factory=list)


@dataclass(frozen=True)
class PaymentApplied:
    """What ConnectWise holds for an invoice after a payment update."""

    invoice_number: str
    total: Decimal
    paid_amount: Decimal  # after ConnectWise's cap at the total
    date_paid: datetime | None  # set only once the invoice is fully paid


def check_payment(invoice_number: str, paid_amount: Decimal, date_paid: datetime) -> None:
    """What either backend refuses before calling ConnectWise."""
    if not paid_amount.is_finite() or paid_amount < 0:
        raise ValueError(
            f"invoice {invoice_number}: paid amount must be a non-negative amount, got {paid_amount}"
        )
    if date_paid.tzinfo is None:
        raise ValueError(f"invoice {invoice_number}: date paid must carry a time zone")
