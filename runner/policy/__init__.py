"""What happens around one HTTP request: the retry policy (tenacity), the rate limiter, the
circuit breaker, and the guards that pair one limiter and one breaker per endpoint and model.
Clock and sleep are parameters; it never imports httpx2 and decides from `.retryable` and
`.retry_after` alone.

Modules: `retry` (should_retry, backoff, call_with_retry, under a spec's RetryConfig),
`guards` (Guard, Guards), `limiter`, `breaker`.
"""

from runner.policy.breaker import Breaker, BreakerState
from runner.policy.guards import Guard, Guards
from runner.policy.limiter import Limiter, Permit
from runner.policy.retry import call_with_retry

__all__ = [
    "Breaker",
    "BreakerState",
    "Guard",
    "Guards",
    "Limiter",
    "Permit",
    "call_with_retry",
]
