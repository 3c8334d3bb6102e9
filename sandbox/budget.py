"""A ConnectWise-like rate budget per credential: a sliding window, and 429 with `Retry-After`.

ConnectWise says (../shared/reference/rest_api.md section 2, "Rate limiting") that an integration
sending more than about 1,000 requests a minute should expect HTTP 429 with `Retry-After` in
seconds and, on REST, the body
`{"error":"ConnectWiseAPI","message":"Too many requests. Please try again in 30 seconds."}`. It
documents nothing for the GL page or SOAP: there the sandbox answers a plain 429 with
`Retry-After` (text/plain, the same sentence).

* A budget of `calls` per `window_seconds`: a request is admitted (run) while its credential has
  fewer than `calls` admitted requests in the last `window_seconds`; otherwise it is not run and
  gets 429 with `Retry-After`: the whole seconds until the oldest admitted call leaves the
  window, at least 1, so a request sent again after it is admitted (unless others took the
  freed room meanwhile). `calls` 0 is off: nothing is counted. Off by default.
* A credential is one login as a request presents it, right password or not (ConnectWise counts
  at its door): REST the Basic user `company+publicKey`, the GL page its company and `MemberId`,
  SOAP its `CompanyId` and `IntegratorLoginId`; the company without case, as everywhere in the
  sandbox, and the interface too (each interface has its own logins). REST's clientId is left
  out: it names the integration (this connector has one for every customer's site), not a login,
  so it would add nothing within a site and would wrongly join different sites' budgets.
* A throttled request does not count in the window: the window holds the calls ConnectWise ran,
  so Retry-After is exact and `peak` measures only admitted calls. (Whether ConnectWise counts
  its refusals is not documented; not counting them is the simpler rule.)
* Per credential the counters are: calls admitted and throttled, the first and last admission
  time (the sandbox process's monotonic clock, in seconds: only differences mean anything) and
  `peak`, the most calls admitted in any window of `window_seconds` (each window ending at an
  admission is checked, which covers every window). A benchmark proves with `peak <= calls` that
  the budget was never exceeded. Setting the budget again resets the counters.
Only the admission times inside the window are kept (a deque per credential); one lock per budget.
"""

import json
import math
import threading
import time
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from connectwise.accounting_interface import wire
from connectwise.errors import DocumentError
from connectwise.safexml import parse_xml
from sandbox.company_ids import company_key
from sandbox.rest import basic_login
from sandbox.soap_envelope import CW

DEFAULT_WINDOW_SECONDS = 60.0  # ConnectWise speaks of requests a minute
MAX_WINDOW_SECONDS = 3600.0
MAX_CALLS = 1_000_000


@dataclass(frozen=True)
class Credential:
    interface: str  # "gl", "soap" or "rest", as `GET /_sandbox/calls` names them
    company: str  # lower case for a company id; other text as given
    login: str  # the GL MemberId, the SOAP IntegratorLoginId, the REST public key: never a secret


@dataclass
class Usage:
    """One credential's calls since the budget was set."""

    recent: deque[float] = field(default_factory=deque)  # admission times inside the window
    admitted: int = 0
    throttled: int = 0
    first_admitted: float | None = None
    last_admitted: float | None = None
    peak: int = 0


