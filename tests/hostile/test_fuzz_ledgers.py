"""Random garbage in a ledger: whatever lines are mixed in (invalid JSON, wrong types, other
objects, a torn tail), `runner report` and a data set's `--resume` agree on how many rows are
done — and both count exactly the real `ok` lines."""

from __future__ import annotations

import asyncio
import json
import warnings
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from runner.dataset import Item, run_items
from runner.dataset.resume import done_rows
from runner.engine import Session
from runner.report import build_report
from runner.spec import PromptSpec, load_spec

ROWS = 12
GARBAGE = st.one_of(
    st.binary(max_size=40).filter(lambda b: b"\n" not in b),
    st.sampled_from(
        [
            b"{",
            b"null",
            b"[1, 2]",
            b'{"v": 1, "status": "ok"}',
            b'{"v": 1, "status": "ok", "row": "r1", "usage": {"prompt": "lots"}}',
            b'{"v": 99, "status": "ok", "row": "r2"}',
            b'{"status": "ok", "row": 5, "spec": "x"}',
        ]
    ),
)


@pytest.fixture(scope="module")
def recorded(tmp_path_factory: pytest.TempPathFactory) -> tuple[PromptSpec, list[bytes]]:
    folder = tmp_path_factory.mktemp("ledger")
    path = folder / "spec.yaml"
    path.write_text(
        "name: fuzz\nmodel: gpt-4o-mini\nparams: {max_tokens: 10}\n"
        "inputs: {type: object, properties: {n: {type: integer}}, required: [n]}\n"
        "messages: [{role: user, content: 'Say {{ n }}.'}]\n",
        encoding="utf-8",
    )
    spec = load_spec(path)
    ledger = folder / "ledger.jsonl"

    async def record() -> None:
        async with Session(mock=True, ledger=ledger) as session:
            items = [Item(f"r{i}", {"n": i}) for i in range(ROWS)]
            async for _ in run_items(session, spec, items, concurrency=4):
                pass

    asyncio.run(record())
    return spec, ledger.read_bytes().splitlines()


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    inserts=st.lists(st.tuples(st.integers(0, ROWS), GARBAGE), max_size=8),
    torn=st.booleans(),
)
def test_report_and_resume_agree(
    tmp_path: Path,
    recorded: tuple[PromptSpec, list[bytes]],
    inserts: list[tuple[int, bytes]],
    torn: bool,
) -> None:
    spec, lines = recorded
    mixed = list(lines)
    for at, junk in sorted(inserts, reverse=True):
        mixed.insert(at, junk)
    data = b"\n".join(mixed) + b"\n"
    if torn:
        data += lines[0][: len(lines[0]) // 2]  # a torn last line, as after a crash
    ledger = tmp_path / "mixed.jsonl"
    ledger.write_bytes(data)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the counts are what is checked here
        report = build_report([str(ledger)], by=["spec"])
    resumed = set(done_rows(ledger, spec.name, mock=True).ok)
    [group] = [g for g in report.groups if g["spec"] == "fuzz"]
    assert resumed == {f"r{i}" for i in range(ROWS)}
    assert group["ok"] == len(resumed) == ROWS
    assert json.loads(lines[0])["status"] == "ok"
