"""The rate limiter for one endpoint: requests per minute (evenly spaced), tokens per minute and
a concurrency cap, one FIFO line for all three, slowed further by the server's own hints.
It never retries and never sleeps on its own behalf outside `acquire`; it keeps no loop-bound
object alive between waits, so it outlives `asyncio.run` calls.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections import deque
from collections.abc import Awaitable, Callable, Mapping
from types import TracebackType

from runner.durations import header_duration

__all__ = ["MAX_HINT_WAIT", "Limiter", "Permit"]

# The longest the limiter holds everyone back on one server hint (429 pause, x-ratelimit-reset-*).
# Past it a call is let through and meets the server's answer (a 429 with its own message),
# rather than hanging silently for minutes.
MAX_HINT_WAIT = 60.0

# Below this a computed delay is float noise from the last clock reading, not a real wait.
_EPSILON = 1e-9

# Catch-up allowance for a late wake-up, in seconds (see Limiter._grant).
_MAX_TOLERANCE = 0.05


def _parse_count(text: str | None) -> int | None:
    if text is None:
        return None
    try:
        value = float(text.strip())
    except ValueError:
        return None
    return int(value) if math.isfinite(value) and value >= 0 else None


class Permit:
    """Leave to start one call. `release` it when the call ends (or use `async with`)."""

    __slots__ = ("_limiter", "_released", "tokens", "waited_s")

    def __init__(self, limiter: Limiter, tokens: int, waited_s: float) -> None:
        self._limiter = limiter
        self._released = False
        self.tokens = tokens  # the reservation
        self.waited_s = waited_s  # time spent in the limiter's line

    def release(self, actual_tokens: int | None = None) -> None:
        """Free the concurrency slot and settle the reservation against what the call used.

        `actual_tokens` None keeps the whole reservation charged (a failed call whose usage is
        unknown may still have counted against the server's limit). A second release is a no-op.
        """
        if self._released:
            return
        self._released = True
        self._limiter._settle(self.tokens, actual_tokens)

    async def __aenter__(self) -> Permit:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.release()


class _Waiter:
    __slots__ = ("future", "tokens")

    def __init__(self, tokens: int, future: asyncio.Future[None]) -> None:
        self.tokens = tokens
        self.future = future


class Limiter:
    """Admit calls to one endpoint in arrival order, within rpm, tpm and concurrency.

    Requests are spaced at least 60/rpm apart (virtual scheduling, as GCRA): no burst after an
    idle period. Tokens come from a bucket of `tpm` refilling at tpm/60 per second; a reservation
    larger than `tpm` is admitted when the bucket is full and leaves it in debt. The line is
    strictly first come, first served: a caller never overtakes an earlier one, even when its
    own reservation would fit (head-of-line blocking is the price of fairness).

    Async-safe within one event loop at a time; not thread-safe.
    """

    def __init__(
        self,
        *,
        rpm: int | None = None,
        tpm: int | None = None,
        concurrency: int | None = None,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        for name, value in (("rpm", rpm), ("tpm", tpm), ("concurrency", concurrency)):
            if value is not None and (isinstance(value, bool) or not value > 0):
                raise ValueError(f"Limiter {name} must be a positive number or None, got {value!r}")
        self.rpm = rpm
        self.tpm = tpm
        self.concurrency = concurrency
        self._clock = clock
        self._sleep = sleep
        self._interval = 60.0 / rpm if rpm else 0.0
        self._tolerance = _tolerance(rpm) if rpm else 0.0
        self._next_start = -math.inf  # the theoretical time of the next start (GCRA's TAT)
        self._token_rate = tpm / 60.0 if tpm else 0.0
        self._tokens = float(tpm or 0)  # bucket level; negative after an oversized reservation
        self._tokens_at = clock()
        self._in_flight = 0
        self._paused_until = -math.inf
        # The server's view (x-ratelimit-*), valid until its reset time.
        self._server_requests: int | None = None
        self._server_requests_reset = -math.inf
        self._server_tokens: int | None = None
        self._server_tokens_reset = -math.inf
        self._line: deque[_Waiter] = deque()

    @property
    def in_flight(self) -> int:
        return self._in_flight

    @property
    def waiting(self) -> int:
        return len(self._line)

    async def acquire(self, tokens: int = 0) -> Permit:
        """Wait for this caller's turn and reserve `tokens`; return the permit to release."""
        if isinstance(tokens, bool) or not isinstance(tokens, int) or tokens < 0:
            raise ValueError(f"Limiter.acquire tokens must be a non-negative int, got {tokens!r}")
        now = self._clock()
        if not self._line and self._delay(tokens, now) == 0.0:
            return self._grant(tokens, now, 0.0)
        return await self._wait_in_line(tokens, now)

    def observe(self, headers: Mapping[str, str] | None) -> None:
        """Take the server's rate-limit hints from response headers (lower-case names)."""
        if not headers:
            return
        now = self._clock()
        requests = _parse_count(headers.get("x-ratelimit-remaining-requests"))
        if requests is not None:
            self._server_requests = requests
            self._server_requests_reset = now + _reset(headers.get("x-ratelimit-reset-requests"))
        tokens = _parse_count(headers.get("x-ratelimit-remaining-tokens"))
        if tokens is not None:
            self._server_tokens = tokens
            self._server_tokens_reset = now + _reset(headers.get("x-ratelimit-reset-tokens"))
        if requests is not None or tokens is not None:
            self._wake_head()  # the new view may be more generous than the last one

    def pause(self, seconds: float) -> None:
        """Hold every start back until now + `seconds` (at most MAX_HINT_WAIT), e.g. after a 429."""
        if not seconds > 0:
            return
        until = self._clock() + min(seconds, MAX_HINT_WAIT)
        self._paused_until = max(self._paused_until, until)

    # --- admission ---------------------------------------------------------------------------

    def _delay(self, tokens: int, now: float) -> float | None:
        """Seconds until the head of the line may start; None while the concurrency cap is full."""
        if self.concurrency is not None and self._in_flight >= self.concurrency:
            return None
        ready = max(self._paused_until, self._next_start)
        if self.tpm:
            self._refill(now)
            need = min(tokens, self.tpm)  # an oversized reservation waits for a full bucket
            if self._tokens + 1e-6 < need:
                ready = max(ready, now + (need - self._tokens) / self._token_rate)
        if self._server_requests is not None:
            if now >= self._server_requests_reset:
                self._server_requests = None
            elif self._server_requests <= 0:
                ready = max(ready, self._server_requests_reset)
        if self._server_tokens is not None:
            if now >= self._server_tokens_reset:
                self._server_tokens = None
            elif tokens > self._server_tokens:
                ready = max(ready, self._server_tokens_reset)
        delay = ready - now
        return delay if delay > _EPSILON else 0.0

    def _grant(self, tokens: int, now: float, waited: float, *, late: bool = False) -> Permit:
        self._in_flight += 1
        if self._interval:
            # A caller that slept for its slot and woke `late` is scheduled from the theoretical
            # start, not the actual one, so wake-up delays do not add up to a lower rate; at most
            # `_tolerance` is forgiven, so catching up never puts more than rpm/60 + 1 starts in
            # one second. A caller that found the slot free starts the schedule afresh.
            anchor = now - self._tolerance if late else now
            self._next_start = max(self._next_start, anchor) + self._interval
        if self.tpm:
            self._tokens -= tokens
        if self._server_requests is not None:
            self._server_requests -= 1
        if self._server_tokens is not None:
            self._server_tokens -= tokens
        return Permit(self, tokens, waited)

    def _settle(self, reserved: int, actual: int | None) -> None:
        self._in_flight -= 1
        if self.tpm and actual is not None:
            self._refill(self._clock())
            self._tokens = min(float(self.tpm), self._tokens + reserved - actual)
        self._wake_head()

    def _refill(self, now: float) -> None:
        if now > self._tokens_at:
            capacity = float(self.tpm or 0)
            self._tokens = min(capacity, self._tokens + (now - self._tokens_at) * self._token_rate)
            self._tokens_at = now

    # --- the line ----------------------------------------------------------------------------

    async def _wait_in_line(self, tokens: int, arrived: float) -> Permit:
        loop = asyncio.get_running_loop()
        waiter = _Waiter(tokens, loop.create_future())
        self._line.append(waiter)
        slept_for_slot = False
        try:
            while True:
                if self._line[0] is waiter:
                    now = self._clock()
                    delay = self._delay(tokens, now)
                    if delay == 0.0:
                        self._line.popleft()
                        waited = max(0.0, now - arrived)
                        permit = self._grant(tokens, now, waited, late=slept_for_slot)
                        self._wake_head()
                        return permit
                    slept_for_slot = delay is not None and self._next_start > now
                    await self._park(waiter, delay, loop)
                else:
                    await self._park(waiter, None, loop)
        except BaseException:
            # Cancelled (or the loop is going away): leave the line without stalling it.
            was_head = bool(self._line) and self._line[0] is waiter
            try:
                self._line.remove(waiter)
            except ValueError:
                pass
            if was_head:
                self._wake_head()
            raise

    async def _park(
        self, waiter: _Waiter, delay: float | None, loop: asyncio.AbstractEventLoop
    ) -> None:
        """Wait until woken (a release, a hint, becoming head) or, if given, `delay` passes."""
        if waiter.future.done():
            waiter.future = loop.create_future()
        if delay is None:
            await waiter.future
            return
        # Only the head of the line sleeps; a release may refund tokens and end its wait early.
        sleeper = loop.create_task(_as_coroutine(self._sleep(delay)))
        try:
            await asyncio.wait({sleeper, waiter.future}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            if not sleeper.done():
                sleeper.cancel()

    def _wake_head(self) -> None:
        if self._line:
            future = self._line[0].future
            if not future.done():
                future.set_result(None)


async def _as_coroutine(awaitable: Awaitable[None]) -> None:
    await awaitable


def _tolerance(rpm: float) -> float:
    # Lateness forgiven when scheduling the next start. Starts in any 1-second window then map to
    # theoretical slots (spaced 60/rpm) inside a window of 1 + tolerance seconds, which holds no
    # more slots than a 1-second window as long as tolerance < interval * (1 - frac(rpm / 60)).
    interval = 60.0 / rpm
    frac = (rpm % 60) / 60.0
    return min(_MAX_TOLERANCE, interval * (1.0 - frac) / 2.0)


def _reset(text: str | None) -> float:
    seconds = header_duration(text)
    # No reset time: assume the usual per-minute window rather than blocking indefinitely.
    return min(seconds if seconds is not None else MAX_HINT_WAIT, MAX_HINT_WAIT)
