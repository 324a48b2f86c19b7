"""runner.policy.retry: every retry rule, Retry-After, backoff bounds, the deadline, the attempt
record, and the guards (limiter + breaker per endpoint). Waits go to a recording fake sleep."""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import pytest
from _fakes import FakeTime

from runner.errors import (
    RETRYABLE_KINDS,
    AuthenticationFailed,
    BadRequest,
    CircuitOpen,
    ConfigError,
    ConnectFailed,
    DeadlineExceeded,
    NotFound,
    OutputInvalid,
    OutputRefused,
    OutputTruncated,
    PermissionDenied,
    QuotaExhausted,
    RateLimited,
    ReadTimedOut,
    RunnerError,
    ServerFailed,
    StreamBroken,
)
from runner.policy.guards import DEFAULT_PAUSE_429, Guards
from runner.policy.retry import backoff, call_with_retry
from runner.spec.model import RetryConfig
from runner.types import Attempt, Usage

pytestmark = pytest.mark.anyio


@dataclass
class Reply:
    """Stands in for a Completion: what policy reads from a result."""

    text: str = "ok"
    usage: Usage | None = None
    request_id: str | None = None
    rate_headers: dict[str, str] = field(default_factory=dict)


class Script:
    """An attempt function that plays outcomes in order (the last one repeats)."""

    def __init__(self, *outcomes: object, ft: FakeTime | None = None, takes: float = 0.0) -> None:
        self.outcomes = outcomes
        self.calls: list[int] = []
        self.ft = ft
        self.takes = takes

    async def __call__(self, n: int) -> Any:
        self.calls.append(n)
        if self.ft is not None:
            self.ft.now += self.takes
        outcome = self.outcomes[min(n, len(self.outcomes)) - 1]
        if isinstance(outcome, BaseException):
            raise outcome
        return outcome


async def run(
    script: Script, policy: RetryConfig, ft: FakeTime, **kw: Any
) -> tuple[Any, list[Attempt]]:
    kw.setdefault("random", lambda: 1.0)
    return await call_with_retry(script, policy, sleep=ft.sleep, clock=ft.clock, **kw)


NEVER_RETRIED = [
    AuthenticationFailed("401 invalid api key", status=401),
    PermissionDenied("403 forbidden", status=403),
    NotFound("404 no such model", status=404),
    BadRequest("400 bad request", status=400),
    BadRequest("422 unprocessable", status=422),
    QuotaExhausted("429 insufficient_quota", status=429, code="insufficient_quota"),
    DeadlineExceeded("out of time"),
    OutputRefused("refused"),
    OutputTruncated("length"),
    CircuitOpen("open"),
    ConfigError("no key"),
]
RETRIED = [
    RateLimited("429 rate limited", status=429),
    ServerFailed("500 internal", status=500),
    ServerFailed("502 bad gateway", status=502),
    ServerFailed("503 unavailable", status=503),
    ServerFailed("408 request timeout", status=408),
    ServerFailed("409 conflict", status=409),
    ReadTimedOut("read timed out"),
    ConnectFailed("connection refused"),
    StreamBroken("stream ended early"),
    OutputInvalid("not json"),
]


def _ids(excs: list[RunnerError]) -> list[str]:
    return [f"{e.kind}-{getattr(e, 'status', '')}" for e in excs]


@pytest.mark.parametrize("exc", NEVER_RETRIED, ids=_ids(NEVER_RETRIED))
async def test_what_cannot_succeed_is_tried_once(exc: RunnerError) -> None:
    ft = FakeTime()
    script = Script(exc, Reply())
    with pytest.raises(type(exc)) as info:
        await run(script, RetryConfig(attempts=5), ft)
    assert info.value is exc
    assert script.calls == [1]
    assert ft.sleeps == []
    assert [a.outcome for a in exc.attempts] == [exc.kind]
    assert exc.attempts[0].status == getattr(exc, "status", None)
    assert exc.attempts[0].message == exc.message


