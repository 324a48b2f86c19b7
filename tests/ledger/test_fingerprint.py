"""Fingerprinter: the fingerprints of a spec's many bodies, made with less work, must be exactly
request_fingerprint's, whatever the bodies share, change or mutate in place between calls."""

from __future__ import annotations

from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from runner.ledger.fingerprint import Fingerprinter, request_fingerprint

STATIC = ("response_format", "tools")

# Values a body's keys take, some shared between bodies (the same object), some made anew.
SHARED_STOP = ["END"]
SHARED_FORMAT = {"type": "json_schema", "json_schema": {"name": "x", "schema": {}, "strict": True}}
scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-3, 3),
    st.sampled_from([0.0, -0.0, 1.0, 0.5, 1e300, 2.0**60]),
    st.text(max_size=4),
)
containers = st.one_of(
    st.just(SHARED_STOP),
    st.just(SHARED_FORMAT),
    st.lists(scalars, max_size=3),
    st.dictionaries(st.sampled_from(["a", "b", "type"]), scalars, max_size=3),
    st.builds(lambda: {"type": "json_schema", "json_schema": {"name": "x", "schema": {}}}),
    st.builds(lambda: {"type": "json_schema", "json_schema": {"name": "y", "schema": {}}}),
)
KEYS = ["model", "messages", "temperature", "seed", "stop", "stream", "response_format", "tools"]
bodies = st.dictionaries(st.sampled_from(KEYS), st.one_of(scalars, containers), max_size=7)


@settings(max_examples=300, deadline=None)
@given(st.lists(bodies, min_size=1, max_size=12))
def test_every_body_gets_request_fingerprints_own_digest(sequence: list[dict[str, Any]]) -> None:
    fingerprint = Fingerprinter(STATIC)
    for body in sequence:
        assert fingerprint(body) == request_fingerprint(body), body


def _body(content: str, **extra: Any) -> dict[str, Any]:
    return {
        "model": "gpt-4o-mini",
        "messages": [{"role": "user", "content": content}],
        "temperature": 0.5,
        "stop": SHARED_STOP,
        "response_format": {"type": "json_schema", "json_schema": {"name": "x", "schema": {}}},
        "stream": True,
        **extra,
    }


def test_the_calls_of_a_spec_reuse_one_shape() -> None:
    fingerprint = Fingerprinter(STATIC)
    for i in range(50):
        body = _body(f"row {i}")
        assert fingerprint(body) == request_fingerprint(body)
    assert fingerprint._reshapes == 1  # the messages are written per call, the rest once


def test_a_shared_value_mutated_in_place_is_seen() -> None:
    """A static key's value is compared with a copy taken when its text was made: the same
    object changed in place between calls changes the fingerprint as it should."""
    fingerprint = Fingerprinter(STATIC)
    tools: list[dict[str, Any]] = [
        {"type": "function", "function": {"name": "f", "parameters": {"type": "object"}}}
    ]
    first = _body("a", tools=tools)
    before = fingerprint(first)
    assert before == request_fingerprint(first)
    tools[0]["function"]["name"] = "g"
    second = _body("a", tools=tools)
    assert fingerprint(second) == request_fingerprint(second) != before


def test_a_scalar_that_changes_is_written_per_call() -> None:
    fingerprint = Fingerprinter(STATIC)
    for i in range(20):
        body = _body("same", instructions=f"system text {i}", seed=None if i % 3 else i)
        assert fingerprint(body) == request_fingerprint(body)
    assert fingerprint._reshapes < 20


def test_bodies_of_ever_new_shapes_stop_the_learning() -> None:
    fingerprint = Fingerprinter(STATIC)
    for i in range(200):
        body = {f"key{i}": i, "messages": [{"role": "user", "content": "x"}]}
        assert fingerprint(body) == request_fingerprint(body)
    assert fingerprint._reshapes == Fingerprinter._MAX_RESHAPES


def test_equal_but_differently_written_values_are_not_confused() -> None:
    """1, 1.0 and True are equal in Python; their canonical texts are not all the same."""
    fingerprint = Fingerprinter(STATIC)
    for seed in (1, 1.0, True, 1, True, 1.0):
        body = _body("x", seed=seed)
        assert fingerprint(body) == request_fingerprint(body), seed
    for fmt in ({"strict": True}, {"strict": 1}, {"strict": True}):
        body = _body("x", response_format={"type": "json_schema", "json_schema": fmt})
        assert fingerprint(body) == request_fingerprint(body), fmt
