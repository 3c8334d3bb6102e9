"""REST API (v3.0) client: the same GL batch and payment operations as `AccountingClient`.

How the operations map (../shared/reference/rest_api.md, sections 3 and 4):

* download: list the unposted records of each kind (forward-only pages of up to 1000), then
  `POST /finance/accounting/export` with exactly those ids under a batchIdentifier chosen here.
  The export marks nothing; the listed invoice count is checked against the document.
* update ("post"): `POST /finance/accounting/batches` with the posted GL entry ids. An existing
  batch of that identifier means an earlier attempt got through: nothing is sent twice.
* recreate: find the batch by identifier, `POST /finance/accounting/batches/{id}/export`.
* payment: find the invoice by number, read its payment, create it or replace its amount. The
  amount is capped at the invoice total here, as the Accounting Interface caps it.

Transport: Basic auth `company+publicKey:privateKey`, the `clientId` header, a versioned Accept
header, the codebase looked up once per client. 429 waits for `Retry-After` and is retried for
every call (the call was not run); 5xx and timeouts are retried only for calls that are safe to
repeat. A non-repeatable call that fails transiently raises a transient error: the message is
retried later, and the operation then finds what the lost call did.
"""

import copy
import threading
import uuid
from collections.abc import Iterable, Iterator
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any, Literal

import requests
from pydantic import Field, SecretStr

from connectwise import jsonmoney, transport, wire
from connectwise.accounting import IntegratorSecret, PaymentApplied, RecreateFilters, SiteLogin, check_payment
from connectwise.conditions import Expression, all_of, where
from connectwise.errors import (
    AuthenticationError,
    ConnectWiseError,
    DocumentError,
    OutcomeUnknownError,
    PsaError,
    UnknownBatchError,
    UnknownInvoiceError,
)
from connectwise.glexport import GLBatch, GLExport
from connectwise.rest_glexport import parse_rest_glexport
from connectwise.transport import Deadline

API_VERSION = "2025.1"
ACCEPT = f"application/vnd.connectwise.com+json; version={API_VERSION}"
MAX_PAGE_SIZE = 1000

# kind -> (unposted list, its date field, the export flag and id list, the id the list gives)
KINDS = {
    "invoices": (
        "unpostedinvoices",
        "invoiceDate",
        "exportInvoicesFlag",
        "includedInvoiceIds",
        "billingLogId",
    ),
    "expenses": ("unpostedexpenses", "dateExpense", "exportExpensesFlag", "includedExpenseIds", "id"),
    "procurement": (
        "unpostedprocurement",
        "purchaseDate",
        "exportProductsFlag",
        "includedProductIds",
        "unpostedProductId",
    ),
}
FILTERS = {  # RecreateFilters field -> ExportAccountingBatchRequest field
    "include_invoice_ids": "includedInvoiceIds",
    "exclude_invoice_ids": "excludedInvoiceIds",
    "include_expense_ids": "includedExpenseIds",
    "exclude_expense_ids": "excludedExpenseIds",
    "include_inventory_ids": "includedProductIds",
    "exclude_inventory_ids": "excludedProductIds",
}


class RestConnection(SiteLogin):
    """An API member's keys for one ConnectWise site's REST API (the secret's JSON)."""

    backend: Literal["rest"]
    company: str = Field(min_length=1, description="the company id used at login")
    public_key: str = Field(min_length=1)
    private_key: SecretStr = Field(min_length=1)
    client_id: SecretStr = Field(
        min_length=1, description="the integration's clientId from developer.connectwise.com"
    )
    integrator: IntegratorSecret | None = None

    @property
    def scheme(self) -> str:
        return "https" if self.use_ssl else "http"


