"""The sandbox's REST API (v3.0): the finance/accounting operations and invoice payments.

It shares its state with the Accounting Interface side (`AccountingInterface`): a batch created
here takes its GL entries out of the legacy unposted lists and a legacy update takes them out of
these, and both sides see the same invoice payment.

ConnectWise's rules as the sandbox keeps them (see ../shared/reference/rest_api.md):
* Basic auth `company+publicKey:privateKey` (the company id matched without case) and a
  registered `clientId` header, else 401 with the error JSON; `GET /login/companyinfo/{company}`
  answers the codebase, or `null`. One RestApi serves one company; the server picks it by
  `company_named`.
* Lists answer `conditions` (the REST dialect of sandbox.conditions), `orderBy`, `fields`,
  navigable or forward-only paging and `/count` as sandbox.rest_paging describes; the record
  endpoints are in sandbox.rest_records, the reports in sandbox.rest_reports.
* `includedInvoiceIds` take `UnpostedInvoice.billingLogId` (the invoice id), product ids are
  `unpostedProductId` strings. Export marks nothing; creating a batch posts its GL entries.
* An invoice holds one payment: a second POST is refused (unless the `second_payment` fault makes
  it create another, as ConnectWise might), an amount above the invoice total is refused (the
  client caps it), PUT replaces the amount.
Errors are ConnectWise's JSON: `{code, message, errors[]}`, `errors` always a list
(rest_documents.error). Nothing a caller sends drops the connection: a sandbox bug is a 500.
"""

import base64
import re
import threading
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime
from decimal import Decimal, InvalidOperation
from typing import Any
from urllib.parse import parse_qsl

from connectwise import jsonmoney
from sandbox import rest_documents, rest_records, rest_reports
from sandbox.accounting import AccountingInterface
from sandbox.company_ids import same_company
from sandbox.data import Expense, Invoice, PurchaseReceipt
from sandbox.rest_paging import MAX_PAGE_SIZE, ApiError, Reply, clean, count, page, single

__all__ = [
    "API_PREFIX",
    "MAX_PAGE_SIZE",
    "MEDIA_TYPE",
    "ApiError",
    "Reply",
    "RestApi",
    "RestCredentials",
    "basic_login",
    "company_named",
]

API_PREFIX = "/v4_6_release/apis/3.0"
MEDIA_TYPE = "application/vnd.connectwise.com+json; version=2025.1"
ROW_ID_OFFSET = 500_000  # UnpostedInvoice.id differs from billingLogId, as on a real site


@dataclass(frozen=True)
class RestCredentials:
    company: str = "sandbox"
    public_key: str = "sandbox-public"
    private_key: str = "sandbox-private"  # the loopback sandbox's well-known key
    client_id: str = "8c4b2f4e-6a1d-4e3b-9f57-2d0c1b7a9e10"


@dataclass
class Batch:
    id: int
    identifier: str
    invoices: bool = False
    expenses: bool = False
    products: bool = False


