"""How every client uses HTTP: time budgets, writes never repeated, redirects never followed."""

import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from decimal import Decimal
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from connectwise.accounting_interface.client import AccountingClient
from connectwise.errors import OutcomeUnknownError, TransportError
from connectwise.rest.client import RestClient
from connectwise.soap.client import IntegratorLogin, SoapClient
from connectwise.transport import Deadline
from sandbox.server import SandboxServer
from tests.conftest import rest_connection, sandbox_connection

NOW = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)


class _Capture(BaseHTTPRequestHandler):
    seen: list[str] = []

    def _any(self) -> None:
        self.seen.append(self.command + " " + self.path)
        self.send_response(200)
        self.send_header("Content-Length", "0")
        self.end_headers()

    do_GET = do_POST = do_PUT = _any

    def log_message(self, *args: Any) -> None:
        pass


def soap_client(sandbox: SandboxServer) -> SoapClient:
    login = IntegratorLogin(
        company="sandbox",
        integrator_login_id="integrator",
        integrator_password="sandbox-integrator",
        site=sandbox.site_address,
        use_ssl=False,
    )
    return SoapClient(login, retries=0)


@pytest.fixture
def elsewhere() -> Iterator[tuple[str, list[str]]]:
    """Another host (by name and port) that records whatever reaches it."""
    seen: list[str] = []
    handler = type("Capture", (_Capture,), {"seen": seen})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://localhost:{server.server_address[1]}", seen
    server.shutdown()
    server.server_close()


def test_no_client_follows_a_redirect_with_its_credentials(
    sandbox: SandboxServer, elsewhere: tuple[str, list[str]]
) -> None:
    url, seen = elsewhere
    legacy = AccountingClient(sandbox_connection(sandbox), retries=0)
    rest = RestClient(rest_connection(sandbox), retries=0)
    rest.codebase()
    soap = soap_client(sandbox)
    calls = [
        lambda: legacy.update_invoice_payment(
            sandbox.accounting.site.invoices[0].number, Decimal("1.00"), NOW
        ),
        lambda: rest.download_gl_batch(["invoices"]),
        lambda: soap.get_reports(),
    ]
    for call in calls:
        sandbox.faults.set({"redirect_to": f"{url}/steal?x=1"})
        with pytest.raises(TransportError, match="redirect") as caught:
            call()
        assert not caught.value.transient
        assert (
            f"{url.removeprefix('http://')}/steal" in caught.value.message
            and "x=1" not in caught.value.message
        )
    assert seen == []  # nothing, credentials least of all, reached the other host


def test_a_write_is_never_sent_again_after_its_reply_was_lost(sandbox: SandboxServer) -> None:
    """The Accounting Interface's HTTP layer used to re-send a POST after a read timeout: a late
    first copy could then land after a newer amount."""
    client = AccountingClient(sandbox_connection(sandbox), timeout=(1.0, 0.3), retries=3, backoff=0)
    invoice = sandbox.accounting.site.invoices[0]
    sandbox.faults.set({"hangs": 1, "hang_seconds": 0.8})
    with pytest.raises(OutcomeUnknownError, match=r"did not answer within 0\.3 s"):
        client.update_invoice_payment(invoice.number, Decimal("5.00"), NOW)
    time.sleep(0.8)  # it lands late
    assert sandbox.accounting.payment_updates == 1 and invoice.paid_amount == Decimal("5.00")
    sandbox.faults.set({"hangs": 1, "hang_seconds": 0.8})
    assert client.download_gl_batch(["invoices"]).counts()["invoices"] == 12  # an export is repeated


def test_a_cut_reply_to_a_write_is_an_unknown_outcome(sandbox: SandboxServer) -> None:
    client = AccountingClient(sandbox_connection(sandbox), retries=0)
    invoice = sandbox.accounting.site.invoices[1]
    sandbox.faults.set({"malformed": 1})
    with pytest.raises(OutcomeUnknownError, match="ConnectWise may have applied it") as caught:
        client.update_invoice_payment(invoice.number, Decimal("2.00"), NOW)
    assert caught.value.transient and invoice.paid_amount == Decimal("2.00")


def test_every_call_fits_the_time_left(sandbox: SandboxServer, monkeypatch: pytest.MonkeyPatch) -> None:
    waits: list[float] = []
    monkeypatch.setattr("connectwise.transport.time.sleep", waits.append)
    client = RestClient(rest_connection(sandbox), retries=3).within(Deadline(40, reserve=10))
    sandbox.faults.set({"statuses": [429], "retry_after": 3600})  # ConnectWise says: in an hour
    started = time.monotonic()
    with pytest.raises(TransportError, match="asked to wait 3600 s") as caught:
        client.list_batches()
    assert caught.value.transient and waits == [] and time.monotonic() - started < 5
    sandbox.faults.set({"statuses": [429], "retry_after": 7})
    assert client.list_batches() == [] and waits == [7.0]  # a wait that fits is honoured

    sent: list[Any] = []
    original = client.session.request
    monkeypatch.setattr(
        client.session, "request", lambda *a, **k: sent.append(k["timeout"]) or original(*a, **k)
    )
    client.within(Deadline(12, reserve=10)).list_batches()
    assert sent and all(read <= 2.0 for _, read in sent)  # the read timeout is cut to what is left
    with pytest.raises(TransportError, match="no time left"):
        client.within(Deadline(10.5, reserve=10)).list_batches()


def test_a_soap_call_fits_the_time_left(sandbox: SandboxServer) -> None:
    soap = soap_client(sandbox)
    with pytest.raises(TransportError, match="no time left"):
        soap.within(Deadline(10.5, reserve=10)).get_reports()
    assert soap.within(Deadline(12, reserve=10)).get_reports()
    assert soap._transport.operation_timeout <= 2.0  # the call's timeout was cut to what was left


class StreamedReply:
    """A reply asked for with stream=True: its chunks, then perhaps the connection dropping."""

    def __init__(self, chunks: list[bytes], breaks: bool = False) -> None:
        self.chunks, self.breaks = chunks, breaks

    def iter_content(self, chunk_size: int) -> Iterator[bytes]:
        import requests

        yield from self.chunks
        if self.breaks:
            raise requests.exceptions.ChunkedEncodingError("Connection broken: IncompleteRead")


def test_a_streamed_body_comes_chunk_by_chunk_and_a_break_is_transient() -> None:
    from connectwise import transport

    reply: Any = StreamedReply([b"abc", b"de"])
    assert list(transport.body(reply, "POST /x", Deadline())) == [b"abc", b"de"]
    broken: Any = StreamedReply([b"abc", b"de"], breaks=True)
    chunks = transport.body(broken, "POST /x", Deadline())
    assert next(chunks) == b"abc"
    with pytest.raises(TransportError, match=r"POST /x: the reply was cut short after 5 bytes") as caught:
        list(chunks)
    assert caught.value.transient


def test_a_streamed_body_stops_when_the_invocation_has_no_time_left() -> None:
    from connectwise import transport

    reply: Any = StreamedReply([b"abc", b"de"])
    with pytest.raises(
        TransportError, match="still arriving after 3 bytes when the invocation ran out of time"
    ):
        list(transport.body(reply, "POST /x", Deadline(seconds=5, reserve=10)))
