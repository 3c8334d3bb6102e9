"""Where every output lives in the bucket. The template's IAM policies grant each function its
prefix (`gl-batches/`, `records/`, `reports/`, `payments/`), so a key moves only with them.

Every key is `<area>/<connection>/...`: a connection's name holds no `/`, so no key of one
connection is ever under another's prefix (and a consumer can be granted one connection's)."""

import re
from datetime import UTC, datetime

GL_BATCHES, RECORDS, REPORTS, PAYMENTS = "gl-batches", "records", "reports", "payments"
# Payment files dropped by finance teams, and what became of them (never under the drop area, so
# writing a result never triggers the split again).
PAYMENT_FILES, PAYMENT_RESULTS = "payment-files", "payment-results"


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


PAYMENT_FILE_NAME = r"[^/\x00-\x1f\x7f]{1,200}\.(?i:xml|json)"  # no "/" and no control character


def payment_file(key: str) -> tuple[str, str] | None:
    """The connection and file name of a dropped payment file's key,
    `payment-files/<connection>/<name>.xml|.json`; None for any other key."""
    match = re.fullmatch(rf"{PAYMENT_FILES}/([^/]+)/({PAYMENT_FILE_NAME})", key)
    return (match[1], match[2]) if match else None


def payment_file_results(connection: str, name: str, upload: str) -> str:
    """The folder of what became of one upload of a payment file (`upload`: when it was put, and
    a digest of its version): `split.json`, `split-fail.xml|jsonl`, and `settled/` with the
    payments function's result files for its payments."""
    return f"{PAYMENT_RESULTS}/{connection}/{name}/{upload}/"


def is_payment_file_results(prefix: str, connection: str) -> bool:
    """Whether `prefix` (read from a payment message) is a payment file's results folder of
    `connection`, as `payment_file_results` builds it, and nothing else."""
    pattern = (
        rf"{PAYMENT_RESULTS}/{re.escape(connection)}/{PAYMENT_FILE_NAME}/\d{{8}}T\d{{6}}Z-[0-9a-f]{{12}}/"
    )
    return re.fullmatch(pattern, prefix) is not None


def settled_prefix(results: str, at: float, request_id: str) -> str:
    """One payments invocation's files for the payments of one payment file upload, in its
    results folder: `<prefix>-success.xml|jsonl`, `<prefix>-fail.xml|jsonl`."""
    return f"{results}settled/{_utc(at):%Y%m%dT%H%M%SZ}-{request_id}"


def _utc(at: float) -> datetime:
    return datetime.fromtimestamp(at, UTC)
