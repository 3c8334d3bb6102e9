"""The REST API (v3.0) as HTTP: authentication, the codebase, paging and typed refusals.

Basic auth `company+publicKey:privateKey`, the `clientId` header, a versioned Accept header,
the codebase looked up once per client. Each call goes through `connectwise.transport` (time
budget, retries of what is safe to repeat, `OutcomeUnknownError` for a write without a reply);
a 4xx becomes a typed error. The operations are in `connectwise.rest.gl` and
`connectwise.rest.payments`; `connectwise.rest.client.RestClient` offers them as a `GLBackend`.
"""

import copy
import threading
from collections.abc import Iterator
from contextlib import closing, contextmanager
from typing import Any, Literal, Self

import requests
from pydantic import Field, SecretStr

from connectwise import jsonmoney, transport
from connectwise.conditions import REST, render, where
from connectwise.errors import AuthenticationError, DocumentError, OutcomeUnknownError, PsaError
from connectwise.models import IntegratorSecret, SiteLogin
from connectwise.transport import Deadline

API_VERSION = "2025.1"
ACCEPT = f"application/vnd.connectwise.com+json; version={API_VERSION}"
MAX_PAGE_SIZE = 1000


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


class RestApi:
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
        pacer: transport.Pacer = transport.UNPACED,
    ) -> None:
        if not 1 <= page_size <= MAX_PAGE_SIZE:
            raise ValueError(f"page_size must be 1..{MAX_PAGE_SIZE}, got {page_size}")
        self.connection = connection
        self.label = f"connection {name!r}" if name else f"ConnectWise site {connection.site}"
        self.timeout, self.retries, self.backoff, self.page_size = timeout, retries, backoff, page_size
        self.pacer = pacer
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

    def within(self, deadline: Deadline) -> Self:
        """This client (same session, same codebase) with every call and wait fitting `deadline`."""
        bound = copy.copy(self)
        bound.deadline = deadline
        return bound

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

    def get(self, path: str, **params: Any) -> Any:
        """One GET (a record, a count, a page of a navigable list), its JSON decoded."""
        query = {k: v for k, v in params.items() if v is not None}
        return _decode(self._send("GET", self._url(path), params=query), path)

    def json(self, method: str, path: str, body: Any, repeatable: bool = True) -> Any:
        response = self._send(method, self._url(path), body=body, repeatable=repeatable)
        try:
            return _decode(response, path)
        except DocumentError as exc:
            if repeatable:
                raise
            raise OutcomeUnknownError(
                f"{method} {path}: {exc.message}; ConnectWise may have applied it"
            ) from None

    def json_bytes(self, method: str, path: str, body: Any, repeatable: bool = True) -> bytes:
        return self._send(method, self._url(path), body=body, repeatable=repeatable).content

    @contextmanager
    def stream(self, method: str, path: str, body: Any) -> Iterator[Iterator[bytes]]:
        """A repeatable call's reply as it arrives, chunk by chunk (a refusal is raised first)."""
        with closing(self._send(method, self._url(path), body=body, stream=True)) as response:
            yield transport.body(response, f"{method} {path}", self.deadline)

    def _url(self, path: str) -> str:
        return f"{self.connection.scheme}://{self.connection.site}/{self.codebase()}apis/3.0{path}"

    def codebase(self) -> str:
        """`v4_6_release/` or a cloud release: looked up once (no login needed), then kept."""
        with self._shared["lock"]:
            if self._shared["codebase"] is None:
                self._shared["codebase"] = str(self.company_info()["Codebase"]).strip("/") + "/"
            return str(self._shared["codebase"])

    def company_info(self) -> dict[str, Any]:
        """The site's answer for this company (codebase, version; no login needed)."""
        url = f"{self.connection.scheme}://{self.connection.site}/login/companyinfo/{self.connection.company}"
        info = _decode(self._send("GET", url, auth=False), "/login/companyinfo")
        if not isinstance(info, dict) or not info.get("Codebase"):
            raise AuthenticationError(
                f"{self.label}: ConnectWise site {self.connection.site} knows no company with this "
                "connection's company id"
            )
        return info

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
        stream: bool = False,
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
            pacer=self.pacer if auth else transport.UNPACED,  # the codebase lookup is not an API call
            params=params,
            data=data,
            headers=(headers or {}) | ({"Content-Type": "application/json"} if data else {}),
            auth=None if auth else _NoAuth(),
            stream=stream,
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
        if response.status_code == 401:
            return AuthenticationError(
                f"{self.label}: ConnectWise refused the API keys or clientId ({message})"
            )
        if response.status_code == 403:
            return AuthenticationError(
                f"{self.label}: the API member's security role may not do this ({message}); "
                "see docs/backends.md, which task needs which permission"
            )
        return PsaError(message)


class _NoAuth(requests.auth.AuthBase):
    """The codebase lookup is anonymous: no keys are sent to it."""

    def __call__(self, request: requests.PreparedRequest) -> requests.PreparedRequest:
        request.headers.pop("Authorization", None)
        request.headers.pop("clientId", None)
        return request


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


def lookup(field_name: str, value: str, unknown: Exception) -> str:
    """The condition finding one record by a field; a value the condition builder refuses cannot name a record."""
    try:
        return render(where(field_name, "=", value), REST)
    except ValueError:
        raise unknown from None
