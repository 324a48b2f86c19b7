"""The done-when of issue 12: a 10,000-row data set through the mock's Batch API end to end,
collected twice without a duplicate line, its total cost exactly half of the same rows priced
live (the live path itself is compared row by row in test_batch_flow)."""

from __future__ import annotations

import json
import time
from fractions import Fraction
from pathlib import Path

import pytest
from _batch_helpers import write_rows, write_spec

from runner.batch import PollPolicy, finish_batches, start_batches, vars_by_row
from runner.dataset.rows import read_rows
from runner.engine import Session
from runner.pricing import PriceBook
from runner.spec import load_spec
from runner.types import Usage

pytestmark = pytest.mark.anyio
ROWS = 10_000


async def test_ten_thousand_rows_collected_twice_at_half_the_price(tmp_path: Path) -> None:
    spec = load_spec(write_spec(tmp_path))
    items = list(read_rows(write_rows(tmp_path, ROWS), spec=spec))
    ledger = tmp_path / "runs" / "ledger.jsonl"
    started_at = time.perf_counter()
    async with Session(mock=True, ledger=ledger) as session:
        started = await start_batches(session, spec, items, input_path=None)
        ids = started.batch_ids
        fast = PollPolicy(initial=0.01)
        first = await finish_batches(session, spec, ids, rows=vars_by_row(spec, items), policy=fast)
        second = await finish_batches(session, spec, ids, policy=fast)
    elapsed = time.perf_counter() - started_at
    assert [(s.written, s.ok) for s in first] == [(ROWS, ROWS)]
    assert [(s.written, s.skipped) for s in second] == [(0, ROWS)]
    lines = [json.loads(x) for x in ledger.read_text(encoding="utf-8").splitlines()]
    assert len(lines) == ROWS and len({line["row"] for line in lines}) == ROWS
    live_book = PriceBook()
    batch_total = live_total = Fraction(0)
    for line in lines:
        u = line["usage"]
        usage = Usage(prompt=u["prompt"], completion=u["completion"], cached=u["cached"])
        live = live_book.cost(usage, line["model"]).usd
        assert live is not None
        live_total += Fraction(float(live))
        batch_total += Fraction(line["cost"]["usd"])
    assert batch_total / live_total == Fraction(1, 2)
    assert elapsed < 120  # a few seconds on an idle machine; generous for loaded CI