@pytest.mark.parametrize("exc", RETRIED, ids=_ids(RETRIED))
async def test_what_can_succeed_is_retried(exc: RunnerError) -> None:
    ft = FakeTime()
    script = Script(exc, exc, Reply("fine"))
    result, attempts = await run(script, RetryConfig(attempts=3, jitter=False), ft)
    assert result.text == "fine"
    assert script.calls == [1, 2, 3]
    assert [a.outcome for a in attempts] == [exc.kind, exc.kind, "ok"]
    assert ft.sleeps == [1.0, 2.0]


@pytest.mark.parametrize("exc", RETRIED, ids=_ids(RETRIED))
async def test_the_budget_counts_every_try(exc: RunnerError) -> None:
    ft = FakeTime()
    script = Script(exc)
    with pytest.raises(type(exc)) as info:
        await run(script, RetryConfig(attempts=4, jitter=False), ft)
    assert script.calls == [1, 2, 3, 4]
    assert ft.sleeps == [1.0, 2.0, 4.0]
    assert [a.number for a in info.value.attempts] == [1, 2, 3, 4]
    assert [a.waited_s for a in info.value.attempts] == [0.0, 1.0, 2.0, 4.0]
    assert str(info.value) == exc.message  # no note: the budget simply ran out


@pytest.mark.parametrize(
    ("kind", "exc"),
    [
        ("invalid_output", OutputInvalid("breaks the schema")),
        ("rate_limit", RateLimited("429", status=429)),
        ("server_error", ServerFailed("500", status=500)),
        ("timeout", ReadTimedOut("slow")),
        ("connection", StreamBroken("cut")),
    ],
)
async def test_a_kind_left_out_of_on_is_not_retried(kind: str, exc: RunnerError) -> None:
    ft = FakeTime()
    policy = RetryConfig(attempts=3, on=RETRYABLE_KINDS - {kind})
    script = Script(exc, Reply())
    with pytest.raises(type(exc)):
        await run(script, policy, ft)
    assert script.calls == [1]

    script = Script(exc, Reply())
    await run(script, RetryConfig(attempts=3, on=frozenset({kind})), ft)
    assert script.calls == [1, 2]


async def test_an_error_marked_not_retryable_is_not_retried_whatever_its_kind() -> None:
    ft = FakeTime()
    exc = ServerFailed("500, known to be permanent", status=500)
    exc.retryable = False
    script = Script(exc, Reply())
    with pytest.raises(ServerFailed):
        await run(script, RetryConfig(attempts=3), ft)
    assert script.calls == [1]


async def test_anything_but_a_runner_error_propagates_untouched() -> None:
    ft = FakeTime()
    bug = KeyError("a bug")
    script = Script(ServerFailed("500", status=500), bug)
    with pytest.raises(KeyError) as info:
        await run(script, RetryConfig(attempts=5), ft)
    assert info.value is bug
    assert script.calls == [1, 2]
    assert not hasattr(bug, "attempts")


# --- waits -------------------------------------------------------------------------------------


async def test_retry_after_2_waits_at_least_2_seconds() -> None:
    ft = FakeTime()
    script = Script(RateLimited("429", status=429, retry_after=2.0), Reply())
    _, attempts = await run(script, RetryConfig(initial=0.1), ft, random=lambda: 0.0)
    assert ft.sleeps == [2.0]
    assert attempts[1].waited_s == 2.0


async def test_retry_after_on_a_503_is_honoured_too() -> None:
    ft = FakeTime()
    script = Script(ServerFailed("503", status=503, retry_after=7.5), Reply())
    await run(script, RetryConfig(initial=0.5), ft)
    assert ft.sleeps == [7.5]


async def test_a_longer_backoff_beats_a_short_retry_after() -> None:
    ft = FakeTime()
    script = Script(RateLimited("429", status=429, retry_after=1.0), Reply())
    await run(script, RetryConfig(initial=5.0, jitter=False), ft)
    assert ft.sleeps == [5.0]


async def test_retry_after_may_exceed_the_backoff_max_up_to_its_own_cap() -> None:
    ft = FakeTime()
    script = Script(RateLimited("429", status=429, retry_after=45.0), Reply())
    await run(script, RetryConfig(max=20.0, max_retry_after=60.0), ft)
    assert ft.sleeps == [45.0]


