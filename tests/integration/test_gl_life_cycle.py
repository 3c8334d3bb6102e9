"""The three handlers against moto (resources from template.yaml) and the sandbox."""

import io
import json
import threading
from datetime import date, timedelta
from typing import Any

import pytest

from connectwise import jsonmoney
from connectwise.errors import AuthenticationError, DocumentError, TransportError, UnknownBatchError
from sandbox.server import SandboxServer
from scripts.harness import LocalEnvironment
from scripts.lambda_local import invoke, poll_sqs, sqs_event
from tasks.platform.batch_ledger import Ledger
from tasks.platform.errors import BatchBlockedError, InvalidRequestError
from tests.glexport_kept import KeptBatch, read_json, read_xml

ALL_KINDS = {"connection": "main", "kinds": ["invoices", "expenses", "procurement"]}


@pytest.fixture(params=["accounting_interface", "rest"])
def backend(request: pytest.FixtureRequest) -> str:
    """Every test here runs against both backends (the connection's secret chooses)."""
    return str(request.param)


def download(env: LocalEnvironment, event: dict[str, Any] | None = None) -> dict[str, Any]:
    result: dict[str, Any] = invoke(env.stack, "DownloadGLBatchFunction", event or ALL_KINDS)
    return result


def confirm(env: LocalEnvironment, *bodies: Any) -> list[dict[str, Any]]:
    sqs = env.stack.client("sqs")
    for body in bodies:
        text = body if isinstance(body, str) else json.dumps(body)
        sqs.send_message(QueueUrl=env.stack.physical["ConfirmationQueue"], MessageBody=text)
    return poll_sqs(env.stack, "ConfirmationQueue", "UpdateGLBatchFunction")


def ledger_items(env: LocalEnvironment) -> dict[str, dict[str, Any]]:
    """The ledger's records (the connections' budgets of ConnectWise calls aside)."""
    items = env.stack.client("dynamodb").scan(TableName=env.stack.physical["LedgerTable"])["Items"]
    return {item["pk"]["S"]: item for item in items if not item["pk"]["S"].startswith("budget#")}


def throttling_passes(env: LocalEnvironment) -> None:
    """As if ConnectWise's Retry-After had passed: the connections' budgets start afresh."""
    dynamodb = env.stack.client("dynamodb")
    table = env.stack.physical["LedgerTable"]
    for item in dynamodb.scan(TableName=table)["Items"]:
        if item["pk"]["S"].startswith("budget#"):
            dynamodb.delete_item(TableName=table, Key={"pk": item["pk"]})


def paused_until(env: LocalEnvironment) -> float:
    """When the calls to the sandbox's company may go again after a 429 (epoch seconds): its
    connections share one budget, `budget#<company@site>`."""
    items = env.stack.client("dynamodb").scan(TableName=env.stack.physical["LedgerTable"])["Items"]
    [item] = [i for i in items if i["pk"]["S"].startswith("budget#sandbox@")]
    return int(item["next_at"]["N"]) / 1000


def batches(env: LocalEnvironment) -> dict[str, str]:
    return {pk: item["status"]["S"] for pk, item in ledger_items(env).items() if pk.startswith("batch#")}


def s3_body(env: LocalEnvironment, key: str) -> bytes:
    s3 = env.stack.client("s3")
    body: bytes = s3.get_object(Bucket=env.stack.physical["OutputBucket"], Key=key)["Body"].read()
    return body


def s3_keys(env: LocalEnvironment) -> list[str]:
    listing = env.stack.client("s3").list_objects_v2(Bucket=env.stack.physical["OutputBucket"])
    return sorted(o["Key"] for o in listing.get("Contents", []))


def dead_letters(env: LocalEnvironment) -> list[dict[str, Any]]:
    sqs = env.stack.client("sqs")
    reply = sqs.receive_message(
        QueueUrl=env.stack.physical["ConfirmationDeadLetterQueue"],
        MaxNumberOfMessages=10,
        MessageAttributeNames=["All"],
    )
    return reply.get("Messages", [])


