"""How a data-set run shows itself on stderr: a live `rich` progress bar on a terminal, a
plain line every few seconds elsewhere, and the final summary. Rendering only: the run
(runner.dataset.run) hands over its `DatasetSummary`; nothing here decides anything. The CLI's,
as rich is: the library never prints.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import IO, Any, Protocol

from runner.dataset.run import DatasetSummary

__all__ = [
    "DETAIL_DROP_ORDER",
    "LiveProgress",
    "PlainProgress",
    "ProgressDisplay",
    "live_detail",
    "summary_lines",
    "totals_text",
]


class ProgressDisplay(Protocol):
    def update(self, summary: DatasetSummary) -> None: ...

    def close(self) -> None: ...


def _cost_text(summary: DatasetSummary) -> str:
    if summary.unpriced and not summary.cost_usd:
        return "cost unknown"
    text = f"${summary.cost_usd:.6f}"
    if summary.unpriced:
        text += f" + unknown ({summary.unpriced} unpriced calls)"
    return text + _estimated_text(summary)


def _estimated_text(summary: DatasetSummary) -> str:
    """What part of the cost is an estimate, and why: only what is true of this run."""
    notes = []
    if summary.mock_calls:
        if summary.mock_calls == summary.calls:
            notes.append("estimated: mock")
        else:
            notes.append(f"estimated for {summary.mock_calls} mock calls")
    if summary.estimated_calls:
        calls = summary.estimated_calls
        notes.append(
            f"estimated for {calls} call{'s' if calls != 1 else ''}: the server reported no "
            "usage, so their tokens were counted locally"
        )
    return "".join(f" ({note})" for note in notes)


def _rate_and_eta(summary: DatasetSummary) -> tuple[float, float | None]:
    ran = summary.ok + summary.failed
    wall = summary.wall_s
    rate = ran / wall if wall > 0 else 0.0
    left = summary.not_run if summary.rows is not None else None
    eta = left / rate if left is not None and rate > 0 else None
    return rate, eta


def totals_text(summary: DatasetSummary) -> str:
    """One line: rows done of all, failed, skipped, tokens, cost, rate and ETA."""
    rate, eta = _rate_and_eta(summary)
    of = f"/{summary.rows}" if summary.rows is not None else ""
    parts = [
        f"{summary.done}{of} rows",
        f"{summary.ok} ok",
        f"{summary.failed} failed",
        f"{summary.skipped} skipped",
        *([f"{summary.resumed} already ok"] if summary.resumed else []),
        *([f"{summary.waiting} waiting in batches"] if summary.waiting else []),
        f"{summary.usage.total:,} tokens",
        _cost_text(summary),
        f"{rate:.1f} rows/s",
    ]
    if eta is not None:
        parts.append(f"ETA {_duration(eta)}")
    return " · ".join(parts)


def _duration(seconds: float) -> str:
    seconds = int(round(seconds))
    if seconds < 60:
        return f"{seconds}s"
    minutes, seconds = divmod(seconds, 60)
    if minutes < 60:
        return f"{minutes}m{seconds:02d}s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m"


class PlainProgress:
    """A plain progress line on `stream` at most every `interval` seconds (not a terminal)."""

    def __init__(
        self,
        stream: IO[str],
        *,
        interval: float,  # seconds; exec's hidden --progress-interval (5 s) sets it
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.stream = stream
        self.interval = interval
        self.clock = clock
        self._last = clock()

    def update(self, summary: DatasetSummary) -> None:
        now = self.clock()
        if now - self._last >= self.interval:
            self._last = now
            self.stream.write(f"progress: {totals_text(summary)}\n")
            self.stream.flush()

    def close(self) -> None:
        pass


# What the live bar's text leaves out when the terminal is narrow, first to last (docs/
# datasets.md); the row counter, the bar and the time left always stay.
DETAIL_DROP_ORDER = ("rate", "done before", "tokens", "skipped", "cost", "failed")


def live_detail(summary: DatasetSummary, room: int) -> str:
    """The live bar's text within `room` columns: parts left out in DETAIL_DROP_ORDER."""
    rate, _ = _rate_and_eta(summary)
    cost = "cost ?" if summary.unpriced and not summary.cost_usd else f"${summary.cost_usd:.4f}"
    parts = {
        "failed": f"{summary.failed} failed",
        "skipped": f"{summary.skipped} skipped",
        "done before": f"{summary.resumed} done before" if summary.resumed else "",
        "tokens": f"{summary.usage.total:,} tok",
        "cost": cost + ("*" if summary.estimated else ""),
        "rate": f"{rate:.1f}/s",
    }
    shown = [key for key, text in parts.items() if text]
    for key in DETAIL_DROP_ORDER:
        if len(" · ".join(parts[k] for k in shown)) <= room:
            break
        if key in shown:
            shown.remove(key)
    return " · ".join(parts[k] for k in shown)


