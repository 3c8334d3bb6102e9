"""Accounting Interface client: download, recreate and update GL batches, invoice payments.

The wire details live in `connectwise.accounting_interface.wire`; this module adds the
connection model, the HTTP exchange (see `connectwise.transport`) and the translation of
ConnectWise's replies into typed results and errors.
"""

import copy
from collections.abc import Collection, Iterable, Iterator
from contextlib import closing, contextmanager
from datetime import date, datetime
from decimal import Decimal
from itertools import chain, islice
from typing import Any, Literal

import requests
from pydantic import Field, SecretStr

from connectwise import transport
from connectwise.accounting_interface import wire
from connectwise.errors import (
    AuthenticationError,
    ConnectWiseError,
    DocumentError,
    OutcomeUnknownError,
    PsaError,
    TransportError,
    UnknownBatchError,
    UnknownInvoiceError,
)
from connectwise.glexport import GLBatch, GLSink, read_glexport
from connectwise.models import (
    KINDS,
    IntegratorSecret,
    PaymentApplied,
    RecreateFilters,
    SiteLogin,
    check_payment,
    horizon,
)
from connectwise.safexml import parse_xml
from connectwise.transport import Deadline

PSA_ERROR_HEAD = 200  # a PsaError reply says so in its first bytes
PSA_ERROR_CHUNKS = 16  # and is short: what is read of it, at most, to raise it


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
        pacer: transport.Pacer = transport.UNPACED,
    ) -> None:
        self.connection = connection
        self.timeout, self.retries, self.backoff = timeout, retries, backoff
        self.pacer = pacer
        self.session = session or transport.new_session()
        if transport.refuse_redirects not in self.session.hooks["response"]:
            self.session.hooks["response"].append(transport.refuse_redirects)
        self.deadline = Deadline()

    def within(self, deadline: Deadline) -> "AccountingClient":
        """This client (same session) with every call and wait fitting `deadline`."""
        bound = copy.copy(self)
        bound.deadline = deadline
        return bound

    def download_gl_batch(
        self,
        kinds: Collection[str],
        *,
        thru_date: date | None = None,
        owner_level: str | None = None,
        sink: GLSink | None = None,
    ) -> GLBatch:
        """Export the unposted records of the chosen kinds, handing `sink` the document and its
        records as they arrive. Nothing is marked on ConnectWise."""
        if not kinds:
            raise ValueError("choose at least one of invoices, expenses, procurement")
        fields = wire.export_fields(
            "invoices" in kinds, "expenses" in kinds, "procurement" in kinds, thru_date, owner_level
        )
        with self._export(fields) as chunks:
            return read_glexport(chunks, sink)

    def unposted_entries(self) -> dict[int, str]:
        """Every GL entry the unposted lists hold, with its kind (an export of all kinds)."""
        by_kind = self.download_gl_batch(KINDS, thru_date=horizon()).gl_entry_ids_by_kind()
        return {i: kind for kind, ids in by_kind.items() for i in ids}

    def recreate_gl_batch(
        self,
        batch_id: str,
        *,
        kinds: Collection[str] = KINDS,
        filters: RecreateFilters | None = None,
        thru_date: date | None = None,
        owner_level: str | None = None,
        sink: GLSink | None = None,
    ) -> GLBatch:
        """Download a previously updated batch again: the records of `kinds`, through
        `thru_date`, at `owner_level`, narrowed by the record filters (to `sink`, as for a
        download)."""
        if not kinds:
            raise ValueError("choose at least one of invoices, expenses, procurement")
        filters = filters or RecreateFilters()
        fields = wire.recreate_fields(
            batch_id,
            filters.model_dump(),
            thru_date,
            owner_level,
            invoices="invoices" in kinds,
            expenses="expenses" in kinds,
            procurement="procurement" in kinds,
        )
        with self._export(fields) as chunks:
            return read_glexport(chunks, sink)

    def update_gl_batch(self, batch_id: str, gl_entry_ids: Iterable[int], kinds: Iterable[str] = ()) -> str:
        """Add posted GL entries to the batch so they are never exported again (the batch's
        kinds are ConnectWise's to know here; the REST backend needs them)."""
        body = self._post(wire.update_fields(batch_id, gl_entry_ids), repeatable=False)
        root = _write_reply(body, f"the update of batch {batch_id}")
        return (root.text or "").strip()

    def posted_entries(self, batch_id: str) -> set[int] | None:
        """The GL entries ConnectWise holds in this batch (a recreate of it, through the horizon:
        records dated ahead too), None if none."""
        try:
            return set(self.recreate_gl_batch(batch_id, thru_date=horizon()).gl_entry_ids())
        except UnknownBatchError:
            return None

    def update_invoice_payment(
        self, invoice_number: str, paid_amount: Decimal, date_paid: datetime
    ) -> PaymentApplied:
        """Set the invoice's single payment to `paid_amount` (ConnectWise caps it at the total)."""
        check_payment(invoice_number, paid_amount, date_paid)
        body = self._post(wire.payment_fields(invoice_number, paid_amount, date_paid), repeatable=False)
        what = f"the payment of invoice {invoice_number}"
        root = _write_reply(body, what)
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
            raise OutcomeUnknownError(
                f"{what}: the reply lacks Total or PaidAmount; ConnectWise may have applied it"
            ) from None

    @contextmanager
    def _export(self, fields: dict[str, str]) -> Iterator[Iterator[bytes]]:
        """An export's reply (a GLExport document) as it arrives; an export marks nothing, so
        it may be repeated. A PsaError reply is told by its first bytes and raised as today."""
        what = fields.get(wire.ACTION, "?")
        with closing(self._send(fields, repeatable=True, stream=True)) as response:
            if response.status_code >= 400:
                self._check(response.content, response, what)
            chunks = transport.body(response, what, self.deadline)
            head = b""
            for chunk in chunks:
                head += chunk
                if len(head) >= PSA_ERROR_HEAD:
                    break
            if b"<PsaError" in head[:PSA_ERROR_HEAD]:  # a short document; read on, within bounds
                head += b"".join(islice(chunks, PSA_ERROR_CHUNKS))
                _raise_for_psa_error(head)
            yield chain([head], chunks)

    def _post(self, fields: dict[str, str], repeatable: bool) -> bytes:
        response = self._send(fields, repeatable)
        body = response.content
        self._check(body, response, fields.get(wire.ACTION, "?"))
        return body

    def _send(self, fields: dict[str, str], repeatable: bool, stream: bool = False) -> requests.Response:
        login = wire.login_fields(
            self.connection.company, self.connection.username, self.connection.password.get_secret_value()
        )
        return transport.send(
            self.session,
            wire.METHOD,
            self.connection.url,
            what=fields.get(wire.ACTION, "?"),
            deadline=self.deadline,
            timeout=self.timeout,
            retries=self.retries,
            backoff=self.backoff,
            repeatable=repeatable,
            pacer=self.pacer,
            data=login | fields,
            stream=stream,
        )

    @staticmethod
    def _check(body: bytes, response: requests.Response, what: str) -> None:
        _raise_for_psa_error(body)
        if response.status_code >= 400:
            raise TransportError(
                f"{what}: HTTP {response.status_code} from ConnectWise{transport.first_line(response)}",
                status=response.status_code,
                transient=False,
            )


def _write_reply(body: bytes, what: str) -> Any:
    """The <PsaData> root of a write's reply; anything unreadable leaves the outcome unknown."""
    try:
        root = parse_xml(body, "reply")
    except DocumentError as exc:
        raise OutcomeUnknownError(
            f"{what}: unreadable reply ({exc.message}); ConnectWise may have applied it"
        ) from None
    if root.tag != "PsaData":
        raise OutcomeUnknownError(f"{what}: unexpected reply <{root.tag}>; ConnectWise may have applied it")
    return root


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
