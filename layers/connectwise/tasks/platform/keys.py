"""Where every output lives in the bucket. The template's IAM policies grant each function its
prefix (`gl-batches/`, `records/`, `reports/`, `payments/`), so a key moves only with them.

Every key is `<area>/<connection>/...`: a connection's name holds no `/`, so no key of one
connection is ever under another's prefix (and a consumer can be granted one connection's)."""

import re
from datetime import UTC, datetime

GL_BATCHES, RECORDS, REPORTS, PAYMENTS = "gl-batches", "records", "reports", "payments"


def batch_prefix(connection: str, batch_id: str) -> str:
    """A downloaded batch: glexport.xml|json, records.jsonl, manifest.json, confirmation.json."""
    return f"{GL_BATCHES}/{connection}/{batch_id}/"


def recreated_prefix(connection: str, batch_id: str, at: float, suffix: str) -> str:
    """One recreate of a batch, beside the batch: its document, records.jsonl and request.json."""
    return f"{batch_prefix(connection, batch_id)}recreated/{_utc(at):%Y%m%dT%H%M%SZ}-{suffix}/"


def records_prefix(connection: str, entity: str, at: float, request_id: str) -> str:
    """One download of a record type: `<prefix>.jsonl` and `<prefix>.csv`."""
    return f"{RECORDS}/{connection}/{entity}/{_utc(at):%Y/%m/%d/%H%M%S}-{request_id}"


def report_prefix(connection: str, report: str, at: float, request_id: str) -> str:
    """One run of a report: `<prefix>.jsonl` and `<prefix>.csv`."""
    slug = re.sub(r"[^a-z0-9]+", "-", report.lower()).strip("-") or "report"
    return f"{REPORTS}/{connection}/{slug}/{_utc(at):%Y/%m/%d/%H%M%S}-{request_id}"


def catalog_key(connection: str) -> str:
    """The site's report catalog, replaced by each listing."""
    return f"{REPORTS}/{connection}/catalog.json"


UNKNOWN = "_unknown"  # payment files of a message that names no connection (not a connection name)


def payments_prefix(connection: str, at: float, request_id: str) -> str:
    """One payments invocation's files of one connection: `<prefix>-success.xml|jsonl`,
    `<prefix>-fail.xml|jsonl`."""
    return f"{PAYMENTS}/{connection}/{_utc(at):%Y/%m/%d/%H%M%S}-{request_id}"


def _utc(at: float) -> datetime:
    return datetime.fromtimestamp(at, UTC)
