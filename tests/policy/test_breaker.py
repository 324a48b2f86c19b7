"""runner.policy.breaker: which failures count, and every transition of closed / open /
half-open."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

import pytest
from _fakes import FakeTime

from runner.errors import (
    AuthenticationFailed,
    BadRequest,
    CircuitOpen,
    ConfigError,
    ConnectFailed,
    DeadlineExceeded,
    NotFound,
    OutputInvalid,
    QuotaExhausted,
    RateLimited,
    ReadTimedOut,
    ServerFailed,
    StreamBroken,
)
from runner.policy.breaker import Breaker, counts_against_endpoint

START = 100.0  # where every fake clock here starts: like time.monotonic(), not at zero


def server_error(status: int = 503) -> ServerFailed:
    return ServerFailed(f"server answered {status}", status=status)


COUNTED: list[BaseException] = [
    server_error(500),
    server_error(503),
    ReadTimedOut("read timed out"),
    ConnectFailed("connection refused"),
    StreamBroken("stream ended early"),
]
UNCOUNTED: list[BaseException] = [
    RateLimited("slow down", status=429),
    QuotaExhausted("quota", status=429, code="insufficient_quota"),
    AuthenticationFailed("bad key", status=401),
    NotFound("no such model", status=404),
    BadRequest("bad", status=400),
    BadRequest("unprocessable", status=422),
    server_error(408),
    server_error(409),
    OutputInvalid("not json"),
    DeadlineExceeded("out of time"),
    ConfigError("config"),
    ValueError("a bug"),
    asyncio.CancelledError(),
]


def _ids(excs: Sequence[BaseException]) -> list[str]:
    return [f"{type(e).__name__}-{getattr(e, 'status', '')}" for e in excs]


@pytest.mark.parametrize("exc", COUNTED, ids=_ids(COUNTED))
def test_counted_failures(exc: BaseException) -> None:
    assert counts_against_endpoint(exc)


@pytest.mark.parametrize("exc", UNCOUNTED, ids=_ids(UNCOUNTED))
def test_uncounted_failures(exc: BaseException) -> None:
    assert not counts_against_endpoint(exc)


@pytest.mark.parametrize(
    ("kw", "message"),
    [
        ({"failures": 0}, "Breaker failures must be an int of at least 1, got 0"),
        ({"failures": 2.5}, "Breaker failures must be an int of at least 1, got 2.5"),
        ({"failures": True}, "Breaker failures must be an int of at least 1, got True"),
        ({"cooldown": -1}, "Breaker cooldown must be 0 or more seconds, got -1"),
        ({"cooldown": float("nan")}, "Breaker cooldown must be 0 or more seconds, got nan"),
    ],
)
def test_bad_settings_are_refused(kw: dict[str, float], message: str) -> None:
    with pytest.raises(ValueError) as info:
        Breaker(**kw)  # type: ignore[arg-type]
    assert str(info.value) == message


def open_breaker(clock: FakeTime, failures: int = 3, cooldown: float = 30.0) -> Breaker:
    breaker = Breaker(
        failures=failures, cooldown=cooldown, clock=clock.clock, name="gpt-x at http://h"
    )
    for _ in range(failures):
        breaker.before_call()
        breaker.record_failure(server_error())
    assert breaker.state == "open"
    return breaker


def test_opens_after_n_consecutive_counted_failures() -> None:
    clock = FakeTime(START)
    breaker = Breaker(failures=3, clock=clock.clock)
    for _ in range(2):
        breaker.record_failure(ReadTimedOut("slow"))
    assert breaker.state == "closed"
    breaker.before_call()
    breaker.record_failure(ConnectFailed("refused"))
    assert str(breaker.state) == "open"
    assert breaker.retry_at == 160.0


@pytest.mark.parametrize("exc", UNCOUNTED, ids=_ids(UNCOUNTED))
def test_uncounted_failures_never_open_it(exc: BaseException) -> None:
    breaker = Breaker(failures=1, clock=FakeTime(START).clock)
    for _ in range(10):
        breaker.record_failure(exc)
    assert breaker.state == "closed"
    breaker.before_call()


def test_uncounted_failures_do_not_break_the_run_but_a_success_does() -> None:
    breaker = Breaker(failures=3, clock=FakeTime(START).clock)
    breaker.record_failure(server_error())
    breaker.record_failure(server_error())
    breaker.record_failure(BadRequest("bad", status=400))  # neutral
    breaker.record_failure(server_error())
    assert breaker.state == "open"

    breaker = Breaker(failures=3, clock=FakeTime(START).clock)
    breaker.record_failure(server_error())
    breaker.record_failure(server_error())
    breaker.record_success()
    breaker.record_failure(server_error())
    breaker.record_failure(server_error())
    assert breaker.state == "closed"


def test_open_fails_fast_saying_when_it_will_try_again() -> None:
    clock = FakeTime(START)
    breaker = open_breaker(clock, failures=2, cooldown=30.0)
    clock.now += 10.0
    with pytest.raises(CircuitOpen) as info:
        breaker.before_call()
    assert str(info.value) == (
        "Circuit open for gpt-x at http://h after 2 consecutive failures (last: server_error, "
        "HTTP 503); the call was not sent. One trial call will be let through in 20.0 s "
        "(breaker.cooldown 30 s)."
    )
    assert info.value.retry_at == 130.0
    assert info.value.kind == "circuit_open" and not info.value.retryable


def test_an_unnamed_breaker_names_the_endpoint_generically() -> None:
    breaker = Breaker(failures=1, cooldown=5, clock=FakeTime(START).clock)
    breaker.record_failure(ReadTimedOut("slow"))
    with pytest.raises(CircuitOpen) as info:
        breaker.check()
    assert str(info.value).startswith(
        "Circuit open for this endpoint after 1 consecutive failures (last: timeout);"
    )


def test_half_open_lets_exactly_one_probe_through() -> None:
    clock = FakeTime(START)
    breaker = open_breaker(clock)
    clock.now += 30.0
    assert breaker.state == "half_open"
    breaker.before_call()  # the probe
    for _ in range(3):
        with pytest.raises(CircuitOpen) as info:
            breaker.before_call()
        assert str(info.value) == (
            "Circuit half-open for gpt-x at http://h after 3 consecutive failures: a trial call "
            "is in flight; the call was not sent. Calls resume as soon as the trial call "
            "succeeds."
        )
        assert info.value.retry_at is None


def test_a_successful_probe_closes_it() -> None:
    clock = FakeTime(START)
    breaker = open_breaker(clock)
    clock.now += 30.0
    breaker.before_call()
    breaker.record_success()
    assert breaker.state == "closed" and breaker.retry_at is None
    for _ in range(5):
        breaker.before_call()
    # and the count starts again from zero
    breaker.record_failure(server_error())
    breaker.record_failure(server_error())
    assert breaker.state == "closed"


def test_a_failed_probe_opens_it_for_another_cooldown() -> None:
    clock = FakeTime(START)
    breaker = open_breaker(clock)
    clock.now += 31.0
    breaker.before_call()
    breaker.record_failure(ReadTimedOut("still slow"))
    assert breaker.state == "open"
    assert breaker.retry_at == clock.now + 30.0
    with pytest.raises(CircuitOpen) as info:
        breaker.before_call()
    assert "after 4 consecutive failures (last: timeout)" in str(info.value)
    assert "in 30.0 s" in str(info.value)


@pytest.mark.parametrize(
    "exc", [BadRequest("bad", status=400), asyncio.CancelledError()], ids=["400", "cancelled"]
)
def test_an_uncounted_probe_end_frees_the_probe_slot(exc: BaseException) -> None:
    clock = FakeTime(START)
    breaker = open_breaker(clock)
    clock.now += 30.0
    breaker.before_call()
    breaker.record_failure(exc)
    assert breaker.state == "half_open"
    breaker.before_call()  # the next call is the new probe
    with pytest.raises(CircuitOpen):
        breaker.before_call()


def test_check_changes_nothing() -> None:
    clock = FakeTime(START)
    breaker = open_breaker(clock)
    clock.now += 30.0
    for _ in range(3):
        breaker.check()  # half-open, no probe taken yet
    breaker.before_call()
    with pytest.raises(CircuitOpen):
        breaker.check()
