"""runner.policy.limiter: spacing, FIFO fairness, tokens, concurrency, server hints, cancellation.

Time is fake: `FakeTime.sleep` advances `FakeTime.clock`, so no test waits for real.
"""

from __future__ import annotations

import asyncio
import bisect
import random
from collections.abc import Awaitable
from typing import Any

import pytest
from _fakes import FakeTime

from runner.durations import header_duration
from runner.policy.limiter import MAX_HINT_WAIT, Limiter, Permit

pytestmark = pytest.mark.anyio

START = 1000.0  # where every fake clock here starts: like time.monotonic(), not at zero


class StuckSleep:
    """A sleep that never ends by itself: only a wake-up from the limiter can move the head."""

    def __init__(self) -> None:
        self.started: list[float] = []
        self.cancelled = 0

    async def __call__(self, seconds: float) -> None:
        self.started.append(seconds)
        try:
            await asyncio.get_running_loop().create_future()
        except asyncio.CancelledError:
            self.cancelled += 1
            raise


def limiter(ft: FakeTime, **kw: int | None) -> Limiter:
    return Limiter(clock=ft.clock, sleep=ft.sleep, **kw)


def worst_window(starts: list[float], width: float = 1.0) -> int:
    """The most starts in any half-open window [s, s + width)."""
    starts = sorted(starts)
    return max(bisect.bisect_left(starts, s + width - 1e-9) - i for i, s in enumerate(starts))


async def settle() -> None:
    for _ in range(20):
        await asyncio.sleep(0)


# --- header durations ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("1s", 1.0),
        ("6m0s", 360.0),
        ("59ms", 0.059),
        ("0.5s", 0.5),
        ("7.66s", 7.66),
        ("2m59.56s", 179.56),
        ("1h2m3.5s", 3723.5),
        ("250us", 0.00025),
        ("20", 20.0),
        (" 3s ", 3.0),
        ("", None),
        ("soon", None),
        ("1x", None),
        ("s", None),
        ("1s2", None),
        ("-1", None),
        ("-1s", None),
        ("nan", None),
        ("inf", None),
    ],
)
def test_header_duration(text: str, seconds: float | None) -> None:
    result = header_duration(text)
    if seconds is None:
        assert result is None
    else:
        assert result == pytest.approx(seconds)


# --- construction ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kw", "message"),
    [
        ({"rpm": 0}, "Limiter rpm must be a positive number or None, got 0"),
        ({"tpm": -5}, "Limiter tpm must be a positive number or None, got -5"),
        ({"concurrency": True}, "Limiter concurrency must be a positive number or None, got True"),
    ],
)
def test_bad_limits_are_refused(kw: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError) as info:
        Limiter(**kw)
    assert str(info.value) == message


@pytest.mark.parametrize("tokens", [-1, 1.5, True, "3"])
async def test_bad_reservation_is_refused(tokens: object) -> None:
    with pytest.raises(ValueError) as info:
        await Limiter().acquire(tokens)  # type: ignore[arg-type]
    assert str(info.value) == f"Limiter.acquire tokens must be a non-negative int, got {tokens!r}"


async def test_no_limits_admit_at_once_without_sleeping() -> None:
    ft = FakeTime(START)
    lim = limiter(ft)
    permits = [await lim.acquire(10_000) for _ in range(1000)]
    assert ft.sleeps == []
    assert ft.now == 1000.0
    assert lim.in_flight == 1000
    assert all(p.waited_s == 0.0 for p in permits)
    for p in permits:
        p.release(5)
    assert lim.in_flight == 0


# --- request spacing and fairness --------------------------------------------------------------


async def test_requests_are_spaced_and_fifo_under_200_concurrent_callers() -> None:
    ft = FakeTime(START)
    lim = limiter(ft, rpm=600)
    arrivals: list[int] = []
    order: list[int] = []
    starts: list[float] = []
    rng = random.Random(7)

    async def caller(i: int) -> None:
        for _ in range(rng.randrange(5)):  # stagger arrivals across loop iterations
            await asyncio.sleep(0)
        arrivals.append(i)
        permit = await lim.acquire()
        order.append(i)
        starts.append(ft.clock())
        permit.release()

    await asyncio.gather(*(caller(i) for i in range(200)))
    assert order == arrivals  # first come, first served
    gaps = [b - a for a, b in zip(starts, starts[1:], strict=False)]
    assert min(gaps) >= 0.1 - 1e-9  # 60 / 600 seconds apart: no bursts
    assert worst_window(starts) <= 600 / 60 + 1
    assert starts[-1] - starts[0] == pytest.approx(19.9)  # exactly the limit: 199 intervals
    assert lim.waiting == 0 and lim.in_flight == 0


