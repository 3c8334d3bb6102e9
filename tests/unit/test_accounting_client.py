"""The Accounting Interface client against the sandbox: results, typed errors, retries."""

import pytest
from pydantic import ValidationError

from connectwise.accounting_interface import wire
from connectwise.accounting_interface.client import AccountingClient, Connection
from connectwise.errors import AuthenticationError, DocumentError, PsaError, TransportError, UnknownBatchError
from connectwise.models import KINDS, RecreateFilters
from sandbox.server import SandboxServer
from tests.conftest import sandbox_connection
from tests.glexport_kept import keep


def test_download_update_and_recreate(client: AccountingClient, sandbox: SandboxServer) -> None:
    batch = client.download_gl_batch(KINDS)
    assert batch.counts() == {"invoices": 12, "expenses": 4, "procurement": 3}
    assert client.update_gl_batch(batch.batch_id, batch.gl_entry_ids()) == wire.UPDATE_SUCCESS
    assert client.download_gl_batch(KINDS).is_empty
    again = client.recreate_gl_batch(batch.batch_id)
    assert again.batch_id == batch.batch_id
    assert again.summary() == batch.summary()


def test_recreate_applies_include_and_exclude_filters(
    client: AccountingClient, sandbox: SandboxServer
) -> None:
    batch = keep(client.download_gl_batch, KINDS)
    client.update_gl_batch(batch.batch_id, batch.gl_entry_ids())
    invoice_ids = [int(t.DocumentNumber.removeprefix("CW-")) for t in batch.document.Transactions]
    excluded = client.recreate_gl_batch(
        batch.batch_id, filters=RecreateFilters(exclude_invoice_ids=invoice_ids[:2])
    )
    assert excluded.counts()["invoices"] == 10
    included = keep(
        client.recreate_gl_batch, batch.batch_id, filters=RecreateFilters(include_invoice_ids=invoice_ids[:3])
    )
    assert [t.DocumentNumber for t in included.document.Transactions] == [f"CW-{i}" for i in invoice_ids[:3]]


def test_partial_update_leaves_the_rest_unposted(client: AccountingClient) -> None:
    batch = keep(client.download_gl_batch, ["invoices"])
    first = batch.document.Transactions[0]
    ids = first.GLEntryRecID + [i for d in first.Details for i in d.GLEntryRecID]
    client.update_gl_batch(batch.batch_id, ids)
    later = keep(client.download_gl_batch, ["invoices"])
    assert later.counts()["invoices"] == 11
    assert first.DocumentNumber not in {t.DocumentNumber for t in later.document.Transactions}


def test_empty_update_gives_connectwise_documented_error(client: AccountingClient) -> None:
    batch = client.download_gl_batch(["invoices"])
    with pytest.raises(PsaError, match=r"^Cannot find GLEntryRecIDList to update$") as caught:
        client.update_gl_batch(batch.batch_id, [])
    assert not caught.value.transient


def test_unknown_batch(client: AccountingClient) -> None:
    with pytest.raises(UnknownBatchError, match="Cannot find GL batch nope"):
        client.update_gl_batch("nope", [1000])
    with pytest.raises(UnknownBatchError):
        client.recreate_gl_batch("nope")


def test_entries_of_another_batch_are_refused(client: AccountingClient) -> None:
    first = client.download_gl_batch(["invoices"])
    second = client.download_gl_batch(["invoices"])
    client.update_gl_batch(first.batch_id, first.gl_entry_ids())
    with pytest.raises(PsaError, match="is already in batch"):
        client.update_gl_batch(second.batch_id, second.gl_entry_ids())


def test_wrong_password_is_an_authentication_error_without_the_password(sandbox: SandboxServer) -> None:
    client = AccountingClient(sandbox_connection(sandbox, password="wrong-pass-123"), retries=0)
    with pytest.raises(AuthenticationError) as caught:
        client.download_gl_batch(["invoices"])
    assert "wrong-pass-123" not in str(caught.value)
    assert "wrong-pass-123" not in repr(client.connection)


def test_transient_statuses_are_retried(client: AccountingClient, sandbox: SandboxServer) -> None:
    sandbox.faults.set({"statuses": [503, 502], "retry_after": 0})
    assert client.download_gl_batch(["invoices"]).counts()["invoices"] == 12
    assert sandbox.requests_seen == 3


