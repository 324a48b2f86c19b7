"""A data-set run: one spec over the rows of an input, as a library. It skips rows already
done (`resume`), applies the cost cap (`max_cost`), stops its intake on request, and keeps the
running totals (`DatasetSummary`) that progress displays and the final summary read. It never
prints: callers get each `ItemResult` and the summary.
"""

from __future__ import annotations

import asyncio
import dataclasses
import time
from collections.abc import (
    AsyncGenerator,
    AsyncIterable,
    AsyncIterator,
    Collection,
    Iterable,
    Iterator,
)
from dataclasses import dataclass, field
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from runner.dataset.budget import CostBudget
from runner.dataset.loop import Item, ItemResult, run_items
from runner.dataset.resume import done_rows
from runner.errors import ConfigError, LedgerError
from runner.types import Usage

if TYPE_CHECKING:
    from runner.engine.session import Session
    from runner.spec.model import PromptSpec

__all__ = ["DatasetRun", "DatasetSummary", "map_rows", "map_rows_sync", "row_line"]

FAILED_KEYS_SHOWN = 20


@dataclass
class DatasetSummary:
    """Running totals of a data-set run; final once the run's results are exhausted."""

    rows: int | None = None  # rows in the input, when known
    ok: int = 0
    failed: int = 0  # error or invalid_output
    skipped: int = 0  # not run: the budget stopped the run
    resumed: int = 0  # already ok in the ledger (--resume), not run again
    usage: Usage = field(default_factory=Usage)
    cost_usd: Decimal = Decimal(0)
    unpriced: int = 0  # calls that used tokens at an unknown price: not in cost_usd
    estimated: bool = False  # mock calls: what the real model would have cost
    started: float = field(default_factory=time.monotonic)
    ended: float | None = None
    failed_keys: list[str] = field(default_factory=list)  # the first FAILED_KEYS_SHOWN
    budget_stopped: bool = False
    interrupted: bool = False

    @property
    def done(self) -> int:
        """Rows accounted for so far (run, skipped or resumed)."""
        return self.ok + self.failed + self.skipped + self.resumed

    @property
    def not_run(self) -> int:
        """Rows neither run nor skipped (an interrupted run), when the row count is known."""
        return 0 if self.rows is None else max(0, self.rows - self.done)

    @property
    def wall_s(self) -> float:
        return (self.ended if self.ended is not None else time.monotonic()) - self.started

    @property
    def exit_code(self) -> int:
        """0 when every row is ok (now or in an earlier run), else 1."""
        return 0 if self.failed == self.skipped == self.not_run == 0 else 1

    def add(self, result: ItemResult) -> None:
        if result.status == "ok":
            self.ok += 1
        elif result.status == "skipped":
            self.skipped += 1
        else:
            self.failed += 1
            if len(self.failed_keys) < FAILED_KEYS_SHOWN:
                self.failed_keys.append(result.key)
        record = result.record
        if record is None:
            return
        usage = record["usage"]
        self.usage = self.usage + Usage(
            usage["prompt"], usage["completion"], usage["cached"], usage["reasoning"]
        )
        cost = record["cost"]
        if cost["usd"] is None:
            self.unpriced += 1 if usage["prompt"] or usage["completion"] else 0
        else:
            self.cost_usd += Decimal(str(cost["usd"]))
        self.estimated = self.estimated or bool(cost["estimated"])

    def to_dict(self) -> dict[str, Any]:
        return {
            "rows": self.rows,
            "ok": self.ok,
            "failed": self.failed,
            "skipped": self.skipped,
            "resumed": self.resumed,
            "not_run": self.not_run,
            "usage": self.usage.to_dict(),
            "cost_usd": float(self.cost_usd) if not self.unpriced else None,
            "cost_estimated": self.estimated,
            "wall_s": round(self.wall_s, 3),
            "failed_keys": list(self.failed_keys),
            "budget_stopped": self.budget_stopped,
            "interrupted": self.interrupted,
        }


