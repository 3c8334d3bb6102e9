"""HTTP front of the sandbox: the GL page, SOAP, the REST API, a control API, and state views.

One sandbox serves many ConnectWise companies (sandbox/companies.py): every ConnectWise request is
answered from the company its credentials name (the GL page's CompanyName, SOAP's CompanyId, the
REST Basic login's company, the company of `/login/companyinfo/{company}`), matched without case.
A wrong password for a company, or a company this sandbox does not serve, gets the error that
interface gives for bad credentials (PsaError, SOAP fault, REST 401, companyinfo `null`).

Control API (loopback only, not part of ConnectWise):
* `POST /_sandbox/faults` JSON: `latency_ms`, `statuses` (answer the next requests with these
  HTTP statuses), `retry_after` (seconds, sent with 429/503), `hangs` and `hang_seconds` (the
  next requests are run only after that long: a client that gave up meanwhile sees its write
  land late), `malformed` (the next requests are run and their replies cut short), `cut` (the
  next requests are run and their replies cut on the wire: the Content-Length of the whole reply,
  half of it sent, the connection closed), `methods` (those four faults only for requests of
  these HTTP methods), `redirect_to` (answer the next
  request with a 307 to that URL), `second_payment` (REST: a POST creates another payment on an
  invoice that has one, as ConnectWise might, instead of refusing it). Faults are server-wide:
  they hit every company's requests.
* `POST /_sandbox/budget` JSON `{"calls": N, "window_seconds": S}` (S defaults to 60; N 0 is off,
  the default): ConnectWise's rate limit, at most N calls per credential in any S seconds, above
  it a 429 with `Retry-After` (sandbox/budget.py says what a credential is and what the 429
  holds); 200 with the new setting, a bad value is a 400 naming it. `GET /_sandbox/budget`: the
  setting and, per credential (interface, company, login name: never a password or key), calls
  admitted and throttled, first and last admission (monotonic seconds) and the `peak` admitted in
  any window. Setting it again resets the counters. A request over budget is not run; one within
  it then meets the faults. The codebase lookup `/login/companyinfo` is outside both.
* `POST /_sandbox/companies` JSON `{"company": "acme", "seed": 7, "invoices": 40, "expenses": 10,
  "purchases": 8}` (all but `company` optional: the server's sizes, a seed derived from the
  server's): adds a company, 201 with its parameters and `invoice_prefix`; the same again (its id
  in any case) is 200 and changes nothing; other parameters for it are a 409, as is an id whose
  invoice prefix another company has; a malformed body or value is a 400 naming it.
* `GET /_sandbox/state?company=C`: unposted invoice numbers, posted GL entry count, batches, and
  `throttled`: how many requests the rate budget answered with 429 since it was set (server-wide).
* `GET /_sandbox/invoices?company=C`: every invoice's number, total, paid amount and paid date.
  Both views default to company `sandbox`; a company not served is a 404 naming it.
* `GET /_sandbox/calls`: per company, the ConnectWise calls answered with its data (the login
  accepted) by interface: `{"sandbox": {"gl": 3, "soap": 0, "rest": 12}, "acme": {...}}`.
"""

import json
import socket
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from connectwise import jsonmoney
from connectwise.accounting_interface import wire
from sandbox import soap
from sandbox.accounting import AccountingInterface
from sandbox.budget import (
    DEFAULT_WINDOW_SECONDS,
    Budget,
    Credential,
    gl_credential,
    rest_credential,
    soap_credential,
    too_many_requests,
)
from sandbox.companies import DEFAULT_SIZES, Companies, CompanyConflict, Sizes
from sandbox.company_ids import DEFAULT_COMPANY
from sandbox.rest import API_PREFIX, MEDIA_TYPE, RestApi, company_named