@pytest.mark.parametrize("rpm", [600, 100, 90, 3000])
async def test_late_wakeups_keep_the_rate_and_the_window_bound(rpm: int) -> None:
    rng = random.Random(rpm)
    interval = 60 / rpm
    ft = FakeTime(START, lateness=lambda: rng.uniform(0, 0.03 * min(1.0, interval * 5)))
    lim = limiter(ft, rpm=rpm)
    n = max(60, rpm // 2)  # thirty seconds of plentiful work
    starts: list[float] = []

    async def caller() -> None:
        async with await lim.acquire():
            starts.append(ft.clock())

    await asyncio.gather(*(caller() for _ in range(n)))
    achieved = (n - 1) / (starts[-1] - starts[0]) * 60
    assert achieved == pytest.approx(rpm, rel=0.02)
    assert achieved <= rpm * 1.0001
    assert worst_window(starts) <= rpm / 60 + 1


async def test_no_burst_after_an_idle_period() -> None:
    ft = FakeTime(START)
    lim = limiter(ft, rpm=60)
    (await lim.acquire()).release()
    ft.now += 500  # idle: a token bucket would have refilled and let a burst through here
    starts: list[float] = []

    async def caller() -> None:
        (await lim.acquire()).release()
        starts.append(ft.clock())

    await asyncio.gather(*(caller() for _ in range(5)))
    gaps = [b - a for a, b in zip(starts, starts[1:], strict=False)]
    assert min(gaps) >= 1.0 - 0.05 - 1e-9
    assert worst_window(starts) <= 2


async def test_waited_seconds_are_reported() -> None:
    ft = FakeTime(START)
    lim = limiter(ft, rpm=60)
    first = await lim.acquire()
    second = await lim.acquire()
    assert first.waited_s == 0.0
    assert second.waited_s == pytest.approx(1.0)


# --- tokens ------------------------------------------------------------------------------------


async def test_tokens_are_reserved_and_waited_for() -> None:
    ft = FakeTime(START)
    lim = limiter(ft, tpm=600)  # 10 tokens a second
    first = await lim.acquire(600)  # a fresh bucket is full
    assert first.waited_s == 0.0
    second = await lim.acquire(100)
    assert second.waited_s == pytest.approx(10.0)


async def test_release_refunds_unused_tokens() -> None:
    ft = FakeTime(START)
    lim = limiter(ft, tpm=600)
    (await lim.acquire(600)).release(100)  # 500 reserved but unused come back
    permit = await lim.acquire(500)
    assert permit.waited_s == 0.0
    assert ft.sleeps == []


async def test_release_charges_tokens_beyond_the_reservation() -> None:
    ft = FakeTime(START)
    lim = limiter(ft, tpm=600)
    (await lim.acquire(100)).release(300)  # used 200 more than reserved: level 300
    permit = await lim.acquire(400)
    assert permit.waited_s == pytest.approx(10.0)


async def test_release_without_usage_keeps_the_reservation() -> None:
    ft = FakeTime(START)
    lim = limiter(ft, tpm=600)
    (await lim.acquire(600)).release(None)
    permit = await lim.acquire(60)
    assert permit.waited_s == pytest.approx(6.0)


async def test_a_reservation_larger_than_tpm_is_admitted_alone_on_a_full_bucket() -> None:
    ft = FakeTime(START)
    lim = limiter(ft, tpm=600)
    (await lim.acquire(100)).release(100)  # level 500
    async with asyncio.timeout(5):  # a limiter that waits for 1000 tokens would spin forever
        big = await lim.acquire(1000)  # waits until the bucket is full, then goes into debt
    assert big.waited_s == pytest.approx(10.0)
    small = await lim.acquire(1)  # the debt of 400 (+1) must refill first
    assert small.waited_s == pytest.approx(40.1)


async def test_a_big_reservation_is_not_overtaken_by_a_small_one() -> None:
    ft = FakeTime(START)
    lim = limiter(ft, tpm=600)
    (await lim.acquire(600)).release(600)  # empty bucket
    order: list[str] = []

    async def caller(name: str, tokens: int) -> None:
        async with await lim.acquire(tokens):
            order.append(name)

    await asyncio.gather(caller("big", 500), caller("small", 1))
    assert order == ["big", "small"]


async def test_a_refund_wakes_the_head_of_the_line_early() -> None:
    ft = FakeTime(START)
    stuck = StuckSleep()
    lim = Limiter(tpm=600, clock=ft.clock, sleep=stuck)
    holder = await lim.acquire(600)
    waiter = asyncio.ensure_future(lim.acquire(300))
    await settle()
    assert stuck.started == [pytest.approx(30.0)] and not waiter.done()
    holder.release(0)  # all 600 refunded: the waiter fits now
    await settle()
    assert waiter.done() and waiter.result().tokens == 300
    assert stuck.cancelled == 1


# --- concurrency -------------------------------------------------------------------------------


async def test_concurrency_cap_and_fifo() -> None:
    ft = FakeTime(START)
    lim = limiter(ft, concurrency=3)
    running = 0
    peak = 0
    arrivals: list[int] = []
    order: list[int] = []

    async def caller(i: int) -> None:
        nonlocal running, peak
        arrivals.append(i)
        async with await lim.acquire():
            order.append(i)
            running += 1
            peak = max(peak, running)
            for _ in range(i % 4 + 1):
                await asyncio.sleep(0)
            running -= 1

    await asyncio.gather(*(caller(i) for i in range(40)))
    assert peak == 3
    assert order == arrivals
    assert lim.in_flight == 0 and lim.waiting == 0


async def test_double_release_is_harmless() -> None:
    lim = Limiter(concurrency=1)
    permit = await lim.acquire()
    permit.release()
    permit.release()
    assert lim.in_flight == 0
    async with await lim.acquire() as again:
        assert isinstance(again, Permit)
        assert lim.in_flight == 1
    assert lim.in_flight == 0


# --- server hints ------------------------------------------------------------------------------


async def test_no_requests_remaining_waits_for_the_reset() -> None:
    ft = FakeTime(START)
    lim = limiter(ft)
    lim.observe({"x-ratelimit-remaining-requests": "0", "x-ratelimit-reset-requests": "2s"})
    permit = await lim.acquire()
    assert permit.waited_s == pytest.approx(2.0)


async def test_remaining_requests_are_counted_down_locally() -> None:
    ft = FakeTime(START)
    lim = limiter(ft)
    lim.observe({"x-ratelimit-remaining-requests": "2", "x-ratelimit-reset-requests": "6m0s"})
    waits = [(await lim.acquire()).waited_s for _ in range(3)]
    assert waits == [0.0, 0.0, pytest.approx(MAX_HINT_WAIT)]  # a reset of 6 min is capped


async def test_too_few_remaining_tokens_wait_for_the_tokens_reset() -> None:
    ft = FakeTime(START)
    lim = limiter(ft)
    lim.observe({"x-ratelimit-remaining-tokens": "50", "x-ratelimit-reset-tokens": "1.5s"})
    small = await lim.acquire(40)
    assert small.waited_s == 0.0
    big = await lim.acquire(20)  # 10 left on the server's side
    assert big.waited_s == pytest.approx(1.5)
    after = await lim.acquire(10_000)  # the hint expired at its reset
    assert after.waited_s == 0.0


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"x-ratelimit-remaining-requests": "many", "x-ratelimit-reset-requests": "2s"},
        {"x-ratelimit-remaining-requests": "-3"},
        {"x-ratelimit-remaining-tokens": "", "x-ratelimit-reset-tokens": "1s"},
        {"x-ratelimit-limit-requests": "0"},
    ],
)
async def test_unusable_hints_are_ignored(headers: dict[str, str]) -> None:
    ft = FakeTime(START)
    lim = limiter(ft)
    lim.observe(headers)
    lim.observe(None)
    assert (await lim.acquire(100)).waited_s == 0.0


