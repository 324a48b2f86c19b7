"""The circuit breaker for one endpoint: after N consecutive failures that say the endpoint is
down, fail fast for a cooldown, then let exactly one trial call through. Pure state on an
injectable clock: it never sleeps, retries or touches an event loop.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Literal

from runner.errors import CircuitOpen, RunnerError
from runner.spec.model import BreakerConfig

__all__ = ["COUNTED_KINDS", "Breaker", "BreakerState", "counts_against_endpoint"]

BreakerState = Literal["closed", "open", "half_open"]

# Failures that say the endpoint itself is unwell. Not counted: 4xx answers (rate_limit, quota,
# auth, bad_request...: the server is up and answering), invalid output (the model answered),
# and "deadline" (the caller's whole-call budget ran out, which says as much about the budget).
COUNTED_KINDS = frozenset({"server_error", "timeout", "connection"})


def counts_against_endpoint(exc: BaseException) -> bool:
    """Whether a failure counts towards opening the breaker."""
    if not isinstance(exc, RunnerError) or exc.kind not in COUNTED_KINDS:
        return False
    # 408 and 409 share the "server_error" kind (they are worth a retry) but are 4xx answers.
    status = getattr(exc, "status", None)
    return not (isinstance(status, int) and status < 500)


class Breaker:
    """closed -> open after `failures` consecutive counted failures; open -> half_open when
    `cooldown` seconds have passed; half_open lets one probe through: success closes, a counted
    failure opens again for another cooldown.

    Uncounted failures are neutral: they neither count nor reset the run (only a success does).
    An uncounted end of the probe (a 4xx, a cancelled call) frees the probe slot: the next call
    becomes the probe.
    """

    def __init__(
        self,
        *,
        failures: int = BreakerConfig.failures,
        cooldown: float = BreakerConfig.cooldown,
        clock: Callable[[], float] = time.monotonic,
        name: str = "",
    ) -> None:
        if isinstance(failures, bool) or not isinstance(failures, int) or failures < 1:
            raise ValueError(f"Breaker failures must be an int of at least 1, got {failures!r}")
        if not cooldown >= 0:
            raise ValueError(f"Breaker cooldown must be 0 or more seconds, got {cooldown!r}")
        self.failures = failures
        self.cooldown = cooldown
        self.name = name
        self._clock = clock
        self._state: BreakerState = "closed"
        self._consecutive = 0
        self._retry_at = 0.0
        self._probing = False
        self._last = ""

    @property
    def state(self) -> BreakerState:
        """The state a call arriving now would meet ("open" turns "half_open" when it is due)."""
        if self._state == "open" and self._clock() >= self._retry_at:
            return "half_open"
        return self._state

    @property
    def retry_at(self) -> float | None:
        """When an open breaker lets a probe through (a clock value), else None."""
        return self._retry_at if self._state == "open" else None

    def check(self) -> None:
        """Raise CircuitOpen if a call arriving now would be refused; change nothing."""
        state = self.state
        if state == "open":
            raise self._refusal()
        if state == "half_open" and self._probing:
            raise self._probe_busy()

    def before_call(self) -> None:
        """Admit a call or raise CircuitOpen. When half-open, the admitted call is the probe."""
        self.check()
        if self.state == "half_open":
            self._state = "half_open"
            self._probing = True

    def record_success(self) -> None:
        self._state = "closed"
        self._consecutive = 0
        self._probing = False

    def record_failure(self, exc: BaseException) -> None:
        counted = counts_against_endpoint(exc)
        if counted:
            self._consecutive += 1
        if self._state == "half_open":
            self._probing = False
            if counted:
                self._open(exc)
        elif counted and self._state == "closed" and self._consecutive >= self.failures:
            self._open(exc)

    def _open(self, exc: BaseException) -> None:
        self._state = "open"
        self._retry_at = self._clock() + self.cooldown
        self._last = _describe(exc)

    def _label(self) -> str:
        return self.name or "this endpoint"

    def _refusal(self) -> CircuitOpen:
        wait = max(0.0, self._retry_at - self._clock())
        return CircuitOpen(
            f"Circuit open for {self._label()} after {self._consecutive} consecutive failures "
            f"(last: {self._last}); the call was not sent. One trial call will be let through in "
            f"{wait:.1f} s (breaker.cooldown {self.cooldown:g} s).",
            retry_at=self._retry_at,
        )

    def _probe_busy(self) -> CircuitOpen:
        return CircuitOpen(
            f"Circuit half-open for {self._label()} after {self._consecutive} consecutive "
            "failures: a trial call is in flight; the call was not sent. Calls resume as soon "
            "as the trial call succeeds.",
            retry_at=None,
        )


def _describe(exc: BaseException) -> str:
    kind = exc.kind if isinstance(exc, RunnerError) else type(exc).__name__
    status = getattr(exc, "status", None)
    return f"{kind}, HTTP {status}" if isinstance(status, int) else kind
