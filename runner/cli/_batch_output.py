"""What the batch commands print on stderr: the request counts while batches run (one updating
line on a terminal, else a line when they change) and the summary of what was collected.
"""

from __future__ import annotations

import sys
import time
from collections import Counter
from collections.abc import Sequence
from decimal import Decimal
from typing import TYPE_CHECKING, Any

import click

from runner.cli._common import colour

if TYPE_CHECKING:
    from runner.batch.collect import CollectSummary
    from runner.spec.model import PromptSpec

__all__ = ["Progress", "disagreement", "report", "say_waiting"]

_MISMATCH_WORDS = {
    "duplicate": ("duplicate result", "duplicate results", " (the first was kept)"),
    "unknown": ("unknown row id", "unknown row ids", ""),
    "unreadable": ("unreadable line", "unreadable lines", ""),
    "missing": ("missing row", "missing rows", ""),
    "changed": ("changed or absent request", "changed or absent requests", ""),
}


class Progress:
    """Request counts of the batches on stderr: one updating line on a terminal, else a line
    whenever they change."""

    def __init__(self, *, quiet: bool) -> None:
        self.quiet = quiet
        self.live = sys.stderr.isatty()
        self.started = time.monotonic()
        self.last = ""

    def __call__(self, batches: list[dict[str, Any]]) -> None:
        if self.quiet:
            return
        total = done = failed = 0
        statuses: Counter[str] = Counter()
        for b in batches:
            counts = b.get("request_counts") or {}
            total += int(counts.get("total") or 0)
            done += int(counts.get("completed") or 0)
            failed += int(counts.get("failed") or 0)
            statuses[str(b.get("status"))] += 1
        state = ", ".join(f"{n} {s}" for s, n in sorted(statuses.items()))
        line = f"batch: {state} · {done + failed} of {total} rows done, {failed} failed"
        if line == self.last:
            return
        self.last = line
        elapsed = time.monotonic() - self.started
        text = f"{line} · {elapsed:.0f} s"
        if self.live:
            click.echo(f"\r\033[K{text}", err=True, nl=False)
        else:
            click.echo(text, err=True)

    def finish(self) -> None:
        if self.live and self.last and not self.quiet:
            click.echo("", err=True)


def report(
    spec: PromptSpec,
    summaries: Sequence[CollectSummary],
    ledger: str,
    *,
    quiet: bool,
    hint: str = "",
    mock: bool = False,
) -> int:
    """Print what was collected; return the number of rows that failed."""
    written = sum(s.written for s in summaries)
    skipped = sum(s.skipped for s in summaries)
    ok = sum(s.ok for s in summaries)
    kinds: Counter[str] = Counter()
    for s in summaries:
        kinds.update(s.kinds)
    failed = sum(kinds.values())
    cost = sum((s.cost_usd for s in summaries), Decimal(0))
    unpriced = sum(s.unpriced for s in summaries)
    if quiet:
        return failed + sum(1 for s in summaries if s.batch_errors or s.disagrees)
    for s in summaries:
        if s.batch_errors:
            failed += 1
            click.echo(f"batch {s.batch_id} {s.status}; no row was sent:", err=True)
            for problem in s.batch_errors[:20]:
                click.echo(f"  {problem}", err=True)
        if s.status != "completed" and s.written:
            click.echo(
                f"batch {s.batch_id} ended {s.status}: {len(s.failed_rows)} rows without an answer",
                err=True,
            )
    parts = [f"{written} rows written ({ok} ok"]
    parts[0] += "".join(f", {n} {kind}" for kind, n in sorted(kinds.items())) + ")"
    if skipped:
        parts.append(f"{skipped} already in the ledger")
    price = f"${cost:.6f}{' if real' if mock else ''} at the batch price"
    if unpriced:
        price += f" ({unpriced} rows unpriced)"
    parts.append(price)
    click.echo(f"{spec.name} · " + " · ".join(parts) + f" · ledger {ledger}", err=True)
    implausible = sum(s.implausible for s in summaries)
    if implausible:
        click.echo(
            f"{colour('Warning:', 'yellow', err=True)} the usage the batch reported for "
            f"{implausible} rows looks implausible "
            "(see usage.implausible); recorded as the server said it, and not priced",
            err=True,
        )
    for s in summaries:
        if s.disagrees:
            click.echo(disagreement(s), err=True)
    if failed and hint:
        click.echo(
            f"rerun the failed rows live: runner batch collect {hint} --retry-live",
            err=True,
        )
    return failed


def disagreement(summary: CollectSummary) -> str:
    """One line on how the server's files disagree with the local record of a batch."""
    from runner.batch.collect import MISMATCHES

    said = []
    for name in MISMATCHES:
        count = summary.mismatches.get(name, 0)
        if count:
            one, many, extra = _MISMATCH_WORDS[name]
            said.append(f"{count} {one if count == 1 else many}{extra}")
    unknown = ", ".join(repr(k)[:40] for k in summary.unknown_ids[:5])
    more = f" ({unknown}{', ...' if len(summary.unknown_ids) > 5 else ''})" if unknown else ""
    return (
        f"the server's files disagree with the local record of batch {summary.batch_id}: "
        + ", ".join(said)
        + more
        + "; only the recorded rows were written"
    )


def say_waiting(holder: dict[str, Any]) -> None:
    """Say, once, that another process holds this spec's rows and that we wait for it."""
    from runner.ledger.lock import describe_holder

    click.echo(f"waiting for {describe_holder(holder)} to finish with this spec's rows", err=True)
