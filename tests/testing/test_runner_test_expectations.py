"""runner.testing.expectations: each expectation passes on a matching output and fails with
expected vs actual on another; paths into the output; JSON equality."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest

from runner.testing.expectations import (
    MAX_PATTERN_LENGTH,
    Failure,
    Observed,
    check,
    resolve_path,
    same_json,
)

OUTPUT = {
    "name": "Paris",
    "country": "France",
    "population": 2100000,
    "landmarks": ["Eiffel Tower", "Louvre"],
    "meta": {"a/b": 1, "score": 0.5},
}
SEEN = Observed(
    "ok",
    value=OUTPUT,
    text='{"name": "Paris"}',
    cost_usd=Decimal("0.00002"),
    tokens=120,
    latency_ms=340.0,
)


@pytest.mark.parametrize(
    ("assertion", "holds"),
    [
        ({"path": "country", "equals": "France"}, True),
        ({"path": "country", "equals": "Spain"}, False),
        ({"path": "population", "equals": 2100000.0}, True),
        ({"path": "country", "not_equals": "Spain"}, True),
        ({"path": "country", "not_equals": "France"}, False),
        ({"path": "landmarks", "contains": "Louvre"}, True),
        ({"path": "landmarks", "contains": "Tokyo Tower"}, False),
        ({"path": "name", "contains": "ari"}, True),
        ({"path": "meta", "contains": "score"}, True),
        ({"path": "population", "contains": 2}, False),
        ({"path": "name", "matches": "^P[a-z]+$"}, True),
        ({"path": "name", "matches": "^Lyon$"}, False),
        ({"path": "population", "matches": "2"}, False),
        ({"path": "country", "one_of": ["France", "Italy"]}, True),
        ({"path": "country", "one_of": ["Italy"]}, False),
        ({"path": "population", "min": 1000000}, True),
        ({"path": "population", "min": 3000000}, False),
        ({"path": "meta.score", "max": 0.5}, True),
        ({"path": "meta.score", "max": 0.4}, False),
        ({"path": "name", "min": 1}, False),
        ({"path": "landmarks", "min_items": 2}, True),
        ({"path": "landmarks", "min_items": 3}, False),
        ({"path": "landmarks", "max_items": 1}, False),
        ({"path": "landmarks.1", "equals": "Louvre"}, True),
        ({"path": "landmarks.-1", "equals": "Louvre"}, True),
        ({"path": "/landmarks/0", "equals": "Eiffel Tower"}, True),
        ({"path": "/meta/a~1b", "equals": 1}, True),
        ({"path": "landmarks.5", "equals": "x"}, False),
        ({"path": "nope", "equals": "x"}, False),
        ({"schema_valid": True}, True),
        ({"schema_valid": False}, False),
        ({"text_contains": "Paris"}, True),
        ({"text_contains": "Lyon"}, False),
        ({"text_matches": '"name": "P'}, True),
        ({"text_matches": "^Lyon"}, False),
        ({"max_cost_usd": 0.0001}, True),
        ({"max_cost_usd": 0.00001}, False),
        ({"max_tokens": 120}, True),
        ({"max_tokens": 119}, False),
        ({"max_latency_ms": 400}, True),
        ({"max_latency_ms": 300}, False),
    ],
)
def test_each_expectation(assertion: dict[str, Any], holds: bool) -> None:
    failure = check(assertion, SEEN, pointer="/tests/0/expect/0")
    assert (failure is None) == holds, failure
    if failure is not None:
        assert failure.pointer == "/tests/0/expect/0"
        assert "expected" in str(failure) and ", got " in str(failure)


def test_a_failure_says_expected_and_actual() -> None:
    failure = check({"path": "country", "equals": "Spain"}, SEEN)
    assert str(failure) == 'country equals "Spain": expected "Spain", got "France"'
    failure = check({"path": "landmarks.5", "equals": "x"}, SEEN)
    assert str(failure) == (
        'landmarks.5 equals "x": expected a value at landmarks.5, got no item 5 at landmarks '
        "(2 items)"
    )
    failure = check({"max_cost_usd": 0.00001}, SEEN)
    assert str(failure) == "max_cost_usd: expected cost <= $0.00001, got $0.000020"


def test_unknown_cost_fails_a_cost_cap() -> None:
    unknown = Observed("ok", value={}, cost_usd=None)
    failure = check({"max_cost_usd": 1}, unknown)
    assert failure is not None and failure.actual == "cost unknown"


def test_schema_valid_false_holds_for_invalid_output() -> None:
    seen = Observed("invalid_output", value={"x": 1}, schema_errors=("/x: wrong type",))
    assert check({"schema_valid": False}, seen) is None
    failure = check({"schema_valid": True}, seen)
    assert failure is not None and failure.actual == "/x: wrong type"


def test_long_or_broken_patterns_are_refused_not_run() -> None:
    failure = check({"text_matches": "a" * (MAX_PATTERN_LENGTH + 1)}, SEEN)
    assert failure is not None and "longer than" in failure.actual
    failure = check({"path": "name", "matches": "(["}, SEEN)
    assert failure is not None and "invalid pattern" in failure.actual


def test_path_on_a_scalar_says_so() -> None:
    with pytest.raises(Exception, match="not an object or a list"):
        resolve_path({"a": 1}, "a.b")


def test_same_json() -> None:
    assert same_json(1, 1.0)
    assert not same_json(True, 1)
    assert not same_json("1", 1)
    assert same_json({"a": [1, {"b": 2}]}, {"a": [1.0, {"b": 2}]})
    assert not same_json([1, 2], [2, 1])


def test_failure_of_a_call_reads_plainly() -> None:
    assert str(Failure("the call failed", "", "timeout: slow")) == "the call failed: timeout: slow"