@pytest.mark.parametrize(
    ("asked", "cap", "note"),
    [
        (
            3600.0,
            60.0,
            "The server asked to wait 3600 s (Retry-After), more than retry.max_retry_after "
            "(60 s); not waiting.",
        ),
        (
            2.5,
            0.0,
            "The server asked to wait 2.5 s (Retry-After), more than retry.max_retry_after "
            "(0 s); not waiting.",
        ),
    ],
)
async def test_a_retry_after_above_the_cap_fails_instead_of_sleeping(
    asked: float, cap: float, note: str
) -> None:
    ft = FakeTime()
    exc = RateLimited(
        "Rate limited by https://api.example/v1 (429).", status=429, retry_after=asked
    )
    script = Script(exc, Reply())
    with pytest.raises(RateLimited) as info:
        await run(script, RetryConfig(attempts=5, max_retry_after=cap), ft)
    assert info.value is exc
    assert ft.sleeps == []
    assert script.calls == [1]
    assert str(info.value) == f"Rate limited by https://api.example/v1 (429). {note}"
    assert info.value.message == str(info.value)
    assert len(info.value.attempts) == 1


@pytest.mark.parametrize(
    ("policy", "rand", "waits"),
    [
        (RetryConfig(6, initial=1, max=5, multiplier=2, jitter=False), 0.5, [1, 2, 4, 5, 5]),
        (RetryConfig(6, initial=1, max=5, multiplier=2), 0.0, [0.5, 1, 2, 2.5, 2.5]),
        (RetryConfig(6, initial=1, max=5, multiplier=2), 1.0, [1, 2, 4, 5, 5]),
        (RetryConfig(4, initial=0.25, max=60, multiplier=3, jitter=False), 0.0, [0.25, 0.75, 2.25]),
        (RetryConfig(4, initial=2, max=2, multiplier=1, jitter=False), 0.0, [2, 2, 2]),
        (RetryConfig(3, initial=0, max=0, jitter=True), 0.7, [0, 0]),
    ],
)  # fmt: skip
async def test_backoff_schedule(policy: RetryConfig, rand: float, waits: list[float]) -> None:
    ft = FakeTime()
    script = Script(ReadTimedOut("slow"))
    with pytest.raises(ReadTimedOut):
        await run(script, policy, ft, random=lambda: rand)
    assert ft.sleeps == pytest.approx(waits)


def test_jittered_backoff_stays_in_the_upper_half_of_its_ceiling() -> None:
    policy = RetryConfig(initial=1, max=20, multiplier=2)
    for failures in range(1, 12):
        ceiling = min(20.0, 2.0 ** (failures - 1))
        for r in (0.0, 0.1, 0.5, 0.999999):
            wait = backoff(policy, failures, random=lambda: r)  # noqa: B023 (called at once)
            assert ceiling / 2 <= wait <= ceiling


def test_backoff_never_overflows() -> None:
    policy = RetryConfig(attempts=10_000, initial=1, max=30, multiplier=10, jitter=False)
    assert backoff(policy, 5000) == 30.0


# --- the attempt record ------------------------------------------------------------------------


async def test_every_attempt_is_recorded_with_usage_status_and_wait() -> None:
    ft = FakeTime()
    invalid = OutputInvalid("breaks the schema", usage=Usage(100, 20), request_id="req_1")
    limited = RateLimited("429", status=429, retry_after=3.0, request_id="req_2")
    reply = Reply(usage=Usage(100, 25, cached=64), request_id="req_3")
    script = Script(invalid, limited, reply, ft=ft, takes=0.25)
    result, attempts = await run(script, RetryConfig(attempts=3, jitter=False), ft)
    assert result is reply
    assert attempts == [
        Attempt(
            1, "invalid_output", 0.0, 250.0, None, Usage(100, 20), "req_1", "breaks the schema"
        ),
        Attempt(2, "rate_limit", 1.0, 250.0, 429, None, "req_2", "429"),
        Attempt(3, "ok", 3.0, 250.0, None, Usage(100, 25, cached=64), "req_3", None),
    ]


