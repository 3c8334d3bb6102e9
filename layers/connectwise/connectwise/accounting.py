"""Accounting Interface client: download, recreate and update GL batches.

The wire details live in `connectwise.wire`; this module adds the connection model, the HTTP
exchange (timeouts on every call, retries with backoff for transient faults only) and the
translation of ConnectWise's replies into typed results and errors.
"""

import ipaddress
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from typing import Literal, Self
from urllib.parse import urlsplit

import requests
from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator, model_validator
from requests.adapters import HTTPAdapter
from urllib3.exceptions import ReadTimeoutError
from urllib3.util.retry import Retry

from connectwise import wire
from connectwise.errors import (
    AuthenticationError,
    ConnectWiseError,
    DocumentError,
    PsaError,
    TransportError,
    UnknownBatchError,
    UnknownInvoiceError,
)
from connectwise.glexport import GLBatch, parse_glexport
from connectwise.safexml import parse_xml

TRANSIENT_STATUSES = frozenset({429, 500, 502, 503, 504})


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

    @field_validator("site")
    @classmethod
    def _bare_host(cls, site: str) -> str:
        if "://" in site or "/" in site:
            raise ValueError("site is a host name (e.g. na.myconnectwise.net), without scheme or path")
        return site

    @model_validator(mode="after")
    def _https_unless_loopback(self) -> Self:
        if not self.use_ssl and not _is_loopback(self.site):
            raise ValueError("use_ssl may only be false for a loopback sandbox")
        return self


class Connection(SiteLogin):
    """A member login to one ConnectWise site's Accounting Interface (the secret's JSON), and
    optionally the site's Integrator Login for the SOAP tasks."""

    backend: Literal["accounting_interface"] = "accounting_interface"
    company: str = Field(min_length=1)
    username: str = Field(min_length=1)
    password: SecretStr = Field(min_length=1)
    integrator: IntegratorSecret | None = None

    @property
    def url(self) -> str:
        return wire.page_url(self.site, self.directory, self.use_ssl)


def _is_loopback(site: str) -> bool:
    host = urlsplit(f"//{site}").hostname or ""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


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


