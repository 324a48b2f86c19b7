"""Strings that match a regular expression, for `pattern` in the mock server's schemas: a small
parser of the common regex subset and a sampler over it, checked with RE2's `search` (linear in
the text, so no pattern can make the check backtrack for long). Every random choice comes from
the caller's `random.Random`; it imports nothing of runner and refuses (ValueError) the
constructs it cannot sample, and samples longer than MAX_SAMPLE characters.
"""

from __future__ import annotations

import re
import string
from random import Random
from typing import Any

import re2

__all__ = ["MAX_SAMPLE", "pattern_sample"]

MAX_SAMPLE = 100_000  # characters of one sample
_MAX_REPEAT = 1_000  # a repetition samples at most this many copies above its minimum
_RE2 = re2.Options()
_RE2.log_errors = False


_DIGITS = string.digits
_WORD_CHARS = string.ascii_letters + string.digits + "_"
_PRINTABLE = string.ascii_letters + string.digits + " -_.,:;!?@#%&*+=/()"
_ESCAPES = {
    "d": _DIGITS,
    "w": _WORD_CHARS,
    "s": " ",
    "D": string.ascii_letters + " -",
    "W": " -.,:;!?",
    "S": string.ascii_letters + _DIGITS,
}
_CONTROL = {"n": "\n", "t": "\t", "r": "\r", "f": "\f", "v": "\v", "0": "\0"}
_UNSUPPORTED_ESCAPES = set("bBkpPX") | set("123456789")

# Parsed nodes: ("chars", str) one character from the set; ("seq", [node]); ("alt", [node]);
# ("rep", node, min, max); ("anchor", "^" | "$").
_Node = tuple[Any, ...]


def pattern_sample(pattern: str, rng: Random) -> str:
    """Return a string that the pattern matches (`re.search`); ValueError for constructs it does
    not support (lookarounds, backreferences, word boundaries, inline flags)."""
    try:
        re.compile(pattern)
    except re.error as exc:
        raise ValueError(f"invalid pattern {pattern!r}: {exc}") from exc
    node = _parse_pattern(pattern)
    try:
        compiled = re2.compile(_as_re2(node), _RE2)
    except re2.error as exc:
        raise ValueError(
            f"pattern {pattern!r} is not supported by the mock server: {exc}"
        ) from None
    for _ in range(20):
        text = _emit(node, rng, [MAX_SAMPLE])
        if compiled.search(text):
            return text
    raise ValueError(f"cannot make a string matching pattern {pattern!r}")


def _parse_pattern(pattern: str) -> _Node:
    node, pos = _parse_alt(pattern, 0)
    if pos != len(pattern):
        raise ValueError(f"unbalanced ')' in pattern {pattern!r}")
    return node


def _parse_alt(p: str, i: int) -> tuple[_Node, int]:
    branches = []
    while True:
        seq, i = _parse_seq(p, i)
        branches.append(seq)
        if i < len(p) and p[i] == "|":
            i += 1
            continue
        return ("alt", branches), i


def _parse_seq(p: str, i: int) -> tuple[_Node, int]:
    items: list[_Node] = []
    while i < len(p) and p[i] not in "|)":
        atom, i = _parse_atom(p, i)
        atom, i = _parse_quantifier(p, i, atom)
        items.append(atom)
    return ("seq", items), i


def _parse_atom(p: str, i: int) -> tuple[_Node, int]:
    c = p[i]
    if c == "(":
        if p.startswith(("(?=", "(?!", "(?<=", "(?<!"), i):
            raise ValueError(f"pattern {p!r}: lookarounds are not supported by the mock server")
        if p.startswith("(?:", i):
            i += 3
        elif p.startswith("(?P<", i):
            i = p.index(">", i) + 1
        elif p.startswith("(?", i):
            raise ValueError(f"pattern {p!r}: inline flags are not supported by the mock server")
        else:
            i += 1
        inner, i = _parse_alt(p, i)
        return inner, i + 1
    if c == "[":
        return _parse_class(p, i + 1)
    if c in "^$":
        return ("anchor", c), i + 1
    if c == ".":
        return ("chars", string.ascii_letters + _DIGITS), i + 1
    if c == "\\":
        chars, i = _parse_escape(p, i + 1)
        if not chars:  # \A, \Z, \z
            return ("anchor", "^" if p[i - 1] == "A" else "$"), i
        return ("chars", chars), i
    return ("chars", c), i + 1