@dataclass
class Faults:
    latency_ms: int = 0
    statuses: list[int] = field(default_factory=list)
    retry_after: int | None = None
    hangs: int = 0
    hang_seconds: float = 0.0
    malformed: int = 0
    cut: int = 0
    methods: list[str] = field(default_factory=list)  # statuses, hangs and malformed only for these
    redirect_to: str = ""  # answer the next request with a 307 to this URL (another host)
    second_payment: bool = False  # REST: accept a POST for an invoice that has a payment already
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def set(self, settings: dict[str, Any]) -> None:
        with self.lock:
            for key, value in settings.items():
                if key == "lock" or not hasattr(self, key):
                    raise ValueError(f"unknown fault {key!r}")
                setattr(self, key, value)

    def take(self, method: str) -> tuple[int | None, float, bool]:
        """Which fault the next request gets: (status, hang seconds, malformed)."""
        with self.lock:
            if self.methods and method not in self.methods:
                return None, 0.0, False
            status = self.statuses.pop(0) if self.statuses else None
            hang = 0.0
            if status is None and self.hangs:
                self.hangs -= 1
                hang = self.hang_seconds
            malformed = False
            if status is None and not hang and self.malformed:
                self.malformed -= 1
                malformed = True
            return status, hang, malformed

    def take_cut(self, method: str) -> bool:
        """Whether the next reply is cut on the wire."""
        with self.lock:
            if not self.cut or (self.methods and method not in self.methods):
                return False
            self.cut -= 1
            return True


