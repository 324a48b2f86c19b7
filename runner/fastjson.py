"""Compact JSON text of plain values, fast: orjson where it writes what the standard library's
`json` would, else None and the caller uses `json` (the reference). Used for the two texts every
call writes: the request body and the ledger line.

orjson writes the same strings as `json.dumps(..., ensure_ascii=False, separators=(",", ":"))`
(every code point; tests/test_fastjson.py checks them all), keeps insertion order, and spells a
float in a shorter form (0.00002445 for 2.445e-05: the same number to every JSON reader). Where
the two would differ in meaning, this gives None:
- a value that is not plain JSON (a Decimal, a datetime, a subclass of str, int, float...):
  `json` has its own rules (`default=` hooks, repr of subclasses);
- a float that is not finite: orjson writes null, `json` writes NaN or refuses it
  (`allow_nan=False`);
- what orjson refuses: an integer beyond 64 bits, a string with a lone surrogate, a key that
  is not a string (`json` turns int keys into strings).
"""

from __future__ import annotations

import math
from typing import Any

import orjson

__all__ = ["plain_json", "sorted_plain_json"]

_isfinite = math.isfinite


def plain_json(value: Any) -> bytes | None:
    """`value` as compact UTF-8 JSON, or None when only the standard library can say how
    (see the module's docstring)."""
    try:
        if not _plain(value):
            return None
        return orjson.dumps(value)
    except TypeError:  # orjson.JSONEncodeError: a big integer, a lone surrogate, a non-str key
        return None
    except RecursionError:  # nested past Python's stack (orjson stops at 255 levels anyway)
        return None


def sorted_plain_json(value: Any) -> bytes | None:
    """`value` as `json.dumps(value, sort_keys=True, ensure_ascii=False, separators=(",", ":"))`
    writes it, or None. Only for values without floats (whose spelling differs) and with string
    keys (`json` sorts and writes other keys its own way): what a request's messages are.
    Both sort keys by code point (orjson compares their UTF-8 bytes, which is the same order)."""
    try:
        if not _no_float(value):
            return None
        return orjson.dumps(value, option=orjson.OPT_SORT_KEYS)
    except TypeError:  # a big integer, a lone surrogate
        return None
    except RecursionError:
        return None


def _no_float(value: Any) -> bool:
    """Like _plain, without floats, and with string keys only."""
    kind = type(value)
    if kind is str or kind is int or kind is bool or value is None:
        return True
    if kind is dict:
        for key, item in value.items():  # noqa: SIM110
            if type(key) is not str or not _no_float(item):
                return False
        return True
    if kind is list or kind is tuple:
        for item in value:  # noqa: SIM110
            if not _no_float(item):
                return False
        return True
    return False


def _plain(value: Any) -> bool:
    """True when `value` holds only str, int, finite float, bool, None, and dicts, lists and
    tuples of them (exact types: subclasses are the standard library's to write). A loop over
    a stack of containers that checks each one's scalars in place: a third faster than a call
    per value (this walks every ledger line)."""
    stack = [value]
    while stack:
        node = stack.pop()
        kind = type(node)
        if kind is dict:
            items = node.values()
        elif kind is list or kind is tuple:
            items = node
        elif kind is float:
            if not _isfinite(node):
                return False
            continue
        elif kind is str or kind is int or kind is bool or node is None:
            continue
        else:
            return False
        for item in items:
            kind = type(item)
            if kind is str or kind is int or kind is bool or item is None:
                continue
            if kind is dict or kind is list or kind is tuple:
                stack.append(item)
            elif kind is not float or not _isfinite(item):
                return False
    return True