class AccountingClient:
    """One ConnectWise site's Accounting Interface, as one member."""

    def __init__(
        self,
        connection: Connection,
        *,
        timeout: tuple[float, float] = (5.0, 120.0),
        retries: int = 3,
        backoff: float = 0.5,
        session: requests.Session | None = None,
    ) -> None:
        self.connection = connection
        self.timeout = timeout
        self.session = session or requests.Session()
        # urllib3 does the retry loop: backoff, Retry-After on 429/503, and only for the
        # statuses and errors in TRANSIENT_STATUSES / connect / read failures.
        retry = Retry(
            total=retries,
            connect=retries,
            read=retries,
            status=retries,
            backoff_factor=backoff,
            backoff_max=30,
            status_forcelist=TRANSIENT_STATUSES,
            allowed_methods=frozenset({wire.METHOD}),
            respect_retry_after_header=True,
            raise_on_status=False,
        )
        self.session.mount("http://", HTTPAdapter(max_retries=retry))
        self.session.mount("https://", HTTPAdapter(max_retries=retry))

    def download_gl_batch(
        self,
        *,
        invoices: bool = False,
        expenses: bool = False,
        procurement: bool = False,
        thru_date: date | None = None,
        owner_level: str | None = None,
    ) -> GLBatch:
        """Export the unposted records of the chosen kinds. Nothing is marked on ConnectWise."""
        if not (invoices or expenses or procurement):
            raise ValueError("choose at least one of invoices, expenses, procurement")
        fields = wire.export_fields(invoices, expenses, procurement, thru_date, owner_level)
        return self._glexport(fields)

    def recreate_gl_batch(
        self,
        batch_id: str,
        *,
        filters: RecreateFilters | None = None,
        thru_date: date | None = None,
        owner_level: str | None = None,
    ) -> GLBatch:
        """Download a previously updated batch again, with optional record filters."""
        filters = filters or RecreateFilters()
        fields = wire.recreate_fields(batch_id, filters.model_dump(), thru_date, owner_level)
        return self._glexport(fields)

    def update_gl_batch(self, batch_id: str, gl_entry_ids: Iterable[int], kinds: Iterable[str] = ()) -> str:
        """Add posted GL entries to the batch so they are never exported again (the batch's
        kinds are ConnectWise's to know here; the REST backend needs them)."""
        body = self._post(wire.update_fields(batch_id, gl_entry_ids))
        root = parse_xml(body, "update reply")
        if root.tag != "PsaData":
            raise DocumentError(f"unexpected update reply <{root.tag}>")
        return (root.text or "").strip()

    def update_invoice_payment(
        self, invoice_number: str, paid_amount: Decimal, date_paid: datetime
    ) -> PaymentApplied:
        """Set the invoice's single payment to `paid_amount` (ConnectWise caps it at the total)."""
        check_payment(invoice_number, paid_amount, date_paid)
        body = self._post(wire.payment_fields(invoice_number, paid_amount, date_paid))
        root = parse_xml(body, "payment reply")
        if root.tag != "PsaData":
            raise DocumentError(f"unexpected payment reply <{root.tag}>")
        try:
            return PaymentApplied(
                invoice_number=root.get(wire.INVOICE_NUMBER, invoice_number),
                total=Decimal(root.get(wire.INVOICE_TOTAL, "")),
                paid_amount=Decimal(root.get(wire.PAID_AMOUNT, "")),
                date_paid=datetime.fromisoformat(root.get(wire.DATE_PAID, ""))
                if root.get(wire.DATE_PAID)
                else None,
            )
        except (ArithmeticError, ValueError):
            raise DocumentError(
                f"payment reply for invoice {invoice_number} lacks Total or PaidAmount"
            ) from None

    def _glexport(self, fields: dict[str, str]) -> GLBatch:
        return parse_glexport(self._post(fields))

    def _post(self, fields: dict[str, str]) -> bytes:
        login = wire.login_fields(
            self.connection.company, self.connection.username, self.connection.password.get_secret_value()
        )
        url = self.connection.url
        action = fields.get(wire.ACTION, "?")
        try:
            response = self.session.request(wire.METHOD, url, data=login | fields, timeout=self.timeout)
        except requests.RequestException as exc:
            if _timed_out(exc):
                raise TransportError(
                    f"{action}: ConnectWise did not answer within {self.timeout[1]:g} s"
                ) from None
            raise TransportError(f"{action}: cannot reach {url}: {type(exc).__name__}") from None
        body = response.content
        _raise_for_psa_error(body)
        if response.status_code >= 400:
            said = _first_line(body)
            raise TransportError(
                f"{action}: HTTP {response.status_code} from ConnectWise" + (f": {said}" if said else ""),
                status=response.status_code,
                transient=response.status_code in TRANSIENT_STATUSES,
            )
        return body


def _first_line(body: bytes, limit: int = 200) -> str:
    """The start of an error page, printable, for the error message."""
    text = body[:limit].decode("utf-8", "replace").strip()
    line = text.splitlines()[0] if text else ""
    return "".join(ch for ch in line if ch.isprintable())


def _timed_out(exc: requests.RequestException) -> bool:
    """A timeout, also when urllib3 gave up retrying one (requests then raises ConnectionError)."""
    reason = getattr(exc.args[0], "reason", None) if exc.args else None
    return isinstance(exc, requests.Timeout) or isinstance(reason, ReadTimeoutError)


def _raise_for_psa_error(body: bytes) -> None:
    if b"<PsaError" not in body[:200]:
        return
    try:
        root = parse_xml(body, "error reply")
    except ConnectWiseError:
        return
    text = (root.text or "").strip()
    message = text.splitlines()[0].removeprefix("System.Exception: ").strip() if text else "PsaError"
    if wire.BAD_LOGIN in message:
        raise AuthenticationError(message)
    if wire.UNKNOWN_BATCH in message:
        raise UnknownBatchError(message)
    if wire.UNKNOWN_INVOICE in message:
        raise UnknownInvoiceError(message)
    raise PsaError(message)