class RestClient:
    """One ConnectWise site's REST API, as one API member."""

    def __init__(
        self,
        connection: RestConnection,
        *,
        name: str = "",
        timeout: tuple[float, float] = (5.0, 120.0),
        retries: int = 3,
        backoff: float = 0.5,
        page_size: int = MAX_PAGE_SIZE,
        session: requests.Session | None = None,
    ) -> None:
        if not 1 <= page_size <= MAX_PAGE_SIZE:
            raise ValueError(f"page_size must be 1..{MAX_PAGE_SIZE}, got {page_size}")
        self.connection = connection
        self.label = f"connection {name!r}" if name else f"ConnectWise site {connection.site}"
        self.timeout, self.retries, self.backoff, self.page_size = timeout, retries, backoff, page_size
        self.session = session or transport.new_session()
        if transport.refuse_redirects not in self.session.hooks["response"]:
            self.session.hooks["response"].append(transport.refuse_redirects)
        self.session.auth = (
            f"{connection.company}+{connection.public_key}",
            connection.private_key.get_secret_value(),
        )
        self.session.headers.update(
            {
                "clientId": connection.client_id.get_secret_value(),
                "Accept": ACCEPT,
                "Cache-Control": "no-cache",
            }
        )
        self.deadline = Deadline()
        # Shared by the copies `within` makes: the codebase, looked up once, and the call count.
        self._shared: dict[str, Any] = {"codebase": None, "calls": 0, "lock": threading.Lock()}

    @property
    def calls(self) -> int:
        """API requests sent, retries included (for the benchmark)."""
        return int(self._shared["calls"])

    def within(self, deadline: Deadline) -> "RestClient":
        """This client (same session, same codebase) with every call and wait fitting `deadline`."""
        bound = copy.copy(self)
        bound.deadline = deadline
        return bound

    # --- GL batches ------------------------------------------------------------------------

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
        chosen = [
            k
            for k, wanted in (("invoices", invoices), ("expenses", expenses), ("procurement", procurement))
            if wanted
        ]
        if not chosen:
            raise ValueError("choose at least one of invoices, expenses, procurement")
        listed = {kind: self.unposted(kind, thru_date, owner_level) for kind in chosen}
        kinds = {kind: bool(listed.get(kind)) for kind in KINDS}
        if not any(kinds.values()):
            return GLBatch(raw=b"{}", document=GLExport(GLBatchID=""), media_type="application/json")
        batch_id = new_batch_identifier()
        request: dict[str, Any] = {"batchIdentifier": batch_id, **_thru(thru_date)}
        for kind, rows in listed.items():
            _, _, flag, included, id_field = KINDS[kind]
            if rows:
                request[flag] = True
                request[included] = [row[id_field] for row in rows]
        batch = parse_rest_glexport(
            self._json_bytes("POST", "/finance/accounting/export", request), batch_id, kinds
        )
        exported = len(batch.document.Transactions)
        if exported != len(listed.get("invoices", [])):
            raise DocumentError(
                f"the export of batch {batch_id} holds {exported} invoices, "
                f"but {len(listed['invoices'])} were listed as unposted: nothing was kept"
            )
        return batch

    def recreate_gl_batch(
        self,
        batch_id: str,
        *,
        filters: RecreateFilters | None = None,
        thru_date: date | None = None,
        owner_level: str | None = None,
    ) -> GLBatch:
        """Download a posted batch again, with optional record filters."""
        batch = self.find_batch(batch_id)
        if batch is None:
            raise UnknownBatchError(f"{wire.UNKNOWN_BATCH} {batch_id}")
        request: dict[str, Any] = {
            "batchIdentifier": batch_id,
            "exportInvoicesFlag": True,
            "exportExpensesFlag": True,
            "exportProductsFlag": True,
            **_thru(thru_date),
        }
        if owner_level:
            request["locationId"] = location_id(owner_level)
        for key, ids in (filters or RecreateFilters()).model_dump().items():
            if ids:
                request[FILTERS[key]] = [str(i) for i in ids] if "Product" in FILTERS[key] else ids
        raw = self._json_bytes("POST", f"/finance/accounting/batches/{batch['id']}/export", request)
        return parse_rest_glexport(raw, batch_id, dict.fromkeys(KINDS, True))

    def update_gl_batch(
        self, batch_id: str, gl_entry_ids: Iterable[int], kinds: Iterable[str] = KINDS
    ) -> str:
        """Create the batch from the posted GL entries, so they are never exported again."""
        if self.find_batch(batch_id) is not None:
            return f"batch {batch_id} already exists"  # an earlier attempt created it
        chosen = set(kinds)
        request = {
            "batchIdentifier": batch_id,
            "exportInvoicesFlag": "invoices" in chosen,
            "exportExpensesFlag": "expenses" in chosen,
            "exportProductsFlag": "procurement" in chosen,
            "processedRecordIds": sorted(set(gl_entry_ids)),
        }
        try:
            self._json_bytes("POST", "/finance/accounting/batches", request, repeatable=False)
        except PsaError as exc:
            if "ObjectExists" in exc.message and self.find_batch(batch_id) is not None:
                return f"batch {batch_id} already exists"
            raise
        return f"batch {batch_id} created"

    def find_batch(self, batch_id: str) -> dict[str, Any] | None:
        condition = _condition(
            "batchIdentifier", batch_id, UnknownBatchError(f"{wire.UNKNOWN_BATCH} {batch_id}")
        )
        found = list(self.pages("/finance/accounting/batches", conditions=condition))
        return found[0] if found else None

    def posted_entries(self, batch_id: str) -> set[int] | None:
        """The GL entries ConnectWise holds in this batch (a re-export of it), None if no such batch."""
        if self.find_batch(batch_id) is None:
            return None
        return set(self.recreate_gl_batch(batch_id).gl_entry_ids())

    def list_batches(self) -> list[dict[str, Any]]:
        return list(self.pages("/finance/accounting/batches"))

    def unposted(
        self, kind: str, thru_date: date | None = None, owner_level: str | None = None
    ) -> list[dict[str, Any]]:
        """The unposted records of one kind, through the date and at the location id given."""
        path, date_field, *_ = KINDS[kind]
        parts: list[Expression] = []
        if thru_date:
            end = datetime.combine(thru_date + timedelta(days=1), datetime.min.time(), UTC)
            parts.append(where(date_field, "<", end))
        if owner_level:
            parts.append(where("locationId", "=", location_id(owner_level)))
        return list(
            self.pages(f"/finance/accounting/{path}", conditions=str(all_of(*parts)) if parts else None)
        )

    # --- payments --------------------------------------------------------------------------

    def update_invoice_payment(
        self, invoice_number: str, paid_amount: Decimal, date_paid: datetime
    ) -> PaymentApplied:
        """Set the invoice's one payment to `paid_amount`, capped at the invoice total.

        Nothing is written when the payment already holds that amount and date. A write whose
        reply is lost is read back: it counts as applied only if the payment now shows it."""
        check_payment(invoice_number, paid_amount, date_paid)
        unknown = UnknownInvoiceError(f"{wire.UNKNOWN_INVOICE} {invoice_number}")
        condition = _condition("invoiceNumber", invoice_number, unknown)
        found = list(self.pages("/finance/invoices", conditions=condition, fields="id,invoiceNumber,total"))
        if not found:
            raise unknown
        invoice = found[0]
        total = _money(invoice.get("total"), f"invoice {invoice_number} total")
        path = f"/finance/invoices/{invoice['id']}/payments"
        amount = min(paid_amount, total)
        body: dict[str, Any] = {
            "type": "Payment",
            "invoice": {"id": invoice["id"]},
            "amount": amount,
            "paymentDate": date_paid.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        }
        existing = self._the_payment(path, invoice_number)
        held = existing if existing is not None and _holds(existing, body) else None
        if held is None:
            try:
                held = self._write_payment(path, existing, body)
            except OutcomeUnknownError as lost:
                try:
                    held = self._the_payment(path, invoice_number)
                except ConnectWiseError:
                    raise lost from None  # could not look: still unknown
                if held is None or not _holds(held, body):
                    raise
        applied = _money(held.get("amount"), f"invoice {invoice_number} payment")
        return PaymentApplied(
            invoice_number=invoice_number,
            total=total,
            paid_amount=applied,
            date_paid=date_paid if applied == total else None,
        )

    def _the_payment(self, path: str, invoice_number: str) -> dict[str, Any] | None:
        payments = list(self.pages(path))
        if len(payments) > 1:
            raise PsaError(
                f"invoice {invoice_number} has {len(payments)} payments in ConnectWise; this connector keeps "
                "one payment per invoice and will not choose which to change"
            )
        return payments[0] if payments else None

    def _write_payment(
        self, path: str, existing: dict[str, Any] | None, body: dict[str, Any]
    ) -> dict[str, Any]:
        """Create the payment or replace its amount; never repeated in place (a late landing could
        overwrite a newer amount). Returns the payment as ConnectWise answered it."""
        if existing is None:
            try:
                return _payment_reply(self._json("POST", path, body, repeatable=False), path)
            except PsaError:
                existing = self._the_payment(path, str(body["invoice"]["id"]))
                if existing is None:
                    raise
                # Someone created it meanwhile (ConnectWise refuses a second one): replace its amount.
        reply = self._json("PUT", f"{path}/{existing['id']}", body | {"id": existing["id"]}, repeatable=False)
        return _payment_reply(reply, path)

    # --- paging and transport --------------------------------------------------------------

    def pages(self, path: str, **params: Any) -> Iterator[dict[str, Any]]:
        """Every record of a list, forward-only (ordered by id, each page after the last id seen)."""
        query = {k: v for k, v in params.items() if v is not None} | {"pageSize": self.page_size}
        url: str | None = self._url(path)
        while url:
            response = self._send("GET", url, params=query, headers={"pagination-type": "forward-only"})
            rows = _decode(response, path)
            if not isinstance(rows, list):
                raise DocumentError(f"GET {path}: expected a list, got {type(rows).__name__}")
            yield from rows
            url = response.links.get("next", {}).get("url")
            if url and not url.startswith(self._url("/")):  # never send the keys to another host
                raise DocumentError(f"GET {path}: the next page is on another site: {url.split('?')[0]}")
            query = {}  # the next link carries the query and the pageId

    def _json(self, method: str, path: str, body: Any, repeatable: bool = True) -> Any:
        response = self._send(method, self._url(path), body=body, repeatable=repeatable)
        try:
            return _decode(response, path)
        except DocumentError as exc:
            if repeatable:
                raise
            raise OutcomeUnknownError(
                f"{method} {path}: {exc.message}; ConnectWise may have applied it"
            ) from None

    def _json_bytes(self, method: str, path: str, body: Any, repeatable: bool = True) -> bytes:
        return self._send(method, self._url(path), body=body, repeatable=repeatable).content

    def _url(self, path: str) -> str:
        return f"{self.connection.scheme}://{self.connection.site}/{self.codebase()}apis/3.0{path}"

    def codebase(self) -> str:
        """`v4_6_release/` or a cloud release: looked up once (no login needed), then kept."""
        with self._shared["lock"]:
            if self._shared["codebase"] is None:
                url = f"{self.connection.scheme}://{self.connection.site}/login/companyinfo/{self.connection.company}"
                info = _decode(self._send("GET", url, auth=False), "/login/companyinfo")
                if not isinstance(info, dict) or not info.get("Codebase"):
                    raise AuthenticationError(
                        f"{self.label}: ConnectWise site {self.connection.site} knows no company with this "
                        "connection's company id"
                    )
                self._shared["codebase"] = str(info["Codebase"]).strip("/") + "/"
            return str(self._shared["codebase"])

    def _send(
        self,
        method: str,
        url: str,
        *,
        params: dict[str, Any] | None = None,
        body: Any = None,
        headers: dict[str, str] | None = None,
        repeatable: bool = True,
        auth: bool = True,
    ) -> requests.Response:
        """One API call (see connectwise.transport); a refusal (4xx) becomes a typed error."""
        data = jsonmoney.dumps(body) if body is not None else None
        what = f"{method} {url.split('/apis/3.0', 1)[-1].split('?')[0]}"
        response = transport.send(
            self.session,
            method,
            url,
            what=what,
            deadline=self.deadline,
            timeout=self.timeout,
            retries=self.retries,
            backoff=self.backoff,
            repeatable=repeatable,
            said=_said,
            params=params,
            data=data,
            headers=(headers or {}) | ({"Content-Type": "application/json"} if data else {}),
            auth=None if auth else _NoAuth(),
            # Request hooks replace the session's: the redirect refusal is named again here.
            hooks={
                "response": [transport.refuse_redirects, self._count]
                if auth
                else [transport.refuse_redirects]
            },
        )
        if response.status_code >= 400:
            raise self._refusal(what, response)
        return response

    def _count(self, response: requests.Response, *args: Any, **kwargs: Any) -> None:
        self._shared["calls"] += 1

    def _refusal(self, what: str, response: requests.Response) -> PsaError:
        message = f"{what}: HTTP {response.status_code}{_said(response)}"
        if response.status_code in (401, 403):
            return AuthenticationError(
                f"{self.label}: ConnectWise refused the API keys or clientId ({message})"
            )
        return PsaError(message)


