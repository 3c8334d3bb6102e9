"""Errors of the connector itself (ConnectWise's own errors are in connectwise.errors), and the
one rule that says whether a failure may pass by retrying."""

from connectwise.errors import ConnectWiseError, describe_validation

__all__ = ["describe_validation"]  # one way to describe a pydantic error, without its input


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


class BatchBlockedError(BatchStateError):
    """A download cannot run: a batch not posted yet (FAILED, or adopted) holds the records."""


class BatchBusyError(ConnectorError):
    """Another invocation is working on the same batch; retry later."""

    transient = True


def is_transient(exc: BaseException) -> bool:
    """A connector or ConnectWise error that says a retry may succeed."""
    return isinstance(exc, ConnectorError | ConnectWiseError) and exc.transient


def is_permanent(exc: BaseException) -> bool:
    """A connector or ConnectWise error that says a retry cannot help. Anything else (neither
    transient nor permanent: an unexpected fault) is retried, and logged with its trace."""
    return isinstance(exc, ConnectorError | ConnectWiseError) and not exc.transient