class RestApi:
    def __init__(self, accounting: AccountingInterface, credentials: RestCredentials = RestCredentials()):
        self.accounting = accounting
        self.credentials = credentials
        self.batches: dict[str, Batch] = {}  # by identifier; legacy batches get a number when seen
        self.calls: dict[str, int] = {}  # "GET /finance/..." -> count, for tests and the benchmark
        self._invoice_rows: list[dict[str, Any]] = []
        self._entries: dict[int, tuple[int, ...]] = {}  # a record's GL entry ids (they never change)
        self.second_payment: Callable[[], bool] = lambda: False  # the server's fault switch
        self.records = rest_records.Records(accounting.site)

    @property
    def lock(self) -> threading.Lock:
        return self.accounting.lock

    def handle(self, method: str, target: str, headers: Mapping[str, str], body: bytes, host: str) -> Reply:
        """One REST call; `headers` are keyed in lower case."""
        path, _, query_text = target.partition("?")
        query = dict(parse_qsl(query_text, keep_blank_values=True))
        if path.lower().startswith("/login/companyinfo/"):
            known = same_company(company_named(target, headers), self.credentials.company)
            info = {
                "CompanyName": "Sandbox MSP",
                "Codebase": "v4_6_release/",
                "VersionCode": "v2025.1",
                "VersionNumber": "v4.6.2025",
                "CompanyID": self.credentials.company,
                "IsCloud": False,
            }
            return Reply(200, info if known else None)
        if not path.lower().startswith(API_PREFIX):
            return Reply(404, rest_documents.error("NotFound", f"no API at {path}"))
        route = path[len(API_PREFIX) :].rstrip("/").lower()
        try:
            self._authenticate(headers)
            payload = jsonmoney.loads(body) if body else None
            with self.lock:
                key = method + " " + re.sub(r"/\d+", "/{id}", route)
                self.calls[key] = self.calls.get(key, 0) + 1
                return self._route(method, route, query, headers, payload, f"http://{host}{path}")
        except ApiError as exc:
            return exc.reply
        except ValueError:  # JSON or its UTF-8
            return Reply(400, rest_documents.error("InvalidObject", "The request body is not valid JSON"))
        except Exception as exc:  # a sandbox bug: answer as a server would, never drop the connection
            return Reply(500, rest_documents.error("ServerError", f"{type(exc).__name__} in the sandbox"))

    def _authenticate(self, headers: Mapping[str, str]) -> None:
        creds = self.credentials
        company, _, keys = basic_login(headers).partition("+")
        if not same_company(company, creds.company) or keys != f"{creds.public_key}:{creds.private_key}":
            raise ApiError(401, "Unauthorized", "UserNotAuthenticated")
        if headers.get("clientid") != creds.client_id:
            raise ApiError(401, "Unauthorized", "A registered clientId header is required")

    def _route(
        self,
        method: str,
        route: str,
        query: dict[str, str],
        headers: Mapping[str, str],
        payload: Any,
        url: str,
    ) -> Reply:
        lists: dict[str, Callable[[], Iterable[dict[str, Any]]]] = {
            "/finance/accounting/unpostedinvoices": self._unposted_invoices,
            "/finance/accounting/unpostedexpenses": self._unposted_expenses,
            "/finance/accounting/unpostedprocurement": self._unposted_procurement,
            "/finance/accounting/batches": self._batch_rows,
        }
        if method == "GET":
            if route in lists:
                return page(lists[route](), query, headers, url)
            if route.endswith("/count") and route.removesuffix("/count") in lists:
                return count(lists[route.removesuffix("/count")](), query)
            reply = rest_records.route(self.records, route, query, headers, url)
            reply = reply or rest_reports.route(self.accounting.site, route, query, headers, url)
            if reply is not None:
                return reply
        if method == "POST" and route == "/finance/accounting/export":
            self.accounting.exports += 1
            return Reply(201, self._export(_body(payload), batch=None))
        if method == "POST" and route == "/finance/accounting/batches":
            return Reply(201, self._create_batch(_body(payload)))
        if (match := re.fullmatch(r"/finance/accounting/batches/(\d+)", route)) and method == "GET":
            return single(self._batch_row(self._batch(int(match[1]))), query)
        if (match := re.fullmatch(r"/finance/accounting/batches/(\d+)/export", route)) and method == "POST":
            return Reply(201, self._export(_body(payload), batch=self._batch(int(match[1]))))
        if match := re.fullmatch(r"/finance/invoices/(\d+)/payments", route):
            invoice = self._invoice(int(match[1]))
            if method == "GET":
                return page(self._payments(invoice), query, headers, url)
            if method == "POST":
                return Reply(201, self._pay(invoice, _body(payload), payment_id=None))
        if match := re.fullmatch(r"/finance/invoices/(\d+)/payments/(\d+)", route):
            invoice = self._invoice(int(match[1]))
            if method in ("PUT", "GET"):
                if invoice.payment_id != int(match[2]):
                    raise ApiError(404, "NotFound", f"Payment {match[2]} not found on invoice {invoice.id}")
                if method == "GET":
                    return Reply(200, self._payments(invoice)[0])
                return Reply(200, self._pay(invoice, _body(payload), payment_id=invoice.payment_id))
        raise ApiError(404, "NotFound", f"{method} {route} is not served by this sandbox")

    # --- unposted lists and exports -------------------------------------------------------

    def _unposted(self, record: Invoice | Expense | PurchaseReceipt) -> bool:
        entries = self._entries.get(id(record))
        if entries is None:
            entries = self._entries[id(record)] = tuple(record.entry_ids())
        return any(i not in self.accounting.posted for i in entries)

    def _unposted_invoices(self) -> Iterator[dict[str, Any]]:
        if not self._invoice_rows:  # rendered once: a page of a 10,000-invoice site stays cheap
            self._invoice_rows = [
                rest_documents.unposted_invoice(ROW_ID_OFFSET + n, i)
                for n, i in enumerate(self.accounting.site.invoices)
            ]
        invoices = self.accounting.site.invoices
        return (row for row, i in zip(self._invoice_rows, invoices, strict=True) if self._unposted(i))

    def _unposted_expenses(self) -> list[dict[str, Any]]:
        return [
            rest_documents.unposted_expense(e) for e in self.accounting.site.expenses if self._unposted(e)
        ]

    def _unposted_procurement(self) -> list[dict[str, Any]]:
        return [
            rest_documents.unposted_procurement(p)
            for p in self.accounting.site.purchases
            if self._unposted(p)
        ]

    def _export(self, request: dict[str, Any], batch: Batch | None) -> dict[str, Any]:
        flags = {
            kind: request.get(name) is True
            for kind, name in (
                ("invoices", "exportInvoicesFlag"),
                ("expenses", "exportExpensesFlag"),
                ("products", "exportProductsFlag"),
            )
        }
        if not any(flags.values()):
            raise ApiError(400, "InvalidObject", "Choose invoices, expenses or products to export")
        thru = _thru_date(request.get("thruDate"))
        location = request.get("locationId") or 0
        site, posted = self.accounting.site, self.accounting.posted

        def chosen(record: Invoice | Expense | PurchaseReceipt, key: Any, kind: str) -> bool:
            included, excluded = (
                _id_list(request, f"included{kind}Ids"),
                _id_list(request, f"excluded{kind}Ids"),
            )
            if batch is None:
                belongs = self._unposted(record)
            else:
                belongs = any(posted.get(i) == batch.identifier for i in record.entry_ids())
            return (
                belongs
                and record.date <= thru
                and (not location or rest_documents.LOCATION_IDS[record.location] == location)
                and (not included or key in included)
                and key not in excluded
            )

        document: dict[str, Any] = clean(
            rest_documents.glexport(
                [i for i in site.invoices if flags["invoices"] and chosen(i, i.id, "Invoice")],
                [e for e in site.expenses if flags["expenses"] and chosen(e, e.id, "Expense")],
                [p for p in site.purchases if flags["products"] and chosen(p, str(p.id), "Product")],
            )
        )
        return document

    # --- batches ---------------------------------------------------------------------------

    def _create_batch(self, request: dict[str, Any]) -> dict[str, Any]:
        identifier = request.get("batchIdentifier")
        ids = request.get("processedRecordIds")
        if not isinstance(identifier, str) or not identifier or len(identifier) > 50:
            raise _invalid("batchIdentifier", "batchIdentifier is required, at most 50 characters")
        if not isinstance(ids, list) or not ids or not all(isinstance(i, int) for i in ids):
            raise _invalid("processedRecordIds", "processedRecordIds must list the GL Entry RecIDs")
        flags = [
            request.get(f) is True for f in ("exportInvoicesFlag", "exportExpensesFlag", "exportProductsFlag")
        ]
        if not any(flags):
            raise _invalid("exportInvoicesFlag", "The batch must export invoices, expenses or products")
        self._sync_legacy_batches()
        if identifier in self.batches:
            raise ApiError(
                400,
                "InvalidObject",
                "AccountingBatch object is invalid",
                [
                    {
                        "code": "ObjectExists",
                        "message": f"Batch {identifier} already exists",
                        "field": "batchIdentifier",
                    }
                ],
            )
        unknown = sorted(set(ids) - self.accounting.all_entry_ids)
        if unknown:
            raise _invalid("processedRecordIds", f"Cannot find GL Entry RecID {unknown[0]}")
        elsewhere = sorted(i for i in ids if i in self.accounting.posted)
        if elsewhere:
            other = self.accounting.posted[elsewhere[0]]
            raise _invalid("processedRecordIds", f"GL Entry RecID {elsewhere[0]} is already in batch {other}")
        batch = self._number(identifier)
        batch.invoices, batch.expenses, batch.products = flags
        for entry_id in ids:
            self.accounting.posted[entry_id] = identifier
        return self._export(
            {"exportInvoicesFlag": True, "exportExpensesFlag": True, "exportProductsFlag": True}, batch
        )

    def _sync_legacy_batches(self) -> None:
        """Batches the Accounting Interface side made get a number the first time REST sees them."""
        for identifier in sorted(set(self.accounting.posted.values()) - set(self.batches)):
            self._number(identifier)

    def _number(self, identifier: str) -> Batch:
        batch = self.batches.get(identifier)
        if batch is None:
            batch = self.batches[identifier] = Batch(len(self.batches) + 1, identifier)
        return batch

    def _batch_rows(self) -> list[dict[str, Any]]:
        self._sync_legacy_batches()
        return [self._batch_row(b) for b in self.batches.values()]

    def _batch_row(self, batch: Batch) -> dict[str, Any]:
        return {
            "id": batch.id,
            "batchIdentifier": batch.identifier,
            "exportInvoicesFlag": batch.invoices,
            "exportExpensesFlag": batch.expenses,
            "exportProductsFlag": batch.products,
            "closedFlag": True,
        }

    def _batch(self, batch_id: int) -> Batch:
        self._sync_legacy_batches()
        for batch in self.batches.values():
            if batch.id == batch_id:
                return batch
        raise ApiError(404, "NotFound", f"AccountingBatch {batch_id} not found")

    # --- invoices and payments -------------------------------------------------------------

    def _invoice(self, invoice_id: int) -> Invoice:
        for invoice in self.accounting.site.invoices:
            if invoice.id == invoice_id:
                return invoice
        raise ApiError(404, "NotFound", f"Invoice {invoice_id} not found")

    def _payments(self, invoice: Invoice) -> list[dict[str, Any]]:
        if invoice.payment_id is None:
            return []
        first = rest_documents.payment(invoice.payment_id, invoice, invoice.payment_at or datetime.now(UTC))
        extra = [rest_documents.payment(i, invoice, at, amount) for i, amount, at in invoice.extra_payments]
        return [clean(p) for p in [first, *extra]]

    def _pay(self, invoice: Invoice, request: dict[str, Any], payment_id: int | None) -> dict[str, Any]:
        if payment_id is None and invoice.payment_id is not None:
            if self.second_payment():
                return self._second_payment(invoice, request)
            raise _invalid(
                "invoice", f"Invoice {invoice.number} already has payment {invoice.payment_id}; update it"
            )
        amount, paid_at = request.get("amount"), request.get("paymentDate")
        if not isinstance(amount, int | Decimal) or isinstance(amount, bool) or amount < 0:
            raise _invalid("amount", "amount must be a non-negative number")
        if amount > invoice.total:
            raise _invalid("amount", f"Payment amount {amount} exceeds the invoice total {invoice.total}")
        try:
            moment = datetime.fromisoformat(str(paid_at).replace("Z", "+00:00"))
        except ValueError:
            raise _invalid("paymentDate", "paymentDate must be a date-time") from None
        try:
            invoice.paid_amount = Decimal(amount).quantize(Decimal("0.01"))
        except InvalidOperation:
            raise _invalid("amount", "amount must be a number") from None
        invoice.paid_date = moment if invoice.paid_amount == invoice.total else None
        invoice.payment_at = moment
        invoice.updated_at = datetime.now(UTC).replace(microsecond=0)  # _info.lastUpdated's precision
        if invoice.payment_id is None:
            invoice.payment_id = self.accounting.new_payment_id()
        self.accounting.payment_updates += 1
        return self._payments(invoice)[0]

    def _second_payment(self, invoice: Invoice, request: dict[str, Any]) -> dict[str, Any]:
        amount = Decimal(request["amount"]).quantize(Decimal("0.01"))
        moment = datetime.fromisoformat(str(request["paymentDate"]).replace("Z", "+00:00"))
        invoice.extra_payments.append((self.accounting.new_payment_id(), amount, moment))
        self.accounting.payment_updates += 1
        return self._payments(invoice)[-1]


