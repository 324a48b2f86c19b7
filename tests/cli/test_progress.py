"""runner.cli._progress: the plain progress line (paced by its interval), the live bar, and
the final summary's wording — unknown cost stays unknown, estimated says so, failed keys are
capped at 20 with a count."""

from __future__ import annotations

import io
from decimal import Decimal

import pytest

from runner.cli._progress import LiveProgress, PlainProgress, summary_lines, totals_text
from runner.dataset import DatasetSummary, ItemResult
from runner.errors import RunnerError
from runner.types import Usage


def summary(**kw: object) -> DatasetSummary:
    value = DatasetSummary(rows=10, started=0.0, ended=4.0)
    for key, item in kw.items():
        setattr(value, key, item)
    return value


def test_plain_progress_respects_its_interval() -> None:
    now = [0.0]
    stream = io.StringIO()
    display = PlainProgress(stream, interval=2.0, clock=lambda: now[0])
    for t in (0.5, 1.0, 2.5, 3.0, 4.6):
        now[0] = t
        display.update(summary(ok=int(t)))
    display.close()
    assert [line.split(" rows")[0] for line in stream.getvalue().splitlines()] == [
        "progress: 2/10",
        "progress: 4/10",
    ]


def test_totals_show_tokens_cost_rate_and_eta() -> None:
    text = totals_text(
        summary(ok=4, failed=1, usage=Usage(100, 50), cost_usd=Decimal("0.0125"), ended=5.0)
    )
    assert text == (
        "5/10 rows · 4 ok · 1 failed · 0 skipped · 150 tokens · $0.012500 · 1.0 rows/s · ETA 5s"
    )


def test_unknown_and_estimated_costs_say_so() -> None:
    assert "cost unknown" in totals_text(summary(ok=1, unpriced=1))
    mixed = totals_text(summary(ok=2, unpriced=1, cost_usd=Decimal("0.5")))
    assert "$0.500000 + unknown (1 unpriced calls)" in mixed
    assert "(estimated: mock)" in totals_text(summary(ok=1, calls=1, mock_calls=1))
    real = totals_text(summary(ok=3, calls=3, estimated_calls=2))
    assert "mock" not in real and "estimated for 2 calls: the server reported no usage" in real
    assert "estimated" not in totals_text(summary(ok=3, calls=3))


def test_the_summary_lists_twenty_failed_keys_and_a_count() -> None:
    value = DatasetSummary(rows=30, started=0.0, ended=2.0)
    for i in range(25):
        value.add(ItemResult(f"k{i}", "error", error=RunnerError("no")))
    for i in range(3):
        value.add(ItemResult(f"s{i}", "skipped", error=RunnerError("budget")))
    value.budget_stopped = True
    lines = summary_lines(value, ledger="runs/ledger.jsonl")
    assert lines[0] == "0 of 30 rows ok · 25 failed · 3 skipped · 2 not run"
    assert lines[1].endswith("2.0 s wall · ledger runs/ledger.jsonl")
    assert "the budget stopped the run" in lines[2]
    assert lines[3].startswith("failed rows (25): k0, k1,") and lines[3].endswith("and 5 more")
    assert "k20" not in lines[3]
    assert value.exit_code == 1


def test_the_live_bar_renders_to_its_stream() -> None:
    stream = io.StringIO()
    bar = LiveProgress(stream, total=10, force_terminal=True)
    bar.update(summary(ok=3, usage=Usage(10, 5)))
    bar.close()
    assert "3/10" in stream.getvalue()


@pytest.mark.parametrize("columns", [80, 60, 40])
def test_the_live_bar_fits_the_terminal_and_keeps_the_counter_and_time_left(
    columns: int,
) -> None:
    import re

    from runner.cli._progress import DETAIL_DROP_ORDER, live_detail

    value = summary(
        rows=300_000, ok=120_000, failed=3, skipped=10, resumed=1_234, usage=Usage(1_200_000, 5),
        cost_usd=Decimal("12.0123"), calls=120_003, mock_calls=120_003,
    )  # fmt: skip
    stream = io.StringIO()
    display = LiveProgress(stream, total=300_000, force_terminal=True, width=columns)
    display.update(value)
    display._progress.refresh()
    display.close()
    plain = re.sub(r"\x1b\[[0-9;?]*[a-zA-Z]", "", stream.getvalue()).replace("\r", "\n")
    lines = [line for line in plain.splitlines() if "/300000" in line]
    assert lines and all(len(line) <= columns for line in lines)
    last = lines[-1]
    assert last.startswith("121247/300000 ") and re.search(r"(\d+:\d\d:\d\d|-:--:--)$", last)
    assert "…" not in last and "3 failed" in last
    # What is left out is the first of the documented order.
    everything = live_detail(value, 1_000).split(" · ")
    keys = ["failed", "skipped", "done before", "tokens", "cost", "rate"]
    shown = live_detail(value, columns - 40).split(" · ")
    out = {key for key, part in zip(keys, everything, strict=True) if part not in shown}
    assert out == set(DETAIL_DROP_ORDER[: len(out)])
