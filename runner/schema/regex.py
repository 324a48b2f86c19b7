"""The regular expressions of schemas (`pattern`, `patternProperties`, the `regex` format) and
of test assertions (`matches`): read as JSON Schema's dialect (ECMA-262), refused when they need
backtracking, and run on RE2, so that a match takes time linear in the text however the pattern
is written (`^(a+)+$` included).

A pattern is parsed once into plain parts (literal characters, explicit character sets, groups,
repetitions, anchors) and written out twice, for RE2 and for jsonschema-rs's linear engine, in a
form both read the same way: every shorthand (`\\d`, `\\w`, `\\s`, `.`) becomes an explicit
set with ECMA-262's meaning, so the fast validator and the explaining one always agree.
Refused, with the reason: backreferences, lookaround, inline flags, `\\p{...}` classes, lone
surrogates, and repetitions above 1000. This module imports re2 and nothing else of runner.
"""

from __future__ import annotations

import functools
from typing import Any

import re2

__all__ = ["PatternError", "compile_pattern", "pattern_problem", "search", "translate"]

MAX_REPEAT = 1000  # RE2's own limit on {n,m}
_TOP = 0x10FFFF
_SURROGATES = (0xD800, 0xDFFF)
_LINEAR = "patterns run on a linear-time engine (RE2)"

Ranges = tuple[tuple[int, int], ...]


class PatternError(ValueError):
    """A pattern that cannot be used; the message says why (without the pattern itself)."""


def _ranges(*pairs: tuple[int, int]) -> Ranges:
    """Sorted, merged, surrogates removed (neither engine can hold them in a string)."""
    merged: list[list[int]] = []
    for lo, hi in sorted(pairs):
        if merged and lo <= merged[-1][1] + 1:
            merged[-1][1] = max(merged[-1][1], hi)
        else:
            merged.append([lo, hi])
    out: list[tuple[int, int]] = []
    for lo, hi in merged:
        if hi < _SURROGATES[0] or lo > _SURROGATES[1]:
            out.append((lo, hi))
            continue
        if lo < _SURROGATES[0]:
            out.append((lo, _SURROGATES[0] - 1))
        if hi > _SURROGATES[1]:
            out.append((_SURROGATES[1] + 1, hi))
    return tuple(out)


def _complement(ranges: Ranges) -> Ranges:
    out, start = [], 0
    for lo, hi in ranges:
        if lo > start:
            out.append((start, lo - 1))
        start = hi + 1
    if start <= _TOP:
        out.append((start, _TOP))
    return _ranges(*out)


# ECMA-262's classes, exactly as jsonschema-rs reads them.
_DIGIT = _ranges((0x30, 0x39))
_WORD = _ranges((0x30, 0x39), (0x41, 0x5A), (0x5F, 0x5F), (0x61, 0x7A))
_SPACE = _ranges(
    (0x09, 0x0D), (0x20, 0x20), (0xA0, 0xA0), (0x1680, 0x1680), (0x2000, 0x200A),
    (0x2028, 0x2029), (0x202F, 0x202F), (0x205F, 0x205F), (0x3000, 0x3000), (0xFEFF, 0xFEFF),
)  # fmt: skip
_DOT = _complement(_ranges((0x0A, 0x0A), (0x0D, 0x0D), (0x2028, 0x2029)))
_CLASSES = {
    "d": _DIGIT,
    "D": _complement(_DIGIT),
    "w": _WORD,
    "W": _complement(_WORD),
    "s": _SPACE,
    "S": _complement(_SPACE),
}
_CONTROL = {"t": 0x09, "n": 0x0A, "v": 0x0B, "f": 0x0C, "r": 0x0D}
_SYNTAX = set("^$\\.*+?()[]{}|/-")

# Parts: ("set", Ranges) one character; ("seq", [part]); ("alt", [part]);
# ("rep", part, low, high|None); ("anchor", "^" | "$" | "b" | "B").
_Part = tuple[Any, ...]


