"""The user's price overrides (`runner.yaml` -> `prices:`), read exactly: USD per million tokens as
numbers or decimal strings, an optional context window; every problem named with where it is.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from decimal import Decimal, InvalidOperation
from typing import Any

from runner.types import Price

__all__ = ["check_mapping", "parse_override"]

_PRICE_KEYS = ("input", "output", "cached_input")
_ALLOWED_KEYS = frozenset((*_PRICE_KEYS, "context_window"))


def check_mapping(value: Any, where: str) -> Mapping[Any, Any]:
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise ValueError(f"{where}: expected a mapping, not {type(value).__name__}")
    return value


def parse_override(name: Any, entry: Any, source: str) -> Price:
    if not isinstance(name, str) or not name.strip():
        raise ValueError(f"prices: a model name must be a non-empty string, not {name!r}")
    where = f"prices.{name}"
    if not isinstance(entry, Mapping):
        raise ValueError(f"{where}: expected a mapping, not {type(entry).__name__}")
    fields = entry
    unknown = sorted(str(k) for k in fields if k not in _ALLOWED_KEYS)
    if unknown:
        allowed = ", ".join(sorted(_ALLOWED_KEYS))
        raise ValueError(f"{where}: unknown key {', '.join(unknown)} (allowed: {allowed})")
    rates: dict[str, Decimal | None] = {}
    for key in _PRICE_KEYS:
        value = fields.get(key)
        if value is None:
            if key != "cached_input":
                raise ValueError(f"{where}: missing {key} (USD per million tokens)")
            rates[key] = None
        else:
            rates[key] = _usd(value, f"{where}.{key}")
    window = fields.get("context_window")
    if window is not None and (
        isinstance(window, bool) or not isinstance(window, int) or window <= 0
    ):
        raise ValueError(f"{where}.context_window: expected a positive integer, not {window!r}")
    rate_in, rate_out = rates["input"], rates["output"]
    assert rate_in is not None and rate_out is not None  # checked above
    return Price(
        model=name,
        input=rate_in,
        output=rate_out,
        cached_input=rates["cached_input"],
        source=source,
        context_window=window,
    )


def _usd(value: Any, where: str) -> Decimal:
    problem = f"{where}: expected a non-negative number (USD per million tokens), not {value!r}"
    if isinstance(value, bool) or not isinstance(value, int | float | str | Decimal):
        raise ValueError(problem)
    if isinstance(value, float) and not math.isfinite(value):
        raise ValueError(problem)
    try:
        rate = Decimal(str(value).strip())
    except InvalidOperation as exc:
        raise ValueError(problem) from exc
    if not rate.is_finite() or rate < 0:
        raise ValueError(problem)
    return rate
