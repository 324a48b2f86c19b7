"""A data-set run: one spec over the rows of an input, as a library. It holds the run lock of
its spec on its ledger, skips rows already done (`resume`, by request fingerprint) and rows
waiting in a batch, applies the cost cap (`max_cost`), stops its intake on request, and keeps
the running totals (`DatasetSummary`) that progress displays and the final summary read. It
never prints: callers get each `ItemResult` and the summary.
"""

from __future__ import annotations

import asyncio
import dataclasses
import time
from collections.abc import (
    AsyncGenerator,
    AsyncIterable,
    AsyncIterator,
    Callable,
    Iterable,
    Iterator,
    Mapping,
)
from dataclasses import dataclass, field
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from runner.dataset.resume import ResumeScan, scan_ledger
from runner.engine.budget import CostBudget
from runner.engine.loop import ITEM_ERRORS, Item, ItemResult, run_items
from runner.errors import ConfigError, LedgerError, RunLocked
from runner.ledger.lock import RunLock, spec_scope
from runner.types import Usage

if TYPE_CHECKING:
    from runner.engine.session import Session
    from runner.spec.model import PromptSpec

__all__ = ["DatasetRun", "DatasetSummary", "map_rows", "map_rows_sync", "row_line"]

FAILED_KEYS_SHOWN = 20
_LOCK_POLL_S = 0.1  # how often a run that waits for the lock tries again
_YIELD_EVERY = 1000  # rows passed over between two yields to the event loop


@dataclass
class DatasetSummary:
    """Running totals of a data-set run; final once the run's results are exhausted."""

    rows: int | None = None  # rows in the input, when known
    ok: int = 0
    failed: int = 0  # error or invalid_output
    skipped: int = 0  # not run: the budget stopped the run
    resumed: int = 0  # already ok in the ledger for the same request (--resume), not run again
    changed: int = 0  # --resume: ok in the ledger, but for another request: run again
    batched: dict[str, int] = field(default_factory=dict)  # batch id -> its rows, not run
    skip_batched: bool = False  # rows waiting in batches do not fail the run
    usage: Usage = field(default_factory=Usage)
    cost_usd: Decimal = Decimal(0)
    unpriced: int = 0  # calls that used tokens at an unknown price: not in cost_usd
    calls: int = 0  # calls recorded in the ledger by this run
    mock_calls: int = 0  # of them, answered by the mock: what the real model would have cost
    estimated_calls: int = 0  # real calls whose usage (so cost) is a local estimate
    # --cache: rows answered from a recorded line (nothing sent, nothing spent; in no figure
    # above), and what their recorded calls cost.
    cached: int = 0
    saved_usd: Decimal = Decimal(0)
    started: float = field(default_factory=time.monotonic)
    ended: float | None = None
    failed_keys: list[str] = field(default_factory=list)  # the first FAILED_KEYS_SHOWN
    budget_stopped: bool = False
    interrupted: bool = False

    @property
    def waiting(self) -> int:
        """Rows not run because they wait in a batch not collected yet."""
        return sum(self.batched.values())

    @property
    def estimated(self) -> bool:
        """Part of the cost is an estimate (mock calls, or usage the server did not report)."""
        return bool(self.mock_calls or self.estimated_calls)

    @property
    def done(self) -> int:
        """Rows accounted for so far (run, skipped, resumed or waiting in a batch)."""
        return self.ok + self.failed + self.skipped + self.resumed + self.waiting

    @property
    def not_run(self) -> int:
        """Rows neither run nor skipped (an interrupted run), when the row count is known."""
        return 0 if self.rows is None else max(0, self.rows - self.done)

    @property
    def wall_s(self) -> float:
        return (self.ended if self.ended is not None else time.monotonic()) - self.started

    @property
    def exit_code(self) -> int:
        """0 when every row is ok (now or in an earlier run), else 1; rows waiting in a batch
        count as not ok unless `skip_batched`."""
        waiting = 0 if self.skip_batched else self.waiting
        return 0 if self.failed == self.skipped == self.not_run == waiting == 0 else 1

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
        if "replayed" in record:
            self.cached += 1
            self.saved_usd += Decimal(str(record["cost"]["usd"] or 0))
            return
        self.calls += 1
        usage = record["usage"]
        self.usage = self.usage + Usage(
            usage["prompt"], usage["completion"], usage["cached"], usage["reasoning"]
        )
        cost = record["cost"]
        if cost["usd"] is None:
            self.unpriced += 1 if usage["prompt"] or usage["completion"] else 0
        else:
            self.cost_usd += Decimal(str(cost["usd"]))
        if record["mock"]:
            self.mock_calls += 1
        elif cost["estimated"]:
            self.estimated_calls += 1

    def to_dict(self) -> dict[str, Any]:
        return {
            "rows": self.rows,
            "ok": self.ok,
            "failed": self.failed,
            "skipped": self.skipped,
            "resumed": self.resumed,
            "changed": self.changed,
            "waiting_in_batches": dict(self.batched),
            "not_run": self.not_run,
            "usage": self.usage.to_dict(),
            "cost_usd": float(self.cost_usd) if not self.unpriced else None,
            "cost_estimated": self.estimated,
            "cached": self.cached,
            "wall_s": round(self.wall_s, 3),
            "failed_keys": list(self.failed_keys),
            "budget_stopped": self.budget_stopped,
            "interrupted": self.interrupted,
        }