class _Parser:
    def __init__(self, pattern: str) -> None:
        self.p = pattern
        self.i = 0

    def fail(self, why: str) -> PatternError:
        return PatternError(f"{why} (at character {self.i + 1})")

    def peek(self, ahead: int = 0) -> str:
        j = self.i + ahead
        return self.p[j] if j < len(self.p) else ""

    def parse(self) -> _Part:
        part = self.alternation()
        if self.i < len(self.p):
            raise self.fail("unbalanced ')'")
        return part

    def alternation(self) -> _Part:
        branches = [self.sequence()]
        while self.peek() == "|":
            self.i += 1
            branches.append(self.sequence())
        return ("alt", branches)

    def sequence(self) -> _Part:
        items: list[_Part] = []
        while self.i < len(self.p) and self.peek() not in "|)":
            atom = self.atom()
            items.append(self.quantified(atom))
        return ("seq", items)

    def atom(self) -> _Part:
        c = self.peek()
        if c == "(":
            return self.group()
        if c == "[":
            self.i += 1
            return ("set", self.char_class())
        if c in "^$":
            self.i += 1
            return ("anchor", c)
        if c == ".":
            self.i += 1
            return ("set", _DOT)
        if c in "*+?":
            raise self.fail(f"nothing to repeat before '{c}'")
        if c == "{":
            if self.repeat_bounds() is not None:
                raise self.fail("nothing to repeat before '{'")
            raise self.fail("a '{' must start a repetition {n}, {n,} or {n,m}; write \\{ for it")
        if c == "\\":
            self.i += 1
            return self.escape()
        self.i += 1
        return ("set", _ranges((ord(c), ord(c))))

    def group(self) -> _Part:
        start = self.i
        self.i += 1
        if self.peek() == "?":
            if self.p.startswith(("?=", "?!", "?<=", "?<!"), self.i):
                raise self.fail(f"lookaround is not supported: {_LINEAR}")
            if self.peek(1) == ":":
                self.i += 2
            elif self.peek(1) == "<":
                end = self.p.find(">", self.i)
                if end < 0:
                    raise self.fail("unfinished group name")
                self.i = end + 1
            else:
                raise self.fail("inline flags such as (?i) are not part of JSON Schema patterns")
        inner = self.alternation()
        if self.peek() != ")":
            self.i = start
            raise self.fail("missing ')'")
        self.i += 1
        return inner

    def quantified(self, atom: _Part) -> _Part:
        c = self.peek()
        if c in ("*", "+", "?"):
            self.i += 1
            low, high = {"*": (0, None), "+": (1, None), "?": (0, 1)}[c]
        elif c == "{" and (bounds := self.repeat_bounds()) is not None:
            low, high = bounds
        else:
            return atom
        if atom[0] == "anchor":
            raise self.fail("nothing to repeat")
        if self.peek() == "?":  # lazy: the same texts match
            self.i += 1
        if self.peek() in ("*", "+", "?") or (self.peek() == "{" and self.repeat_bounds()):
            raise self.fail("a repetition cannot be repeated directly; wrap it in (?:...)")
        if max(low, high or 0) > MAX_REPEAT:
            raise self.fail(f"a repetition count above {MAX_REPEAT} is not supported")
        if high is not None and high < low:
            raise self.fail(f"the repetition {{{low},{high}}} is out of order")
        return ("rep", atom, low, high)

    def repeat_bounds(self) -> tuple[int, int | None] | None:
        """`{n}`, `{n,}` or `{n,m}` at the cursor (consumed), else None (cursor unmoved)."""
        end = self.p.find("}", self.i)
        if end < 0:
            return None
        low, comma, high = self.p[self.i + 1 : end].partition(",")
        if not (low.isascii() and low.isdigit()) or (high and not high.isdigit()):
            return None
        if len(low) > 9 or len(high) > 9:
            raise self.fail(f"a repetition count above {MAX_REPEAT} is not supported")
        self.i = end + 1
        return int(low), (int(high) if high else None) if comma else int(low)

    def escape(self) -> _Part:
        c = self.peek()
        if c == "":
            raise self.fail("the pattern ends with a lone '\\'")
        if c in "bB":
            self.i += 1
            return ("anchor", c)
        if c in "123456789" or (c == "k" and self.peek(1) == "<"):
            raise self.fail(f"backreferences are not supported: {_LINEAR}")
        return ("set", self.class_escape(in_class=False))

    def class_escape(self, *, in_class: bool) -> Ranges:
        """The characters of the escape after a backslash (cursor on the letter)."""
        c = self.peek()
        self.i += 1
        if c in _CLASSES:
            return _CLASSES[c]
        if c in _CONTROL:
            return _ranges((_CONTROL[c], _CONTROL[c]))
        if c == "0" and not self.peek().isdigit():
            return _ranges((0, 0))
        if c == "c" and self.peek().isascii() and self.peek().isalpha():
            code = ord(self.peek()) % 32
            self.i += 1
            return _ranges((code, code))
        if c == "x":
            return self.code_point(self.hex_digits(2))
        if c == "u":
            if self.peek() == "{":
                end = self.p.find("}", self.i)
                digits = self.p[self.i + 1 : end] if end > 0 else ""
                if not 0 < len(digits) <= 6 or not _is_hex(digits):
                    raise self.fail("\\u{...} needs 1 to 6 hex digits")
                self.i = end + 1
                return self.code_point(int(digits, 16))
            return self.code_point(self.utf16_unit())
        if c in "pP":
            raise self.fail("Unicode property classes (\\p{...}) are not supported")
        if c == "b" and in_class:
            raise self.fail("[\\b] (backspace) is not supported; write \\x08")
        if c in _SYNTAX or not c.isalnum():
            return _ranges((ord(c), ord(c)))
        raise self.fail(f"unknown escape '\\{c}'")

    def hex_digits(self, count: int) -> int:
        digits = self.p[self.i : self.i + count]
        if len(digits) != count or not _is_hex(digits):
            raise self.fail(f"expected {count} hex digits")
        self.i += count
        return int(digits, 16)

    def utf16_unit(self) -> int:
        unit = self.hex_digits(4)
        follows = self.p[self.i + 2 : self.i + 6]
        if 0xD800 <= unit <= 0xDBFF and self.p.startswith("\\u", self.i) and _is_hex(follows):
            low = int(follows, 16)
            if 0xDC00 <= low <= 0xDFFF:
                self.i += 6
                return 0x10000 + ((unit - 0xD800) << 10) + (low - 0xDC00)
        return unit

    def code_point(self, code: int) -> Ranges:
        if code > _TOP:
            raise self.fail("a code point above U+10FFFF")
        if _SURROGATES[0] <= code <= _SURROGATES[1]:
            raise self.fail("a lone surrogate (\\uD800-\\uDFFF) is not supported")
        return _ranges((code, code))

    def char_class(self) -> Ranges:
        negated = self.peek() == "^"
        self.i += negated
        pairs: list[tuple[int, int]] = []
        while self.peek() != "]":
            if self.peek() == "":
                raise self.fail("missing ']'")
            first = self.class_atom()
            if self.peek() == "-" and self.peek(1) not in ("]", ""):
                self.i += 1
                last = self.class_atom()
                if len(first) != 1 or len(last) != 1 or first[0][0] != first[0][1]:
                    raise self.fail("a range must run between two single characters")
                if last[0][1] != last[0][0] or last[0][0] < first[0][0]:
                    raise self.fail("a range must run between two single characters, in order")
                pairs.append((first[0][0], last[0][0]))
            else:
                pairs.extend(first)
        self.i += 1
        ranges = _ranges(*pairs)
        return _complement(ranges) if negated else ranges

    def class_atom(self) -> Ranges:
        c = self.peek()
        self.i += 1
        if c == "\\":
            if self.peek() == "":
                raise self.fail("the pattern ends with a lone '\\'")
            if self.peek() in "123456789":
                raise self.fail(f"backreferences are not supported: {_LINEAR}")
            return self.class_escape(in_class=True)
        return self.code_point(ord(c))


