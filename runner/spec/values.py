"""What a template variable may hold: JSON that every reader of the ledger can read back. A value
JSON cannot carry (NaN, an infinity, a non-string key, an integer beyond 64 bits, a string with
a lone surrogate — which UTF-8 cannot encode —, bytes, sets, other objects) is found here,
before anything is rendered or sent, and named by its path.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from runner.schema.wording import json_pointer

__all__ = ["MAX_VALUE_DEPTH", "json_value_issues", "surrogate_problem"]

# Integers beyond the signed 64-bit range are refused: many JSON readers (jq, JavaScript,
# DuckDB, Go's int64) would round or reject them, so the ledger could not be read back as written.
_INT_MIN, _INT_MAX = -(2**63), 2**63 - 1
MAX_VALUE_DEPTH = 100
_SHOWN = 5  # issues listed before "and N more"


def json_value_issues(variables: Mapping[Any, Any]) -> list[str]:
    """One `pointer: problem` line per value in `variables` that JSON cannot carry (at most a
    few); empty when every value is plain JSON (str, int, finite float, bool, None, list or
    tuple, dict with string keys)."""
    if type(variables) is dict and _flat_and_plain(variables):
        return []  # a data set's row (names to strings and numbers), at a fraction of the walk
    issues: list[str] = []
    todo: list[tuple[tuple[str | int, ...], Any]] = [((), dict(variables))]
    while todo and len(issues) < _SHOWN:
        path, value = todo.pop()
        problem = _problem(value, len(path))
        if problem is not None:
            issues.append(f"{json_pointer(list(path)) or '/'}: {problem}")
            continue
        kind = type(value)  # a dict, or a string, skips the ABC check
        if kind is dict or (kind is not str and isinstance(value, Mapping)):
            for key, item in value.items():
                if not isinstance(key, str):
                    issues.append(
                        f"{json_pointer(list(path)) or '/'}: a key of type {type(key).__name__} "
                        f"({_short(key)}): JSON object keys are strings"
                    )
                    continue
                bad_key = surrogate_problem(key)
                if bad_key is not None:
                    where = json_pointer(list(path)) or "/"
                    issues.append(f"{where}: a key with {bad_key}")
                    continue
                todo.append(((*path, key), item))
        elif isinstance(value, list | tuple):
            todo.extend(((*path, i), item) for i, item in enumerate(value))
    return sorted(issues)


def _flat_and_plain(variables: dict[Any, Any]) -> bool:
    """True when every key is an ASCII string and every value an ASCII string, a 64-bit
    integer, a finite float, a bool or None, all of exact types (no surrogate can hide in
    ASCII); anything else is for the walk to judge."""
    for key, value in variables.items():
        if type(key) is not str or not key.isascii():
            return False
        kind = type(value)
        if kind is str:
            if not value.isascii():
                return False
        elif kind is int:
            if not _INT_MIN <= value <= _INT_MAX:
                return False
        elif kind is float:
            if not math.isfinite(value):
                return False
        elif kind is not bool and value is not None:
            return False
    return True


def surrogate_problem(text: str) -> str | None:
    """What is wrong with a string UTF-8 cannot encode (a lone surrogate, from a JSON escape
    such as "\\ud800" or a non-UTF-8 byte in a command line), else None."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as exc:
        code = ord(text[exc.start])
        return (
            f"a lone surrogate (U+{code:04X}) at character {exc.start + 1}: UTF-8 cannot "
            "carry it (fix the text, or its encoding)"
        )
    return None


def _problem(value: Any, depth: int) -> str | None:
    if isinstance(value, str):
        return surrogate_problem(value)
    if value is None or isinstance(value, bool):
        return None
    if isinstance(value, int):
        if _INT_MIN <= value <= _INT_MAX:
            return None
        return (
            "an integer beyond the 64-bit range cannot be read back exactly by most JSON readers; "
            "pass it as a string (KEY=VALUE)"
        )
    if isinstance(value, float):
        if math.isfinite(value):
            return None
        return f"{value!r} is not a number JSON can carry (no NaN or infinity)"
    if type(value) is dict or isinstance(value, Mapping | list | tuple):
        if depth >= MAX_VALUE_DEPTH:
            return f"nested deeper than {MAX_VALUE_DEPTH} levels"
        return None
    return (
        f"a {type(value).__name__} value is not JSON "
        "(use str, int, float, bool, None, list or dict)"
    )


def _short(key: Any) -> str:
    if isinstance(key, int) and not _INT_MIN <= key <= _INT_MAX:
        return "a huge integer"
    try:
        text = repr(key)
    except Exception:  # a foreign object whose repr fails: its type says enough
        return type(key).__name__
    return text if len(text) <= 40 else text[:37] + "..."