def test_429_honours_retry_after_and_succeeds(client: AccountingClient, sandbox: SandboxServer) -> None:
    sandbox.faults.set({"statuses": [429], "retry_after": 1})
    assert not client.download_gl_batch(["invoices"]).is_empty
    assert sandbox.requests_seen == 2


def test_persistent_5xx_is_a_transient_transport_error(
    client: AccountingClient, sandbox: SandboxServer
) -> None:
    sandbox.faults.set({"statuses": [503] * 10, "retry_after": 0})
    with pytest.raises(TransportError) as caught:
        client.download_gl_batch(["invoices"])
    assert caught.value.transient and caught.value.status == 503
    assert caught.value.message == "ExportGLBatch: HTTP 503 from ConnectWise: sandbox fault: HTTP 503"
    assert sandbox.requests_seen == 3  # first try + 2 retries


def test_client_errors_are_not_retried(client: AccountingClient, sandbox: SandboxServer) -> None:
    sandbox.faults.set({"statuses": [400]})
    with pytest.raises(TransportError) as caught:
        client.download_gl_batch(["invoices"])
    assert not caught.value.transient and caught.value.status == 400
    assert sandbox.requests_seen == 1


def test_timeout_is_a_transient_error(sandbox: SandboxServer) -> None:
    client = AccountingClient(sandbox_connection(sandbox), timeout=(1, 0.3), retries=1, backoff=0)
    sandbox.faults.set({"hangs": 5, "hang_seconds": 1.0})
    with pytest.raises(TransportError, match=r"did not answer within 0\.3 s") as caught:
        client.download_gl_batch(["invoices"])
    assert caught.value.transient


def test_truncated_reply_is_a_document_error(client: AccountingClient, sandbox: SandboxServer) -> None:
    sandbox.faults.set({"malformed": 1})
    with pytest.raises(DocumentError, match="cut short: it ends after") as caught:
        client.download_gl_batch(["invoices"])
    assert caught.value.transient  # the reply ended early: a later download may get it whole


def test_a_reply_cut_on_the_wire_is_transient(client: AccountingClient, sandbox: SandboxServer) -> None:
    sandbox.faults.set({"cut": 1})
    with pytest.raises(TransportError, match="ExportGLBatch: the reply was cut short after") as caught:
        client.download_gl_batch(["invoices"])
    assert caught.value.transient
    assert client.download_gl_batch(["invoices"]).counts()["invoices"] == 12


def test_unreachable_site_is_a_transport_error() -> None:
    connection = Connection(company="c", username="u", password="p", site="127.0.0.1:9", use_ssl=False)
    with pytest.raises(TransportError, match="cannot reach"):
        AccountingClient(connection, retries=0).download_gl_batch(["invoices"])


def test_at_least_one_kind_is_required(client: AccountingClient) -> None:
    with pytest.raises(ValueError, match="at least one"):
        client.download_gl_batch([])


def test_https_is_required_except_for_loopback() -> None:
    with pytest.raises(ValidationError, match="loopback"):
        Connection(company="c", username="u", password="p", site="cw.example.com", use_ssl=False)
    assert Connection(company="c", username="u", password="p", site="localhost:8080", use_ssl=False)
    secure = Connection(company="c", username="u", password="p", site="na.myconnectwise.net")
    assert (
        secure.url
        == "https://na.myconnectwise.net/v4_6_release/services/system_io/GLEntry/GeneralLedger.aspx"
    )
    with pytest.raises(ValidationError, match="without scheme"):
        Connection(company="c", username="u", password="p", site="https://cw.example.com")


def test_the_member_password_never_reaches_the_logs(
    client: AccountingClient, caplog: pytest.LogCaptureFixture
) -> None:
    import logging
    from datetime import UTC, datetime
    from decimal import Decimal

    with caplog.at_level(logging.DEBUG):
        client.download_gl_batch(["invoices"])
        client.update_invoice_payment("CW-30001", Decimal("1.00"), datetime(2026, 11, 2, tzinfo=UTC))
    assert caplog.records
    assert "sandbox-password" not in caplog.text
