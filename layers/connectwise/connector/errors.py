"""Errors of the connector itself (ConnectWise's own errors are in connectwise.errors)."""

from pydantic import ValidationError


class ConnectorError(Exception):
    """Base class. `transient` is True when a retry may succeed."""

    transient = False

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class ConfigurationError(ConnectorError):
    """A connection, secret or setting is missing or invalid."""


class InvalidRequestError(ConnectorError):
    """An event or message does not have the expected shape."""


class BatchStateError(ConnectorError):
    """The ledger does not allow this transition (unknown batch, wrong state, ids not in the batch)."""


class BatchBusyError(ConnectorError):
    """Another invocation is working on the same batch; retry later."""

    transient = True


def describe_validation(exc: ValidationError, limit: int = 5) -> str:
    """`field: problem; ...` without echoing input values (they may hold secrets)."""
    problems = []
    for error in exc.errors(include_url=False, include_input=False)[:limit]:
        location = ".".join(str(part) for part in error["loc"]) or "(root)"
        problems.append(f"{location}: {error['msg'].removeprefix('Value error, ')}")
    more = len(exc.errors()) - limit
    return "; ".join(problems) + (f" (and {more} more)" if more > 0 else "")