class DatasetRun:
    """One spec over many rows. Iterate `results()` (completion order); `summary` holds the
    totals as they grow; `request_stop()` lets the calls in flight finish and starts no more.

    A run holds the lock of its spec on its ledger (runner.ledger.lock.RunLock) from `start()`
    (which `results()` calls) to its end, so that two runs of one spec on one ledger never both
    see a row as not done: a second run raises RunLocked (naming the holder), or waits for the
    first when `wait` is given (True: for ever; a number: that many seconds), calling
    `on_wait(holder)` once. With `resume`, the ledger is read under that lock, and a row is done
    when its request (as it would be sent now) has an ok line. `batched` maps the keys of rows
    waiting in a batch not collected yet to that batch's id (or is a callable that gives it,
    read under the lock): they are never run live, and are counted apart."""

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
        batched: Mapping[str, str] | Callable[[], Mapping[str, str]] | None = None,
        skip_batched: bool = False,
        wait: bool | float = False,
        on_wait: Callable[[dict[str, Any]], None] | None = None,
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
        self.wait = wait
        self.on_wait = on_wait
        self._batched_source = batched
        self.batched: dict[str, str] = {}
        if max_cost is None and spec.budget.max_cost_usd is not None:
            max_cost = spec.budget.max_cost_usd
        self.max_cost = None if max_cost is None else Decimal(str(max_cost))
        self.summary = DatasetSummary(rows=total, skip_batched=skip_batched)
        self._stop = asyncio.Event()
        self._budget: CostBudget | None = None
        self._lock: RunLock | None = None
        self._scan: ResumeScan | None = None
        self._started = False

    def request_stop(self, *, interrupted: bool = True) -> None:
        """Start no new row; the calls in flight finish and are recorded. `interrupted`: the
        user asked (a signal), as opposed to the caller's own trouble (an output that failed)."""
        self.summary.interrupted = self.summary.interrupted or interrupted
        self._stop.set()

    @property
    def locked(self) -> bool:
        """Whether this run holds its lock now."""
        return self._lock is not None and self._lock.held

    async def start(self) -> None:
        """Take the lock (waiting for it if asked), then read what the run needs to know under
        it: the rows waiting in batches, and with `resume` the ledger's ok lines. Nothing is
        sent. `results()` calls it; a caller may call it first, to open its own outputs only
        once the run is sure to go ahead. A stop requested while waiting ends the wait."""
        if self._started:
            return
        self._started = True
        settings = self.session.settings_for(self.spec)
        self._lock = RunLock(
            settings.ledger_path, spec_scope(self.spec.path), what="a data-set run"
        )
        try:
            if not await self._acquire(self._lock):
                return
            source = self._batched_source
            self.batched = dict(source() if callable(source) else source or {})
            if self.resume:
                self._scan = await scan_ledger(
                    settings.ledger_path,
                    self.spec.name,
                    mock=settings.mock,
                    stopped=self._stop.is_set,
                )
        except LedgerError as exc:  # an unreadable ledger: nothing can be resumed or sent
            self._lock.release()
            raise ConfigError(f"{exc}; nothing was sent") from exc
        except BaseException:
            self._lock.release()
            raise

    async def _acquire(self, lock: RunLock) -> bool:
        """Take the lock; False when a stop was requested while waiting for it."""
        deadline = None
        if self.wait is not False and self.wait is not True:
            deadline = time.monotonic() + float(self.wait)
        told = False
        while True:
            try:
                lock.acquire()
                return True
            except RunLocked as exc:
                if self.wait is False or (deadline is not None and time.monotonic() >= deadline):
                    raise
                if not told and self.on_wait is not None:
                    self.on_wait(exc.holder)
                    told = True
            await asyncio.sleep(_LOCK_POLL_S)
            if self._stop.is_set():
                return False

    async def results(self) -> AsyncGenerator[ItemResult, None]:
        """Each row's result as its call finishes; budget-skipped rows too (status skipped)."""
        summary = self.summary
        summary.started = time.monotonic()
        try:
            await self.start()
            if not self.locked:
                return  # stopped while waiting for the lock: nothing ran
            if self.max_cost is not None:
                self._budget = CostBudget(self.session, self.spec, self.max_cost)
            async for result in run_items(
                self.session,
                self.spec,
                self._pending(self.rows),
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
            if self._lock is not None:
                self._lock.release()

    async def _pending(self, rows: Iterable[Item] | AsyncIterable[Item]) -> AsyncIterator[Item]:
        passed = 0
        async for item in _aiter(rows):
            if self._passed_over(item):
                passed += 1
                if passed % _YIELD_EVERY == 0:
                    await asyncio.sleep(0)  # a long run of done rows: let signals in
                continue
            yield item

    def _passed_over(self, item: Item) -> bool:
        """Whether `item` is not run: waiting in a batch, or done (`resume`)."""
        batch = self.batched.get(item.key)
        if batch is not None:
            self.summary.batched[batch] = self.summary.batched.get(batch, 0) + 1
            return True
        scan = self._scan
        if scan is None or item.key not in scan.ok:
            return False
        try:
            fingerprint = self.session.request_fingerprint(self.spec, item.vars)
        except ITEM_ERRORS:
            fingerprint = ""  # it fails on its own when run
        if scan.state(item.key, fingerprint) == "done":
            self.summary.resumed += 1
            return True
        self.summary.changed += 1
        return False


async def _aiter(items: Iterable[Item] | AsyncIterable[Item]) -> AsyncIterator[Item]:
    if isinstance(items, AsyncIterable):
        async for item in items:
            yield item
    else:
        for item in items:
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
