"""Shared by the tests of time-driven modules (test_breaker, test_policy, test_limiter): a fake
clock and sleep, so no test waits for real. Not a test module (pytest does not collect it)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable


class FakeTime:
    """A clock that moves only when a test moves `now` or someone sleeps. `sleeps` records every
    wait; `lateness` makes wake-ups late, as a busy event loop does."""

    def __init__(self, now: float = 0.0, lateness: Callable[[], float] | None = None) -> None:
        self.now = now
        self.sleeps: list[float] = []
        self.lateness = lateness

    def clock(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds + (self.lateness() if self.lateness else 0.0)
        await asyncio.sleep(0)