async def test_a_reset_header_that_cannot_be_read_means_a_minute() -> None:
    ft = FakeTime(START)
    lim = limiter(ft)
    lim.observe({"x-ratelimit-remaining-requests": "0", "x-ratelimit-reset-requests": "later"})
    assert (await lim.acquire()).waited_s == pytest.approx(MAX_HINT_WAIT)


async def test_a_fresh_hint_wakes_the_waiting_head() -> None:
    ft = FakeTime(START)
    stuck = StuckSleep()
    lim = Limiter(clock=ft.clock, sleep=stuck)
    lim.observe({"x-ratelimit-remaining-requests": "0", "x-ratelimit-reset-requests": "20s"})
    waiter = asyncio.ensure_future(lim.acquire())
    await settle()
    assert stuck.started == [pytest.approx(20.0)]
    lim.observe({"x-ratelimit-remaining-requests": "99", "x-ratelimit-reset-requests": "20s"})
    await settle()
    assert waiter.done()


@pytest.mark.parametrize(("seconds", "waited"), [(3.0, 3.0), (3600.0, MAX_HINT_WAIT), (0, 0.0)])
async def test_pause_holds_every_start(seconds: float, waited: float) -> None:
    ft = FakeTime(START)
    lim = limiter(ft)
    lim.pause(seconds)
    lim.pause(-1)  # never shortens a pause
    assert (await lim.acquire()).waited_s == pytest.approx(waited)


