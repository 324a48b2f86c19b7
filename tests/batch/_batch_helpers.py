"""Shared by the tests in tests/batch: a small spec with an output schema, data sets, ledger
reading, and the mock server on a loopback port in a thread. Not a test module."""

from __future__ import annotations

import contextlib
import json
import queue
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from _ledger_schema import LINE_VALIDATOR

from runner.mock.server import serve

SPEC = """\
name: say
model: gpt-4o-mini
params: {max_tokens: 40}
inputs: {type: object, properties: {n: {type: integer}}, required: [n]}
messages: [{role: user, content: 'Say {{ n }}.'}]
output:
  schema:
    type: object
    properties: {word: {type: string}}
    required: [word]
    additionalProperties: false
"""


def write_spec(
    folder: Path, *, headers: dict[str, str] | None = None, base_url: str | None = None
) -> Path:
    text = SPEC
    provider: dict[str, Any] = {}
    if headers:
        provider["headers"] = headers
    if base_url:
        provider["base_url"] = base_url
    if provider:
        text += f"provider: {json.dumps(provider)}\n"
    path = folder / "say.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def write_rows(folder: Path, count: int, name: str = "rows.jsonl") -> Path:
    path = folder / name
    with path.open("w", encoding="utf-8") as f:
        for i in range(count):
            f.write(json.dumps({"id": f"r{i}", "n": i}) + "\n")
    return path


def ledger_lines(path: Path) -> list[dict[str, Any]]:
    """The ledger's lines, each checked against schemas/ledger-line.schema.json."""
    if not path.exists():
        return []
    lines = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]
    for line in lines:
        LINE_VALIDATOR.validate(line)
    return lines


@contextlib.contextmanager
def loopback(**kw: Any) -> Iterator[str]:
    """The mock server on a free loopback port, in a thread: its base URL."""
    ports: queue.Queue[int] = queue.Queue()
    stop = threading.Event()
    thread = threading.Thread(
        target=serve, kwargs={"port": 0, "ready": ports.put, "stop": stop, **kw}, daemon=True
    )
    thread.start()
    try:
        yield f"http://127.0.0.1:{ports.get(timeout=15)}/v1"
    finally:
        stop.set()
        thread.join(10)
