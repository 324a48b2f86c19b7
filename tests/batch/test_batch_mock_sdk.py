"""The mock server's Files and Batches endpoints, driven by the official openai SDK against
`runner mock-server` on loopback: upload, create, poll, download, cancel, list, and the
batch faults (expiry, missing rows, row failures) and OpenAI's input file checks."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from typing import Any

import openai
import pytest

from runner.mock.batches import BatchFaults, parse_batch_faults
from runner.mock.faults import Faults


def _line(i: int, **extra: Any) -> dict[str, Any]:
    body = {
        "model": "gpt-4o-mini",
        "messages": [{"role": "user", "content": f"Say {i}."}],
        "max_tokens": 30,
    }
    return {
        "custom_id": f"row-{i}",
        "method": "POST",
        "url": "/v1/chat/completions",
        "body": body,
        **extra,
    }


def _file(rows: list[dict[str, Any]]) -> bytes:
    return "\n".join(json.dumps(r) for r in rows).encode() + b"\n"


@pytest.fixture(scope="module")
def server() -> Iterator[str]:
    exe = shutil.which("runner") or f"{sys.prefix}/bin/runner"
    proc = subprocess.Popen(
        [exe, "mock-server", "--port", "0", "--batch-delay", "300ms"],
        stderr=subprocess.PIPE,
        stdout=subprocess.DEVNULL,
        text=True,
    )
    try:
        assert proc.stderr is not None
        match = re.search(r"on http://[^:]+:(\d+)/v1", proc.stderr.readline())
        assert match is not None
        yield f"http://127.0.0.1:{match.group(1)}/v1"
    finally:
        proc.terminate()
        proc.wait(timeout=10)
        if proc.stderr is not None:
            proc.stderr.close()


@pytest.fixture
def client(server: str) -> Iterator[openai.OpenAI]:
    with openai.OpenAI(base_url=server, api_key="sk-test", max_retries=0) as c:
        yield c


def _wait(client: openai.OpenAI, batch_id: str) -> Any:
    for _ in range(100):
        batch = client.batches.retrieve(batch_id)
        if batch.status in ("completed", "expired", "cancelled", "failed"):
            return batch
        time.sleep(0.05)
    raise AssertionError("the batch never ended")


def test_upload_create_poll_download(client: openai.OpenAI) -> None:
    uploaded = client.files.create(
        file=("in.jsonl", _file([_line(i) for i in range(4)])), purpose="batch"
    )
    assert uploaded.purpose == "batch" and uploaded.bytes > 0
    assert client.files.retrieve(uploaded.id).filename == "in.jsonl"
    batch = client.batches.create(
        input_file_id=uploaded.id,
        endpoint="/v1/chat/completions",
        completion_window="24h",
        metadata={"runner_spec": "city"},
    )
    assert batch.status == "validating" and batch.metadata == {"runner_spec": "city"}
    assert client.batches.retrieve(batch.id).status == "in_progress"
    done = _wait(client, batch.id)
    assert done.status == "completed" and done.error_file_id is None
    assert done.request_counts is not None and done.request_counts.completed == 4
    rows = [json.loads(x) for x in client.files.content(done.output_file_id).text.splitlines()]
    assert sorted(r["custom_id"] for r in rows) == [f"row-{i}" for i in range(4)]
    # The same answer the chat endpoint gives for the same request.
    live = client.chat.completions.create(**_line(2)["body"])
    row2 = next(r for r in rows if r["custom_id"] == "row-2")
    assert row2["response"]["status_code"] == 200
    assert row2["response"]["body"]["choices"][0]["message"]["content"] == (
        live.choices[0].message.content
    )
    assert row2["response"]["body"]["usage"]["prompt_tokens"] == live.usage.prompt_tokens  # type: ignore[union-attr]
    assert done.usage is not None and done.usage.input_tokens == sum(
        r["response"]["body"]["usage"]["prompt_tokens"] for r in rows
    )
    assert batch.id in [b.id for b in client.batches.list(limit=100)]


def test_files_are_listed_newest_first_by_purpose(client: openai.OpenAI) -> None:
    """GET /v1/files, as the SDK pages it (and as `runner probe` asks whether it exists)."""
    first = client.files.create(file=("a.jsonl", _file([_line(1)])), purpose="batch")
    second = client.files.create(file=("b.jsonl", _file([_line(2)])), purpose="batch")
    other = client.files.create(file=("c.txt", b"notes"), purpose="user_data")
    batch_ids = [f.id for f in client.files.list(purpose="batch")]
    assert batch_ids.index(second.id) < batch_ids.index(first.id)
    assert other.id not in batch_ids
    page = client.files.list(limit=1, order="asc")
    assert len(page.data) == 1 and page.has_more
    everything = [f.id for f in client.files.list(order="asc")]
    assert everything.index(first.id) < everything.index(second.id) < everything.index(other.id)
    with pytest.raises(openai.BadRequestError, match="limit must be between"):
        client.files.list(limit=0)


def test_cancel_keeps_what_was_done(client: openai.OpenAI) -> None:
    uploaded = client.files.create(
        file=("in.jsonl", _file([_line(i) for i in range(10)])), purpose="batch"
    )
    batch = client.batches.create(
        input_file_id=uploaded.id, endpoint="/v1/chat/completions", completion_window="24h"
    )
    assert client.batches.cancel(batch.id).status == "cancelling"
    done = client.batches.retrieve(batch.id)
    assert done.status == "cancelled" and done.error_file_id is not None
    errors = [json.loads(x) for x in client.files.content(done.error_file_id).text.splitlines()]
    assert errors and all(e["error"]["code"] == "batch_cancelled" for e in errors)
    assert done.request_counts is not None
    assert done.request_counts.completed + len(errors) == 10
    with pytest.raises(openai.BadRequestError):
        client.batches.cancel(batch.id)


def test_expiry_missing_rows_and_row_faults(client: openai.OpenAI) -> None:
    uploaded = client.files.create(
        file=("in.jsonl", _file([_line(i) for i in range(10)])), purpose="batch"
    )
    batch = client.batches.create(
        input_file_id=uploaded.id,
        endpoint="/v1/chat/completions",
        completion_window="24h",
        extra_headers={"X-Mock-Fault": "batch_delay=0s;batch_expire=0.5;batch_missing=2"},
    )
    done = _wait(client, batch.id)
    assert done.status == "expired"
    out = client.files.content(done.output_file_id).text.splitlines()
    err = [json.loads(x) for x in client.files.content(done.error_file_id).text.splitlines()]
    assert len(out) == 5 and len(err) == 3  # 2 rows are in neither file
    assert {e["error"]["code"] for e in err} == {"batch_expired"}

    failing = client.batches.create(
        input_file_id=uploaded.id,
        endpoint="/v1/chat/completions",
        completion_window="24h",
        extra_headers={"X-Mock-Fault": "batch_delay=0s;status=500"},
    )
    done = _wait(client, failing.id)
    assert done.status == "completed" and done.output_file_id is None
    err = [json.loads(x) for x in client.files.content(done.error_file_id).text.splitlines()]
    assert len(err) == 10 and {e["response"]["status_code"] for e in err} == {500}


def test_the_input_file_is_checked_as_openai_checks_it(client: openai.OpenAI) -> None:
    rows = [_line(1), _line(1), {**_line(2), "url": "/v1/embeddings"}]
    uploaded = client.files.create(file=("bad.jsonl", _file(rows) + b"{oops\n"), purpose="batch")
    batch = client.batches.create(
        input_file_id=uploaded.id, endpoint="/v1/chat/completions", completion_window="24h"
    )
    assert batch.status == "failed" and batch.errors is not None
    codes = {(e.code, e.line) for e in batch.errors.data or []}
    assert codes == {
        ("duplicate_custom_id", 2),
        ("mismatched_endpoint", 3),
        ("invalid_json_line", 4),
    }
    with pytest.raises(openai.NotFoundError):
        client.files.retrieve("file-nope")
    with pytest.raises(openai.NotFoundError):
        client.batches.retrieve("batch_nope")
    with pytest.raises(openai.BadRequestError):
        client.batches.create(
            input_file_id=uploaded.id, endpoint="/v1/chat/completions", completion_window="1h"
        )  # type: ignore[arg-type]


def test_batch_fault_header_parsing() -> None:
    faults, batch = parse_batch_faults(
        "batch_delay=2s;batch_missing=3;status=503", Faults(), BatchFaults()
    )
    assert batch == BatchFaults(delay=2.0, missing=3) and faults.statuses == (503,)
    with pytest.raises(ValueError, match="batch_expire"):
        parse_batch_faults("batch_expire=2", Faults(), BatchFaults())
