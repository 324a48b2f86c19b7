"""Every hostile case is bounded in wall time: a case still running after LIMIT seconds fails
(SIGALRM interrupts the Python code it is stuck in) instead of hanging the suite."""

from __future__ import annotations

import signal
from collections.abc import Iterator
from types import FrameType

import pytest

LIMIT = 60


@pytest.fixture(autouse=True)
def _wall_time_limit(request: pytest.FixtureRequest) -> Iterator[None]:
    def expired(signum: int, frame: FrameType | None) -> None:
        pytest.fail(f"{request.node.name} ran longer than {LIMIT} s", pytrace=False)

    previous = signal.signal(signal.SIGALRM, expired)
    signal.setitimer(signal.ITIMER_REAL, LIMIT)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
