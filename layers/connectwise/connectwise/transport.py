"""How the ConnectWise clients use HTTP: time budgets, retries, and what a failed call means.

* Every call and every wait fits the invocation's remaining time (`Deadline`); a wait longer
  than what is left raises a transient error instead, so the queue redelivers the work later.
* A 429 or 503 was not run by ConnectWise (throttled, or the site unavailable): it is retried for
  any call, after its `Retry-After`.
* A call that may not have been sent (connect failure) is retried for any call.
* A call that was sent and got no readable answer (read timeout, dropped connection, 500, 502,
  504: a gateway may time out while ConnectWise goes on) is
  repeated only if repeating is safe (reads, exports). A write is never repeated in place: it
  raises `OutcomeUnknownError`, and the caller reads ConnectWise's state back or holds the record
  until a late landing can no longer happen.
* Redirects are never followed: credentials go only to the configured site.
* Every attempt first waits its turn in the connection's budget of calls (`Pacer`), and a 429 is
  told to it, so that every invocation of the connection slows down, not only this one.
"""

import math
import random
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any, Protocol
from urllib.parse import urljoin, urlsplit

import requests
from urllib3.exceptions import MaxRetryError, NameResolutionError, NewConnectionError, ReadTimeoutError

from connectwise.errors import OutcomeUnknownError, TransportError

TRANSIENT_STATUSES = frozenset({429, 500, 502, 503, 504})
NOT_RUN = frozenset({429, 503})  # ConnectWise did not run the call
MAX_WAIT = 60.0  # seconds a client sleeps for one Retry-After; a longer wait goes back to the queue
RESERVE = 10.0  # seconds kept after the last call for the ledger, the result files and the events
# A write whose outcome is unknown may still land for this long (longer than ConnectWise runs a
# request): the records it carried are held, nothing newer is written over them meanwhile.
HOLD_AFTER_UNKNOWN = 300.0


class Pacer(Protocol):
    """A connection's budget of ConnectWise calls, shared by everything that calls for it."""

    def wait_turn(self, deadline: "Deadline", what: str) -> None:
        """Return when the next call may be sent; raise TransportError (transient, nothing sent)
        if its turn comes after what the invocation can wait."""
        ...

    def throttled(self, retry_after: float) -> None:
        """ConnectWise answered 429 asking to wait `retry_after` seconds."""
        ...

    def answered(self, seconds: float, status: int) -> None:
        """A call took `seconds` and got HTTP `status` (0: no answer). Never raises."""
        ...


class Unpaced:
    """No budget: a script's or a test's client, which only reacts to 429s."""

    def wait_turn(self, deadline: "Deadline", what: str) -> None:
        return None

    def throttled(self, retry_after: float) -> None:
        return None

    def answered(self, seconds: float, status: int) -> None:
        return None


UNPACED = Unpaced()


class Deadline:
    """The time left to an invocation (Lambda's remaining time), on the monotonic clock."""

    def __init__(self, seconds: float = math.inf, reserve: float = RESERVE) -> None:
        self.at = time.monotonic() + seconds
        self.reserve = reserve

    @classmethod
    def of(cls, context: Any) -> "Deadline":
        """From a Lambda context; no limit for callers that have none (a script, a test)."""
        remaining = getattr(context, "get_remaining_time_in_millis", None)
        return cls(remaining() / 1000) if remaining else cls()

    def left(self) -> float:
        """Seconds until the invocation ends."""
        return self.at - time.monotonic()

    def remaining(self) -> float:
        """Seconds left for calls and waits (the reserve already taken off)."""
        return self.left() - self.reserve

    def timeout(self, timeout: tuple[float, float], what: str) -> tuple[float, float]:
        """The (connect, read) timeout of a call, cut to the time left; none left is transient."""
        left = self.remaining()
        if left < 1.0:
            raise TransportError(f"{what}: not started, the invocation has no time left; retried later")
        return min(timeout[0], left), min(timeout[1], left)

    def sleep(self, seconds: float, what: str) -> None:
        if seconds > min(MAX_WAIT, self.remaining() - 1.0):
            raise TransportError(
                f"{what}: ConnectWise asked to wait {seconds:g} s, more than this invocation can; retried later",
                status=429,
            )
        time.sleep(seconds)


def refuse_redirects(response: requests.Response, *args: Any, **kwargs: Any) -> None:
    """Response hook: a redirect is an error, never followed (it would carry the credentials)."""
    if not response.is_redirect:
        return
    target = urlsplit(urljoin(response.url, response.headers.get("Location", "")))
    origin = urlsplit(response.url)
    response.close()
    raise TransportError(
        f"ConnectWise site {origin.netloc} answered with a redirect (HTTP {response.status_code}) to "
        f"{target.netloc}{target.path}: not followed, credentials are only sent to the configured site; "
        "check the connection's site",
        status=response.status_code,
        transient=False,
    )