class SandboxServer(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 128  # many clients at once (the tests' threads): none refused at connect

    def __init__(
        self,
        seed: int = 1,
        sizes: Sizes = DEFAULT_SIZES,
        host: str = "127.0.0.1",
        port: int = 0,
        companies: Iterable[str] = (),
        budget_calls: int = 0,
        budget_window_seconds: float = DEFAULT_WINDOW_SECONDS,
    ) -> None:
        """A sandbox serving company `sandbox` (the seed and sizes) and `companies` (the same
        sizes, seeds derived from the seed); more can be added through the control API. A rate
        budget of `budget_calls` per credential in `budget_window_seconds` (0 calls, the default,
        is off: the test suite shares sandboxes); the control API changes it."""
        self.budget = Budget(budget_calls, budget_window_seconds)  # before binding, as the companies
        self.faults = Faults()
        self.companies = Companies(seed, sizes, second_payment=lambda: self.faults.second_payment)
        for company in companies:  # before binding: a bad id leaves no socket open
            self.companies.add(company)
        super().__init__((host, port), _Handler)
        self.requests_seen = 0
        self._thread: threading.Thread | None = None

    @property
    def accounting(self) -> AccountingInterface:
        """Company `sandbox`'s Accounting Interface (its state, shared with its REST and SOAP)."""
        return self.companies.default.accounting

    @property
    def rest(self) -> RestApi:
        return self.companies.default.rest

    @property
    def site_address(self) -> str:
        host, port = self.server_address[:2]
        return f"{host!s}:{port}"

    def start(self) -> "SandboxServer":
        self._thread = threading.Thread(target=self.serve_forever, name="connectwise-sandbox", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self.shutdown()
        self.server_close()


def start_sandbox(
    seed: int = 1,
    port: int = 0,
    companies: Iterable[str] = (),
    budget_calls: int = 0,
    budget_window_seconds: float = DEFAULT_WINDOW_SECONDS,
    **sizes: int,
) -> SandboxServer:
    """Start a sandbox in a background thread of this process (for tests and the local run)."""
    return SandboxServer(
        seed,
        Sizes(**sizes),
        port=port,
        companies=companies,
        budget_calls=budget_calls,
        budget_window_seconds=budget_window_seconds,
    ).start()


class _Handler(BaseHTTPRequestHandler):
    server: SandboxServer
    protocol_version = "HTTP/1.1"

    def setup(self) -> None:
        super().setup()
        # Headers and body go out in two writes; without this the body waits ~40 ms for the
        # client's delayed ACK on every kept-alive call (Nagle), which ConnectWise does not do.
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet: the sandbox's callers print what matters."""

    def do_GET(self) -> None:
        path = urlsplit(self.path).path
        if self._is_rest():
            self._rest()
        elif "/apis/" in self.path.lower() and urlsplit(self.path).query.lower() == "wsdl":
            host = self.headers.get("Host") or self.server.site_address
            self._reply(*soap.wsdl_for(path, host))
        elif path == "/_sandbox/budget":
            self._reply(200, json.dumps(self.server.budget.describe()).encode(), "application/json")
        elif path == "/_sandbox/calls":
            calls = {c.spec.company: c.calls() for c in self.server.companies.all()}
            self._reply(200, json.dumps(calls).encode(), "application/json")
        elif path in ("/_sandbox/state", "/_sandbox/invoices"):
            query = dict(parse_qsl(urlsplit(self.path).query))
            name = query.get("company", DEFAULT_COMPANY)
            company = self.server.companies.find(name)
            if company is None:
                self._reply(404, f"no company {name[:40]!r} in this sandbox".encode(), "text/plain")
                return
            if path == "/_sandbox/state":
                view: Any = _state(company.accounting, self.server.budget.throttled)
            else:
                view = _invoices(company.accounting)
            self._reply(200, json.dumps(view).encode(), "application/json")
        else:
            self._reply(404, b"not found", "text/plain")

    def do_PUT(self) -> None:
        if self._is_rest():
            self._rest()
        else:
            self._reply(404, b"not found", "text/plain")

    def do_POST(self) -> None:
        if self._is_rest():
            self._rest()
            return
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length)
        path = urlsplit(self.path).path
        if path == "/_sandbox/faults":
            try:
                self.server.faults.set(json.loads(body))
            except (ValueError, TypeError) as exc:
                self._reply(400, str(exc).encode(), "text/plain")
                return
            self._reply(204, b"", "text/plain")
            return
        if path == "/_sandbox/companies":
            self._add_company(body)
            return
        if path == "/_sandbox/budget":
            self._set_budget(body)
            return
        if "/apis/" in path.lower():
            self.server.requests_seen += 1
            self._with_faults(self._soap, body, soap_credential(body))
            return
        if path.lower().rstrip("/").endswith("/" + wire.PAGE_PATH.lower()):
            self.server.requests_seen += 1
            self._gl_page(body)
            return
        self._reply(404, b"not found", "text/plain")

    def _is_rest(self) -> bool:
        path = urlsplit(self.path).path.lower()
        return path.startswith(API_PREFIX.lower() + "/") or path.startswith("/login/companyinfo/")

    def _rest(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length)
        host = self.headers.get("Host", self.server.site_address)

        def answer(request: bytes) -> tuple[int, bytes, dict[str, str]]:
            headers = {name.lower(): value for name, value in self.headers.items()}
            # A request naming no company here goes to the default company's API, which refuses
            # it exactly as it refuses a wrong key (and answers `null` for its companyinfo).
            company = self.server.companies.find(company_named(self.path, headers))
            api = (company or self.server.companies.default).rest
            reply = api.handle(self.command, self.path, headers, request, host)
            text = b"" if reply.status == 204 else jsonmoney.dumps(reply.body)
            return reply.status, text, reply.headers

        if urlsplit(self.path).path.lower().startswith("/login/"):
            status, text, _ = answer(body)  # the codebase lookup is not an API call: no faults
            self._reply(status, text, "application/json")
            return
        self.server.requests_seen += 1
        credential = rest_credential({name.lower(): value for name, value in self.headers.items()})
        self._with_faults(answer, body, credential, MEDIA_TYPE, rest=True)

    def _with_faults(
        self,
        answer: Callable[[bytes], tuple[int, bytes, dict[str, str]]],
        body: bytes,
        credential: Credential,
        content_type: str = "text/xml; charset=utf-8",
        rest: bool = False,
    ) -> None:
        """Answer a ConnectWise call (GL page, SOAP and REST) within the credential's rate budget,
        with the switched-on faults."""
        faults = self.server.faults
        if faults.latency_ms:
            time.sleep(faults.latency_ms / 1000)
        if faults.redirect_to:
            target, faults.redirect_to = faults.redirect_to, ""
            self._reply(307, b"", "text/plain", {"Location": target})
            return
        wait = self.server.budget.admit(credential)
        if wait is not None:  # not run: over the credential's budget
            self._reply(429, *too_many_requests(wait, rest), {"Retry-After": str(wait)})
            return
        status, hang, malformed = faults.take(self.command)
        if status is not None:
            headers = {"Retry-After": str(faults.retry_after)} if faults.retry_after is not None else {}
            text, kind = f"sandbox fault: HTTP {status}".encode(), "text/plain"
            if rest:  # the documented 429 body has `error`, not `code`
                error = {"error": "ConnectWiseAPI"} if status == 429 else {"code": "ServerError"}
                text, kind = json.dumps(error | {"message": text.decode()}).encode(), "application/json"
            self._reply(status, text, kind, headers)
            return
        if hang:
            time.sleep(hang)
        code, reply, headers = answer(body)
        content_type = headers.pop("Content-Type", content_type)  # a SOAP 1.2 reply is application/soap+xml
        if malformed:
            reply = reply[: max(10, len(reply) // 2)]
        cut = faults.take_cut(self.command)
        self._reply(code, reply, "application/json" if rest and code >= 400 else content_type, headers, cut)

    def _gl_page(self, body: bytes) -> None:
        form = dict(parse_qsl(body.decode("utf-8", "replace"), keep_blank_values=True))
        self._with_faults(self._accounting, body, gl_credential(form))

    def _accounting(self, body: bytes) -> tuple[int, bytes, dict[str, str]]:
        form = dict(parse_qsl(body.decode("utf-8", "replace"), keep_blank_values=True))
        # As for REST: a login naming no company here is refused by the default company's page.
        company = self.server.companies.find(form.get(wire.COMPANY, ""))
        return (*(company or self.server.companies.default).accounting.handle(form), {})

    def _soap(self, body: bytes) -> tuple[int, bytes, dict[str, str]]:
        path, content_type = urlsplit(self.path).path, self.headers.get("Content-Type", "")
        status, reply, media_type = soap.handle(
            self.server.companies.soap_site, path, content_type, self.headers.get("SOAPAction"), body
        )
        return status, reply, {"Content-Type": media_type}

    def _set_budget(self, body: bytes) -> None:
        try:
            self.server.budget.set_request(json.loads(body))
        except ValueError as exc:  # also malformed JSON
            self._reply(400, str(exc).encode(), "text/plain")
            return
        self._reply(200, json.dumps(self.server.budget.describe()).encode(), "application/json")

    def _add_company(self, body: bytes) -> None:
        try:
            company, added = self.server.companies.add_request(json.loads(body))
        except ValueError as exc:  # also malformed JSON
            self._reply(400, str(exc).encode(), "text/plain")
            return
        except CompanyConflict as exc:
            self._reply(409, str(exc).encode(), "text/plain")
            return
        self._reply(201 if added else 200, json.dumps(company.spec.describe()).encode(), "application/json")

    def _reply(
        self,
        status: int,
        body: bytes,
        content_type: str,
        headers: dict[str, str] | None = None,
        cut: bool = False,
    ) -> None:
        try:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            for name, value in (headers or {}).items():
                self.send_header(name, value)
            self.end_headers()
            if cut:  # the length announced, half of it sent, the connection dropped
                self.wfile.write(body[: len(body) // 2])
                self.close_connection = True
                return
            self.wfile.write(body)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the client gave up (a timeout test); nothing to tell it


def _state(accounting: AccountingInterface, throttled: int) -> dict[str, Any]:
    with accounting.lock:
        state: dict[str, Any] = {
            "posted_entries": len(accounting.posted),
            "batches": sorted(set(accounting.posted.values())),
            "throttled": throttled,  # by the rate budget since it was set, server-wide
        }
    return state | {"unposted_invoices": accounting.unposted_invoice_numbers()}


def _invoices(accounting: AccountingInterface) -> list[dict[str, Any]]:
    with accounting.lock:
        return [
            {
                "number": i.number,
                "total": str(i.total),
                "paid_amount": str(i.paid_amount + sum(a for _, a, _ in i.extra_payments)),
                "payments": (i.payment_id is not None) + len(i.extra_payments),
                "date_paid": i.paid_date.isoformat() if i.paid_date else None,
            }
            for i in accounting.site.invoices
        ]
