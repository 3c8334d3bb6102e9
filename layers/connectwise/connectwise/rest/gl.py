"""GL batches over REST (rest_api.md, sections 3 and 4), as the Accounting Interface offers them.

* download: list the unposted records of each kind (forward-only pages of up to 1000), then
  `POST /finance/accounting/export` with exactly those ids under a batchIdentifier chosen here.
  The export marks nothing; the listed invoice count is checked against the document.
* update ("post"): `POST /finance/accounting/batches` with the posted GL entry ids. An existing
  batch of that identifier means an earlier attempt got through: nothing is sent twice.
* recreate: find the batch by identifier, `POST /finance/accounting/batches/{id}/export` with
  the kinds' export flags, the thru date, the location and the record filters.
"""

import uuid
from collections.abc import Collection, Iterable
from datetime import UTC, date, datetime, timedelta
from typing import Any

from connectwise.accounting_interface import wire
from connectwise.conditions import REST, Expression, all_of, render, where
from connectwise.errors import BatchExistsError, DocumentError, PsaError, UnknownBatchError
from connectwise.glexport import GLBatch, GLExport, GLSink
from connectwise.glexport.batch import JSON
from connectwise.glexport.rest_json import read_rest_glexport
from connectwise.models import KINDS, RecreateFilters, horizon
from connectwise.rest.api import RestApi, lookup

MAX_IDENTIFIER = 50  # batchIdentifier's length limit (the spec's "Max length: 50")

# kind -> (unposted list, its date field, the export flag and id list, the id the list gives)
LISTS = {
    "invoices": (
        "unpostedinvoices",
        "invoiceDate",
        "exportInvoicesFlag",
        "includedInvoiceIds",
        "billingLogId",
    ),
    "expenses": ("unpostedexpenses", "dateExpense", "exportExpensesFlag", "includedExpenseIds", "id"),
    "procurement": (
        "unpostedprocurement",
        "purchaseDate",
        "exportProductsFlag",
        "includedProductIds",
        "unpostedProductId",
    ),
}
FILTERS = {  # RecreateFilters field -> ExportAccountingBatchRequest field
    "include_invoice_ids": "includedInvoiceIds",
    "exclude_invoice_ids": "excludedInvoiceIds",
    "include_expense_ids": "includedExpenseIds",
    "exclude_expense_ids": "excludedExpenseIds",
    "include_inventory_ids": "includedProductIds",
    "exclude_inventory_ids": "excludedProductIds",
}


def download_gl_batch(
    api: RestApi,
    kinds: Collection[str],
    *,
    thru_date: date | None = None,
    owner_level: str | None = None,
    sink: GLSink | None = None,
) -> GLBatch:
    """Export the unposted records of the chosen kinds, handing `sink` the document and its
    records as they arrive. Nothing is marked on ConnectWise."""
    chosen = [kind for kind in LISTS if kind in kinds]
    if not chosen:
        raise ValueError("choose at least one of invoices, expenses, procurement")
    # One thru date for the lists and the export: left to ConnectWise, the export stops at its
    # today while the lists have no bound, and one record dated ahead failed every download.
    thru_date = thru_date or datetime.now(api.connection.zone).date()
    listed = {kind: unposted(api, kind, thru_date, owner_level) for kind in chosen}
    exported = {kind: bool(listed.get(kind)) for kind in LISTS}
    if not any(exported.values()):
        return GLBatch(header=GLExport(GLBatchID=""), media_type=JSON)
    batch_id = new_batch_identifier()
    request: dict[str, Any] = {"batchIdentifier": batch_id, **_thru(thru_date)}
    for kind, rows in listed.items():
        _, _, flag, included, id_field = LISTS[kind]
        if rows:
            request[flag] = True
            request[included] = [row[id_field] for row in rows]
    with api.stream("POST", "/finance/accounting/export", request) as chunks:
        batch = read_rest_glexport(chunks, batch_id, exported, sink)
    invoices = batch.counts()["invoices"]
    if invoices != len(listed.get("invoices", [])):
        raise DocumentError(
            f"the export of batch {batch_id} holds {invoices} invoices, "
            f"but {len(listed['invoices'])} were listed as unposted: nothing was kept"
        )
    return batch


def unposted_entries(api: RestApi) -> dict[int, str]:
    """Every GL entry the unposted lists hold, with its kind (an export of all kinds)."""
    by_kind = download_gl_batch(api, KINDS, thru_date=horizon()).gl_entry_ids_by_kind()
    return {i: kind for kind, ids in by_kind.items() for i in ids}