async def test_on_retry_sees_each_failed_attempt_and_the_coming_wait() -> None:
    ft = FakeTime()
    seen: list[tuple[int, str, float]] = []
    script = Script(ServerFailed("500", status=500), ReadTimedOut("slow"), Reply())
    await run(
        script,
        RetryConfig(attempts=3, jitter=False),
        ft,
        on_retry=lambda a, e, w: seen.append((a.number, type(e).__name__, w)),
    )
    assert seen == [(1, "ServerFailed", 1.0), (2, "ReadTimedOut", 2.0)]


async def test_a_single_success_has_one_attempt() -> None:
    ft = FakeTime()
    result, attempts = await run(Script(Reply("x")), RetryConfig(), ft)
    assert result.text == "x"
    assert [(a.number, a.outcome, a.waited_s) for a in attempts] == [(1, "ok", 0.0)]


# --- the deadline ------------------------------------------------------------------------------


async def test_the_deadline_stops_a_wait_that_would_end_past_it() -> None:
    ft = FakeTime()
    exc = ServerFailed("Server error 503.", status=503)
    script = Script(exc)
    with pytest.raises(ServerFailed) as info:
        await run(script, RetryConfig(attempts=10, initial=4, jitter=False), ft, deadline=5.0)
    assert script.calls == [1, 2]
    assert ft.sleeps == [4.0]
    assert str(info.value) == (
        "Server error 503. Not retrying: the call's deadline (5 s) leaves 1 s, not enough for "
        "the 8 s wait before attempt 3."
    )
    assert len(info.value.attempts) == 2


async def test_the_deadline_counts_time_spent_in_attempts() -> None:
    ft = FakeTime()
    script = Script(ReadTimedOut("Timed out."), ft=ft, takes=3.0)
    with pytest.raises(ReadTimedOut) as info:
        await run(script, RetryConfig(attempts=10, initial=1, jitter=False), ft, deadline=6.5)
    # attempt 1 fails at t=3, waits 1 s; attempt 2 fails at t=7: no time is left for a wait
    assert script.calls == [1, 2]
    assert "the call's deadline (6.5 s) leaves 0 s" in str(info.value)


async def test_a_retry_after_longer_than_the_deadline_left_ends_the_call() -> None:
    ft = FakeTime()
    script = Script(RateLimited("429.", status=429, retry_after=30.0))
    with pytest.raises(RateLimited) as info:
        await run(script, RetryConfig(attempts=3), ft, deadline=10.0)
    assert ft.sleeps == []
    assert str(info.value) == (
        "429. Not retrying: the call's deadline (10 s) leaves 10 s, not enough for the 30 s wait "
        "before attempt 2."
    )


async def test_the_deadline_cuts_an_attempt_in_flight() -> None:
    calls: list[int] = []

    async def hang(n: int) -> None:
        calls.append(n)
        await asyncio.sleep(30)

    started = time.monotonic()
    with pytest.raises(DeadlineExceeded) as info:
        await call_with_retry(hang, RetryConfig(attempts=3), deadline=0.05)
    assert time.monotonic() - started < 5
    assert calls == [1]
    exc = info.value
    assert exc.kind == "deadline" and not exc.retryable
    # The elapsed time in the message is whatever the loop measured: on a loaded machine it
    # is later than 0.05 s, so only its form is checked.
    assert re.match(
        r"The call ran out of its deadline \(0\.05 s for the whole call, retries and waits "
        r"included\): attempt 1 was cut off after \d+\.\d+",
        str(exc),
    )
    assert [a.outcome for a in exc.attempts] == ["deadline"]
    assert isinstance(exc.__cause__, TimeoutError)


async def test_the_deadline_cuts_a_later_attempt_after_real_waits() -> None:
    async def fail_then_hang(n: int) -> None:
        if n == 1:
            raise ConnectFailed("refused")
        await asyncio.sleep(30)

    with pytest.raises(DeadlineExceeded) as info:
        await call_with_retry(
            fail_then_hang, RetryConfig(attempts=3, initial=0.02, jitter=False), deadline=0.1
        )
    assert [(a.number, a.outcome) for a in info.value.attempts] == [
        (1, "connection"),
        (2, "deadline"),
    ]
    assert info.value.attempts[1].waited_s == 0.02


