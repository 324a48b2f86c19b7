"""runner.dataset.run over the in-process mock: resume skips rows already ok for the same spec
content, the budget stops starting calls and lists the rest as skipped, a stop request lets the
calls in flight finish, map_rows_sync works from plain code, run-wide problems stop the run."""

from __future__ import annotations

import asyncio
import dataclasses
from decimal import Decimal
from pathlib import Path

import pytest

from runner.dataset import DatasetRun, Item, map_rows, map_rows_sync, row_line
from runner.dataset.resume import done_rows
from runner.engine import Session
from runner.errors import BadRequest, ConfigError
from runner.ledger import read_records
from runner.spec import load_spec
from runner.spec.model import PromptSpec

pytestmark = pytest.mark.anyio

SPEC = (
    "name: ds\nmodel: gpt-4o-mini\nparams: {max_tokens: 20}\n"
    "inputs: {type: object, properties: {n: {type: integer}}, required: [n]}\n"
    "messages: [{role: user, content: 'Say {{ n }}.'}]\n"
)


def make_spec(tmp_path: Path, text: str = SPEC) -> PromptSpec:
    path = tmp_path / "ds.yaml"
    path.write_text(text, encoding="utf-8")
    return load_spec(path)


def items(count: int) -> list[Item]:
    return [Item(str(i), {"n": i}, i) for i in range(1, count + 1)]


async def collect(run: DatasetRun) -> list[str]:
    return [f"{r.key}:{r.status}" async for r in run.results()]


async def test_resume_runs_only_the_rows_not_yet_ok(tmp_path: Path) -> None:
    spec = make_spec(tmp_path)
    ledger = tmp_path / "l.jsonl"
    rows = items(6) + [Item("bad", {"n": "x"})]
    async with Session(mock=True, ledger=ledger) as session:
        first = [r async for r in map_rows(session, spec, rows[:3] + rows[-1:], concurrency=2)]
        assert sorted(r.status for r in first) == ["error", "ok", "ok", "ok"]
        run = DatasetRun(session, spec, rows, resume=True, total=len(rows))
        second = await collect(run)
    assert sorted(second) == ["4:ok", "5:ok", "6:ok", "bad:error"]
    assert run.summary.resumed == 3 and run.summary.ok == 3 and run.summary.failed == 1
    assert run.summary.exit_code == 1
    oks = [line["row"] for line in read_records(ledger) if line["status"] == "ok"]
    assert sorted(oks) == [str(i) for i in range(1, 7)]  # every row ok exactly once


async def test_resume_counts_only_ok_lines_of_the_same_request(tmp_path: Path) -> None:
    ledger = tmp_path / "l.jsonl"
    spec = make_spec(tmp_path)
    async with Session(mock=True, ledger=ledger) as session:
        [r async for r in map_rows(session, spec, items(2))]
        fingerprints = {i.key: session.request_fingerprint(spec, i.vars) for i in items(2)}
    scan = done_rows(ledger, spec.name, mock=True)
    assert {row: scan.state(row, fp) for row, fp in fingerprints.items()} == {
        "1": "done",
        "2": "done",
    }
    assert done_rows(ledger, spec.name, mock=False).ok == {}  # mock answers: not for real
    assert scan.state("1", "0" * 64) == "changed"  # another request now: not done
    assert scan.state("3", "0" * 64) == "new"
    assert done_rows(tmp_path / "absent.jsonl", spec.name, mock=True).ok == {}
    edited = make_spec(tmp_path, SPEC.replace("Say", "Write"))
    async with Session(mock=True, ledger=ledger) as session:
        run = DatasetRun(session, edited, items(2), resume=True)
        assert sorted(await collect(run)) == ["1:ok", "2:ok"]  # the prompt changed: run again
    assert run.summary.changed == 2 and run.summary.resumed == 0


def test_resume_skips_torn_and_foreign_lines(tmp_path: Path) -> None:
    fp = "a" * 64
    ledger = tmp_path / "l.jsonl"

    def line(name: str, row: str, status: str) -> str:
        return (
            f'{{"spec":{{"name":"{name}"}},"request_sha256":"{fp}","row":{row},'
            f'"status":"{status}","mock":false}}\n'
        )

    ledger.write_text(
        line("ds", '"1"', "ok")
        + line("ds", '"2"', "error")
        + line("other", '"3"', "ok")
        + line("ds", "null", "ok")
        + line("ds", '"4"', "ok")[:-9],  # a line torn by a kill
        encoding="utf-8",
    )
    assert done_rows(ledger, "ds").ok == {"1": {fp}}


