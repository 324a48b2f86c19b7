"""runner.batch end to end over the in-process mock: the same requests as live calls, one line
per row with its batch_id, collected twice without a duplicate, row failures and lost rows
recorded, the state file and `rows_in_open_batches`, and the live rerun of failed rows."""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import pytest
from _batch_helpers import ledger_lines, write_spec

from runner.batch import (
    BatchLimits,
    PollPolicy,
    finish_batches,
    read_state,
    retry_live,
    rows_in_open_batches,
    start_batches,
    vars_by_row,
)
from runner.batch.rerun import rows_to_retry
from runner.dataset import Item, run_items
from runner.engine import Session
from runner.errors import ConfigError
from runner.spec import load_spec

pytestmark = pytest.mark.anyio
FAST = PollPolicy(initial=0.01, maximum=0.05)


def items(count: int) -> list[Item]:
    return [Item(f"r{i}", {"n": i}, i + 1) for i in range(count)]


async def run_batch(session: Session, spec_path: Path, rows: list[Item], **kw: object) -> list:
    spec = load_spec(spec_path)
    started = await start_batches(session, spec, rows, input_path=None, **kw)  # type: ignore[arg-type]
    return await finish_batches(
        session, spec, started.batch_ids, rows=vars_by_row(spec, rows), policy=FAST
    )


async def test_batch_lines_match_live_lines_at_half_the_cost(tmp_path: Path) -> None:
    spec_path = write_spec(tmp_path)
    rows = items(60)
    live_ledger, batch_ledger = tmp_path / "live.jsonl", tmp_path / "batch.jsonl"
    async with Session(mock=True, ledger=live_ledger) as session:
        spec = load_spec(spec_path)
        results = [r async for r in run_items(session, spec, rows, concurrency=8)]
        assert all(r.status == "ok" for r in results)
    async with Session(mock=True, ledger=batch_ledger) as session:
        summaries = await run_batch(session, spec_path, rows)
    assert [s.ok for s in summaries] == [60]
    live = {line["row"]: line for line in ledger_lines(live_ledger)}
    batch = {line["row"]: line for line in ledger_lines(batch_ledger)}
    assert live.keys() == batch.keys() and len(batch) == 60
    for key, line in batch.items():
        twin = live[key]
        assert line["batch_id"] == summaries[0].batch_id and "batch_id" not in twin
        for field in ("request_sha256", "messages", "vars", "params", "output", "usage"):
            assert line[field] == twin[field], (key, field)
        # The installed genai-prices names itself: its version is whatever pip chose.
        assert line["cost"]["source"] == twin["cost"]["source"] + ", batch price"
        assert twin["cost"]["source"].startswith("genai-prices ")
        assert Fraction(twin["cost"]["usd"]) == 2 * Fraction(line["cost"]["usd"])
    total_live = sum(Fraction(x["cost"]["usd"]) for x in live.values())
    total_batch = sum(Fraction(x["cost"]["usd"]) for x in batch.values())
    assert total_batch / total_live == Fraction(1, 2)


async def test_split_into_parts_and_collected_once(tmp_path: Path) -> None:
    ledger = tmp_path / "runs" / "ledger.jsonl"
    spec_path = write_spec(tmp_path)
    spec = load_spec(spec_path)
    rows = items(25)
    async with Session(mock=True, ledger=ledger) as session:
        started = await start_batches(
            session, spec, rows, input_path=None, limits=BatchLimits(max_requests=10)
        )
        assert len(started.batch_ids) == 3
        assert set(rows_in_open_batches(ledger, spec.sha256)) == {r.key for r in rows}
        assert rows_in_open_batches(ledger, "0" * 64) == {}
        first = await finish_batches(session, spec, started.batch_ids, policy=FAST)
        again = await finish_batches(session, spec, started.batch_ids, policy=FAST)
    assert [s.written for s in first] == [10, 10, 5]
    assert [(s.written, s.skipped) for s in again] == [(0, 10), (0, 10), (0, 5)]
    lines = ledger_lines(ledger)
    assert len(lines) == 25 and len({line["row"] for line in lines}) == 25
    assert all(line["vars"] is None for line in lines)  # no data set given to collect
    assert rows_in_open_batches(ledger, spec.sha256) == {}
    state = read_state(ledger)
    assert len(state) == 3 and all(s.collected and s.status == "completed" for s in state.values())
    assert len({s.group for s in state.values()}) == 1