class _NoAuth(requests.auth.AuthBase):
    """The codebase lookup is anonymous: no keys are sent to it."""

    def __call__(self, request: requests.PreparedRequest) -> requests.PreparedRequest:
        request.headers.pop("Authorization", None)
        request.headers.pop("clientId", None)
        return request


def new_batch_identifier() -> str:
    """Unique, sortable, well under the 50-character limit: `cw-20261129T023000Z-1a2b3c4d5e6f`."""
    return f"cw-{datetime.now(UTC):%Y%m%dT%H%M%SZ}-{uuid.uuid4().hex[:12]}"


def location_id(owner_level: str) -> int:
    """REST filters by location id; the legacy owner level was the location's name."""
    if not owner_level.isdigit():
        raise ValueError(f"owner_level {owner_level!r}: a REST connection takes the location id (a number)")
    return int(owner_level)


def _thru(thru_date: date | None) -> dict[str, str]:
    return {"thruDate": f"{thru_date.isoformat()}T23:59:59Z"} if thru_date else {}


def _condition(field_name: str, value: str, unknown: Exception) -> str:
    """A lookup condition; a value the condition builder refuses cannot name a record."""
    try:
        return str(where(field_name, "=", value))
    except ValueError:
        raise unknown from None


def _money(value: Any, what: str) -> Decimal:
    if isinstance(value, bool) or not isinstance(value, int | Decimal):
        raise DocumentError(f"{what}: expected an amount, got {value!r}")
    return Decimal(value)