def recreate_gl_batch(
    api: RestApi,
    batch_id: str,
    *,
    kinds: Collection[str] = KINDS,
    filters: RecreateFilters | None = None,
    thru_date: date | None = None,
    owner_level: str | None = None,
    sink: GLSink | None = None,
) -> GLBatch:
    """Download a posted batch again: the records of `kinds`, through `thru_date`, at the
    location `owner_level`, narrowed by the record filters (to `sink`, as for a download)."""
    exported = {kind: kind in kinds for kind in LISTS}
    if not any(exported.values()):
        raise ValueError("choose at least one of invoices, expenses, procurement")
    batch = find_batch(api, batch_id)
    if batch is None:
        raise UnknownBatchError(f"{wire.UNKNOWN_BATCH} {batch_id}")
    request: dict[str, Any] = {"batchIdentifier": batch_id, **_thru(thru_date)}
    request |= {LISTS[kind][2]: flag for kind, flag in exported.items()}
    if owner_level:
        request["locationId"] = location_id(owner_level)
    for key, ids in (filters or RecreateFilters()).model_dump().items():
        if ids:
            request[FILTERS[key]] = [str(i) for i in ids] if "Product" in FILTERS[key] else ids
    with api.stream("POST", f"/finance/accounting/batches/{batch['id']}/export", request) as chunks:
        return read_rest_glexport(chunks, batch_id, exported, sink)


def update_gl_batch(
    api: RestApi, batch_id: str, gl_entry_ids: Iterable[int], kinds: Iterable[str] = LISTS
) -> str:
    """Create the batch from the posted GL entries, so they are never exported again. A batch of
    that identifier that exists already is refused (BatchExistsError), never taken for this one:
    what it holds is for the caller to read (an earlier attempt, or another connector)."""
    if find_batch(api, batch_id) is not None:
        raise BatchExistsError(f"batch {batch_id} already exists on ConnectWise")
    chosen = set(kinds)
    request = {
        "batchIdentifier": batch_id,
        "exportInvoicesFlag": "invoices" in chosen,
        "exportExpensesFlag": "expenses" in chosen,
        "exportProductsFlag": "procurement" in chosen,
        "processedRecordIds": sorted(set(gl_entry_ids)),
    }
    try:
        api.json_bytes("POST", "/finance/accounting/batches", request, repeatable=False)
    except PsaError as exc:
        if "ObjectExists" in exc.message and find_batch(api, batch_id) is not None:
            raise BatchExistsError(f"batch {batch_id} already exists on ConnectWise") from None
        raise
    return f"batch {batch_id} created"


def find_batch(api: RestApi, batch_id: str) -> dict[str, Any] | None:
    """The batch of that identifier; UnknownBatchError for one no REST batch can have (too long,
    or not expressible in a condition)."""
    unknown = UnknownBatchError(f"{wire.UNKNOWN_BATCH} {batch_id}")
    if len(batch_id) > MAX_IDENTIFIER:
        raise unknown
    condition = lookup("batchIdentifier", batch_id, unknown)
    found = list(api.pages("/finance/accounting/batches", conditions=condition))
    # Exactly this identifier: ConnectWise's conditions may match another case.
    return next((row for row in found if row.get("batchIdentifier") == batch_id), None)


def posted_entries(api: RestApi, batch_id: str) -> set[int] | None:
    """The GL entries ConnectWise holds in this batch (a re-export of it through the horizon:
    records dated ahead too), None if no such batch."""
    if find_batch(api, batch_id) is None:
        return None
    return set(recreate_gl_batch(api, batch_id, thru_date=horizon()).gl_entry_ids())


def list_batches(api: RestApi) -> list[dict[str, Any]]:
    return list(api.pages("/finance/accounting/batches"))


def unposted(
    api: RestApi, kind: str, thru_date: date | None = None, owner_level: str | None = None
) -> list[dict[str, Any]]:
    """The unposted records of one kind, through the date and at the location id given."""
    path, date_field, *_ = LISTS[kind]
    parts: list[Expression] = []
    if thru_date:
        end = datetime.combine(thru_date + timedelta(days=1), datetime.min.time(), UTC)
        parts.append(where(date_field, "<", end))
    if owner_level:
        parts.append(where("locationId", "=", location_id(owner_level)))
    return list(
        api.pages(f"/finance/accounting/{path}", conditions=render(all_of(*parts), REST) if parts else None)
    )


def new_batch_identifier() -> str:
    """Unique, sortable, well under the 50-character limit: `cw-20261129T023000Z-1a2b3c4d5e6f`."""
    return f"cw-{datetime.now(UTC):%Y%m%dT%H%M%SZ}-{uuid.uuid4().hex[:12]}"


def location_id(owner_level: str) -> int:
    """REST filters by location id; the legacy owner level was the location's name."""
    if not owner_level.isdigit():
        raise ValueError(f"owner_level {owner_level!r}: a REST connection takes the location id (a number)")
    return int(owner_level)


def _thru(thru_date: date | None) -> dict[str, str]:
    return {"thruDate": f"{thru_date.isoformat()}T23:59:59Z"} if thru_date else {}
