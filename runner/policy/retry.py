"""The one retry layer, on tenacity: whether a failed try is tried again (`should_retry`), how
long it waits (`backoff`, with Retry-After as a floor) and when a call stops (attempts,
max_retry_after, the deadline), under a spec's RetryConfig, which only carries the values.
Decides from a RunnerError's `.retryable`, `.kind` and `.retry_after` alone; never imports
httpx2 or the client.
"""

from __future__ import annotations

import asyncio
import functools
import math
import random as _random
import time
import types
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any, Generic, TypeVar, cast

from runner.errors import DeadlineExceeded, RunnerError
from runner.spec.model import RetryConfig
from runner.types import Attempt, Usage

if TYPE_CHECKING:
    import tenacity
    from tenacity import RetryCallState

__all__ = ["backoff", "call_with_retry", "retry_after_of", "should_retry", "usage_of"]

T = TypeVar("T")
R = TypeVar("R")


# --- whether to retry, and how long to wait -----------------------------------------------------


def should_retry(policy: RetryConfig, exc: BaseException) -> bool:
    """Whether a failed try may be tried again (attempts and deadline aside): a retryable
    RunnerError whose kind the spec's `retry.on` lists."""
    return isinstance(exc, RunnerError) and exc.retryable and exc.kind in policy.on


def backoff(
    policy: RetryConfig, failures: int, random: Callable[[], float] = _random.random
) -> float:
    """The wait after the `failures`-th failed try (1-based), before any server floor.

    Exponential: `min(max, initial * multiplier**(failures-1))`; with `jitter` it is drawn
    uniformly from the upper half of that ("equal jitter"). A server's Retry-After is a floor
    on it (`call_with_retry`); one above `max_retry_after` ends the call instead of sleeping.
    """
    try:
        ceiling = float(min(policy.max, policy.initial * policy.multiplier ** (failures - 1)))
    except OverflowError:
        ceiling = policy.max
    if not policy.jitter:
        return ceiling
    # Equal jitter: spread concurrent retries apart but never retry at once after a failure.
    return ceiling / 2 + random() * ceiling / 2


# --- call_with_retry ---------------------------------------------------------------------------


async def call_with_retry(
    attempt_fn: Callable[[int], Awaitable[T]],
    policy: RetryConfig,
    *,
    deadline: float | None = None,
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    clock: Callable[[], float] = time.monotonic,
    random: Callable[[], float] = _random.random,
    on_retry: Callable[[Attempt, BaseException, float], None] | None = None,
    record: list[Attempt] | None = None,
) -> tuple[T, list[Attempt]]:
    """Run `attempt_fn(n)` (n = 1, 2, ...) until it succeeds or the policy gives up.

    Returns the result and every attempt made. On failure the last RunnerError is raised with
    `.attempts` filled in; anything that is not a RunnerError propagates at once, untouched.
    `deadline` (seconds) bounds the whole call: no wait is started that would end past it, and
    each try is cut (DeadlineExceeded) when it runs out. The cut uses the event loop's own
    clock, so `clock` should agree with it outside tests. `record`, when given, is filled with
    the attempts as they end: a caller that is cancelled (Ctrl-C, SIGTERM) or meets an
    exception that is not a RunnerError still has them, the last one as `interrupted` or
    `internal`.
    """
    if deadline is not None and not (deadline > 0 and math.isfinite(deadline)):
        raise ValueError(f"deadline must be a positive number of seconds, got {deadline!r}")
    call: _Call[T] = _Call(attempt_fn, policy, deadline, clock, on_retry)
    if record is not None:
        call.attempts = record
    # The first try runs outside tenacity: setting up its machinery costs more than the rest
    # of this module on a call that succeeds at once, which is nearly every call. A failure
    # is then replayed to tenacity as its attempt 1, so waits, stops and records are the same.
    try:
        return await call.attempt(), list(call.attempts)
    except RunnerError as exc:
        if policy.attempts <= 1 or not should_retry(policy, exc):
            exc.attempts = list(call.attempts)
            raise
        replay: list[RunnerError] = [exc]

    async def next_attempt() -> T:
        if replay:
            raise replay.pop()
        return await call.attempt()

    tenacity, waits = _tenacity()
    retrying = tenacity.AsyncRetrying(
        sleep=sleep,
        stop=tenacity.stop_after_attempt(policy.attempts) | waits.StopBeforeLongWait(call),
        wait=waits.Longest(waits.Backoff(policy, random), tenacity.wait_exception(_server_wait)),
        retry=tenacity.retry_if_exception(functools.partial(should_retry, policy)),
        before_sleep=call.before_sleep,
        reraise=True,
    )
    try:
        result = cast(T, await retrying(next_attempt))
    except RunnerError as exc:
        if call.note:
            exc.message = f"{exc.message} {call.note}"
            exc.args = (exc.message,)
        exc.attempts = list(call.attempts)
        raise
    return result, list(call.attempts)


