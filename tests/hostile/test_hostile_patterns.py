"""Hostile patterns: validation stays linear in the text whatever the pattern, the fast
validator (jsonschema-rs) and the explaining one (jsonschema) always agree, and a pattern that
would need backtracking is refused where the spec is checked, saying why."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import jsonschema_rs
import pytest
from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from runner.cli import cli
from runner.schema import check_schema, compile_validator
from runner.schema.regex import pattern_problem, search, translate

EVIL = "^(a+)+$"

# --- random patterns x random texts ---------------------------------------------------------

_ATOMS = st.sampled_from(
    ["a", "b", "1", " ", "-", "é", ".", r"\d", r"\D", r"\w", r"\W", r"\s", r"\S", r"\.",
     "[ab]", "[^a]", "[a-c1]", r"[\s\d]", r"[^\w\n]", r"\u00e9", r"\x41", r"\n", r"\t"]
)  # fmt: skip
_QUANTIFIERS = st.sampled_from(["", "", "*", "+", "?", "{2}", "{1,3}", "{0,}", "*?", "+?"])


def _quantified(inner: st.SearchStrategy[str]) -> st.SearchStrategy[str]:
    return st.tuples(inner, _QUANTIFIERS).map(lambda t: f"(?:{t[0]}){t[1]}" if t[1] else t[0])


_PATTERNS = st.recursive(
    st.tuples(_ATOMS, _QUANTIFIERS).map("".join),
    lambda inner: st.one_of(
        st.lists(inner, min_size=1, max_size=4).map("".join),
        st.lists(inner, min_size=2, max_size=3).map("|".join).map(lambda p: f"({p})"),
        _quantified(inner),
    ),
    max_leaves=8,
).flatmap(lambda p: st.sampled_from([p, f"^{p}", f"{p}$", f"^{p}$", f"\\b{p}", f"^({p})+$"]))
_ALPHABET = "ab1 _-.\n\t\u00a0\u2028\ufeffé😀A"
_TEXTS = st.tuples(st.text(_ALPHABET, max_size=40), st.integers(1, 250)).map(lambda t: t[0] * t[1])


def _timed(func: Any, *args: Any) -> tuple[Any, float]:
    best, result = float("inf"), None
    for _ in range(3):  # the best of three: a busy machine must not fail the bound
        start = time.perf_counter()
        result = func(*args)
        best = min(best, time.perf_counter() - start)
    return result, best


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(pattern=_PATTERNS, text=_TEXTS)
def test_validation_is_fast_and_both_validators_agree(pattern: str, text: str) -> None:
    assert pattern_problem(pattern) is None, pattern
    validator = compile_validator({"type": "string", "pattern": pattern})
    assert validator._fast is not None, "jsonschema-rs must take every pattern runner accepts"
    fast, fast_s = _timed(validator._fast.is_valid, text)
    issues, slow_s = _timed(validator.issues, text)
    assert fast == (not issues), (pattern, text[:80])
    assert validator.is_valid(text) == fast
    assert fast_s < 0.05 and slow_s < 0.05, (pattern, len(text), fast_s, slow_s)


@settings(max_examples=150, deadline=None)
@given(pattern=_PATTERNS.filter(lambda p: "\\b" not in p), text=_TEXTS)
def test_the_translation_means_what_jsonschema_rs_reads_in_the_pattern(
    pattern: str, text: str
) -> None:
    """Without \\b (which jsonschema-rs reads as Unicode-aware, unlike ECMA-262), the pattern as
    written and as runner writes it out match the same texts."""
    as_written = jsonschema_rs.validator_for(
        {"pattern": pattern}, pattern_options=jsonschema_rs.RegexOptions()
    )
    assert as_written.is_valid(text) == search(pattern, text), (pattern, text[:80])


# --- the figures of the closing note ----------------------------------------------------------


@pytest.mark.parametrize("length", [40, 10_000])
def test_a_backtracking_pattern_is_checked_in_linear_time(length: int) -> None:
    validator = compile_validator({"type": "string", "pattern": EVIL})
    text = "a" * length + "!"
    started = time.perf_counter()
    assert not validator.is_valid(text)
    issues = validator.explain(text)
    assert time.perf_counter() - started < 0.5
    assert [i.validator for i in issues] == ["pattern"]


def test_pattern_properties_and_additional_properties_use_the_linear_engine() -> None:
    schema = {
        "type": "object",
        "patternProperties": {EVIL: {"type": "integer"}},
        "additionalProperties": False,
    }
    key = "a" * 5_000 + "!"
    started = time.perf_counter()
    issues = compile_validator(schema).explain({key: 1})
    assert time.perf_counter() - started < 0.5
    assert [i.validator for i in issues] == ["additionalProperties"]


# --- refused patterns -------------------------------------------------------------------------

REFUSED = {
    r"(a)\1": "backreferences are not supported",
    r"(?<x>a)\k<x>": "backreferences are not supported",
    r"a(?=b)": "lookaround is not supported",
    r"(?<!a)b": "lookaround is not supported",
    r"(?i)abc": "inline flags",
    r"\p{L}": "Unicode property classes",
    r"a{1001}": "above 1000",
    r"(?:(?:a{100}){100})": "nested repetitions",
    r"\ud800": "lone surrogate",
    "([": "missing ']'",
}


@pytest.mark.parametrize("pattern", sorted(REFUSED))
def test_check_schema_refuses_what_needs_backtracking_and_says_why(pattern: str) -> None:
    issues = check_schema({"type": "string", "pattern": pattern})
    assert [i.pointer for i in issues] == ["/pattern"]
    assert REFUSED[pattern] in issues[0].message
    with pytest.raises(ValueError, match="cannot be used"):
        compile_validator({"type": "string", "pattern": pattern})


def test_pattern_properties_next_to_unevaluated_properties_is_refused() -> None:
    issues = check_schema({"patternProperties": {"^a": {}}, "unevaluatedProperties": False})
    assert ["patternProperties" in i.message and "unevaluated" in i.message for i in issues] == [
        True
    ]


def test_only_schema_places_are_read_as_patterns() -> None:
    """`const`, `enum`, `default` and unknown keywords hold data, never patterns."""
    schema = {
        "type": "object",
        "properties": {"pattern": {"const": {"pattern": "(a)\\1"}, "default": "(?=x)"}},
        "x-notes": {"pattern": "(a)\\1"},
    }
    assert check_schema(schema) == []
    compile_validator(schema)


@pytest.mark.parametrize(
    ("pattern", "yes", "no"),
    [
        (r"^\d+$", "123", "١٢٣"),  # \d is ASCII (ECMA-262)
        (r"^\s$", "\u00a0", "\x85"),  # \s is ECMA-262's whitespace
        (r"^.$", "é", "\u2028"),  # . stops at every line break
        (r"^a$", "a", "a\n"),  # $ is the very end
        (r"^\u00e9\x41$", "éA", "eA"),
        (r"^[^a]$", "\n", "a"),
    ],
)
def test_ecma_meaning(pattern: str, yes: str, no: str) -> None:
    validator = compile_validator({"type": "string", "pattern": pattern})
    assert validator.is_valid(yes) and not validator.issues(yes)
    assert not validator.is_valid(no) and validator.issues(no)
    assert validator._fast is not None and validator._fast.is_valid(no) is False


def test_a_lone_surrogate_in_a_value_is_checked_not_raised() -> None:
    validator = compile_validator({"type": "string", "pattern": "^.$"})
    assert validator.is_valid("\ud800")
    assert compile_validator({"type": "string", "pattern": "^a$"}).is_valid("\ud800") is False


def test_translate_writes_explicit_sets() -> None:
    re2_form, rs_form = translate(r"\bx\d")
    assert re2_form == r"\bx[0-9]"
    assert rs_form == r"(?-u:\b)x[0-9]"


# --- where the spec is checked: runner validate, exit 2, file:line:col -------------------------

SPECS = {
    "output": (
        "model: gpt-4o-mini\nmessages: [{role: user, content: hi}]\noutput:\n  strict: false\n"
        "  schema:\n    type: object\n    properties:\n"
        "      a: {type: string, pattern: '(a)\\1'}\n",
        "spec.yaml:8:34: output.schema: /properties/a/pattern: '(a)\\\\1' is not a valid regex: "
        "backreferences are not supported",
    ),
    "inputs": (
        "model: gpt-4o-mini\ninputs:\n  type: object\n  properties:\n"
        "    x: {type: string, pattern: 'a(?=b)'}\nmessages: [{role: user, content: '{{ x }}'}]\n",
        "spec.yaml:5:32: inputs: /properties/x/pattern: 'a(?=b)' is not a valid regex: "
        "lookaround is not supported",
    ),
    "matches": (
        "model: gpt-4o-mini\nmessages: [{role: user, content: hi}]\ntests:\n"
        "  - {name: t, expect: [{path: a, matches: '(x)\\1'}]}\n",
        "spec.yaml:4:43: tests[0].expect[0].matches: '(x)\\\\1' is not a valid regex: "
        "backreferences are not supported",
    ),
    "tool": (
        "model: gpt-4o-mini\nmessages: [{role: user, content: hi}]\ntools:\n"
        "  - type: function\n    function:\n      name: f\n      parameters:\n"
        "        type: object\n        properties: {q: {type: string, pattern: '(?i)q'}}\n",
        "spec.yaml:9:49: tools[0].function.parameters: /properties/q/pattern: '(?i)q' is not a "
        "valid regex: inline flags",
    ),
}


@pytest.mark.parametrize("case", sorted(SPECS))
def test_runner_validate_refuses_the_pattern_at_its_position(tmp_path: Path, case: str) -> None:
    text, expected = SPECS[case]
    path = tmp_path / "spec.yaml"
    path.write_text(text, encoding="utf-8")
    started = time.perf_counter()
    result = CliRunner().invoke(cli, ["validate", "spec.yaml"], catch_exceptions=False)
    assert time.perf_counter() - started < 10
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output
    lines = result.stdout.splitlines()
    assert len(lines) == 1 and lines[0].startswith(expected), lines


def test_a_spec_whose_output_pattern_backtracks_runs_quickly_on_the_mock(tmp_path: Path) -> None:
    """The pattern is accepted (RE2 runs it in linear time) and a call checks its reply."""
    spec = tmp_path / "spec.yaml"
    schema = {
        "type": "object",
        "properties": {"a": {"type": "string", "pattern": EVIL}},
        "required": ["a"],
        "additionalProperties": False,
    }
    spec.write_text(
        "model: gpt-4o-mini\nmessages: [{role: user, content: hi}]\n"
        f"output: {{schema: {json.dumps(schema)}}}\n",
        encoding="utf-8",
    )
    ledger = tmp_path / "ledger.jsonl"
    started = time.perf_counter()
    result = CliRunner().invoke(
        cli, ["exec", "spec.yaml", "--mock", "--ledger", str(ledger)], catch_exceptions=False
    )
    assert time.perf_counter() - started < 20
    assert result.exit_code == 0, result.output
    assert len(ledger.read_text().splitlines()) == 1
