"""REST: the export holds fewer invoices than were listed as unposted. The download must refuse
it after reading, leaving nothing visible, nothing recorded, nothing announced, the claim free."""

from typing import Any

import pytest

import sandbox.rest as rest_sandbox
from connectwise.errors import ConnectWiseError
from scripts.harness import LocalEnvironment
from tests.integration.test_gl_life_cycle import detail_types, download, ledger_items, s3_keys
from tests.integration.test_gl_streaming import pending_uploads


@pytest.fixture
def backend() -> str:
    return "rest"


def test_an_export_short_of_one_invoice_is_refused_and_leaves_nothing(
    env: LocalEnvironment, monkeypatch: pytest.MonkeyPatch
) -> None:
    owner = next(c for c in vars(rest_sandbox).values() if isinstance(c, type) and hasattr(c, "_export"))
    original = owner._export

    def short(self: Any, request: dict[str, Any], batch: Any) -> dict[str, Any]:
        reply = original(self, request, batch)
        reply["transactions"] = reply["transactions"][:-1]
        return reply

    monkeypatch.setattr(owner, "_export", short)
    with pytest.raises(ConnectWiseError, match="invoices"):
        download(env)
    assert s3_keys(env) == [] and pending_uploads(env) == []
    assert ledger_items(env) == {} and detail_types(env) == []
    monkeypatch.setattr(owner, "_export", original)
    assert download(env)["status"] == "downloaded"