def company_named(target: str, headers: Mapping[str, str]) -> str:
    """The company a request names: the one `/login/companyinfo/{company}` asks about, else the
    one of its Basic login ("" for none)."""
    path = target.partition("?")[0]
    if path.lower().startswith("/login/companyinfo/"):
        return path.rsplit("/", 1)[1]
    return basic_login(headers).partition("+")[0]


def basic_login(headers: Mapping[str, str]) -> str:
    """`company+public:private` from the Authorization header, "" if it holds no Basic login."""
    given = headers.get("authorization", "")
    if not given.startswith("Basic "):
        return ""
    try:
        return base64.b64decode(given.removeprefix("Basic "), validate=True).decode()
    except ValueError:
        return ""


def _body(payload: Any) -> dict[str, Any]:
    if not isinstance(payload, dict):
        raise ApiError(400, "InvalidObject", "The request body must be a JSON object")
    return payload


def _invalid(field_name: str, message: str) -> ApiError:
    return ApiError(
        400, "InvalidObject", message, [{"code": "InvalidField", "message": message, "field": field_name}]
    )


def _id_list(request: dict[str, Any], name: str) -> set[Any]:
    return set(request.get(name) or [])


def _thru_date(value: Any) -> date:
    if not value:
        return date.today()
    try:
        return datetime.fromisoformat(str(value).replace("Z", "+00:00")).date()
    except ValueError:
        raise _invalid("thruDate", f"Invalid thruDate {value!r}") from None
