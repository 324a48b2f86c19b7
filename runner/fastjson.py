"""JSON fast, by orjson, where it gives exactly what the standard library's `json` gives, and
else a sign that the caller must use `json` (the reference).

Writing: compact JSON text of plain values, or None. Used for the two texts every call writes:
the request body and the ledger line.

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

Reading (`plain_loads`): the value `json.loads` reads from a text, or UNREAD. orjson reads the
same values (floats rounded alike, the last of duplicate keys kept, keys in order) and refuses
what `json` reads its own way: NaN and Infinity, a number too large for a float, a lone
surrogate escape, a text that is not UTF-8 (`json` takes UTF-16 and UTF-32 bytes). Two texts
it reads otherwise are never given to it:
- an integer past 64 bits, which orjson reads as a float: a text with 19 digits in a row is
  UNREAD;
- nesting that `json` refuses (RecursionError, near Python's recursion limit of about 1,000
  frames, less the caller's) and orjson reads up to 1,024 levels: a text that opens more than
  256 arrays and objects in all is UNREAD.
"""

from __future__ import annotations

import math
from typing import Any, Final

import orjson

__all__ = ["UNREAD", "plain_json", "plain_loads", "sorted_plain_json"]

_isfinite = math.isfinite

UNREAD: Final = object()  # plain_loads: only `json.loads` can say what this text holds
# Every digit as "0" and every other byte as " ": 19 zeros in a row are 19 digits in a row, the
# shortest integer that may not fit in 64 bits (found in C, where a regex search costs 10x).
_DIGITS = bytes(48 if 48 <= byte <= 57 else 32 for byte in range(256))
_NINETEEN_DIGITS = b"0" * 19
# Past this, json.loads: the digit check copies the text, and a reply this long is rare.
_PLAIN_LOADS_MAX = 1 << 20
# At most this many arrays and objects in all: nested no deeper, which `json` reads too.
_PLAIN_LOADS_OPENED = 256


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


def plain_loads(raw: str | bytes) -> Any:
    """What `json.loads(raw)` returns, read by orjson (about five times faster), or UNREAD when
    `json.loads` must read it: when the two could differ, when orjson refuses the text (what
    `json` raises for it is what the caller should raise), and for a text over 1 MiB. See the
    module's docstring."""
    if type(raw) is bytes:
        data = raw
    elif type(raw) is str:
        try:
            data = raw.encode("utf-8")
        except UnicodeEncodeError:  # a lone surrogate in the text itself
            return UNREAD
    else:
        return UNREAD
    if (
        len(data) > _PLAIN_LOADS_MAX
        or data.count(b"[") + data.count(b"{") > _PLAIN_LOADS_OPENED
        or _NINETEEN_DIGITS in data.translate(_DIGITS)
    ):
        return UNREAD
    try:
        return orjson.loads(data)
    except orjson.JSONDecodeError:
        return UNREAD
