"""Tests for runner.mock.scalars: numbers inside bounds and multiples (through
generate_instance, which hands every leaf to it), plausible values within bounds, and prose."""

from __future__ import annotations

from random import Random
from typing import Any

import pytest
from _mock_helpers import format_validator

from runner.mock.generate import generate_instance
from runner.mock.scalars import prose


def test_plausible_values_still_obey_bounds() -> None:
    schema = {
        "type": "object",
        "properties": {
            "population": {"type": "integer", "maximum": 50},
            "age": {"type": "integer", "minimum": 200},
            "country": {"type": "string", "maxLength": 2},
        },
    }
    for seed in range(20):
        value = generate_instance(schema, Random(seed))
        assert format_validator(schema).is_valid(value), value


# --- numbers ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "schema",
    [
        {"type": "number", "multipleOf": 0.1, "minimum": 0, "maximum": 1},
        {"type": "number", "multipleOf": 0.07, "minimum": 3, "maximum": 4},
        {"type": "number", "multipleOf": 2.5, "exclusiveMinimum": 0, "exclusiveMaximum": 10},
        {"type": "integer", "multipleOf": 0.5, "minimum": 1, "maximum": 9},
        {"type": "integer", "multipleOf": 7, "minimum": -20, "maximum": -1},
        {"type": "number", "exclusiveMinimum": 1, "exclusiveMaximum": 1.001},
        {"type": "integer", "exclusiveMinimum": 4.5, "exclusiveMaximum": 6},
        {"type": "number", "minimum": 1e9},
        {"type": "integer", "maximum": -1_000_000},
        {"type": "number", "minimum": 5, "exclusiveMinimum": 2, "maximum": 6},
    ],
)
def test_numbers_honour_bounds_and_multiples(schema: dict[str, Any]) -> None:
    for seed in range(30):
        value = generate_instance(schema, Random(seed))
        assert format_validator(schema).is_valid(value), (seed, value)
        assert not isinstance(value, bool)
        if schema["type"] == "integer":
            assert isinstance(value, int)


# --- prose ------------------------------------------------------------------------------------


def test_prose_is_deterministic_and_mentions_the_topic() -> None:
    text = prose(Random(3), sentences=5, topic="Tell me   about\nParis")
    assert text == prose(Random(3), sentences=5, topic="Tell me   about\nParis")
    assert text != prose(Random(4), sentences=5, topic="Tell me   about\nParis")
    assert text.startswith('Mock answer to "Tell me about Paris".')
    assert "\n\n" in text
    assert text.endswith(".")


def test_prose_cuts_a_long_topic() -> None:
    topic = " ".join(f"w{i}" for i in range(30))
    assert prose(Random(0), sentences=1, topic=topic).startswith(
        'Mock answer to "w0 w1 w2 w3 w4 w5 w6 w7 w8 w9 w10 w11 ...".'
    )
