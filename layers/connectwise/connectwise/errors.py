"""Typed errors. Each carries ConnectWise's own message and says whether a retry may help."""

from collections.abc import Callable
from typing import Any

from pydantic import ValidationError


class ConnectWiseError(Exception):
    """Base class. `transient` is True when the same call may succeed later."""

    transient = False

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class PsaError(ConnectWiseError):
    """ConnectWise answered with a <PsaError> document; `message` is its first line."""


class AuthenticationError(PsaError):
    """ConnectWise rejected the member's company, username or password."""


class UnknownInvoiceError(PsaError):
    """ConnectWise has no invoice with that number."""


class UnknownBatchError(PsaError):
    """ConnectWise does not know the GL batch id."""


class BatchExistsError(PsaError):
    """A batch of that identifier exists on ConnectWise already: what it holds decides."""


class TransportError(ConnectWiseError):
    """The HTTP exchange failed: connection error, timeout or an error status."""

    def __init__(self, message: str, status: int | None = None, transient: bool = True) -> None:
        super().__init__(message)
        self.status = status
        self.transient = transient


class OutcomeUnknownError(TransportError):
    """A write reached ConnectWise but its reply was lost, cut short or unreadable: ConnectWise may
    or may not have applied it (and may still apply it late). Never repeat such a write blindly:
    read ConnectWise's state back, or hold the record until a late write can no longer land."""

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message, status=status, transient=True)


def surely_not_run(exc: BaseException) -> bool:
    """ConnectWise surely did not run the call: a transient failure whose outcome is known."""
    return isinstance(exc, ConnectWiseError) and exc.transient and not isinstance(exc, OutcomeUnknownError)


class DocumentError(ConnectWiseError):
    """A document from ConnectWise (or a user) is malformed, hostile or fails validation."""


class CutShortError(DocumentError):
    """A document ends before its end: the reply was cut short on its way (a dropped connection,
    a proxy); nothing of it is kept, and the same call may succeed later."""

    transient = True


def describe_validation(
    exc: ValidationError, limit: int = 5, name: Callable[[tuple[Any, ...]], str] | None = None
) -> str:
    """`field: problem; ...` for at most `limit` problems, never echoing the input (it may hold a
    secret or a whole record). `name` turns an error's location into the field name shown."""
    problems = []
    for error in exc.errors(include_url=False, include_input=False)[:limit]:
        location = name(error["loc"]) if name else ".".join(str(part) for part in error["loc"])
        problems.append(f"{location or '(root)'}: {error['msg'].removeprefix('Value error, ')}")
    more = len(exc.errors()) - limit
    return "; ".join(problems) + (f" (and {more} more)" if more > 0 else "")