async def test_pause_holds_callers_already_in_line() -> None:
    ft = FakeTime(START)
    lim = limiter(ft, rpm=60)
    first = await lim.acquire()
    lim.pause(5)
    second = await lim.acquire()
    assert first.waited_s == 0.0
    assert second.waited_s == pytest.approx(5.0)


# --- cancellation and event loops --------------------------------------------------------------


async def test_cancelling_a_queued_caller_neither_leaks_nor_stalls_the_line() -> None:
    lim = Limiter(concurrency=1)
    holder = await lim.acquire()
    tasks = {name: asyncio.ensure_future(lim.acquire()) for name in "abc"}
    await settle()
    assert lim.waiting == 3
    tasks["b"].cancel()  # in the middle of the line
    await settle()
    assert lim.waiting == 2
    tasks["a"].cancel()  # at the head of the line
    await settle()
    assert lim.waiting == 1
    holder.release()
    await settle()
    assert tasks["c"].done() and not tasks["c"].cancelled()
    tasks["c"].result().release()
    assert lim.waiting == 0 and lim.in_flight == 0


async def test_cancelling_the_sleeping_head_hands_over_to_the_next() -> None:
    ft = FakeTime(START)
    stuck = StuckSleep()
    lim = Limiter(rpm=60, clock=ft.clock, sleep=stuck)
    (await lim.acquire()).release()
    head = asyncio.ensure_future(lim.acquire())
    nxt = asyncio.ensure_future(lim.acquire())
    await settle()
    assert stuck.started == [pytest.approx(1.0)]
    head.cancel()
    await settle()
    assert stuck.cancelled == 1 and stuck.started == [pytest.approx(1.0)] * 2
    assert lim.waiting == 1
    ft.now += 1.0
    nxt.cancel()
    await settle()
    assert lim.waiting == 0
    assert (await lim.acquire()).waited_s == 0.0  # the cancelled callers took no slot


def test_one_limiter_serves_consecutive_event_loops() -> None:
    ft = FakeTime(START)
    lim = limiter(ft, rpm=60, concurrency=1)

    async def one() -> float:
        async with await lim.acquire() as permit:
            await asyncio.sleep(0)
            return permit.waited_s

    async def burst() -> list[float]:
        return list(await asyncio.gather(*(one() for _ in range(3))))

    first = asyncio.run(burst())
    second = asyncio.run(burst())
    assert first == [0.0, pytest.approx(1.0), pytest.approx(2.0)]
    assert second == [pytest.approx(1.0), pytest.approx(2.0), pytest.approx(3.0)]


def test_a_cancelled_loop_leaves_the_limiter_usable() -> None:
    ft = FakeTime(START)
    stuck = StuckSleep()
    lim = Limiter(rpm=60, clock=ft.clock, sleep=stuck)

    async def abandon() -> None:
        (await lim.acquire()).release()
        task = asyncio.ensure_future(lim.acquire())
        await settle()
        task.cancel()

    asyncio.run(abandon())
    assert lim.waiting == 0

    async def again() -> Permit:
        ft.now += 5
        return await lim.acquire()

    assert asyncio.run(again()).waited_s == 0.0


# --- the fast path -----------------------------------------------------------------------------


async def test_the_fast_path_creates_no_waiters(monkeypatch: pytest.MonkeyPatch) -> None:
    lim = Limiter(rpm=6_000_000, tpm=10**12, concurrency=10)

    def fail(*a: object, **k: object) -> Awaitable[None]:
        raise AssertionError("an uncontended acquire must not wait in line")

    monkeypatch.setattr(lim, "_wait_in_line", fail)
    (await lim.acquire(10)).release(3)
