"""Resilience: retries with backoff (here against faults the mock server injects), the circuit
breaker and the rate limiter, each on its own."""

from __future__ import annotations

import asyncio
import dataclasses
import time

from _common import PROMPTS

import runner
from runner.errors import ServerFailed
from runner.policy import Breaker, Limiter


def retries() -> None:
    spec = runner.load(PROMPTS / "city.yaml")
    # The mock fails the first two tries of this request with a 503, as a flaky server would.
    flaky = dataclasses.replace(
        spec,
        provider=dataclasses.replace(
            spec.provider, headers={"X-Mock-Fault": "status=503;fail_first=2"}
        ),
        retry=dataclasses.replace(spec.retry, initial=0.05, max=0.2),
    )
    with runner.Session(mock=True) as session:
        result = session.run(flaky, {"city": "Cairo"})
    for attempt in result.attempts:
        print(f"attempt {attempt.number}: {attempt.outcome} (waited {attempt.waited_s:.2f} s)")


def breaker() -> None:
    b = Breaker(failures=3, cooldown=30.0, name="https://api.example/v1 gpt-4o-mini")
    for _ in range(3):
        b.record_failure(ServerFailed("503 from the server", status=503))
    print("breaker:", b.state)
    try:
        b.before_call()
    except runner.CircuitOpen as exc:
        print("  refused:", exc)


async def limiter() -> None:
    lim = Limiter(rpm=600)  # one start every 100 ms, never a burst
    started = time.monotonic()
    for _ in range(5):
        permit = await lim.acquire()
        print(f"limiter: start at {time.monotonic() - started:.2f} s")
        permit.release()


def main() -> None:
    retries()
    breaker()
    asyncio.run(limiter())


if __name__ == "__main__":
    main()
