"""runner.durations: one grammar for spec fields, flags and server headers, and the spec
schema's duration pattern agrees with it."""

from __future__ import annotations

import re
from typing import Any

import pytest

from runner.durations import PATTERN, header_duration, parse_duration
from runner.schema import packaged_schema

GOOD = [
    ("250ms", 0.25),
    ("30s", 30.0),
    ("2m", 120.0),
    ("1h", 3600.0),
    ("1.5s", 1.5),
    ("1.5m", 90.0),
    (".5s", 0.5),
    ("6m0s", 360.0),
    ("2m59.56s", 179.56),
    ("1h2m3.5s", 3723.5),
    ("250us", 0.00025),
    ("20", 20.0),
    (" 3s ", 3.0),
]
BAD = ["", "ms", "s", "5 minutes", "1d", "1x", "1s2", "1.s", "1,5s", "-1", "-1s", "nan", "inf"]


@pytest.mark.parametrize(("text", "seconds"), GOOD)
def test_parse_duration(text: str, seconds: float) -> None:
    assert parse_duration(text) == pytest.approx(seconds)
    assert header_duration(text) == pytest.approx(seconds)


@pytest.mark.parametrize(("value", "seconds"), [(7, 7.0), (0.5, 0.5), (0, 0.0)])
def test_numbers_are_seconds(value: float, seconds: float) -> None:
    assert parse_duration(value) == seconds


@pytest.mark.parametrize("text", BAD)
def test_refused_with_what_is_accepted(text: str) -> None:
    with pytest.raises(ValueError) as info:
        parse_duration(text)
    assert str(info.value) == f"not a duration: {text!r} (use e.g. 250ms, 30s, 2m, 1h or 1m30s)"
    assert header_duration(text) is None


@pytest.mark.parametrize("value", [True, None, -1, float("nan"), float("inf"), [1]])
def test_refused_values(value: Any) -> None:
    with pytest.raises(ValueError, match="not a duration"):
        parse_duration(value)


def test_the_spec_schema_uses_the_same_grammar() -> None:
    """A string the spec schema accepts is one parse_duration reads, and the other way round."""
    duration = packaged_schema("prompt-spec.schema.json")["$defs"]["duration"]
    (string_form,) = [s for s in duration["anyOf"] if s.get("type") == "string"]
    assert string_form["pattern"] == PATTERN
    pattern = re.compile(string_form["pattern"])
    for text, _ in GOOD:
        assert pattern.match(text), text
    for text in BAD:
        assert not pattern.match(text) or text in ("-1", "nan", "inf"), text


def test_a_flag_accepts_what_a_spec_accepts() -> None:
    """`runner mock-server --retry-after 1h` reads the grammar a spec's `timeout: 1h` does (the
    address is refused after the durations are read)."""
    from click.testing import CliRunner

    from runner.cli import cli

    result = CliRunner().invoke(
        cli, ["mock-server", "--retry-after", "1h", "--host", "203.0.113.1", "--port", "0"]
    )
    assert "not a duration" not in result.output
    result = CliRunner().invoke(
        cli, ["mock-server", "--retry-after", "1d", "--host", "203.0.113.1", "--port", "0"]
    )
    assert "not a duration: '1d'" in result.output
