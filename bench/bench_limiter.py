"""The rate limiter with real time: 600 rpm over 30 s, 200 concurrent workers with plenty of work.

Targets (issue 3): the achieved rate within 2% of the limit; no one-second window with more than
rpm/60 + 1 starts. The baseline is the configured limit itself.
"""

from __future__ import annotations

import asyncio
import bisect
import time

from _table import Headline

from runner.policy.limiter import Limiter


async def _measure(rpm: int, seconds: float, tasks: int) -> list[float]:
    """Start times of the calls the limiter admitted in `seconds`; the workers still waiting
    at the end are cancelled (so a slow limit does not take minutes to drain)."""
    limiter = Limiter(rpm=rpm, tpm=10_000_000, concurrency=tasks)
    starts: list[float] = []

    async def worker() -> None:
        while True:
            permit = await limiter.acquire(100)
            starts.append(time.monotonic())
            await asyncio.sleep(0.05)  # a "request"
            permit.release(90)

    workers = [asyncio.create_task(worker()) for _ in range(tasks)]
    await asyncio.sleep(seconds)
    for task in workers:
        task.cancel()
    await asyncio.gather(*workers, return_exceptions=True)
    return starts


def run(
    quick: bool = False,
) -> tuple[str, list[str], list[list[object]], list[str], list[Headline]]:
    rows: list[list[object]] = []
    headlines: list[Headline] = []
    configs = [(600, 3.0 if quick else 30.0, 200), (6000, 2.0 if quick else 10.0, 500)]
    for rpm, seconds, tasks in configs:
        starts = asyncio.run(_measure(rpm, seconds, tasks))
        span = starts[-1] - starts[0]
        achieved = (len(starts) - 1) / span * 60
        worst = max(bisect.bisect_left(starts, s + 1.0) - i for i, s in enumerate(starts))
        gaps = [b - a for a, b in zip(starts, starts[1:], strict=False)]
        headlines.append(
            Headline(
                f"limiter: achieved rate at {rpm:,} rpm, {tasks} workers (worst 1-s window)",
                f"{achieved:,.0f}/min ({worst} in 1 s)",
                f"configured: {rpm:,}/min ({rpm // 60 + 1} in 1 s)",
                achieved / rpm,
                "0.98x to 1.00x, window <= limit",
                0.98 <= achieved / rpm <= 1.0 + 1e-3 and worst <= rpm // 60 + 1,
            )
        )
        rows.append(
            [
                f"{rpm} rpm, {seconds:g} s, {tasks} workers",
                float(rpm),
                achieved,
                f"{achieved / rpm:.4f}x",
                f"{worst} (limit {rpm // 60 + 1})",
                f"{min(gaps) * 1000:.1f} / {max(gaps) * 1000:.1f}",
            ]
        )
    notes = [
        "worst window: most starts in any sliding one-second window",
        "targets: achieved within 2% of the limit; worst window <= rpm/60 + 1",
    ]
    columns = ["run", "limit/min", "achieved/min", "vs limit", "worst 1-s window", "gap ms min/max"]
    return "Rate limiter (real time)", columns, rows, notes, headlines
