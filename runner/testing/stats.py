"""The figures of repeated runs (`runner test --repeat N`): a pass rate with its 95% Wilson score
interval, and latency percentiles. Pure arithmetic, no I/O.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

__all__ = ["Z95", "percentile", "wilson"]

# The two-sided 95% quantile of the standard normal distribution.
Z95 = 1.959963984540054


def wilson(passes: int, runs: int, z: float = Z95) -> tuple[float, float]:
    """The Wilson score interval of a pass rate (Wilson, 1927): where the true rate lies, at
    95% by default. Unlike p ± z·√(p(1-p)/n), it stays inside [0, 1] and is not zero wide at
    0/n or n/n. (0.0, 1.0) for no runs."""
    if runs < 0 or not 0 <= passes <= runs:
        raise ValueError(f"passes must be within 0 and runs ({runs}), got {passes}")
    if runs == 0:
        return 0.0, 1.0
    p = passes / runs
    z2 = z * z
    centre = p + z2 / (2 * runs)
    spread = z * math.sqrt(p * (1 - p) / runs + z2 / (4 * runs * runs))
    scale = 1 + z2 / runs
    # At 0/n and n/n the bound meets 0 or 1 exactly; rounding must not push it past.
    low = 0.0 if passes == 0 else max(0.0, (centre - spread) / scale)
    high = 1.0 if passes == runs else min(1.0, (centre + spread) / scale)
    return low, high


def percentile(values: Sequence[float], q: float) -> float | None:
    """The q-th quantile (0 to 1) interpolated between the two nearest values, as numpy's
    default and `runner report` compute it; None without values."""
    if not values:
        return None
    ordered = sorted(values)
    at = (len(ordered) - 1) * q
    low = math.floor(at)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (at - low)
