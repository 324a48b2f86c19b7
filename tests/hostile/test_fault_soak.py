"""Fault soak: 2,000 rows through `runner mock-server` (its own process, on loopback) with about
20% of tries failing — 429 with Retry-After, 500, 503, dropped connections, truncated and
malformed streams, schema-breaking output — at 64 calls in flight. Every row must end `ok` with
exactly one ledger line, the retries recorded in its attempts, nothing raised."""

from __future__ import annotations

import asyncio
import os
import re
import subprocess
import sys
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest

from runner.dataset import Item, run_items
from runner.engine import Session
from runner.ledger import read_records
from runner.spec import load_spec

ROWS = int(os.environ.get("RUNNER_SOAK_ROWS", "2000"))
KEY = "sk-soak-NOT-A-REAL-KEY-0123456789abcdefghij"
FAULTS = [
    "--fail-rate", "0.12", "--status", "429,500,503", "--retry-after", "5ms",
    "--drop-rate", "0.03", "--truncate-rate", "0.03", "--malformed-rate", "0.02",
    "--invalid-output-rate", "0.03", "--seed", "7",
]  # fmt: skip


@pytest.fixture(scope="module")
def faulty_server() -> Iterator[str]:
    proc = subprocess.Popen(
        [sys.executable, "-m", "runner", "mock-server", "--port", "0", *FAULTS],
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stderr is not None
        line = proc.stderr.readline()
        found = re.search(r"http://127\.0\.0\.1:(\d+)/v1", line)
        assert found, f"the mock server did not start: {line!r}"
        yield found.group(0)
    finally:
        proc.terminate()
        proc.wait(10)
        if proc.stderr is not None:
            proc.stderr.close()


def write_spec(folder: Path, url: str, *, stream: bool) -> Path:
    path = folder / f"soak-{'stream' if stream else 'plain'}.yaml"
    path.write_text(
        f"name: soak-{'stream' if stream else 'plain'}\nmodel: gpt-4o-mini\n"
        f"provider: {{base_url: '{url}', api_key_env: SOAK_KEY}}\n"
        f"stream: {'true' if stream else 'false'}\n"
        "params: {max_tokens: 60}\n"
        "inputs: {type: object, properties: {n: {type: integer}}, required: [n]}\n"
        "messages: [{role: user, content: 'Describe item {{ n }}.'}]\n"
        "output:\n  schema:\n    type: object\n    additionalProperties: false\n"
        "    required: [name, size]\n    properties:\n"
        "      name: {type: string}\n      size: {type: integer}\n"
        "retry: {attempts: 10, backoff: {initial: 1ms, max: 20ms}}\n"
        "rate: {concurrency: 64}\n"
        "breaker: {failures: 1000, cooldown: 1s}\n",
        encoding="utf-8",
    )
    return path


def test_every_row_ends_ok_exactly_once(tmp_path: Path, faulty_server: str) -> None:
    ledger = tmp_path / "soak.jsonl"
    half = ROWS // 2

    async def soak() -> Counter[str]:
        statuses: Counter[str] = Counter()
        async with Session(ledger=ledger, environ={"SOAK_KEY": KEY}) as session:
            for stream, start in ((False, 0), (True, half)):
                spec = load_spec(write_spec(tmp_path, faulty_server, stream=stream))
                items = (Item(str(n), {"n": n}) for n in range(start, start + half))
                async for result in run_items(session, spec, items, concurrency=64):
                    statuses[result.status] += 1
        return statuses

    statuses = asyncio.run(soak())
    assert statuses == Counter({"ok": 2 * half})
    lines = list(read_records(ledger))
    assert len(lines) == 2 * half
    rows = Counter(line["row"] for line in lines)
    assert set(rows.values()) == {1}
    assert all(line["status"] == "ok" for line in lines)
    outcomes = Counter(a["outcome"] for line in lines for a in line["attempts"])
    failed_tries = sum(n for outcome, n in outcomes.items() if outcome != "ok")
    # Every kind of fault was met and retried, and about a fifth of the tries failed.
    assert {"rate_limit", "server_error", "connection", "invalid_output"} <= set(outcomes)
    assert 0.12 < failed_tries / sum(outcomes.values()) < 0.30, outcomes
    assert KEY not in ledger.read_text(encoding="utf-8")
