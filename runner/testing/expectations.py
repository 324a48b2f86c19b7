"""The expectations of a test case (`expect:` in a spec's `tests:`), checked against what one call
produced: each one passes, or gives a Failure that says what was expected and what was found.
Pure functions; the judge, which makes a call of its own, is runner.testing.judge.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from runner.schema import regex

__all__ = ["MAX_PATTERN_LENGTH", "Failure", "Observed", "check", "resolve_path", "same_json"]

# Patterns (`matches`, `text_matches`) are JSON Schema's dialect run on RE2, in time linear in
# the text (runner.schema.regex, as output schemas' patterns); `runner validate` refuses what
# RE2 cannot run, and patterns longer than this (the spec schema's maxLength).
MAX_PATTERN_LENGTH = 500
_SHOWN = 120  # characters of a value shown in a failure


@dataclass(frozen=True)
class Failure:
    """One expectation that did not hold. `pointer` is where it is written in the spec."""

    what: str  # the expectation, as written: `country equals "France"`
    expected: str
    actual: str
    pointer: str = ""
    detail: str = ""  # more lines: a diff, the judge's reason
    line: int = 0  # the line of `pointer` in the spec file, once known

    def __str__(self) -> str:
        if not self.expected:  # not an expectation: the call itself failed
            return f"{self.what}: {self.actual}"
        return f"{self.what}: expected {self.expected}, got {self.actual}"


@dataclass(frozen=True)
class Observed:
    """What a case's call produced, as the expectations see it."""

    status: str  # the call's ledger status: ok, invalid_output, error
    value: Any = None  # the parsed output (JSON, tool calls, or the text)
    text: str | None = None
    schema_errors: tuple[str, ...] = ()
    error: str | None = None  # why the call failed, when it did
    cost_usd: Decimal | None = None  # None: unknown
    tokens: int = 0
    latency_ms: float = 0.0
    has_value: bool = field(default=True)


class _Missing(Exception):
    """A path that leads nowhere in the output."""


def resolve_path(value: Any, path: str) -> Any:
    """The value at a dotted path (`landmarks.0.name`) or a JSON pointer (`/landmarks/0`)."""
    if path.startswith("/"):
        steps = [s.replace("~1", "/").replace("~0", "~") for s in path[1:].split("/")]
    else:
        steps = path.split(".")
    here = value
    walked: list[str] = []
    for step in steps:
        if isinstance(here, dict):
            if step not in here:
                keys = ", ".join(sorted(here)[:8]) or "none"
                raise _Missing(f"no key '{step}' at {_where(walked)} (keys: {keys})")
            here = here[step]
        elif isinstance(here, list):
            if not re.fullmatch(r"-?\d+", step):
                raise _Missing(f"'{step}' is not a list index at {_where(walked)}")
            index = int(step)
            if not -len(here) <= index < len(here):
                raise _Missing(f"no item {index} at {_where(walked)} ({len(here)} items)")
            here = here[index]
        else:
            raise _Missing(f"{_where(walked)} is {_kind(here)}, not an object or a list")
        walked.append(step)
    return here


def check(assertion: Mapping[str, Any], seen: Observed, *, pointer: str = "") -> Failure | None:
    """Check one expectation (not `judge`); None when it holds."""
    if "path" in assertion:
        return _check_path(assertion, seen, pointer)
    if "schema_valid" in assertion:
        want = assertion["schema_valid"] is True
        valid = seen.status == "ok"
        if valid == want:
            return None
        got = (
            "a valid output"
            if valid
            else ("; ".join(seen.schema_errors[:3]) or seen.error or seen.status)
        )
        expected = "output valid against the schema" if want else "output that breaks the schema"
        return Failure(f"schema_valid {_show(want)}", expected, got, pointer)
    if "text_contains" in assertion:
        needle = str(assertion["text_contains"])
        text = seen.text or ""
        if needle in text:
            return None
        return Failure("text_contains", f"text containing {_show(needle)}", _show(text), pointer)
    if "text_matches" in assertion:
        pattern = str(assertion["text_matches"])
        found = _search(pattern, seen.text or "")
        if found is True:
            return None
        actual = found if isinstance(found, str) else _show(seen.text or "")
        return Failure("text_matches", f"text matching /{pattern}/", actual, pointer)
    if "max_cost_usd" in assertion:
        limit = Decimal(str(assertion["max_cost_usd"]))
        if seen.cost_usd is None:
            return Failure("max_cost_usd", f"cost <= ${limit}", "cost unknown", pointer)
        if seen.cost_usd <= limit:
            return None
        return Failure("max_cost_usd", f"cost <= ${limit}", f"${seen.cost_usd:.6f}", pointer)
    if "max_tokens" in assertion:
        limit_tokens = int(assertion["max_tokens"])
        if seen.tokens <= limit_tokens:
            return None
        return Failure("max_tokens", f"<= {limit_tokens} tokens", f"{seen.tokens} tokens", pointer)
    if "max_latency_ms" in assertion:
        limit_ms = float(assertion["max_latency_ms"])
        if seen.latency_ms <= limit_ms:
            return None
        return Failure(
            "max_latency_ms", f"<= {limit_ms:g} ms", f"{seen.latency_ms:.0f} ms", pointer
        )
    return Failure("expectation", "a known expectation", _show(dict(assertion)), pointer)


