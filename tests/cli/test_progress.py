"""runner.cli._progress: the plain progress line (paced by its interval), the live bar, and
the final summary's wording — unknown cost stays unknown, estimated says so, failed keys are
capped at 20 with a count."""

from __future__ import annotations

import io
from decimal import Decimal

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