async def test_the_budget_stops_starting_calls(tmp_path: Path) -> None:
    spec = make_spec(tmp_path)
    ledger = tmp_path / "l.jsonl"
    async with Session(mock=True, ledger=ledger) as session:
        worst = session.preflight(spec, {"n": 1}).max_cost.usd
        assert worst is not None
        cap = worst * Decimal("3.5")  # room for three worst cases, never a fourth
        run = DatasetRun(session, spec, items(10), concurrency=2, max_cost=cap, total=10)
        results = [r async for r in run.results()]
    statuses = [r.status for r in results]
    assert statuses.count("skipped") == len(results) - statuses.count("ok")
    assert 3 <= statuses.count("ok") < 10
    skipped = [r for r in results if r.status == "skipped"]
    assert all(r.error is not None and r.error.kind == "budget" for r in skipped)
    assert row_line(skipped[0])["error"]["kind"] == "budget"
    assert run.summary.budget_stopped and run.summary.exit_code == 1
    assert run.summary.cost_usd <= cap
    assert len(list(read_records(ledger))) == statuses.count("ok")


@pytest.mark.filterwarnings("ignore:unknown model:runner.errors.RunnerWarning")
async def test_the_spec_budget_applies_and_an_unknown_worst_case_refuses(tmp_path: Path) -> None:
    spec = make_spec(tmp_path, SPEC + "budget: {max_cost_usd: 0.0000001}\n")
    assert spec.budget.max_cost_usd == 0.0000001
    ledger = tmp_path / "l.jsonl"
    async with Session(mock=True, ledger=ledger) as session:
        results = await collect(DatasetRun(session, spec, items(3)))
    assert results == ["1:skipped", "2:skipped", "3:skipped"]
    unbounded = make_spec(tmp_path, SPEC.replace("gpt-4o-mini", "my-own-model"))
    async with Session(mock=True, ledger=ledger) as session:
        with pytest.raises(ConfigError, match="worst-case cost .* is unknown"):
            await collect(DatasetRun(session, unbounded, items(3), max_cost="1"))
    assert not ledger.exists()


async def test_a_stop_request_lets_calls_in_flight_finish(tmp_path: Path) -> None:
    spec = make_spec(tmp_path, SPEC + "provider: {headers: {X-Mock-Fault: 'latency=200ms'}}\n")
    ledger = tmp_path / "l.jsonl"
    async with Session(mock=True, ledger=ledger) as session:
        run = DatasetRun(session, spec, items(20), concurrency=3, total=20)
        seen = []
        async for result in run.results():
            seen.append(result.status)
            run.request_stop()
    assert seen == ["ok", "ok", "ok"]
    assert run.summary.interrupted and run.summary.not_run == 17
    assert len(list(read_records(ledger))) == 3


def test_map_rows_sync_from_plain_code(tmp_path: Path) -> None:
    spec = make_spec(tmp_path)
    with Session(mock=True, ledger=tmp_path / "l.jsonl") as session:
        results = list(map_rows_sync(session, spec, items(5), concurrency=2))
        again = session.run(spec, {"n": 9})  # the same private loop keeps working
    assert sorted(r.key for r in results) == ["1", "2", "3", "4", "5"]
    assert all(r.status == "ok" for r in results) and again.value


def test_leaving_map_rows_sync_early_cancels_the_rest(tmp_path: Path) -> None:
    spec = make_spec(tmp_path)
    ledger = tmp_path / "l.jsonl"
    with Session(mock=True, ledger=ledger) as session:
        for _ in map_rows_sync(session, spec, items(50), concurrency=4):
            break
    lines = list(read_records(ledger))
    assert 1 <= len(lines) <= 4  # never more than were in flight


async def test_an_unwritable_ledger_stops_the_run_with_exit_2(tmp_path: Path) -> None:
    spec = make_spec(tmp_path)
    (tmp_path / "dir").mkdir()
    async with Session(mock=True, ledger=tmp_path / "dir") as session:
        run = DatasetRun(session, spec, items(5), concurrency=1)
        with pytest.raises(ConfigError, match="the run stopped") as caught:
            await collect(run)
    assert caught.value.exit_code == 2
    assert run.summary.done == 0


async def test_results_count_tokens_and_estimated_cost(tmp_path: Path) -> None:
    spec = make_spec(tmp_path)
    async with Session(mock=True, ledger=tmp_path / "l.jsonl") as session:
        run = DatasetRun(session, spec, items(4), total=4)
        await collect(run)
    summary = run.summary.to_dict()
    assert summary["ok"] == 4 and summary["usage"]["prompt"] > 0
    assert summary["cost_usd"] > 0 and summary["cost_estimated"] is True
    assert summary["not_run"] == 0 and run.summary.exit_code == 0
    await asyncio.sleep(0)


