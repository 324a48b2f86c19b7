"""The Wilson score interval against values computed independently: exactly, as the roots of
Wilson's (1927) quadratic in rational arithmetic, and against the published figures of
Newcombe (1998), "Two-sided confidence intervals for the single proportion: comparison of
seven methods", Statistics in Medicine 17:857-872, Table II, method 3 (score, no continuity
correction)."""

from __future__ import annotations

from decimal import Decimal, getcontext

import pytest

from runner.testing.stats import percentile, wilson

Z = Decimal("1.959963984540054")  # the 97.5th percentile of the standard normal


def _roots(passes: int, runs: int) -> tuple[Decimal, Decimal]:
    """Wilson's interval as the two p solving (p̂ - p)² = z²·p(1 - p)/n, that is
    (n + z²)·p² - (2·passes + z²)·p + passes²/n = 0, in 50-digit decimals."""
    getcontext().prec = 50
    n, x, z2 = Decimal(runs), Decimal(passes), Z * Z
    a = n + z2
    b = -(2 * x + z2)
    c = x * x / n
    root = (b * b - 4 * a * c).sqrt()
    return (-b - root) / (2 * a), (-b + root) / (2 * a)


@pytest.mark.parametrize(
    ("passes", "runs", "low", "high"),
    [
        (8, 10, "0.4902", "0.9433"),
        (0, 10, "0.0000", "0.2775"),
        (5, 10, "0.2366", "0.7634"),
        (10, 10, "0.7225", "1.0000"),
        # Newcombe (1998), Table II, method 3.
        (81, 263, "0.2553", "0.3662"),
        (15, 148, "0.0624", "0.1605"),
        (0, 20, "0.0000", "0.1611"),
        (1, 29, "0.0061", "0.1718"),
    ],
)
def test_wilson_matches_known_values(passes: int, runs: int, low: str, high: str) -> None:
    exact = _roots(passes, runs)
    found = wilson(passes, runs)
    for got, want, rounded in zip(found, exact, (low, high), strict=True):
        assert abs(Decimal(got) - want) < Decimal("1e-12")
        assert f"{got:.4f}" == rounded


def test_the_bounds_are_exact_at_none_and_all() -> None:
    assert wilson(0, 3)[0] == 0.0 and wilson(3, 3)[1] == 1.0
    assert wilson(0, 0) == (0.0, 1.0)
    with pytest.raises(ValueError):
        wilson(4, 3)


def test_percentiles_interpolate_as_the_report_does() -> None:
    assert percentile([], 0.5) is None
    assert percentile([10.0], 0.95) == 10.0
    assert percentile([1.0, 2.0, 3.0, 4.0], 0.5) == 2.5
    assert percentile([float(x) for x in range(1, 21)], 0.95) == pytest.approx(19.05)
