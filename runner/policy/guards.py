"""The guards a call runs under: one rate limiter and one circuit breaker per (base URL, model),
shared by every task in the process, wrapped around each HTTP request. Server hints (429s,
x-ratelimit-* headers) feed the limiter; counted failures feed the breaker.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Mapping
from typing import TypeVar

from runner.errors import CircuitOpen, RateLimited
from runner.policy.breaker import Breaker
from runner.policy.limiter import Limiter
from runner.policy.retry import retry_after_of, usage_of
from runner.spec.model import BreakerConfig

__all__ = ["DEFAULT_PAUSE_429", "Guard", "Guards"]

T = TypeVar("T")

# How long the limiter holds everyone back after a 429 that named no wait.
DEFAULT_PAUSE_429 = 1.0


class Guard:
    """The limiter and breaker of one (base URL, model), wrapped around a single HTTP request."""

    def __init__(self, limiter: Limiter, breaker: Breaker) -> None:
        self.limiter = limiter
        self.breaker = breaker

    async def run(
        self,
        fn: Callable[[], Awaitable[T]],
        *,
        tokens: int,
        on_admit: Callable[[float], None] | None = None,
    ) -> tuple[T, float]:
        """Run one request under the breaker and the limiter; return (result, limiter wait).

        Exceptions from `fn` propagate unchanged, after the breaker, the token reservation and
        the server's rate-limit hints have been updated from them. `on_admit` gets the limiter
        wait as soon as the call is admitted, so it is known for failed attempts too.
        """
        self.breaker.check()  # fail fast without queueing behind the limiter
        try:
            permit = await self.limiter.acquire(tokens)
        except BaseException as exc:
            self.breaker.record_failure(exc)  # uncounted: frees a probe slot if it held one
            raise
        try:
            self.breaker.before_call()  # again: it may have opened while this call queued
        except CircuitOpen:
            permit.release(0)
            raise
        if on_admit is not None:
            on_admit(permit.waited_s)
        try:
            result = await fn()
        except BaseException as exc:
            self.breaker.record_failure(exc)
            permit.release(_total_tokens(exc))
            self.limiter.observe(_headers_of(exc, "headers"))
            if isinstance(exc, RateLimited):
                self.limiter.pause(retry_after_of(exc) or DEFAULT_PAUSE_429)
            raise
        self.breaker.record_success()
        permit.release(_total_tokens(result))
        self.limiter.observe(_headers_of(result, "rate_headers"))
        return result, permit.waited_s


class Guards:
    """One Guard per (base URL, model), shared by every task in the process.

    The first configuration given for an endpoint wins: later calls with other limits share the
    existing guard unchanged, because the server's limits are per account and model, not per spec.
    """

    def __init__(
        self,
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self._clock = clock
        self._sleep = sleep
        self._guards: dict[tuple[str, str], Guard] = {}

    def for_endpoint(
        self,
        base_url: str,
        model: str,
        *,
        rpm: int | None = None,
        tpm: int | None = None,
        concurrency: int | None = None,
        failures: int = BreakerConfig.failures,
        cooldown: float = BreakerConfig.cooldown,
    ) -> Guard:
        """Return the guard of this endpoint and model, creating it on first use."""
        key = (base_url.rstrip("/"), model)
        guard = self._guards.get(key)
        if guard is None:
            limiter = Limiter(
                rpm=rpm, tpm=tpm, concurrency=concurrency, clock=self._clock, sleep=self._sleep
            )
            breaker = Breaker(
                failures=failures, cooldown=cooldown, clock=self._clock, name=f"{model} at {key[0]}"
            )
            guard = self._guards[key] = Guard(limiter, breaker)
        return guard


def _total_tokens(obj: object) -> int | None:
    usage = usage_of(obj)
    return usage.total if usage is not None else None


def _headers_of(obj: object, attribute: str) -> Mapping[str, str] | None:
    headers = getattr(obj, attribute, None)
    return headers if type(headers) is dict or isinstance(headers, Mapping) else None