def new_session() -> requests.Session:
    session = requests.Session()
    session.hooks["response"].append(refuse_redirects)
    return session


def send(
    session: requests.Session,
    method: str,
    url: str,
    *,
    what: str,
    deadline: Deadline,
    timeout: tuple[float, float],
    retries: int,
    backoff: float,
    repeatable: bool,
    said: Callable[[requests.Response], str] | None = None,
    pacer: Pacer = UNPACED,
    **request: Any,
) -> requests.Response:
    """One call with the retries above. Returns any answer below 500 but 429 (the caller reads
    it, 4xx included); raises TransportError (OutcomeUnknownError for an unanswered write)."""
    host = urlsplit(url).netloc
    for attempt in range(retries + 1):
        last = attempt == retries
        pacer.wait_turn(deadline, what)
        read = deadline.timeout(timeout, what)
        sent = time.monotonic()
        try:
            response = session.request(method, url, timeout=read, **request)
        except requests.RequestException as exc:
            pacer.answered(time.monotonic() - sent, 0)
            if _not_sent(exc):
                if last:
                    raise TransportError(f"{what}: cannot reach {host}: {type(exc).__name__}") from None
            elif last or not repeatable:
                problem = (
                    f"ConnectWise did not answer within {read[1]:g} s"
                    if isinstance(exc, requests.Timeout) or _timed_out(exc)
                    else f"the connection to {host} broke ({type(exc).__name__})"
                )
                raise (TransportError if repeatable else OutcomeUnknownError)(f"{what}: {problem}") from None
        else:
            status = response.status_code
            pacer.answered(time.monotonic() - sent, status)
            if status < 500 and status != 429:
                return response
            error = f"{what}: HTTP {status} from ConnectWise{(said or first_line)(response)}"
            wait = _retry_after(response, backoff, attempt)
            if status == 429:
                pacer.throttled(wait)
            if status not in NOT_RUN and not repeatable:
                raise OutcomeUnknownError(error, status=status)
            if last:
                raise TransportError(error, status=status)
            if status in NOT_RUN or response.headers.get("Retry-After"):
                deadline.sleep(wait, what)
                continue
        deadline.sleep(backoff * 2**attempt * random.uniform(0.5, 1.0), what)  # noqa: S311 - jitter
    raise AssertionError("unreachable")


def first_line(response: requests.Response) -> str:
    """`: <the start of an error page>`, printable, for an error message."""
    text = response.content[:200].decode("utf-8", "replace").strip().splitlines()
    return f": {''.join(ch for ch in text[0] if ch.isprintable())}" if text else ""


def _retry_after(response: requests.Response, backoff: float, attempt: int) -> float:
    """Seconds to wait: `Retry-After` in seconds (ConnectWise's) or as an HTTP date (a proxy's),
    else the backoff. Never negative, never infinite or not a number."""
    seconds = retry_after_seconds(response.headers.get("Retry-After", ""))
    return float(backoff * 2**attempt * random.uniform(0.5, 1.0)) if seconds is None else seconds  # noqa: S311


def retry_after_seconds(value: str) -> float | None:
    try:
        seconds = float(value)
    except ValueError:
        try:
            seconds = (parsedate_to_datetime(value) - datetime.now(UTC)).total_seconds()
        except (TypeError, ValueError, IndexError):
            return None
    return max(0.0, seconds) if math.isfinite(seconds) else None


def _not_sent(exc: requests.RequestException) -> bool:
    """The request never left: the connection could not be made (refused, unresolvable, timed out)."""
    if isinstance(exc, requests.ConnectTimeout):
        return True
    reason = getattr(exc.args[0], "reason", None) if exc.args else None
    return isinstance(exc.args[0] if exc.args else None, MaxRetryError) and isinstance(
        reason, NewConnectionError | NameResolutionError
    )


def _timed_out(exc: requests.RequestException) -> bool:
    reason = getattr(exc.args[0], "reason", None) if exc.args else None
    return isinstance(reason, ReadTimeoutError)


def body(
    response: requests.Response, what: str, deadline: Deadline, chunk_size: int = 2**16
) -> Iterator[bytes]:
    """The body of a reply sent for with `stream=True`, chunk by chunk as it arrives, within the
    deadline. A reply cut short (the connection dropped, a read timed out) is a transient
    TransportError: the call is repeated later, whole (what arrived of it has been used)."""
    received = 0
    try:
        for chunk in response.iter_content(chunk_size):
            received += len(chunk)
            if deadline.remaining() <= 0:
                raise TransportError(
                    f"{what}: the reply was still arriving after {received} bytes when the invocation "
                    "ran out of time; retried later"
                )
            yield chunk
    except requests.RequestException as exc:
        raise TransportError(
            f"{what}: the reply was cut short after {received} bytes ({type(exc).__name__}); retried later"
        ) from None