def _is_hex(digits: str) -> bool:
    return bool(digits) and all(d in "0123456789abcdefABCDEF" for d in digits)


def _char(code: int) -> str:
    c = chr(code)
    return c if c.isascii() and c.isalnum() else f"\\x{{{code:x}}}"


def _emit(part: _Part, word_boundary: dict[str, str]) -> str:
    kind = part[0]
    if kind == "set":
        ranges: Ranges = part[1]
        if len(ranges) == 1 and ranges[0][0] == ranges[0][1]:
            return _char(ranges[0][0])
        inner = "".join(_char(lo) if lo == hi else f"{_char(lo)}-{_char(hi)}" for lo, hi in ranges)
        return f"[{inner}]" if inner else "[^\\x{0}-\\x{10ffff}]"
    if kind == "seq":
        return "".join(_emit(p, word_boundary) for p in part[1])
    if kind == "alt":
        if len(part[1]) == 1:
            return str(_emit(part[1][0], word_boundary))
        return "(?:" + "|".join(_emit(p, word_boundary) for p in part[1]) + ")"
    if kind == "rep":
        _, inner, low, high = part
        count = (
            f"{{{low},}}" if high is None else f"{{{low}}}" if low == high else f"{{{low},{high}}}"
        )
        return f"(?:{_emit(inner, word_boundary)}){count}"
    return str(word_boundary.get(part[1], part[1]))  # anchors