def _payment_reply(reply: Any, path: str) -> dict[str, Any]:
    """A written payment as ConnectWise answered it; a reply without its amount is no answer."""
    if (
        not isinstance(reply, dict)
        or isinstance(reply.get("amount"), bool)
        or not isinstance(reply.get("amount"), int | Decimal)
    ):
        raise OutcomeUnknownError(
            f"{path}: the reply holds no payment amount; ConnectWise may have applied it"
        )
    return reply


def _holds(payment: dict[str, Any], body: dict[str, Any]) -> bool:
    """Whether ConnectWise's payment already holds the amount and date of `body`."""
    try:
        held = datetime.fromisoformat(str(payment.get("paymentDate")).replace("Z", "+00:00"))
        wanted = datetime.fromisoformat(str(body["paymentDate"]).replace("Z", "+00:00"))
    except ValueError:
        return False
    amount = payment.get("amount")
    return isinstance(amount, int | Decimal) and Decimal(amount) == body["amount"] and held == wanted


def _decode(response: requests.Response, what: str) -> Any:
    try:
        return jsonmoney.loads(response.content)
    except ValueError:
        raise DocumentError(f"{what}: the reply is not JSON") from None


def _said(response: requests.Response) -> str:
    """ConnectWise's error JSON as text: `: code: message (field: message; ...)`."""
    try:
        error = jsonmoney.loads(response.content)
    except ValueError:
        text = response.text[:200].strip().splitlines()
        return f": {''.join(ch for ch in text[0] if ch.isprintable())}" if text else ""
    if not isinstance(error, dict):
        return ""
    head = ": ".join(str(error[k]) for k in ("code", "error", "message") if error.get(k))
    details = [
        f"{e.get('field') or e.get('code') or ''}: {e.get('message', '')}".strip(": ")
        for e in error.get("errors") or []
        if isinstance(e, dict)
    ]
    return (f": {head}" if head else "") + (f" ({'; '.join(details)})" if details else "")
