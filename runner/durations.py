"""One grammar for durations, wherever they come from: spec fields, command-line flags and
server headers. A duration is a plain number of seconds, or one or more `<number><unit>` parts
with units h, m, s, ms, us (µs) and ns: `250ms`, `30s`, `2m`, `1h`, `1m30s`, `6m0s`. Negative,
infinite and NaN values are refused. The spec's JSON Schema uses `PATTERN` for the string form.
"""

from __future__ import annotations

import math
import re

__all__ = ["PATTERN", "header_duration", "parse_duration"]

_NUMBER = r"(?:[0-9]+(?:\.[0-9]+)?|\.[0-9]+)"
_UNIT = r"(?:h|ms|m|s|us|µs|ns)"
# The string form: a bare number, or number+unit parts. prompt-spec.schema.json's duration
# pattern is this text (a test holds the two together).
PATTERN = rf"^\s*(?:{_NUMBER}|(?:{_NUMBER}{_UNIT})+)\s*$"
_WHOLE = re.compile(PATTERN)
_PART = re.compile(rf"({_NUMBER})({_UNIT})")
_SECONDS = {"h": 3600.0, "m": 60.0, "s": 1.0, "ms": 1e-3, "us": 1e-6, "µs": 1e-6, "ns": 1e-9}


def parse_duration(value: str | float) -> float:
    """Seconds in a duration (a number of seconds, or a string such as "250ms", "1m30s");
    ValueError says what is accepted."""
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        raise ValueError(f"not a duration: {value!r}")
    if isinstance(value, int | float):
        seconds = float(value)
    else:
        if _WHOLE.match(value) is None:
            raise ValueError(f"not a duration: {value!r} (use e.g. 250ms, 30s, 2m, 1h or 1m30s)")
        text = value.strip()
        parts = _PART.findall(text)
        seconds = sum(float(n) * _SECONDS[u] for n, u in parts) if parts else float(text)
    if not math.isfinite(seconds) or seconds < 0:
        raise ValueError(f"not a duration: {value!r} (it must be 0 or more seconds)")
    return seconds


def header_duration(text: str | None) -> float | None:
    """A duration from a server's header, or None: an odd header must never break a call."""
    if text is None:
        return None
    try:
        return parse_duration(text)
    except ValueError:
        return None