class Budget:
    def __init__(
        self,
        calls: int = 0,
        window_seconds: float = DEFAULT_WINDOW_SECONDS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._clock = clock
        self._lock = threading.Lock()
        self.calls, self.window_seconds = 0, DEFAULT_WINDOW_SECONDS
        self._usage: dict[Credential, Usage] = {}
        self.set(calls, window_seconds)

    def set(self, calls: object, window_seconds: object = DEFAULT_WINDOW_SECONDS) -> None:
        """A new budget (a ValueError naming a bad value); the counters start again."""
        problems = _problems(calls, window_seconds)
        if problems:
            raise ValueError("; ".join(problems))
        assert isinstance(calls, int) and isinstance(window_seconds, int | float)  # for mypy
        with self._lock:
            self.calls, self.window_seconds = calls, float(window_seconds)
            self._usage = {}

    def set_request(self, payload: Any) -> None:
        """`POST /_sandbox/budget` {"calls": N, "window_seconds": S (default 60)}."""
        if not isinstance(payload, dict) or "calls" not in payload:
            raise ValueError('the body must be a JSON object {"calls": N, "window_seconds": S}')
        unknown = sorted(set(payload) - {"calls", "window_seconds"})
        if unknown:
            raise ValueError(f"unknown budget setting {unknown[0]!r}")
        self.set(payload["calls"], payload.get("window_seconds", DEFAULT_WINDOW_SECONDS))

    def admit(self, credential: Credential) -> int | None:
        """None if the call may run (it is counted), else the Retry-After seconds of its 429."""
        with self._lock:
            if not self.calls:
                return None
            now = self._clock()
            usage = self._usage.setdefault(credential, Usage())
            recent = usage.recent
            while recent and recent[0] <= now - self.window_seconds:
                recent.popleft()
            if len(recent) >= self.calls:
                usage.throttled += 1
                return max(1, math.ceil(recent[0] + self.window_seconds - now))
            recent.append(now)
            usage.admitted += 1
            usage.first_admitted = now if usage.first_admitted is None else usage.first_admitted
            usage.last_admitted = now
            usage.peak = max(usage.peak, len(recent))
            return None

    @property
    def throttled(self) -> int:
        """Requests answered 429 since the budget was set, all credentials."""
        with self._lock:
            return sum(usage.throttled for usage in self._usage.values())

    def describe(self) -> dict[str, Any]:
        """`GET /_sandbox/budget`: the setting and each credential's counters."""
        with self._lock:
            usage = sorted(self._usage.items(), key=lambda item: (item[0].company, item[0].interface))
            return {
                "calls": self.calls,
                "window_seconds": self.window_seconds,
                "clock": "monotonic seconds of the sandbox process",
                "throttled": sum(u.throttled for _, u in usage),
                "credentials": [
                    {
                        "interface": who.interface,
                        "company": who.company,
                        "login": who.login,
                        "admitted": u.admitted,
                        "throttled": u.throttled,
                        "first_admitted": u.first_admitted,
                        "last_admitted": u.last_admitted,
                        "peak": u.peak,
                    }
                    for who, u in usage
                ],
            }


def too_many_requests(seconds: int, rest: bool) -> tuple[bytes, str]:
    """The 429's body and content type: ConnectWise's documented JSON on REST, the sentence elsewhere."""
    message = f"Too many requests. Please try again in {seconds} seconds."
    if rest:
        body = {"error": "ConnectWiseAPI", "message": message}
        return json.dumps(body, separators=(",", ":")).encode(), "application/json"
    return message.encode(), "text/plain; charset=utf-8"


def rest_credential(headers: Mapping[str, str]) -> Credential:
    """The Basic user `company+publicKey` (`headers` keyed in lower case)."""
    company, _, keys = basic_login(headers).partition("+")
    return Credential("rest", _company(company), keys.partition(":")[0])


def gl_credential(form: Mapping[str, str]) -> Credential:
    return Credential("gl", _company(form.get(wire.COMPANY, "")), form.get(wire.USERNAME, ""))


def soap_credential(body: bytes) -> Credential:
    """The envelope's `credentials`; empty for a request that has none or cannot be read (it is
    then refused with a fault, but still counted as a call)."""
    try:
        envelope = parse_xml(body, "SOAP request")
    except DocumentError:  # the handler answers it with a fault
        envelope = None
    # The Body's, as the handler authenticates: credentials in a Header are not the login used.
    parts = list(envelope) if envelope is not None else []
    bodies = [part for part in parts if part.tag.rsplit("}", 1)[-1] == "Body"]
    credentials = next((c for part in bodies for c in part.iter(f"{{{CW}}}credentials")), None)
    children = [] if credentials is None else list(credentials)
    given = {child.tag.removeprefix(f"{{{CW}}}"): child.text or "" for child in children}
    return Credential("soap", _company(given.get("CompanyId", "")), given.get("IntegratorLoginId", ""))


def _company(text: str) -> str:
    return company_key(text) or text


def _problems(calls: object, window_seconds: object) -> list[str]:
    problems = []
    if not isinstance(calls, int) or isinstance(calls, bool) or not 0 <= calls <= MAX_CALLS:
        problems.append(f"calls {calls!r} is not a whole number from 0 (off) to {MAX_CALLS}")
    if (
        not isinstance(window_seconds, int | float)
        or isinstance(window_seconds, bool)
        or not 0 < window_seconds <= MAX_WINDOW_SECONDS
    ):
        problems.append(f"window_seconds {window_seconds!r} is not a number of seconds above 0, at most 3600")
    return problems