def stored_batch(env: LocalEnvironment, key: str, batch_id: str) -> KeptBatch:
    """A GLExport as stored in S3: the legacy XML, or the REST JSON mapped onto the same models."""
    if key.endswith(".json"):
        return read_json(s3_body(env, key), batch_id)
    return read_xml(s3_body(env, key))


def raw_name(env: LocalEnvironment) -> str:
    return "glexport.json" if env.backend == "rest" else "glexport.xml"


def detail_types(env: LocalEnvironment) -> list[str]:
    return [event["detail-type"] for event in env.events()]


# --- download ------------------------------------------------------------------------------


def test_download_writes_outputs_records_the_batch_and_announces_it(env: LocalEnvironment) -> None:
    result = download(env)
    assert result["status"] == "downloaded"
    batch_id = result["batch_id"]
    assert result["counts"] == {"invoices": 12, "expenses": 4, "procurement": 3}
    prefix = f"gl-batches/main/{batch_id}/"
    assert s3_keys(env) == [prefix + raw_name(env), prefix + "manifest.json", prefix + "records.jsonl"]

    document = stored_batch(env, prefix + raw_name(env), batch_id)
    manifest = json.loads(s3_body(env, prefix + "manifest.json"))
    assert document.batch_id == batch_id
    assert manifest["gl_entry_ids"] == document.gl_entry_ids()
    assert {k: str(v) for k, v in document.totals().items()} == result["totals"]
    lines = s3_body(env, prefix + "records.jsonl").splitlines()
    elements = [json.loads(line)["element"] for line in lines]
    assert elements.count("Transaction") == 12 and elements.count("PurchaseTransaction") == 3

    assert batches(env) == {f"batch#main#{batch_id}": "DOWNLOADED"}
    ledger = ledger_items(env)[f"batch#main#{batch_id}"]
    assert "gl_entry_ids" not in ledger  # id lists live in the S3 manifest
    events = env.events()
    assert [e["detail-type"] for e in events] == ["GLBatchDownloaded"]
    assert events[0]["detail"]["totals"] == result["totals"]
    assert events[0]["detail"]["keys"]["manifest"] == prefix + "manifest.json"


def test_glexport_in_s3_is_byte_for_byte_what_connectwise_sent(
    env: LocalEnvironment, sandbox: SandboxServer
) -> None:
    sent: list[bytes] = []
    if env.backend == "rest":
        original_rest = sandbox.rest.handle

        def rest_spy(*args: Any) -> Any:
            reply = original_rest(*args)
            if args[:2] == ("POST", "/v4_6_release/apis/3.0/finance/accounting/export"):
                sent.append(jsonmoney.dumps(reply.body))  # what the server writes on the wire
            return reply

        sandbox.rest.handle = rest_spy  # type: ignore[method-assign]
    else:
        original = sandbox.accounting.export

        def spy(form: Any) -> bytes:
            sent.append(original(form))
            return sent[-1]

        sandbox.accounting.export = spy  # type: ignore[method-assign]
    result = download(env)
    assert s3_body(env, result["keys"]["glexport"]) == sent[0]


def test_nothing_to_export_makes_no_batch_and_no_event(env: LocalEnvironment, sandbox: SandboxServer) -> None:
    result = download(env, {"connection": "main", "kinds": ["invoices"], "thru_date": "2000-01-01"})
    assert result["status"] == "empty"
    assert ledger_items(env) == {}  # no batch and no claim left behind
    assert s3_keys(env) == []
    assert detail_types(env) == []


def test_open_batch_is_reannounced_instead_of_downloading_again(
    env: LocalEnvironment, sandbox: SandboxServer
) -> None:
    first = download(env)
    requests_after_first = sandbox.requests_seen
    second = download(env)
    assert second["status"] == "reannounced" and second["batch_ids"] == [first["batch_id"]]
    assert sandbox.requests_seen == requests_after_first  # ConnectWise was not asked again
    assert len(batches(env)) == 1
    events = env.events()
    assert [e["detail"]["reannounced"] for e in events] == [False, True]


