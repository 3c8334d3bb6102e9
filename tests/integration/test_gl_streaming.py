"""The download streams the reply into S3 as it reads it: a reply cut short leaves nothing under
the batch's prefix (its uploads aborted), no batch, no event and the claim released, with a
transient error; the next run downloads the batch. Both backends."""

import os
from collections.abc import Iterator
from typing import Any

import pytest

from connectwise.errors import ConnectWiseError
from sandbox.server import SandboxServer, start_sandbox
from scripts.harness import LocalEnvironment
from tasks.platform.storage import PART_SIZE, Store
from tests.integration.test_gl_life_cycle import detail_types, download, ledger_items, s3_body, s3_keys


@pytest.fixture(params=["accounting_interface", "rest"])
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def sandbox() -> Iterator[SandboxServer]:
    """Enough invoices that half a reply is several of the reader's chunks."""
    server = start_sandbox(seed=7, invoices=60, expenses=4, purchases=3)
    yield server
    server.stop()


def pending_uploads(env: LocalEnvironment) -> list[str]:
    s3 = env.stack.client("s3")
    listing = s3.list_multipart_uploads(Bucket=env.stack.physical["OutputBucket"])
    return [upload["Key"] for upload in listing.get("Uploads", [])]


def test_a_reply_cut_short_leaves_nothing_announced_and_the_next_run_downloads(
    env: LocalEnvironment, sandbox: SandboxServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(Store, "part_size", 8 * 1024)  # parts go up before the cut (S3 takes them)
    started: list[str] = []
    original = Store.upload

    def noted(self: Store, key: str, content_type: str) -> Any:
        started.append(key)
        return original(self, key, content_type)

    monkeypatch.setattr(Store, "upload", noted)
    sandbox.faults.set({"cut": 1, "methods": ["POST"]})  # the export's reply, half of it, then nothing
    with pytest.raises(ConnectWiseError, match="cut short") as caught:
        download(env)
    assert caught.value.transient
    assert started and all(key.startswith("gl-batches/main/") for key in started)  # it had begun
    assert s3_keys(env) == [] and pending_uploads(env) == []  # nothing visible, nothing left over
    assert ledger_items(env) == {}  # the claim released, no batch recorded
    assert detail_types(env) == []  # nothing announced

    monkeypatch.setattr(Store, "part_size", PART_SIZE)
    result = download(env)
    assert result["status"] == "downloaded"
    prefix = f"gl-batches/main/{result['batch_id']}/"
    assert s3_keys(env) == sorted(
        prefix + name
        for name in (
            "manifest.json",
            "records.jsonl",
            "glexport.json" if env.backend == "rest" else "glexport.xml",
        )
    )
    assert detail_types(env) == ["GLBatchDownloaded"]


def test_a_document_cut_short_inside_a_whole_reply_is_refused_the_same_way(
    env: LocalEnvironment, sandbox: SandboxServer
) -> None:
    """The HTTP reply complete but the document in it ends early (a proxy cut it)."""
    sandbox.faults.set({"malformed": 1, "methods": ["POST"]})
    with pytest.raises(ConnectWiseError, match="cut short") as caught:
        download(env)
    assert caught.value.transient
    assert s3_keys(env) == [] and pending_uploads(env) == [] and ledger_items(env) == {}
    assert detail_types(env) == []
    assert download(env)["status"] == "downloaded"


@pytest.mark.parametrize("backend", ["accounting_interface"])
def test_a_big_object_goes_up_in_parts_and_reads_back_whole(env: LocalEnvironment) -> None:
    """An object bigger than a part is a multipart upload of S3's minimum part size or more."""
    store = Store(env.stack.client("s3"), env.stack.physical["OutputBucket"])
    data = os.urandom(Store.part_size * 2 + 12345)
    upload = store.upload("gl-batches/main/big/records.jsonl", "application/x-ndjson")
    for start in range(0, len(data), 100_000):
        upload.write(data[start : start + 100_000])
    assert pending_uploads(env) == ["gl-batches/main/big/records.jsonl"]  # begun, not visible
    assert s3_keys(env) == []
    assert upload.complete() == "gl-batches/main/big/records.jsonl"
    assert s3_body(env, "gl-batches/main/big/records.jsonl") == data and len(upload.parts) == 2
    small = store.upload("gl-batches/main/big/small.json", "application/json")
    small.write(b"{}")
    small.abort()  # never begun: nothing to abort, nothing written
    assert s3_keys(env) == ["gl-batches/main/big/records.jsonl"] and pending_uploads(env) == []
