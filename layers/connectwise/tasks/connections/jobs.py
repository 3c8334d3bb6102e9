"""The tasks a job can run on a schedule, and a registry entry checked job by job against the
request model its function parses: a job the function would refuse is refused when it is added."""

from pydantic import BaseModel, ValidationError

from tasks.gl.requests import DownloadRequest
from tasks.platform.errors import ConfigurationError, describe_validation
from tasks.platform.registry import ConnectionEntry
from tasks.records.requests import DownloadRecordsRequest, ListReportsRequest, RunReportRequest

# task -> (the request its function parses, the function's logical id in template.yaml)
TASKS: dict[str, tuple[type[BaseModel], str]] = {
    "download_gl_batch": (DownloadRequest, "DownloadGLBatchFunction"),
    "download_agreements": (DownloadRecordsRequest, "DownloadAgreementsFunction"),
    "download_companies": (DownloadRecordsRequest, "DownloadCompaniesFunction"),
    "download_invoices": (DownloadRecordsRequest, "DownloadInvoicesFunction"),
    "download_opportunities": (DownloadRecordsRequest, "DownloadOpportunitiesFunction"),
    "download_purchase_orders": (DownloadRecordsRequest, "DownloadPurchaseOrdersFunction"),
    "list_reports": (ListReportsRequest, "ListReportsFunction"),
    "run_report": (RunReportRequest, "RunReportFunction"),
}
RESERVED = ("connection", "job")  # set from the entry and the job, never from the input


def check_jobs(entry: ConnectionEntry) -> ConnectionEntry:
    """The entry if every job names a known task with a request its function accepts; else a
    ConfigurationError naming the connection, the job and the problem."""
    for job in entry.jobs:
        where = f"connection {entry.name!r}, job {job.id!r}"
        if job.task not in TASKS:
            raise ConfigurationError(f"{where}: unknown task {job.task!r} (one of: {', '.join(TASKS)})")
        reserved = [key for key in RESERVED if key in job.input]
        if reserved:
            raise ConfigurationError(
                f"{where}: input must not set {', '.join(reserved)} (taken from the entry)"
            )
        model = TASKS[job.task][0]
        try:
            model.model_validate({"connection": entry.name} | job.input)
        except ValidationError as exc:
            raise ConfigurationError(f"{where}: invalid input: {describe_validation(exc)}") from None
    return entry
