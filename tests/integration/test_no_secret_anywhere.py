"""Every handler, at DEBUG, on both backends, on good and failing paths: no secret value in any
log line, S3 object, event or dead-letter message."""

import json
import logging
from collections.abc import Iterator
from typing import Any

import pytest

from sandbox.server import SandboxServer
from scripts.harness import SANDBOX_LOGINS, LocalEnvironment
from scripts.lambda_local import invoke, poll_sqs
from tasks.platform.observability import logger

ROTATED = "R0tated-but-wr0ng-value"
SECRETS = [
    SANDBOX_LOGINS["accounting_interface"]["password"],
    SANDBOX_LOGINS["rest"]["private_key"],
    SANDBOX_LOGINS["rest"]["client_id"],
    SANDBOX_LOGINS["accounting_interface"]["integrator"]["password"],
    ROTATED,
]
HARNESS = ("moto", "werkzeug", "scripts", "tests")  # the local emulators and this test, not the product


@pytest.fixture(params=["accounting_interface", "rest"])
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def debug(monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> Iterator[None]:
    """The functions' logger and every other logger at DEBUG, as an operator chasing a problem might set them."""
    monkeypatch.setenv("POWERTOOLS_LOG_LEVEL", "DEBUG")
    level = logger.log_level
    logger.setLevel(logging.DEBUG)
    with caplog.at_level(logging.DEBUG):
        yield
    logger.setLevel(level)


def test_no_handler_leaves_a_secret_anywhere(
    env: LocalEnvironment,
    sandbox: SandboxServer,
    debug: None,
    caplog: pytest.LogCaptureFixture,
    capsys: pytest.CaptureFixture[str],
) -> None:
    stack, sqs = env.stack, env.stack.client("sqs")
    number = sandbox.accounting.site.invoices[0].number

    def send(queue: str, body: Any) -> None:
        sqs.send_message(QueueUrl=stack.physical[queue], MessageBody=json.dumps(body))

    def run_everything() -> None:
        first = invoke(stack, "DownloadGLBatchFunction", {"connection": "main", "kinds": ["invoices"]})
        if first.get("batch_id"):
            send("ConfirmationQueue", {"connection": "main", "batch_id": first["batch_id"]})
            poll_sqs(stack, "ConfirmationQueue", "UpdateGLBatchFunction")
            invoke(stack, "RecreateGLBatchFunction", {"connection": "main", "batch_id": first["batch_id"]})
        send(
            "PaymentsQueue",
            {
                "invoice_number": number,
                "paid_amount": "1.00",
                "payment_id": "P1",
                "date_paid": "2026-11-20T10:00:00+00:00",
            },
        )
        send("PaymentsQueue", "not a payment")
        poll_sqs(stack, "PaymentsQueue", "UploadInvoicePaymentsFunction")
        invoke(stack, "ListReportsFunction", {"connection": "main"})
        invoke(stack, "RunReportFunction", {"connection": "main", "report": "Invoices", "limit": 5})
        for records in ("Agreements", "Companies", "Invoices", "Opportunities", "PurchaseOrders"):
            invoke(stack, f"Download{records}Function", {"connection": "main"})

    run_everything()
    # Credentials rotated on ConnectWise's side and a wrong value in the secret: every path fails.
    secrets = stack.client("secretsmanager")
    value = json.loads(secrets.get_secret_value(SecretId="connectwise/main")["SecretString"])
    wrong = value | {k: ROTATED for k in ("password", "private_key") if k in value}
    if "integrator" in value:
        wrong["integrator"] = value["integrator"] | {"password": ROTATED}
    secrets.put_secret_value(SecretId="connectwise/main", SecretString=json.dumps(wrong))
    from aws_lambda_powertools.utilities import parameters

    parameters.clear_caches()
    for attempt in (
        lambda: invoke(stack, "DownloadGLBatchFunction", {"connection": "main", "kinds": ["expenses"]}),
        lambda: invoke(stack, "ListReportsFunction", {"connection": "main"}),
    ):
        with pytest.raises(Exception) as failed:
            attempt()
        assert not any(secret in str(failed.value) + repr(failed.value) for secret in SECRETS)
    send(
        "PaymentsQueue",
        {
            "invoice_number": number,
            "paid_amount": "2.00",
            "payment_id": "P2",
            "date_paid": "2026-11-21T10:00:00+00:00",
        },
    )
    poll_sqs(stack, "PaymentsQueue", "UploadInvoicePaymentsFunction")

    seen = capsys.readouterr()
    product_logs = [r for r in caplog.records if not r.name.startswith(HARNESS)]
    assert any(r.levelno == logging.DEBUG for r in product_logs)  # DEBUG really was on
    assert any(r.name.startswith("urllib3") for r in product_logs)  # the HTTP layers did log
    everything = "\n".join(
        [seen.out, seen.err, *(logging.Formatter().format(r) for r in product_logs)]
        + _objects(env)
        + [json.dumps(e) for e in env.events()]
        + _dead_letters(env)
    )
    assert "InvoicePaymentFailed" in everything and "payments/" in everything  # the outputs were read
    for secret in SECRETS:
        assert secret not in everything


def _objects(env: LocalEnvironment) -> list[str]:
    s3, bucket = env.stack.client("s3"), env.stack.physical["OutputBucket"]
    keys = [o["Key"] for o in s3.list_objects_v2(Bucket=bucket).get("Contents", [])]
    return [
        k + "\n" + s3.get_object(Bucket=bucket, Key=k)["Body"].read().decode("utf-8", "replace") for k in keys
    ]


def _dead_letters(env: LocalEnvironment) -> list[str]:
    sqs = env.stack.client("sqs")
    found = []
    for queue in ("PaymentsDeadLetterQueue", "ConfirmationDeadLetterQueue"):
        reply = sqs.receive_message(
            QueueUrl=env.stack.physical[queue], MaxNumberOfMessages=10, MessageAttributeNames=["All"]
        )
        found += [json.dumps(m) for m in reply.get("Messages", [])]
    return found
