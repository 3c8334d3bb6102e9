"""The files and events a payments invocation leaves: success and fail files in S3 (the
reference XML shape and JSON Lines), one event per applied or failed payment."""

from dataclasses import asdict
from decimal import Decimal

from tasks.payments.messages import payments_document
from tasks.payments.outcomes import BatchResult, PaymentOutcome
from tasks.platform.keys import UNKNOWN, payments_prefix, settled_prefix
from tasks.platform.services import Services


def overage_warning(outcome: PaymentOutcome) -> str:
    return (
        f"Paid amount exceeds the invoice total: ConnectWise capped invoice {outcome.invoice_number} at "
        f"{outcome.invoice_total} and discarded {outcome.overage}"
    )


def write_result_files(result: BatchResult, services: Services, request_id: str) -> dict[str, str]:
    """Success and fail files (reference XML shape + JSON Lines) for this invocation, in S3, one
    set per connection under its own prefix. Returns `<connection>/<file>` -> key.

    The fail file lists failed payments and, as warnings, the overage ConnectWise discarded.
    Each row says its `kind`: an individual payment (summed) or a paid-to-date amount (set).
    A message that names no readable connection has its fail rows under `payments/_unknown/`.
    """
    keys: dict[str, str] = {}
    for connection in sorted({o.connection for o in result.outcomes}):
        outcomes = [o for o in result.outcomes if o.connection == connection]
        prefix = payments_prefix(connection or UNKNOWN, services.clock(), request_id)
        for name, key in _write(outcomes, services, prefix).items():
            keys[f"{connection or UNKNOWN}/{name}"] = key
    return keys


def write_file_results(
    result: BatchResult, folders: dict[str, str], services: Services, request_id: str
) -> dict[str, str]:
    """The same files for the payments sent from a payment file (`folders`: message id -> the
    upload's results folder), in its folder, so the finance team finds them beside the split's.
    Here the success files also list the duplicates: a file uploaded again shows every payment."""
    keys: dict[str, str] = {}
    for folder in sorted(set(folders.values())):
        outcomes = [o for o in result.outcomes if folders.get(o.message_id) == folder]
        prefix = settled_prefix(folder, services.clock(), request_id)
        for name, key in _write(outcomes, services, prefix, ("applied", "duplicate")).items():
            keys[f"{folder}{name}"] = key
    return keys


def _write(
    outcomes: list[PaymentOutcome], services: Services, prefix: str, succeeded: tuple[str, ...] = ("applied",)
) -> dict[str, str]:
    applied = [o for o in outcomes if o.status in succeeded]
    failed = [o for o in outcomes if o.status == "failed"]
    overages = [o for o in applied if o.status == "applied" and Decimal(o.overage) > 0]
    fail_rows = [asdict(o) for o in failed] + [
        asdict(o) | {"status": "overage", "paid_amount": o.overage, "error": overage_warning(o)}
        for o in overages
    ]
    keys: dict[str, str] = {}
    store = services.store
    if applied:
        rows = [asdict(o) for o in applied]
        keys["success_xml"] = store.put(
            f"{prefix}-success.xml", payments_document(rows, with_errors=False), "application/xml"
        )
        keys["success_jsonl"] = store.put_json_lines(f"{prefix}-success.jsonl", rows)
    if fail_rows:
        keys["fail_xml"] = store.put(
            f"{prefix}-fail.xml", payments_document(fail_rows, with_errors=True), "application/xml"
        )
        keys["fail_jsonl"] = store.put_json_lines(f"{prefix}-fail.jsonl", fail_rows)
    return keys


def publish_outcomes(result: BatchResult, services: Services) -> None:
    entries = []
    for outcome in result.outcomes:
        if outcome.status == "applied":
            entries.append(("InvoicePaymentApplied", asdict(outcome)))
        elif outcome.status == "failed":
            entries.append(("InvoicePaymentFailed", asdict(outcome)))
    services.notices.publish_many(entries)
