"""The last run of each scheduled job, in the ledger table (`run#<connection>#<job>`): what an
operator lists beside the connection."""

from dataclasses import dataclass
from typing import Any

BATCH_GET_LIMIT = 100


@dataclass(frozen=True)
class Run:
    connection: str
    job: str
    started_at: str
    finished_at: str
    outcome: str  # succeeded | failed
    detail: str  # the result's status, or the error


def run_key(connection: str, job: str) -> dict[str, Any]:
    return {"pk": {"S": f"run#{connection}#{job}"}}


class Runs:
    def __init__(self, dynamodb: Any, table_name: str) -> None:
        self.db, self.table = dynamodb, table_name

    def record(self, run: Run) -> None:
        self.db.put_item(
            TableName=self.table,
            Item=run_key(run.connection, run.job)
            | {
                "started_at": {"S": run.started_at},
                "finished_at": {"S": run.finished_at},
                "outcome": {"S": run.outcome},
                "detail": {"S": run.detail[:1000]},
            },
        )

    def last(self, connection: str, jobs: list[str]) -> dict[str, Run]:
        """Each job's last run (a job that never ran is absent)."""
        found: dict[str, Run] = {}
        for start in range(0, len(jobs), BATCH_GET_LIMIT):
            request = {
                self.table: {"Keys": [run_key(connection, j) for j in jobs[start : start + BATCH_GET_LIMIT]]}
            }
            while request:
                reply = self.db.batch_get_item(RequestItems=request)
                for item in reply["Responses"].get(self.table, []):
                    job = item["pk"]["S"].split("#", 2)[2]
                    found[job] = Run(
                        connection,
                        job,
                        item["started_at"]["S"],
                        item["finished_at"]["S"],
                        item["outcome"]["S"],
                        item["detail"]["S"],
                    )
                request = reply.get("UnprocessedKeys") or {}
        return found