async def test_a_timeout_error_of_the_attempt_itself_is_not_the_deadline() -> None:
    async def own_timeout(n: int) -> None:
        raise TimeoutError("inner")

    with pytest.raises(TimeoutError, match="inner"):
        await call_with_retry(own_timeout, RetryConfig(), deadline=30.0)


async def test_an_outside_cancellation_is_not_turned_into_a_deadline() -> None:
    async def hang(n: int) -> None:
        await asyncio.sleep(30)

    task = asyncio.ensure_future(call_with_retry(hang, RetryConfig(), deadline=30.0))
    await asyncio.sleep(0.01)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task


# --- bad arguments -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kw", "message"),
    [
        ({"attempts": 0}, "RetryConfig.attempts must be at least 1, got 0"),
        ({"attempts": 2.0}, "RetryConfig.attempts must be an int, got 2.0"),
        ({"attempts": True}, "RetryConfig.attempts must be an int, got True"),
        ({"initial": -1}, "RetryConfig.initial must be 0 or more seconds, got -1"),
        ({"max": float("inf")}, "RetryConfig.max must be 0 or more seconds, got inf"),
        ({"multiplier": 0.5}, "RetryConfig.multiplier must be at least 1, got 0.5"),
        ({"initial": 5, "max": 2}, "RetryConfig.max (2) must not be less than initial (5)"),
        ({"max_retry_after": -1}, "RetryConfig.max_retry_after must be 0 or more seconds, got -1"),
        (
            {"on": frozenset({"quota", "auth", "timeout"})},
            "RetryConfig.on: 'auth', 'quota' cannot be retried; choose from connection, "
            "invalid_output, rate_limit, server_error, timeout",
        ),
        ({"on": "timeout"}, "RetryConfig.on must be a set of kinds, got the string 'timeout'"),
    ],
)
def test_bad_policies_are_refused(kw: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError) as info:
        RetryConfig(**kw)
    assert str(info.value) == message


def test_on_may_be_any_iterable_of_kinds() -> None:
    policy = RetryConfig(on=["timeout", "connection"])  # type: ignore[arg-type]
    assert policy.on == frozenset({"timeout", "connection"})
    assert RetryConfig().on == RETRYABLE_KINDS


@pytest.mark.parametrize("deadline", [0, -1.0, float("inf"), float("nan")])
async def test_a_bad_deadline_is_refused(deadline: float) -> None:
    with pytest.raises(ValueError) as info:
        await call_with_retry(Script(Reply()), RetryConfig(), deadline=deadline)
    assert str(info.value) == f"deadline must be a positive number of seconds, got {deadline!r}"


# --- guards ------------------------------------------------------------------------------------


def guards(ft: FakeTime) -> Guards:
    return Guards(clock=ft.clock, sleep=ft.sleep)


def answer(reply: object) -> Callable[[], Awaitable[Any]]:
    async def fn() -> object:
        if isinstance(reply, BaseException):
            raise reply
        return reply

    return fn


def test_one_guard_per_endpoint_and_model_first_configuration_wins() -> None:
    g = Guards()
    a = g.for_endpoint("https://api.openai.com/v1/", "gpt-4o-mini", rpm=500)
    assert g.for_endpoint("https://api.openai.com/v1", "gpt-4o-mini", rpm=10) is a
    assert a.limiter.rpm == 500
    assert g.for_endpoint("https://api.openai.com/v1", "gpt-4o") is not a
    assert g.for_endpoint("http://127.0.0.1:8000/v1", "gpt-4o-mini") is not a
    assert a.breaker.name == "gpt-4o-mini at https://api.openai.com/v1"


async def test_guard_settles_tokens_from_usage() -> None:
    ft = FakeTime()
    guard = guards(ft).for_endpoint("http://h/v1", "m", tpm=600)
    result, waited = await guard.run(answer(Reply(usage=Usage(50, 50))), tokens=600)
    assert waited == 0.0 and result.usage.total == 100
    _, waited = await guard.run(answer(Reply()), tokens=500)  # 500 came back
    assert waited == 0.0
    _, waited = await guard.run(answer(Reply()), tokens=10)  # no usage: 500 stay charged
    assert waited == pytest.approx(1.0)