def _check_path(assertion: Mapping[str, Any], seen: Observed, pointer: str) -> Failure | None:
    path = str(assertion["path"])
    op = next((k for k in assertion if k != "path"), "")
    want = assertion.get(op)
    what = f"{path} {op} {_show(want)}"
    if not seen.has_value:
        return Failure(what, "an output to look into", seen.error or "no output", pointer)
    try:
        got = resolve_path(seen.value, path)
    except _Missing as exc:
        return Failure(what, f"a value at {path}", str(exc), pointer)
    ok, why = _compare(op, want, got)
    if ok:
        return None
    return Failure(what, _expected(op, want), why or _show(got), pointer)


def _compare(op: str, want: Any, got: Any) -> tuple[bool, str]:
    """Whether `got` satisfies `op want`; the second item explains a failure if it needs to."""
    if op == "equals":
        return same_json(got, want), ""
    if op == "not_equals":
        return not same_json(got, want), ""
    if op == "one_of":
        return any(same_json(got, w) for w in want), ""
    if op == "contains":
        if isinstance(got, str):
            return isinstance(want, str) and want in got, ""
        if isinstance(got, list):
            return any(same_json(item, want) for item in got), ""
        if isinstance(got, dict):
            return isinstance(want, str) and want in got, f"an object with keys {sorted(got)}"
        return False, f"{_kind(got)} {_show(got)}"
    if op == "matches":
        if not isinstance(got, str):
            return False, f"{_kind(got)} {_show(got)}"
        found = _search(str(want), got)
        return found is True, found if isinstance(found, str) else ""
    if op in ("min", "max"):
        if not _is_number(got):
            return False, f"{_kind(got)} {_show(got)}"
        return (got >= want if op == "min" else got <= want), ""
    if op in ("min_items", "max_items"):
        if not isinstance(got, list | str | dict):
            return False, f"{_kind(got)} {_show(got)}"
        n = len(got)
        ok = n >= want if op == "min_items" else n <= want
        return ok, f"{n} item{'s' if n != 1 else ''}: {_show(got)}"
    return False, f"an unknown check '{op}'"


def _expected(op: str, want: Any) -> str:
    return {
        "equals": f"{_show(want)}",
        "not_equals": f"anything but {_show(want)}",
        "one_of": f"one of {_show(want)}",
        "contains": f"something containing {_show(want)}",
        "matches": f"a string matching /{want}/",
        "min": f">= {_show(want)}",
        "max": f"<= {_show(want)}",
        "min_items": f"at least {want} items",
        "max_items": f"at most {want} items",
    }.get(op, f"{op} {_show(want)}")


def _search(pattern: str, text: str) -> bool | str:
    """True when `pattern` is found in `text`; False when not; a string saying why the
    pattern cannot be used."""
    if len(pattern) > MAX_PATTERN_LENGTH:
        return f"a pattern longer than {MAX_PATTERN_LENGTH} characters, which is refused"
    try:
        return regex.search(pattern, text)
    except regex.PatternError as exc:
        return f"an invalid pattern ({exc})"


def same_json(a: Any, b: Any) -> bool:
    """JSON equality: 1 == 1.0, but true is not 1 and "1" is not 1; objects ignore key order."""
    if isinstance(a, bool) or isinstance(b, bool):
        return type(a) is type(b) and a == b
    if _is_number(a) and _is_number(b):
        return bool(a == b)
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(same_json(a[k], b[k]) for k in a)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(same_json(x, y) for x, y in zip(a, b, strict=True))
    return type(a) is type(b) and bool(a == b)


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _where(steps: list[str]) -> str:
    return ".".join(steps) if steps else "the top"


def _kind(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if _is_number(value):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "a list"
    return "an object"


def _show(value: Any) -> str:
    text = json.dumps(value, ensure_ascii=False, default=str)
    return text if len(text) <= _SHOWN else text[: _SHOWN - 3] + "..."