def _parse_escape(p: str, i: int) -> tuple[str, int]:
    c = p[i]
    if c in _UNSUPPORTED_ESCAPES:
        raise ValueError(f"pattern {p!r}: '\\{c}' is not supported by the mock server")
    if c in "AZz":
        return "", i + 1  # anchors: nothing to emit
    if c in _ESCAPES:
        return _ESCAPES[c], i + 1
    if c in _CONTROL:
        return _CONTROL[c], i + 1
    if c in "xu":
        width = 2 if c == "x" else 4
        return chr(int(p[i + 1 : i + 1 + width], 16)), i + 1 + width
    return c, i + 1


def _parse_class(p: str, i: int) -> tuple[_Node, int]:
    negated = p[i] == "^"
    i += negated
    members: list[str] = []
    first = True
    while i < len(p) and (p[i] != "]" or first):
        first = False
        if p[i] == "\\":
            chars, i = _parse_escape(p, i + 1)
        else:
            chars, i = p[i], i + 1
        if len(chars) == 1 and p[i : i + 1] == "-" and i + 1 < len(p) and p[i + 1] != "]":
            if p[i + 1] == "\\":
                end, i = _parse_escape(p, i + 2)
            else:
                end, i = p[i + 1], i + 2
            chars = "".join(chr(c) for c in range(ord(chars), ord(end[-1]) + 1))
        members.append(chars)
    allowed = "".join(members)
    if negated:
        allowed = "".join(c for c in _PRINTABLE if c not in allowed)
    if not allowed:
        raise ValueError(f"pattern {p!r}: a character class matches nothing printable")
    return ("chars", allowed), i + 1


_QUANTIFIER = re.compile(r"\{(\d*)(,?)(\d*)\}")


def _parse_quantifier(p: str, i: int, atom: _Node) -> tuple[_Node, int]:
    if i >= len(p):
        return atom, i
    c = p[i]
    low: int
    high: int | None
    if c in "*+?":
        low, high, i = {"*": 0, "+": 1, "?": 0}[c], (1 if c == "?" else None), i + 1
    else:
        m = _QUANTIFIER.match(p, i)
        if m is None or not (m.group(1) or m.group(3)):
            return atom, i
        low = int(m.group(1) or 0)
        high = None if m.group(2) and not m.group(3) else int(m.group(3) or m.group(1))
        i = m.end()
    if i < len(p) and p[i] in "?+":  # lazy or possessive: the same strings match
        i += 1
    return ("rep", atom, low, high), i


def _as_re2(node: _Node) -> str:
    """The parsed pattern written for RE2 (every character escaped), to check samples with."""
    kind = node[0]
    if kind == "anchor":
        return "^" if node[1] == "^" else "$"
    if kind == "chars":
        return "[" + "".join(f"\\x{{{ord(c):x}}}" for c in sorted(set(node[1]))) + "]"
    if kind == "seq":
        return "".join(_as_re2(n) for n in node[1])
    if kind == "alt":
        return "(?:" + "|".join(_as_re2(n) for n in node[1]) + ")"
    _, inner, low, high = node
    top = "" if high is None or high > low + _MAX_REPEAT else str(high)
    return f"(?:{_as_re2(inner)}){{{low},{top}}}"


def _emit(node: _Node, rng: Random, room: list[int]) -> str:
    """A sample of `node`; `room` holds how many more characters the sample may take."""
    kind = node[0]
    if kind == "anchor":
        return ""
    if kind == "chars":
        room[0] -= 1
        if room[0] < 0:
            raise ValueError(f"the pattern asks for samples longer than {MAX_SAMPLE:,} characters")
        return rng.choice(node[1]) if node[1] else ""
    if kind == "seq":
        return "".join(_emit(n, rng, room) for n in node[1])
    if kind == "alt":
        return _emit(rng.choice(node[1]), rng, room)
    _, inner, low, high = node
    top = low + 3 if high is None else min(high, low + _MAX_REPEAT)
    count = rng.randint(low, top)
    return "".join(_emit(inner, rng, room) for _ in range(count))