async def test_guard_reads_rate_headers_from_replies_and_errors() -> None:
    ft = FakeTime()
    guard = guards(ft).for_endpoint("http://h/v1", "m")
    hint = {"x-ratelimit-remaining-requests": "0", "x-ratelimit-reset-requests": "2s"}
    await guard.run(answer(Reply(rate_headers=hint)), tokens=0)
    _, waited = await guard.run(answer(Reply()), tokens=0)
    assert waited == pytest.approx(2.0)

    failure = BadRequest("400", status=400, headers=hint)
    with pytest.raises(BadRequest):
        await guard.run(answer(failure), tokens=0)
    _, waited = await guard.run(answer(Reply()), tokens=0)
    assert waited == pytest.approx(2.0)


@pytest.mark.parametrize(("retry_after", "pause"), [(4.0, 4.0), (None, DEFAULT_PAUSE_429)])
async def test_guard_pauses_everyone_after_a_429(retry_after: float | None, pause: float) -> None:
    ft = FakeTime()
    guard = guards(ft).for_endpoint("http://h/v1", "m")
    limited = RateLimited("429", status=429, retry_after=retry_after)
    with pytest.raises(RateLimited) as info:
        await guard.run(answer(limited), tokens=0)
    assert info.value is limited
    _, waited = await guard.run(answer(Reply()), tokens=0)
    assert waited == pytest.approx(pause)


async def test_guard_opens_the_breaker_and_then_fails_fast() -> None:
    ft = FakeTime()
    guard = guards(ft).for_endpoint("http://h/v1", "m", failures=2, cooldown=30, rpm=60)
    for _ in range(2):
        with pytest.raises(ServerFailed):
            await guard.run(answer(ServerFailed("503", status=503)), tokens=0)
    assert ft.now == 1.0  # the second call waited its turn in the limiter
    called: list[int] = []

    async def never() -> None:
        called.append(1)

    with pytest.raises(CircuitOpen) as info:
        await guard.run(never, tokens=0)
    assert called == []
    assert ft.now == 1.0  # refused at once, without queueing for a rate slot
    assert "One trial call will be let through in 30.0 s" in str(info.value)
    assert guard.limiter.in_flight == 0


async def test_a_breaker_that_opens_while_a_call_queues_refuses_it_after_the_line() -> None:
    ft = FakeTime()
    guard = guards(ft).for_endpoint(
        "http://h/v1", "m", failures=1, cooldown=30, concurrency=1, tpm=600
    )
    holder = await guard.limiter.acquire(0)
    sent: list[int] = []

    async def fn() -> Reply:
        sent.append(1)
        return Reply()

    task = asyncio.ensure_future(guard.run(fn, tokens=600))
    for _ in range(5):
        await asyncio.sleep(0)
    guard.breaker.record_failure(ServerFailed("503", status=503))
    holder.release()
    with pytest.raises(CircuitOpen):
        await task
    assert sent == []
    assert guard.limiter.in_flight == 0
    permit = await guard.limiter.acquire(600)  # the refused call's reservation came back
    assert permit.waited_s == 0.0


async def test_half_open_guard_sends_one_probe_while_others_fail_fast() -> None:
    ft = FakeTime()
    guard = guards(ft).for_endpoint("http://h/v1", "m", failures=1, cooldown=10)
    with pytest.raises(ConnectFailed):
        await guard.run(answer(ConnectFailed("refused")), tokens=0)
    ft.now += 10
    gate = asyncio.Event()
    sent: list[int] = []

    async def probe() -> Reply:
        sent.append(1)
        await gate.wait()
        return Reply("probe")

    probe_task = asyncio.ensure_future(guard.run(probe, tokens=0))
    await asyncio.sleep(0)
    others = await asyncio.gather(
        *(guard.run(answer(Reply()), tokens=0) for _ in range(20)), return_exceptions=True
    )
    assert all(isinstance(o, CircuitOpen) for o in others)
    assert sent == [1]
    gate.set()
    result, _ = await probe_task
    assert result.text == "probe"
    assert guard.breaker.state == "closed"
    result, _ = await guard.run(answer(Reply("after")), tokens=0)
    assert result.text == "after"