async def test_the_concurrency_of_a_run_replaces_the_spec_rate(tmp_path: Path) -> None:
    """rate.concurrency 1 in the spec, 4 for the run: four calls are in flight at once."""
    spec = make_spec(
        tmp_path,
        SPEC + "rate: {concurrency: 1}\nprovider: {headers: {X-Mock-Fault: 'latency=500ms'}}\n",
    )
    async with Session(mock=True, ledger=tmp_path / "l.jsonl") as session:
        session.preflight(spec, {"n": 1})  # load the tokenizer outside the timed run
        run = DatasetRun(session, spec, items(4), concurrency=4, total=4)
        await collect(run)
    assert run.summary.ok == 4
    assert run.summary.wall_s < 1.5  # one at a time it would take 2 s
    assert run.spec.sha256 == spec.sha256  # resume still matches the file's lines


async def test_the_fast_resume_scan_agrees_with_parsing_every_line(tmp_path: Path) -> None:
    """Lines whose content mimics the keys the scan looks for, odd row keys, content left
    out, failures, other specs, torn lines and lines of another format: the byte-level scan
    finds exactly the rows a full json.loads of every line finds."""
    import json

    text = SPEC.replace(
        "inputs: {type: object, properties: {n: {type: integer}}, required: [n]}\n", ""
    )
    spec = make_spec(tmp_path, text.replace("params: {max_tokens: 20}\n", ""))
    ledger = tmp_path / "l.jsonl"
    sneaky = {
        "status": "ok",
        "error": None,
        "row": "fake",
        "sha256": spec.sha256,
        "name": spec.name,
        "request_sha256": "f" * 64,
        "n": 1,
    }
    async with Session(mock=True, ledger=ledger) as session:
        for key in ['q"uote', "ünï", "back\\slash", "plain"]:
            await session.arun(spec, {**sneaky, "n": key}, row=key)
    async with Session(mock=True, ledger=ledger, ledger_content=False) as session:
        await session.arun(spec, {"n": 2}, row="hidden")
    failing = spec.provider.__class__(headers={"X-Mock-Fault": "status=400"})
    broken = dataclasses.replace(spec, provider=failing)  # same sha256, every call fails
    async with Session(mock=True, ledger=ledger) as session:
        with pytest.raises(BadRequest):
            await session.arun(broken, {**sneaky, "n": 3}, row="failed")
    lines = ledger.read_bytes().splitlines(keepends=True)
    extra = [
        lines[0][:-40] + b"\n",  # torn
        lines[0].replace(b'{"v":1,', b'{"v":2,'),  # a newer format: parsed whole
        lines[0].replace(b'"row":"q\\"uote"', b'"row":"other"').replace(b":", b": "),
    ]
    ledger.write_bytes(b"".join(lines + extra))

    def parse_every_line() -> dict[str, set[str]]:
        found: dict[str, set[str]] = {}
        for raw in ledger.read_bytes().splitlines():
            try:
                record = json.loads(raw)
            except ValueError:
                continue
            same = record["spec"]["name"] == spec.name and record["mock"] is True
            if same and record["status"] == "ok":
                found.setdefault(record["row"], set()).add(record["request_sha256"])
        return found

    expected = parse_every_line()
    assert set(expected) == {'q"uote', "ünï", "back\\slash", "plain", "hidden", "other"}
    assert done_rows(ledger, spec.name, mock=True).ok == expected
    assert done_rows(ledger, spec.name, mock=False).ok == {}


async def test_the_resume_scan_reads_runners_own_lines_without_parsing_them(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Lines as runner writes them today (an output mode, content left out, a mock flag
    followed by more fields) take the byte-level path: a big ledger stays quick to resume."""
    from runner.dataset.resume import ResumeScan

    schema = (
        "output: {schema: {type: object, properties: {a: {type: string}}, required: [a],"
        " additionalProperties: false}}\n"
    )
    spec = make_spec(tmp_path, SPEC + schema)
    ledger = tmp_path / "l.jsonl"
    async with Session(mock=True, ledger=ledger) as session:
        [r async for r in map_rows(session, spec, items(3))]
    async with Session(mock=True, ledger=ledger, ledger_content=False) as session:
        [r async for r in map_rows(session, spec, [Item("4", {"n": 4})])]
    parsed: list[bytes] = []
    monkeypatch.setattr(ResumeScan, "_parsed", lambda self, line: parsed.append(line))
    scan = done_rows(ledger, spec.name, mock=True)
    assert sorted(scan.ok) == ["1", "2", "3", "4"] and parsed == []