def test_records_of_an_open_batch_are_not_handed_out_by_an_overlapping_schedule(
    env: LocalEnvironment,
) -> None:
    first = download(env, {"connection": "main", "kinds": ["invoices"]})
    overlapping = download(env)  # invoices + expenses + procurement
    assert overlapping["status"] == "reannounced"
    assert overlapping["batch_ids"] == [first["batch_id"]]
    assert len(batches(env)) == 1


def test_kinds_without_records_are_not_held(env: LocalEnvironment) -> None:
    env.stack.client("sqs")  # no-op; keeps the environment warm
    download(env, {"connection": "main", "kinds": ["invoices"]})
    expenses = download(env, {"connection": "main", "kinds": ["expenses"]})
    assert expenses["status"] == "downloaded"
    assert len(batches(env)) == 2


def test_two_concurrent_downloads_make_one_batch(env: LocalEnvironment, sandbox: SandboxServer) -> None:
    sandbox.faults.set({"latency_ms": 300})  # both invocations are inside ConnectWise at once
    results: list[dict[str, Any]] = []
    start = threading.Barrier(2)

    def run() -> None:
        start.wait()
        results.append(download(env))

    threads = [threading.Thread(target=run) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(r["status"] for r in results) == ["busy", "downloaded"]
    assert len(batches(env)) == 1
    assert sandbox.accounting.exports == 1


def test_crash_between_s3_write_and_ledger_write_leaves_no_complete_batch(
    env: LocalEnvironment, monkeypatch: pytest.MonkeyPatch
) -> None:
    def crash(self: Ledger, *args: Any) -> None:
        raise RuntimeError("simulated crash after the S3 write")

    monkeypatch.setattr(Ledger, "record_download", crash)
    with pytest.raises(RuntimeError, match="simulated crash"):
        download(env)
    assert s3_keys(env)  # the outputs were written...
    assert ledger_items(env) == {}  # ...but no batch exists and the claim is released
    assert detail_types(env) == []
    monkeypatch.undo()
    retry = download(env)
    assert retry["status"] == "downloaded"
    assert batches(env) == {f"batch#main#{retry['batch_id']}": "DOWNLOADED"}


def test_claim_of_a_killed_invocation_is_taken_over_once_stale(env: LocalEnvironment) -> None:
    ledger = Ledger(env.stack.client("dynamodb"), env.stack.physical["LedgerTable"])
    import time

    now = int(time.time())
    assert ledger.claim("main", ["invoices"], "dead-token", now - 3600, stale_after=300) == []
    assert download(env, {"connection": "main", "kinds": ["invoices"]})["status"] == "downloaded"
    # A fresh claim is respected.
    assert ledger.claim("main", ["expenses"], "live-token", now, stale_after=300) == []
    assert download(env, {"connection": "main", "kinds": ["expenses"]})["status"] == "busy"


def test_connectwise_errors_release_the_claim(env: LocalEnvironment, sandbox: SandboxServer) -> None:
    sandbox.faults.set({"malformed": 1})
    with pytest.raises(DocumentError):
        download(env)
    sandbox.faults.set({"statuses": [503] * 10, "retry_after": 0})
    with pytest.raises(TransportError):
        download(env)
    assert ledger_items(env) == {}
    sandbox.faults.set({"statuses": []})
    assert download(env)["status"] == "downloaded"


def test_wrong_credentials_are_a_clear_error_without_the_secret(env: LocalEnvironment) -> None:
    secrets = env.stack.client("secretsmanager")
    value = json.loads(secrets.get_secret_value(SecretId="connectwise/main")["SecretString"])
    key = "private_key" if env.backend == "rest" else "password"
    secrets.put_secret_value(
        SecretId="connectwise/main", SecretString=json.dumps(value | {key: "Wr0ng-Pa55"})
    )
    from aws_lambda_powertools.utilities import parameters

    parameters.clear_caches()
    with pytest.raises(AuthenticationError) as caught:
        download(env)
    assert "Wr0ng-Pa55" not in str(caught.value)
    if env.backend == "rest":
        assert "connection 'main'" in str(caught.value)
    assert ledger_items(env) == {}


def test_malformed_schedule_event_is_a_clear_error(env: LocalEnvironment) -> None:
    with pytest.raises(InvalidRequestError, match="kinds"):
        download(env, {"connection": "main", "kinds": ["payroll"]})
    with pytest.raises(InvalidRequestError, match="expected a JSON object"):
        invoke(env.stack, "DownloadGLBatchFunction", ["not", "an", "object"])  # type: ignore[arg-type]


def test_unknown_or_disabled_connection_is_a_clear_error(env: LocalEnvironment) -> None:
    from scripts.harness import admin_for
    from scripts.lambda_local import cold_start
    from tasks.admin.commands import set_enabled
    from tasks.platform.errors import ConfigurationError

    with pytest.raises(
        ConfigurationError, match="unknown connection 'other': it is not in the connection registry"
    ):
        download(env, {"connection": "other", "kinds": ["invoices"]})
    set_enabled(admin_for(env.stack), "main", False)
    cold_start()  # a container started after the disable (one started before sees it within a minute)
    with pytest.raises(ConfigurationError, match="connection 'main' is disabled in the connection registry"):
        download(env)
    assert ledger_items(env) == {}


# --- update --------------------------------------------------------------------------------


def test_confirmation_posts_the_batch_on_connectwise(env: LocalEnvironment, sandbox: SandboxServer) -> None:
    batch_id = download(env)["batch_id"]
    responses = confirm(env, {"connection": "main", "batch_id": batch_id})
    assert responses == [{"batchItemFailures": []}]
    assert batches(env) == {f"batch#main#{batch_id}": "POSTED"}
    assert not [pk for pk in ledger_items(env) if pk.startswith("open#")]  # kinds released
    assert sandbox.accounting.unposted_invoice_numbers() == []
    assert detail_types(env) == ["GLBatchDownloaded", "GLBatchPosted"]
    assert download(env)["status"] == "empty"


def test_redelivered_confirmation_is_a_no_op(env: LocalEnvironment, sandbox: SandboxServer) -> None:
    batch_id = download(env)["batch_id"]
    confirmation = {"connection": "main", "batch_id": batch_id}
    confirm(env, confirmation)
    requests_after_first = sandbox.requests_seen
    assert confirm(env, confirmation, confirmation) == [{"batchItemFailures": []}]
    assert sandbox.requests_seen == requests_after_first
    assert detail_types(env).count("GLBatchPosted") == 1
    assert dead_letters(env) == []


def test_partial_confirmation_posts_only_those_records(env: LocalEnvironment) -> None:
    first = download(env, {"connection": "main", "kinds": ["invoices"]})
    document = stored_batch(env, first["keys"]["glexport"], first["batch_id"]).document
    accepted = document.Transactions[0]
    ids = accepted.GLEntryRecID + [i for detail in accepted.Details for i in detail.GLEntryRecID]
    confirm(env, {"connection": "main", "batch_id": first["batch_id"], "gl_entry_ids": ids})
    posted = env.events()[-1]
    assert posted["detail-type"] == "GLBatchPosted" and posted["detail"]["partial"] is True
    assert posted["detail"]["posted"] == len(ids)
    second = download(env, {"connection": "main", "kinds": ["invoices"]})
    assert second["status"] == "downloaded" and second["counts"]["invoices"] == 11


def test_unknown_batch_is_recorded_in_the_dlq_and_not_retried(env: LocalEnvironment) -> None:
    responses = confirm(env, {"connection": "main", "batch_id": "no-such-batch"})
    assert responses == [{"batchItemFailures": []}]  # acknowledged: retrying cannot help
    [dead] = dead_letters(env)
    error = dead["MessageAttributes"]["error"]["StringValue"]
    assert error == (
        "unknown batch no-such-batch for connection 'main': it was not downloaded here, so its confirmation "
        "must list its GL entry ids (gl_entry_ids) to adopt it: what it held cannot be known here"
    )
    assert json.loads(dead["Body"])["batch_id"] == "no-such-batch"


@pytest.mark.parametrize(
    ("body", "error"),
    [
        ("{not json", "expected a JSON object"),
        ({"batch_id": "x"}, "connection: Field required"),
        ({"connection": "main", "batch_id": "x", "amount": 1}, "amount: Extra inputs are not permitted"),
    ],
)
def test_malformed_confirmation_goes_to_the_dlq_with_its_error(
    env: LocalEnvironment, body: Any, error: str
) -> None:
    assert confirm(env, body) == [{"batchItemFailures": []}]
    [dead] = dead_letters(env)
    assert error in dead["MessageAttributes"]["error"]["StringValue"]


def test_ids_outside_the_batch_are_refused(env: LocalEnvironment) -> None:
    batch_id = download(env)["batch_id"]
    confirm(env, {"connection": "main", "batch_id": batch_id, "gl_entry_ids": [1, 2]})
    [dead] = dead_letters(env)
    assert f"GL entry ids not in batch {batch_id}: 1, 2" in dead["MessageAttributes"]["error"]["StringValue"]
    assert batches(env) == {f"batch#main#{batch_id}": "DOWNLOADED"}


def test_transient_failure_is_retried_and_then_succeeds(
    env: LocalEnvironment, sandbox: SandboxServer
) -> None:
    batch_id = download(env)["batch_id"]
    sandbox.faults.set({"statuses": [503] * 4, "retry_after": 0})  # one try and three retries
    sqs = env.stack.client("sqs")
    sqs.send_message(
        QueueUrl=env.stack.physical["ConfirmationQueue"],
        MessageBody=json.dumps({"connection": "main", "batch_id": batch_id}),
    )
    first = poll_sqs(env.stack, "ConfirmationQueue", "UpdateGLBatchFunction")
    assert len(first[0]["batchItemFailures"]) == 1
    assert batches(env) == {f"batch#main#{batch_id}": "DOWNLOADED"}  # back from POSTING, ready for the retry
    second = poll_sqs(env.stack, "ConfirmationQueue", "UpdateGLBatchFunction")
    assert second == [{"batchItemFailures": []}]
    assert batches(env) == {f"batch#main#{batch_id}": "POSTED"}


def test_connectwise_refusal_fails_the_batch_which_keeps_its_records(
    env: LocalEnvironment, client: Any
) -> None:
    batch_id = download(env, {"connection": "main", "kinds": ["invoices"]})["batch_id"]
    # Someone posted the same GL entries in another batch directly on ConnectWise.
    other = client.download_gl_batch(["invoices"])
    client.update_gl_batch(other.batch_id, other.gl_entry_ids())
    assert confirm(env, {"connection": "main", "batch_id": batch_id}) == [{"batchItemFailures": []}]
    assert batches(env) == {f"batch#main#{batch_id}": "FAILED"}
    failed = env.events()[-1]
    assert failed["detail-type"] == "GLBatchFailed" and "already in batch" in failed["detail"]["error"]
    with pytest.raises(BatchBlockedError, match=f"blocked by batch {batch_id} \\(FAILED: .*already in batch"):
        download(env)  # a failed run: the operator hears of it


def test_abandon_gives_the_records_back(env: LocalEnvironment) -> None:
    first = download(env)
    confirm(env, {"connection": "main", "batch_id": first["batch_id"], "action": "abandon"})
    assert batches(env) == {f"batch#main#{first['batch_id']}": "ABANDONED"}
    again = download(env)
    assert again["status"] == "downloaded" and again["batch_id"] != first["batch_id"]
    assert again["counts"] == first["counts"]


# --- recreate ------------------------------------------------------------------------------


def test_recreate_writes_the_document_under_the_batch_with_the_filters(env: LocalEnvironment) -> None:
    first = download(env)
    confirm(env, {"connection": "main", "batch_id": first["batch_id"]})
    document = stored_batch(env, first["keys"]["glexport"], first["batch_id"]).document
    invoice_id = int(document.Transactions[0].DocumentNumber.removeprefix("CW-"))
    request = {
        "connection": "main",
        "batch_id": first["batch_id"],
        "filters": {"exclude_invoice_ids": [invoice_id]},
    }
    result = invoke(env.stack, "RecreateGLBatchFunction", request)
    assert result["status"] == "recreated" and result["counts"]["invoices"] == 11
    assert result["keys"]["glexport"].startswith(f"gl-batches/main/{first['batch_id']}/recreated/")
    recorded = json.loads(s3_body(env, result["keys"]["request"]))
    assert recorded["filters"]["exclude_invoice_ids"] == [invoice_id]
    assert stored_batch(env, result["keys"]["glexport"], first["batch_id"]).counts()["invoices"] == 11
    assert detail_types(env)[-1] == "GLBatchRecreated"


def test_recreate_accepts_an_eventbridge_event(env: LocalEnvironment) -> None:
    first = download(env)
    confirm(env, {"connection": "main", "batch_id": first["batch_id"]})
    event = {
        "version": "0",
        "id": "6a7e8feb-b491-4cf7-a9f1-bf3703467718",
        "detail-type": "RecreateGLBatch",
        "source": "connectwise.connector.requests",
        "account": "123456789012",
        "time": "2026-11-28T12:00:00Z",
        "region": "us-east-1",
        "resources": [],
        "detail": {"connection": "main", "batch_id": first["batch_id"]},
    }
    assert invoke(env.stack, "RecreateGLBatchFunction", event)["counts"] == first["counts"]


def test_recreate_of_an_unknown_batch_is_a_clear_error(env: LocalEnvironment) -> None:
    with pytest.raises(UnknownBatchError, match="Cannot find GL batch nope"):
        invoke(env.stack, "RecreateGLBatchFunction", {"connection": "main", "batch_id": "nope"})
    assert s3_keys(env) == []


def test_transient_failures_end_in_the_dlq_after_the_redrive_limit(env: LocalEnvironment) -> None:
    batch_id = download(env)["batch_id"]
    # Another invocation is mid-update (fresh POSTING): every delivery is a transient failure.
    ledger = Ledger(env.stack.client("dynamodb"), env.stack.physical["LedgerTable"])
    import time

    ledger.start_posting("main", batch_id, int(time.time()), stale_after=300)
    sqs = env.stack.client("sqs")
    sqs.send_message(
        QueueUrl=env.stack.physical["ConfirmationQueue"],
        MessageBody=json.dumps({"connection": "main", "batch_id": batch_id}),
    )
    limit = int(env.stack.parameters["ConfirmationMaxReceiveCount"])
    for _ in range(limit):
        [response] = poll_sqs(env.stack, "ConfirmationQueue", "UpdateGLBatchFunction")
        assert len(response["batchItemFailures"]) == 1
    assert poll_sqs(env.stack, "ConfirmationQueue", "UpdateGLBatchFunction") == []
    [dead] = dead_letters(env)
    assert json.loads(dead["Body"])["batch_id"] == batch_id


# --- confirmations under faults (issue 10) ---------------------------------------------------


def test_a_confirmation_naming_entries_a_posted_batch_was_not_posted_with_is_refused_loudly(
    env: LocalEnvironment, capsys: Any
) -> None:
    first = download(env, {"connection": "main", "kinds": ["invoices"]})
    document = stored_batch(env, first["keys"]["glexport"], first["batch_id"]).document
    accepted = document.Transactions[0]
    ids = accepted.GLEntryRecID + [i for detail in accepted.Details for i in detail.GLEntryRecID]
    partial = {"connection": "main", "batch_id": first["batch_id"], "gl_entry_ids": ids}
    confirm(env, partial)
    env.events()
    # Later the accounting system says it posted every record of the batch.
    assert confirm(env, {"connection": "main", "batch_id": first["batch_id"]}) == [{"batchItemFailures": []}]
    [dead] = dead_letters(env)
    error = dead["MessageAttributes"]["error"]["StringValue"]
    assert f"batch {first['batch_id']} was already posted with {len(ids)} of its" in error
    assert "They stayed unposted on ConnectWise and are handed out again" in error
    [refused] = env.events()
    assert refused["detail-type"] == "GLBatchConfirmationRefused" and refused["detail"]["gl_entry_ids"]
    assert not set(refused["detail"]["gl_entry_ids"]) & set(ids)
    metrics = [json.loads(line) for line in capsys.readouterr().out.splitlines() if '"_aws"' in line]
    assert metrics[-1]["ConfirmationsRejected"] == [1.0]
    assert batches(env) == {f"batch#main#{first['batch_id']}": "POSTED"}
    # The same partial confirmation again is a redelivery: nothing to do, nothing refused.
    assert confirm(env, partial) == [{"batchItemFailures": []}]
    assert dead_letters(env) == [] and env.events() == []


def test_a_failed_batch_keeps_its_confirmation_and_the_same_confirmation_sent_again_posts_it(
    env: LocalEnvironment, sandbox: SandboxServer
) -> None:
    first = download(env, {"connection": "main", "kinds": ["invoices"]})
    env.events()
    sandbox.faults.set({"statuses": [400]})  # ConnectWise refuses this once
    confirm(env, {"connection": "main", "batch_id": first["batch_id"]})
    assert batches(env) == {f"batch#main#{first['batch_id']}": "FAILED"}
    [failed] = env.events()
    kept = failed["detail"]["confirmation"]
    assert kept == f"gl-batches/main/{first['batch_id']}/confirmation.json"
    assert ledger_items(env)[f"batch#main#{first['batch_id']}"]["confirmation"]["S"] == kept
    stored = json.loads(s3_body(env, kept))
    manifest = json.loads(s3_body(env, first["keys"]["manifest"]))
    assert stored["gl_entry_ids"] == manifest["gl_entry_ids"]
    assert confirm(env, s3_body(env, kept).decode()) == [{"batchItemFailures": []}]  # re-sent as kept
    assert batches(env) == {f"batch#main#{first['batch_id']}": "POSTED"}
    assert sandbox.accounting.unposted_invoice_numbers() == []


def test_an_update_whose_reply_is_cut_short_is_checked_against_connectwise(
    env: LocalEnvironment, sandbox: SandboxServer
) -> None:
    """ConnectWise posted, but the reply did not arrive whole: the batch is POSTED, not FAILED."""
    first = download(env)
    sandbox.faults.set({"malformed": 1, "methods": ["POST"]})  # the update runs, its reply is cut
    assert confirm(env, {"connection": "main", "batch_id": first["batch_id"]}) == [{"batchItemFailures": []}]
    assert batches(env) == {f"batch#main#{first['batch_id']}": "POSTED"}
    assert detail_types(env) == ["GLBatchDownloaded", "GLBatchPosted"]
    assert download(env)["status"] == "empty"


def test_a_batch_exported_past_today_is_checked_as_far_as_its_own_thru_date(
    env: LocalEnvironment, sandbox: SandboxServer
) -> None:
    """ConnectWise posted a batch holding an invoice dated after today, but the reply was cut: the
    check re-exports through the batch's own thru date, finds every entry, and records POSTED."""
    later = date.today() + timedelta(days=20)
    sandbox.accounting.site.invoices[0].date = later
    first = download(env, {"connection": "main", "kinds": ["invoices"], "thru_date": later.isoformat()})
    assert first["counts"]["invoices"] == len(sandbox.accounting.site.invoices)
    sandbox.faults.set({"malformed": 1, "methods": ["POST"]})  # the update runs, its reply is cut
    assert confirm(env, {"connection": "main", "batch_id": first["batch_id"]}) == [{"batchItemFailures": []}]
    assert batches(env) == {f"batch#main#{first['batch_id']}": "POSTED"}
    assert detail_types(env) == ["GLBatchDownloaded", "GLBatchPosted"]
    kept = json.loads(s3_body(env, f"gl-batches/main/{first['batch_id']}/confirmation.json"))
    manifest = json.loads(s3_body(env, first["keys"]["manifest"]))
    assert kept["gl_entry_ids"] == manifest["gl_entry_ids"]  # every entry, the future-dated ones too


def test_an_update_lost_before_connectwise_ran_it_is_retried_not_failed(
    env: LocalEnvironment, sandbox: SandboxServer
) -> None:
    first = download(env)
    sandbox.faults.set({"statuses": [502], "methods": ["POST"]})  # a gateway gave up: did it run?
    sqs = env.stack.client("sqs")
    sqs.send_message(
        QueueUrl=env.stack.physical["ConfirmationQueue"],
        MessageBody=json.dumps({"connection": "main", "batch_id": first["batch_id"]}),
    )
    [retried] = poll_sqs(env.stack, "ConfirmationQueue", "UpdateGLBatchFunction")
    assert len(retried["batchItemFailures"]) == 1  # ConnectWise does not hold it: retried
    assert batches(env) == {f"batch#main#{first['batch_id']}": "DOWNLOADED"}
    assert poll_sqs(env.stack, "ConfirmationQueue", "UpdateGLBatchFunction") == [{"batchItemFailures": []}]
    assert batches(env) == {f"batch#main#{first['batch_id']}": "POSTED"}


def test_abandoning_a_posted_batch_is_a_clear_permanent_refusal(env: LocalEnvironment) -> None:
    first = download(env)
    confirm(env, {"connection": "main", "batch_id": first["batch_id"]})
    abandon = {"connection": "main", "batch_id": first["batch_id"], "action": "abandon"}
    assert confirm(env, abandon) == [{"batchItemFailures": []}]  # not retried: it can never succeed
    [dead] = dead_letters(env)
    assert (
        "is POSTED: its records are posted on ConnectWise and cannot be given back"
        in (dead["MessageAttributes"]["error"]["StringValue"])
    )
    assert batches(env) == {f"batch#main#{first['batch_id']}": "POSTED"}


def test_a_poison_confirmation_fails_alone(env: LocalEnvironment) -> None:
    first = download(env)
    poison = "[" * 100_000 + "]" * 100_000  # RecursionError in the JSON decoder
    assert confirm(env, poison, {"connection": "main", "batch_id": first["batch_id"]}) == [
        {"batchItemFailures": []}
    ]
    assert batches(env) == {f"batch#main#{first['batch_id']}": "POSTED"}
    [dead] = dead_letters(env)
    assert "expected a JSON object" in dead["MessageAttributes"]["error"]["StringValue"]


@pytest.mark.parametrize("event", [None, {}, {"Records": [{"messageId": "m1"}]}])
def test_a_malformed_sqs_event_is_a_clear_error(env: LocalEnvironment, event: Any) -> None:
    with pytest.raises(InvalidRequestError, match="not an SQS event"):
        invoke(env.stack, "UpdateGLBatchFunction", event)


def test_each_confirmation_of_a_batch_is_logged_under_its_own_connection(env: LocalEnvironment) -> None:
    """A message that cannot be read is not logged under the connection of the message before it."""
    from tasks.platform.observability import logger

    bodies = [json.dumps({"connection": env.connection, "batch_id": "never-downloaded"}), "not JSON"]
    event = sqs_event(
        [
            {"MessageId": f"m{n}", "ReceiptHandle": f"rh{n}", "Body": body, "MD5OfBody": "-"}
            for n, body in enumerate(bodies)
        ],
        "arn:aws:sqs:us-east-1:123456789012:confirmations",
    )
    written = io.StringIO()
    previous = logger.registered_handler.setStream(written)  # type: ignore[attr-defined]
    try:
        assert invoke(env.stack, "UpdateGLBatchFunction", event) == {"batchItemFailures": []}
    finally:
        logger.registered_handler.setStream(previous)  # type: ignore[attr-defined]
    rejected = {
        line["message_id"]: line
        for line in map(json.loads, written.getvalue().splitlines())
        if line["message"] == "message rejected and copied to the DLQ"
    }
    assert rejected["m0"]["connection"] == env.connection
    assert "connection" not in rejected["m1"]