async def test_a_probe_cancelled_in_the_limiter_line_frees_the_probe_slot() -> None:
    ft = FakeTime()
    guard = guards(ft).for_endpoint("http://h/v1", "m", failures=1, cooldown=10, concurrency=1)
    holder = await guard.limiter.acquire()
    guard.breaker.record_failure(ReadTimedOut("slow"))
    ft.now += 10
    task = asyncio.ensure_future(guard.run(answer(Reply()), tokens=0))
    for _ in range(5):
        await asyncio.sleep(0)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    holder.release()
    result, _ = await guard.run(answer(Reply("probe")), tokens=0)
    assert result.text == "probe" and guard.breaker.state == "closed"


async def test_retry_around_guard_one_layer_end_to_end() -> None:
    ft = FakeTime()
    guard = guards(ft).for_endpoint("http://h/v1", "m", rpm=60)
    replies = iter([RateLimited("429", status=429, retry_after=2.0), Reply("done")])

    async def attempt(n: int) -> Reply:
        result, _ = await guard.run(answer(next(replies)), tokens=10)
        assert isinstance(result, Reply)
        return result

    result, attempts = await call_with_retry(
        attempt, RetryConfig(initial=0.1), sleep=ft.sleep, clock=ft.clock, random=lambda: 0.0
    )
    assert result.text == "done"
    assert [a.outcome for a in attempts] == ["rate_limit", "ok"]
    assert ft.sleeps == [2.0]  # the retry waited; the limiter's pause had passed by then


async def test_on_admit_reports_the_limiter_wait_even_when_the_call_fails() -> None:
    ft = FakeTime()
    guard = guards(ft).for_endpoint("http://h/v1", "m", rpm=30)
    waits: list[float] = []
    await guard.run(answer(Reply()), tokens=0, on_admit=waits.append)
    with pytest.raises(ReadTimedOut):
        await guard.run(answer(ReadTimedOut("slow")), tokens=0, on_admit=waits.append)
    assert waits == [0.0, pytest.approx(2.0)]


def test_the_spec_schema_names_exactly_the_retryable_kinds() -> None:
    """retry.on's enum and default in the spec schema are the kinds the error classes mark
    retryable: a new retryable error cannot be forgotten in the schema, nor the other way."""
    from runner.schema import packaged_schema

    on = packaged_schema("prompt-spec.schema.json")["properties"]["retry"]["properties"]["on"]
    assert set(on["items"]["enum"]) == RETRYABLE_KINDS
    assert set(on["default"]) == RETRYABLE_KINDS


def test_retry_defaults_are_the_spec_schemas() -> None:
    """One default per setting: the dataclass reads the schema's `default`s."""
    from runner.durations import parse_duration
    from runner.schema import packaged_schema

    retry = packaged_schema("prompt-spec.schema.json")["properties"]["retry"]["properties"]
    backoff = retry["backoff"]["properties"]
    config = RetryConfig()
    assert config.attempts == retry["attempts"]["default"]
    assert config.initial == parse_duration(backoff["initial"]["default"])
    assert config.max == parse_duration(backoff["max"]["default"])
    assert config.multiplier == backoff["multiplier"]["default"]
    assert config.jitter is backoff["jitter"]["default"]
    assert config.max_retry_after == parse_duration(retry["max_retry_after"]["default"])


_TENACITY_PROBE = """
import asyncio, sys
from runner.errors import ServerFailed
from runner.policy.retry import call_with_retry
from runner.spec.model import RetryConfig

policy = RetryConfig(attempts=3, initial=0.001, max=0.001, jitter=False)

async def ok(n):
    return "ok"

failures = iter([ServerFailed("503 unavailable", status=503)])

async def flaky(n):
    for exc in failures:
        raise exc
    return "ok after " + str(n)

print(asyncio.run(call_with_retry(ok, policy))[0], "tenacity" in sys.modules)
print(asyncio.run(call_with_retry(flaky, policy))[0], "tenacity" in sys.modules)
"""


def test_tenacity_is_imported_at_the_first_retry_only() -> None:
    # Importing it is ~10 ms of every start; a call that succeeds at once never needs it.
    from _fresh_python import python_output

    assert python_output(_TENACITY_PROBE).splitlines() == ["ok False", "ok after 2 True"]