async def test_splits_by_bytes_too(tmp_path: Path) -> None:
    spec_path = write_spec(tmp_path)
    async with Session(mock=True, ledger=tmp_path / "l.jsonl") as session:
        spec = load_spec(spec_path)
        started = await start_batches(
            session, spec, items(6), input_path=None, limits=BatchLimits(max_bytes=1000)
        )
    sizes = [p.bytes for p in started.built.parts]
    assert len(sizes) > 1 and all(size <= 1000 for size in sizes)
    assert sum(len(p.rows) for p in started.built.parts) == 6


async def test_failed_and_invalid_rows_then_a_live_rerun(tmp_path: Path) -> None:
    ledger = tmp_path / "l.jsonl"
    spec_path = write_spec(tmp_path, headers={"X-Mock-Fault": "invalid_output"})
    rows = items(4)
    async with Session(mock=True, ledger=ledger) as session:
        summaries = await run_batch(session, spec_path, rows)
        assert summaries[0].invalid == 4 and summaries[0].ok == 0
        lines = ledger_lines(ledger)
        assert {line["status"] for line in lines} == {"invalid_output"}
        assert all(line["usage"]["completion"] > 0 for line in lines)  # billed all the same
        assert all(len(line["attempts"]) == 1 for line in lines)  # no re-ask inside a batch
        spec = load_spec(spec_path)
        batch_id = summaries[0].batch_id
        assert rows_to_retry(ledger, [batch_id], spec.sha256) == {r.key for r in rows}
    # The rerun goes through the normal Session: the same fault header, so still invalid here,
    # but recorded as live lines; the batch lines stay.
    plain = write_spec(tmp_path)
    spec = load_spec(plain)
    async with Session(mock=True, ledger=ledger) as session:
        results = await retry_live(session, spec, {"r1", "r2"}, rows)
    assert sorted(r.key for r in results) == ["r1", "r2"]
    lines = ledger_lines(ledger)
    assert len(lines) == 6
    live = [line for line in lines if "batch_id" not in line]
    assert sorted(line["row"] for line in live) == ["r1", "r2"]


async def test_row_errors_expiry_and_missing_rows(tmp_path: Path) -> None:
    ledger = tmp_path / "l.jsonl"
    spec_path = write_spec(tmp_path, headers={"X-Mock-Fault": "batch_expire=0.5;batch_missing=2"})
    async with Session(mock=True, ledger=ledger) as session:
        [summary] = await run_batch(session, spec_path, items(10))
    assert summary.status == "expired"
    assert (summary.ok, dict(summary.kinds)) == (5, {"batch_expired": 5})
    lines = ledger_lines(ledger)
    assert len(lines) == 10
    lost = [line for line in lines if line["status"] == "error"]
    assert {line["error"]["type"] for line in lost} == {"BatchRowLost"}
    assert all(line["usage"]["total"] == 0 and line["cost"]["usd"] == 0 for line in lost)

    ledger2 = tmp_path / "l2.jsonl"
    spec_path = write_spec(tmp_path, headers={"X-Mock-Fault": "batch_missing=3;status=503"})
    async with Session(mock=True, ledger=ledger2) as session:
        [summary] = await run_batch(session, spec_path, items(5))
    assert dict(summary.kinds) == {"batch_missing": 3, "server_error": 2}
    assert len(ledger_lines(ledger2)) == 5


async def test_a_changed_spec_cannot_collect_an_old_batch(tmp_path: Path) -> None:
    spec_path = write_spec(tmp_path)
    async with Session(mock=True, ledger=tmp_path / "l.jsonl") as session:
        started = await start_batches(session, load_spec(spec_path), items(2), input_path=None)
        spec_path.write_text(spec_path.read_text() + "description: changed\n")
        with pytest.raises(ConfigError, match="another version"):
            await finish_batches(session, load_spec(spec_path), started.batch_ids, policy=FAST)
    assert ledger_lines(tmp_path / "l.jsonl") == []


async def test_collect_without_waiting_refuses_a_running_batch(tmp_path: Path) -> None:
    spec_path = write_spec(tmp_path, headers={"X-Mock-Fault": "batch_delay=1h"})
    spec = load_spec(spec_path)
    async with Session(mock=True, ledger=tmp_path / "l.jsonl") as session:
        started = await start_batches(session, spec, items(2), input_path=None)
        with pytest.raises(ConfigError, match="still in_progress"):
            await finish_batches(session, spec, started.batch_ids, wait=False)
    assert ledger_lines(tmp_path / "l.jsonl") == []