class _Call(Generic[R]):
    """The state of one call_with_retry: the attempts so far and why it stopped early."""

    def __init__(
        self,
        fn: Callable[[int], Awaitable[R]],
        policy: RetryConfig,
        deadline: float | None,
        clock: Callable[[], float],
        on_retry: Callable[[Attempt, BaseException, float], None] | None,
    ) -> None:
        self.fn = fn
        self.policy = policy
        self.deadline = deadline
        self.clock = clock
        self.on_retry = on_retry
        self.start = clock()
        self.attempts: list[Attempt] = []
        self.pending_wait = 0.0
        self.note = ""  # appended to the final error's message when the call stopped early

    def time_left(self) -> float:
        assert self.deadline is not None
        return self.start + self.deadline - self.clock()

    async def attempt(self) -> R:
        number = len(self.attempts) + 1
        waited, self.pending_wait = self.pending_wait, 0.0
        began = self.clock()
        try:
            result = await self._bounded(number, began)
        except RunnerError as exc:
            self.attempts.append(_failed_attempt(number, exc, waited, _ms(self.clock() - began)))
            raise
        except (asyncio.CancelledError, KeyboardInterrupt, Exception) as exc:
            # Not ours to decide on, so it propagates untouched; but it is recorded, so that a
            # caller that is cancelled, or meets a bug, still has every attempt made.
            interrupted = not isinstance(exc, Exception)
            self.attempts.append(
                Attempt(
                    number=number,
                    outcome="interrupted" if interrupted else "internal",
                    waited_s=waited,
                    latency_ms=_ms(self.clock() - began),
                    message="the attempt was interrupted before it finished"
                    if interrupted
                    else f"{type(exc).__name__}: {exc}",
                )
            )
            raise
        self.attempts.append(
            Attempt(
                number=number,
                outcome="ok",
                waited_s=waited,
                latency_ms=_ms(self.clock() - began),
                usage=usage_of(result),
                request_id=_request_id_of(result),
            )
        )
        return result

    async def _bounded(self, number: int, began: float) -> R:
        if self.deadline is None:
            return await self.fn(number)
        scope = asyncio.timeout(max(0.0, self.time_left()))
        try:
            async with scope:
                return await self.fn(number)
        except TimeoutError as exc:
            if not scope.expired():
                raise  # the attempt's own TimeoutError, not ours
            raise DeadlineExceeded(
                f"The call ran out of its deadline ({_secs(self.deadline)} for the whole call, "
                f"retries and waits included): attempt {number} was cut off after "
                f"{_secs(self.clock() - began)}."
            ) from exc

    def before_sleep(self, state: RetryCallState) -> None:
        self.pending_wait = state.upcoming_sleep
        if self.on_retry is not None:
            self.on_retry(self.attempts[-1], _exception_of(state), state.upcoming_sleep)


@functools.cache
def _tenacity() -> tuple[Any, Any]:
    """tenacity, and runner's waits and stop on it, at the first retry of the process: a call
    that succeeds at once (nearly every call) never needs them, and importing tenacity is
    about 10 ms of every start."""
    import tenacity

    class Backoff(tenacity.wait.wait_base):
        def __init__(self, policy: RetryConfig, random: Callable[[], float]) -> None:
            self.policy = policy
            self.random = random

        def __call__(self, retry_state: RetryCallState) -> float:
            return backoff(self.policy, retry_state.attempt_number, self.random)

    class Longest(tenacity.wait.wait_base):
        """The longest of several waits: the server's Retry-After is a floor under our backoff."""

        def __init__(self, *waits: tenacity.wait.wait_base) -> None:
            self.waits = waits

        def __call__(self, retry_state: RetryCallState) -> float:
            return max(wait(retry_state) for wait in self.waits)

    class StopBeforeLongWait(tenacity.stop.stop_base):
        """Stop instead of sleeping past retry.max_retry_after or past the call's deadline."""

        def __init__(self, call: _Call[Any]) -> None:
            self.call = call

        def __call__(self, retry_state: RetryCallState) -> bool:
            call = self.call
            wait = retry_state.upcoming_sleep
            asked = retry_after_of(_exception_of(retry_state))
            if asked is not None and asked > call.policy.max_retry_after:
                call.note = (
                    f"The server asked to wait {_secs(asked)} (Retry-After), more than "
                    f"retry.max_retry_after ({_secs(call.policy.max_retry_after)}); not waiting."
                )
                return True
            if call.deadline is not None:
                left = call.time_left()
                if wait >= left:
                    call.note = (
                        f"Not retrying: the call's deadline ({_secs(call.deadline)}) leaves "
                        f"{_secs(max(0.0, left))}, not enough for the {_secs(wait)} wait before "
                        f"attempt {retry_state.attempt_number + 1}."
                    )
                    return True
            return False

    return tenacity, types.SimpleNamespace(
        Backoff=Backoff, Longest=Longest, StopBeforeLongWait=StopBeforeLongWait
    )


def _exception_of(state: RetryCallState) -> BaseException:
    exc = state.outcome.exception() if state.outcome is not None else None
    if exc is None:  # tenacity only waits and stops after a failure
        raise RuntimeError("retry state without an exception")
    return exc


def retry_after_of(exc: BaseException) -> float | None:
    """The wait a server asked for on this failure (Retry-After), if it named one."""
    value = getattr(exc, "retry_after", None)
    if isinstance(value, int | float) and not isinstance(value, bool) and value >= 0:
        return float(value)
    return None


def _server_wait(exc: BaseException) -> float:
    return retry_after_of(exc) or 0.0


def _failed_attempt(number: int, exc: RunnerError, waited: float, latency_ms: float) -> Attempt:
    status = getattr(exc, "status", None)
    return Attempt(
        number=number,
        outcome=exc.kind,
        waited_s=waited,
        latency_ms=latency_ms,
        status=status if isinstance(status, int) else None,
        usage=usage_of(exc),
        request_id=_request_id_of(exc),
        message=exc.message,
    )


def usage_of(obj: object) -> Usage | None:
    """The usage a completion or an error carries, if any."""
    usage = getattr(obj, "usage", None)
    return usage if isinstance(usage, Usage) else None


def _request_id_of(obj: object) -> str | None:
    request_id = getattr(obj, "request_id", None)
    return request_id if isinstance(request_id, str) and request_id else None


def _ms(seconds: float) -> float:
    return max(0.0, seconds * 1000.0)


def _secs(seconds: float) -> str:
    return f"{round(seconds, 3):g} s"
