"""The two ways to reach a site's accounting operations, chosen per connection by its secret.

`backend: "accounting_interface"` (the default, for secrets written before REST existed) is the
legacy GL page with a member login; `backend: "rest"` is the REST API with an API member's keys.
Both clients offer the operations of `GLBackend`, so the tasks never ask which one they have.
"""

from collections.abc import Collection, Iterable
from datetime import date, datetime
from decimal import Decimal
from typing import Annotated, Any, Protocol

from pydantic import Discriminator, Tag, TypeAdapter

from connectwise.accounting_interface.client import AccountingClient, Connection
from connectwise.glexport import GLBatch, GLSink
from connectwise.models import PaymentApplied, RecreateFilters, SiteLogin
from connectwise.rest.api import RestConnection
from connectwise.rest.client import RestClient
from connectwise.transport import UNPACED, Deadline, Pacer

AnyConnection = Connection | RestConnection


def _backend(value: Any) -> str:
    if isinstance(value, dict):
        return str(value.get("backend", "accounting_interface"))
    return str(getattr(value, "backend", "accounting_interface"))


CONNECTIONS: TypeAdapter[AnyConnection] = TypeAdapter(
    Annotated[
        Annotated[Connection, Tag("accounting_interface")] | Annotated[RestConnection, Tag("rest")],
        Discriminator(_backend),
    ]
)


class GLBackend(Protocol):
    @property
    def connection(self) -> SiteLogin:
        """The login it uses: where the site is and the time zone its finance team works in."""
        ...

    def within(self, deadline: Deadline) -> "GLBackend":
        """The same client with every call and wait fitting `deadline`."""
        ...

    def posted_entries(self, batch_id: str) -> set[int] | None:
        """The GL entries ConnectWise holds in the batch (None: it has no such batch), records
        dated ahead included: the truth after an update whose outcome is unknown."""
        ...

    def download_gl_batch(
        self,
        kinds: Collection[str],
        *,
        thru_date: date | None = ...,
        owner_level: str | None = ...,
        sink: GLSink | None = ...,
    ) -> GLBatch:
        """Export the unposted records of the kinds (invoices, expenses, procurement), handing
        `sink` the document and its records as they arrive (None: only what they add up to)."""
        ...

    def unposted_entries(self) -> dict[int, str]:
        """Every GL entry ConnectWise lists as unposted, with the kind of its record (an export
        of all kinds, which marks nothing)."""
        ...

    def recreate_gl_batch(
        self,
        batch_id: str,
        *,
        kinds: Collection[str] = ...,
        filters: RecreateFilters | None = ...,
        thru_date: date | None = ...,
        owner_level: str | None = ...,
        sink: GLSink | None = ...,
    ) -> GLBatch: ...

    def update_gl_batch(
        self, batch_id: str, gl_entry_ids: Iterable[int], kinds: Iterable[str] = ...
    ) -> str: ...

    def update_invoice_payment(
        self, invoice_number: str, paid_amount: Decimal, date_paid: datetime
    ) -> PaymentApplied: ...


def parse_connection(value: Any) -> AnyConnection:
    """A secret's JSON as the connection of its backend (raises pydantic's ValidationError)."""
    return CONNECTIONS.validate_python(value)


def client_for(connection: AnyConnection, name: str = "", pacer: Pacer = UNPACED) -> GLBackend:
    if isinstance(connection, RestConnection):
        return RestClient(connection, name=name, pacer=pacer)
    return AccountingClient(connection, pacer=pacer)