class LiveProgress:
    """A live rich progress bar on a terminal's stderr (`*` after the cost: estimated, mock),
    fitted to the terminal's width: the bar narrows and the text drops parts
    (DETAIL_DROP_ORDER), so the row counter and the time left are never cut."""

    def __init__(
        self,
        stream: IO[str],
        *,
        total: int | None,
        force_terminal: bool | None = None,
        width: int | None = None,
    ) -> None:
        from rich.console import Console
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            Progress,
            TextColumn,
            TimeRemainingColumn,
        )

        console = Console(file=stream, force_terminal=force_terminal, width=width)
        self._bar = 16 if console.width >= 60 else 6
        counter = 2 * len(f"{total:,}" if total is not None else "0000000") + 1
        # counter, bar, text and time left ("0:00:00"), a space between each; a spare column.
        self._room = max(console.width - counter - self._bar - 7 - 3 - 1, 0)
        self._progress = Progress(
            MofNCompleteColumn(),
            BarColumn(bar_width=self._bar),
            TextColumn("{task.fields[detail]}"),
            TimeRemainingColumn(),
            console=console,
            transient=True,
        )
        self._task = self._progress.add_task("rows", total=total, detail="")
        self._progress.start()

    def update(self, summary: DatasetSummary) -> None:
        detail = live_detail(summary, self._room)
        self._progress.update(self._task, completed=summary.done, detail=detail)

    def close(self) -> None:
        self._progress.stop()


def summary_lines(summary: DatasetSummary, *, ledger: Any = None) -> list[str]:
    """The final summary: rows ok/failed/skipped, tokens, cost, wall time, failed rows."""
    of = summary.rows if summary.rows is not None else summary.done
    usage = summary.usage
    lines = [
        f"{summary.ok + summary.resumed} of {of} rows ok"
        + (f" ({summary.resumed} already ok in the ledger)" if summary.resumed else "")
        + f" · {summary.failed} failed · {summary.skipped} skipped"
        + (f" · {summary.waiting} waiting in batches" if summary.waiting else "")
        + (f" · {summary.not_run} not run" if summary.not_run else ""),
        f"{usage.prompt:,}+{usage.completion:,} tokens · {_cost_text(summary)} · "
        f"{summary.wall_s:.1f} s wall" + (f" · ledger {ledger}" if ledger is not None else ""),
    ]
    if summary.cached:
        lines.append(
            f"{summary.cached} row{'s' if summary.cached != 1 else ''} answered from the cache: "
            f"nothing sent, ${summary.saved_usd:.6f} not spent again (in no figure above)"
        )
    if summary.changed:
        lines.append(
            f"{summary.changed} rows changed since their ok line: run again (their request "
            "is not the one recorded: another variable, model, row, schema or prompt)"
        )
    for batch, count in summary.batched.items():
        lines.append(
            f"{count} waiting in batch {batch}: not run live (collect it with "
            f"`runner batch collect {batch}`)"
        )
    if summary.budget_stopped:
        lines.append(f"the budget stopped the run: {summary.skipped} rows skipped, not run")
    if summary.failed:
        keys = ", ".join(summary.failed_keys)
        more = summary.failed - len(summary.failed_keys)
        lines.append(
            f"failed rows ({summary.failed}): {keys}" + (f" and {more} more" if more > 0 else "")
        )
    return lines