class DatasetRun:
    """One spec over many rows. Iterate `results()` (completion order); `summary` holds the
    totals as they grow; `request_stop()` lets the calls in flight finish and starts no more."""

    def __init__(
        self,
        session: Session,
        spec: PromptSpec,
        rows: Iterable[Item] | AsyncIterable[Item],
        *,
        concurrency: int | None = None,
        resume: bool = False,
        max_cost: Decimal | float | str | None = None,
        total: int | None = None,
        exclude: Collection[str] = (),
    ) -> None:
        if concurrency is not None and concurrency != spec.rate.concurrency:
            # The run's own cap replaces the spec's: the endpoint's limiter would hold it down.
            spec = dataclasses.replace(
                spec, rate=dataclasses.replace(spec.rate, concurrency=concurrency)
            )
        self.session = session
        self.spec = spec
        self.rows = rows
        self.concurrency = spec.rate.concurrency
        self.resume = resume
        # Rows answered elsewhere (in a batch not collected yet): never run live as well.
        self.exclude = frozenset(exclude)
        if max_cost is None and spec.budget.max_cost_usd is not None:
            max_cost = spec.budget.max_cost_usd
        self.max_cost = None if max_cost is None else Decimal(str(max_cost))
        self.summary = DatasetSummary(rows=total)
        self._stop = asyncio.Event()
        self._budget: CostBudget | None = None

    def request_stop(self) -> None:
        """Start no new row; the calls in flight finish and are recorded."""
        self.summary.interrupted = True
        self._stop.set()

    async def results(self) -> AsyncGenerator[ItemResult, None]:
        """Each row's result as its call finishes; budget-skipped rows too (status skipped)."""
        summary = self.summary
        summary.started = time.monotonic()
        done = set(self.exclude)
        if self.resume:
            settings = self.session.settings_for(self.spec)
            done |= done_rows(settings.ledger_path, self.spec.sha256, mock=settings.mock)
        if self.max_cost is not None:
            self._budget = CostBudget(self.session, self.spec, self.max_cost)
        try:
            async for result in run_items(
                self.session,
                self.spec,
                self._pending(self.rows, done),
                concurrency=self.concurrency,
                gate=self._budget,
                stop=self._stop,
            ):
                summary.add(result)
                summary.budget_stopped = self._budget is not None and self._budget.stopped
                yield result
        except LedgerError as exc:  # every row would fail alike: a problem of the whole run
            raise ConfigError(f"{exc}; the run stopped") from exc
        finally:
            summary.ended = time.monotonic()

    async def _pending(
        self, rows: Iterable[Item] | AsyncIterable[Item], done: set[str]
    ) -> AsyncIterator[Item]:
        if isinstance(rows, AsyncIterable):
            async for item in rows:
                if item.key in done:
                    self.summary.resumed += 1
                else:
                    yield item
        else:
            for item in rows:
                if item.key in done:
                    self.summary.resumed += 1
                else:
                    yield item


def map_rows(
    session: Session,
    spec: PromptSpec,
    rows: Iterable[Item] | AsyncIterable[Item],
    *,
    concurrency: int | None = None,
    resume: bool = False,
    max_cost: Decimal | float | str | None = None,
) -> AsyncGenerator[ItemResult, None]:
    """Run `spec` over `rows` in `session`: an async iterator of ItemResult, in completion
    order (`concurrency` defaults to the spec's rate.concurrency)."""
    run = DatasetRun(session, spec, rows, concurrency=concurrency, resume=resume, max_cost=max_cost)
    return run.results()


def map_rows_sync(
    session: Session,
    spec: PromptSpec,
    rows: Iterable[Item],
    *,
    concurrency: int | None = None,
    resume: bool = False,
    max_cost: Decimal | float | str | None = None,
) -> Iterator[ItemResult]:
    """`map_rows` as an ordinary iterator, on the session's private event loop (like
    `Session.run`); the calls in flight make progress while the caller waits for the next."""
    results = map_rows(
        session, spec, rows, concurrency=concurrency, resume=resume, max_cost=max_cost
    )

    async def step() -> ItemResult:
        return await anext(results)

    try:
        while True:
            try:
                yield session.run_sync(step())
            except StopAsyncIteration:
                return
    finally:
        session.run_sync(results.aclose())


def row_line(result: ItemResult) -> dict[str, Any]:
    """The output line of one row: {row, status, output, error}."""
    output = result.value if result.status == "ok" else None
    if result.status == "invalid_output" and result.record is not None:
        answer = result.record.get("output") or {}
        output = answer.get("json", answer.get("text"))
    error = None
    if result.error is not None:
        error = {"kind": result.error.kind, "message": str(result.error)}
    return {"row": result.key, "status": result.status, "output": output, "error": error}
