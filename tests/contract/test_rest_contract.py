"""The REST contract check (tests/rest_contract.py, applied to every test by conftest) can fail,
and covers every operation the client uses."""

import re
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import requests

from connectwise.models import KINDS
from connectwise.rest.api import ACCEPT
from connectwise.rest.client import RestClient
from sandbox.rest import MEDIA_TYPE, Reply, RestApi
from sandbox.server import SandboxServer
from tests.rest_contract import Contract, spec

EXPORT = "/v4_6_release/apis/3.0/finance/accounting/export"
HEADERS = {"clientid": "x", "content-type": "application/json"}


def test_every_operation_the_client_uses_is_checked(rest_contract: Contract, rest_client: RestClient) -> None:
    batch = rest_client.download_gl_batch(KINDS)
    rest_client.update_gl_batch(batch.batch_id, batch.gl_entry_ids(), kinds=["invoices"])
    rest_client.recreate_gl_batch(batch.batch_id)
    rest_client.update_invoice_payment("CW-30001", Decimal("1.00"), datetime.now(UTC))
    rest_client.update_invoice_payment("CW-30001", Decimal("2.00"), datetime.now(UTC))
    operations = {
        re.sub(r"/\d+", "/{id}", call.replace("/v4_6_release/apis/3.0", "")) for call in rest_contract.checked
    }
    assert operations >= {
        "GET /finance/accounting/unpostedinvoices",
        "POST /finance/accounting/export",
        "GET /finance/accounting/batches",
        "POST /finance/accounting/batches",
        "POST /finance/accounting/batches/{id}/export",
        "GET /finance/invoices",
        "GET /finance/invoices/{id}/payments",
        "POST /finance/invoices/{id}/payments",
        "PUT /finance/invoices/{id}/payments/{id}",
    }  # fmt: skip
    assert rest_contract.violations == []


def test_a_reply_outside_the_schema_is_a_violation(rest_contract: Contract) -> None:
    export = {"transactions": [{"id": 1, "total": "12.00", "detail": [{"id": "x"}]}]}
    rest_contract.check("POST", EXPORT, HEADERS, b'{"exportInvoicesFlag": true}', Reply(201, export))
    assert len(rest_contract.violations) == 1 and "reply POST" in rest_contract.violations[0]
    rest_contract.violations.clear()  # the fixture would fail this test otherwise


def test_a_request_outside_the_schema_is_a_violation(rest_contract: Contract) -> None:
    body = b'{"batchIdentifier": "b", "processedRecordIds": ["1001"]}'
    batches = "/v4_6_release/apis/3.0/finance/accounting/batches"
    rest_contract.check("POST", batches, HEADERS, body, Reply(201, {}))
    assert [v for v in rest_contract.violations if v.startswith("request POST")]
    rest_contract.violations.clear()


def test_error_replies_are_connectwise_error_json(rest_contract: Contract) -> None:
    rest_contract.check("GET", EXPORT, {}, b"", Reply(400, {"code": "InvalidObject", "errors": "none"}))
    assert any("error reply" in v for v in rest_contract.violations)
    rest_contract.violations.clear()


def test_replies_carry_the_versioned_media_type(sandbox: SandboxServer, rest_client: RestClient) -> None:
    [media_type] = spec()["paths"]["/finance/accounting/export"]["post"]["responses"]["201"]["content"]
    assert media_type == MEDIA_TYPE and media_type == ACCEPT
    response = requests.post(
        rest_client._url("/finance/accounting/export"),
        json={"exportInvoicesFlag": True},
        headers=dict(rest_client.session.headers),
        auth=rest_client.session.auth,  # type: ignore[arg-type]
        timeout=10,
    )
    assert response.status_code == 201 and response.headers["Content-Type"] == media_type


def test_the_hook_sees_what_the_sandbox_serves(rest_contract: Contract, rest_client: RestClient) -> None:
    seen: list[Any] = []
    original = RestApi.handle
    RestApi.handle = lambda self, *args: seen.append(args) or original(self, *args)  # type: ignore[method-assign]
    try:
        rest_client.list_batches()
    finally:
        RestApi.handle = original  # type: ignore[method-assign]
    assert seen and rest_contract.checked[-1] == "GET /v4_6_release/apis/3.0/finance/accounting/batches"
