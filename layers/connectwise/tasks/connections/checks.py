"""A connection tried against ConnectWise before it is enabled: its login, the site's version,
and one cheap read for each kind of work its jobs (and its queues) will do. Nothing is written."""

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import partial

from connectwise.backends import AnyConnection, client_for
from connectwise.records import RecordQuery, RecordsBackend
from connectwise.rest.api import RestApi, RestConnection
from connectwise.transport import Deadline
from tasks.platform.clients import records_client
from tasks.platform.registry import ConnectionEntry

PROBE_BATCH = "connector-validation"  # a batch id no site has: asking for it changes nothing
SECONDS = 60.0  # the whole check


@dataclass(frozen=True)
class Check:
    name: str
    ok: bool
    detail: str


def check_connection(entry: ConnectionEntry, login: AnyConnection) -> list[Check]:
    """Every check, each passed or failed with ConnectWise's own words (never the secret)."""
    deadline = Deadline(SECONDS)
    checks = []
    if isinstance(login, RestConnection):
        checks.append(_try("site", lambda: _version(RestApi(login, name=entry.name))))
    gl = client_for(login, entry.name).within(deadline)
    checks.append(_try("gl batches and payments", lambda: _batch_lookup(gl.posted_entries(PROBE_BATCH))))
    tasks = {job.task for job in entry.jobs}
    entities = sorted(
        t.removeprefix("download_") for t in tasks if t.startswith("download_") and t != "download_gl_batch"
    )
    if entities or tasks & {"list_reports", "run_report"}:
        try:
            records = records_client(login, entry.name).within(deadline)
        except Exception as exc:
            return [*checks, Check("reports and records", False, str(exc))]
        if tasks & {"list_reports", "run_report"}:
            checks.append(_try("reports", lambda: f"{len(records.reports(include_fields=False))} reports"))
        since = datetime.now(UTC)
        for entity in entities:
            checks.append(_try(entity, partial(_changed, records, entity, since)))
    return checks


def _changed(records: RecordsBackend, entity: str, since: datetime) -> str:
    found = records.records_from(entity, since, after=True, query=RecordQuery(), limit=1)
    return f"{len(found)} changed since the check began"


def _batch_lookup(found: set[int] | None) -> str:
    return "the login reads GL batches (it cannot show that payments may be written: that needs a write)"


def _version(api: RestApi) -> str:
    info = api.company_info()
    return f"codebase {info.get('Codebase')}, version {info.get('VersionCode')}"


def _try(name: str, probe: Callable[[], str]) -> Check:
    try:
        return Check(name, True, probe())
    except Exception as exc:
        return Check(name, False, f"{type(exc).__name__}: {exc}")
