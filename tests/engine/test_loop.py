"""runner.engine.loop: the row loop over the in-process mock — bounded concurrency, results in
completion order, a bad row failing alone, a run-wide problem stopping the loop, one ledger line
per call sent."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from runner.engine import Session
from runner.engine.loop import Item, run_items
from runner.errors import ConfigError
from runner.ledger import read_records
from runner.spec import load_spec

pytestmark = pytest.mark.anyio

SPEC = (
    "name: loop\nmodel: gpt-4o-mini\nparams: {max_tokens: 20}\n"
    "inputs: {type: object, properties: {n: {type: integer}}, required: [n]}\n"
    "messages: [{role: user, content: 'Say {{ n }}.'}]\n"
)


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


def spec_file(tmp_path: Path) -> Path:
    path = tmp_path / "loop.yaml"
    path.write_text(SPEC, encoding="utf-8")
    return path


async def test_every_item_once_with_bad_rows_failing_alone(tmp_path: Path) -> None:
    spec = load_spec(spec_file(tmp_path))
    ledger = tmp_path / "l.jsonl"
    items = [Item(str(i), {"n": i}) for i in range(20)] + [Item("bad", {"n": "x"})]
    async with Session(mock=True, ledger=ledger) as session:
        results = [r async for r in run_items(session, spec, items, concurrency=4)]
    by_key = {r.key: r for r in results}
    assert len(results) == len(by_key) == 21
    assert by_key["bad"].status == "error" and by_key["bad"].record is None
    assert all(by_key[str(i)].status == "ok" for i in range(20))
    lines = list(read_records(ledger))
    assert sorted(line["row"] for line in lines) == sorted(str(i) for i in range(20))


async def test_never_more_than_concurrency_in_flight(tmp_path: Path) -> None:
    spec = load_spec(spec_file(tmp_path))
    in_flight = peak = 0

    async with Session(mock=True, ledger=tmp_path / "l.jsonl") as session:
        original = session.arun

        async def counting(*args: object, **kwargs: object) -> object:
            nonlocal in_flight, peak
            in_flight += 1
            peak = max(peak, in_flight)
            try:
                await asyncio.sleep(0.01)
                return await original(*args, **kwargs)  # type: ignore[arg-type]
            finally:
                in_flight -= 1

        session.arun = counting  # type: ignore[method-assign]
        items = (Item(str(i), {"n": i}) for i in range(30))
        results = [r async for r in run_items(session, spec, items, concurrency=3)]
    assert len(results) == 30
    assert peak == 3


async def test_a_run_wide_problem_stops_the_loop(tmp_path: Path) -> None:
    """No key for api.openai.com fails every row the same way: raised, not 1,000 failed rows."""
    spec = load_spec(spec_file(tmp_path))
    async with Session(mock=False, ledger=tmp_path / "l.jsonl", environ={}) as session:
        with pytest.raises(ConfigError, match="no API key"):
            async for _ in run_items(session, spec, [Item("1", {"n": 1})]):
                pass


async def test_case_label_goes_to_the_case_field(tmp_path: Path) -> None:
    spec = load_spec(spec_file(tmp_path))
    ledger = tmp_path / "l.jsonl"
    async with Session(mock=True, ledger=ledger) as session:
        [result] = [r async for r in run_items(session, spec, [Item("c1", {"n": 1})], label="case")]
    assert result.record is not None
    assert (result.record["case"], result.record["row"]) == ("c1", None)


async def test_results_come_in_the_exact_order_the_calls_end(tmp_path: Path) -> None:
    """Each result is yielded in the order the calls end, even when several end between two
    turns of the loop (asyncio.wait would hand those back as a set, in no order)."""
    spec = load_spec(spec_file(tmp_path))
    started = asyncio.Event()
    ended: list[str] = []

    class Answer:
        value = None

    async with Session(mock=True, ledger=tmp_path / "l.jsonl") as session:

        async def later_the_earlier_it_starts(*args: object, **kwargs: object) -> object:
            n = args[1]["n"]  # type: ignore[index]
            if n == 11:
                started.set()
            await started.wait()
            for _ in range(12 - n):  # row 11 ends first, then 10, ... within a few turns
                await asyncio.sleep(0)
            ended.append(str(n))
            return Answer()

        session.arun = later_the_earlier_it_starts  # type: ignore[method-assign]
        items = [Item(str(i), {"n": i}) for i in range(12)]
        keys = [r.key async for r in run_items(session, spec, items, concurrency=12)]
    assert ended == [str(i) for i in reversed(range(12))]
    assert keys == ended
