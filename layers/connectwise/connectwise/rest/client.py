"""`RestClient`: the REST API as a `GLBackend`, the same operations as the Accounting Interface
client (`connectwise.rest.gl` for GL batches, `connectwise.rest.payments` for payments)."""

from collections.abc import Collection, Iterable
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from connectwise.glexport import GLBatch, GLSink
from connectwise.models import KINDS, PaymentApplied, RecreateFilters
from connectwise.rest import gl, payments
from connectwise.rest.api import RestApi


class RestClient(RestApi):
    """One ConnectWise site's REST API, as one API member, offering the GL batch operations."""

    def download_gl_batch(
        self,
        kinds: Collection[str],
        *,
        thru_date: date | None = None,
        owner_level: str | None = None,
        sink: GLSink | None = None,
    ) -> GLBatch:
        return gl.download_gl_batch(self, kinds, thru_date=thru_date, owner_level=owner_level, sink=sink)

    def unposted_entries(self) -> dict[int, str]:
        return gl.unposted_entries(self)

    def recreate_gl_batch(
        self,
        batch_id: str,
        *,
        kinds: Collection[str] = KINDS,
        filters: RecreateFilters | None = None,
        thru_date: date | None = None,
        owner_level: str | None = None,
        sink: GLSink | None = None,
    ) -> GLBatch:
        return gl.recreate_gl_batch(
            self,
            batch_id,
            kinds=kinds,
            filters=filters,
            thru_date=thru_date,
            owner_level=owner_level,
            sink=sink,
        )

    def update_gl_batch(
        self, batch_id: str, gl_entry_ids: Iterable[int], kinds: Iterable[str] = gl.LISTS
    ) -> str:
        return gl.update_gl_batch(self, batch_id, gl_entry_ids, kinds)

    def posted_entries(self, batch_id: str) -> set[int] | None:
        return gl.posted_entries(self, batch_id)

    def find_batch(self, batch_id: str) -> dict[str, Any] | None:
        return gl.find_batch(self, batch_id)

    def list_batches(self) -> list[dict[str, Any]]:
        return gl.list_batches(self)

    def unposted(
        self, kind: str, thru_date: date | None = None, owner_level: str | None = None
    ) -> list[dict[str, Any]]:
        return gl.unposted(self, kind, thru_date, owner_level)

    def update_invoice_payment(
        self, invoice_number: str, paid_amount: Decimal, date_paid: datetime
    ) -> PaymentApplied:
        return payments.update_invoice_payment(self, invoice_number, paid_amount, date_paid)