# RE2's \b and \B are ASCII, as ECMA-262's are; jsonschema-rs must be told so.
_RE2_BOUNDARY = {"b": "\\b", "B": "\\B"}
_RS_BOUNDARY = {"b": "(?-u:\\b)", "B": "(?-u:\\B)"}


@functools.lru_cache(maxsize=1024)
def translate(pattern: str) -> tuple[str, str]:
    """The pattern written for RE2 and for jsonschema-rs (the same meaning in both);
    PatternError saying why when it cannot be used."""
    if not isinstance(pattern, str):
        raise PatternError("a pattern must be a string")
    part = _Parser(pattern).parse()
    return _emit(part, _RE2_BOUNDARY), _emit(part, _RS_BOUNDARY)


_OPTIONS = re2.Options()
_OPTIONS.log_errors = False
_OPTIONS.never_capture = True


@functools.lru_cache(maxsize=1024)
def compile_pattern(pattern: str) -> Any:
    """The pattern compiled by RE2 (cached); PatternError saying why it cannot be used."""
    written, _ = translate(pattern)
    try:
        return re2.compile(written, _OPTIONS)
    except re2.error as exc:
        why = exc.args[0].decode() if exc.args and isinstance(exc.args[0], bytes) else str(exc)
        if "pattern too large" in why:
            why = "the pattern is too large for a linear-time engine (RE2)"
        elif "invalid repetition size" in why:
            why = f"nested repetitions repeat more than {MAX_REPEAT} times in all (RE2's limit)"
        raise PatternError(why) from None


def pattern_problem(pattern: Any) -> str | None:
    """Why `pattern` cannot be used, or None when it can."""
    try:
        compile_pattern(pattern)
    except PatternError as exc:
        return str(exc)
    return None


def _clean(text: str) -> str:
    # A lone surrogate (which JSON can carry as "\ud800") cannot be encoded for RE2; it
    # matches what U+FFFD matches: `.`, `\S`, `[^a]`.
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return "".join("\ufffd" if 0xD800 <= ord(c) <= 0xDFFF else c for c in text)
    return text


def search(pattern: str, text: str) -> bool:
    """Whether the pattern matches anywhere in `text` (ECMA-262 `search`), in linear time."""
    return compile_pattern(pattern).search(_clean(text)) is not None
