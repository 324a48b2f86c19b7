"""Tests for runner.mock.regex: samples that `re.search` accepts for the supported subset, and
exact errors for what it refuses."""

from __future__ import annotations

import re
from random import Random

import pytest

from runner.mock.regex import pattern_sample

# --- patterns ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "pattern",
    [
        r"^\d{3}-\d{4}$",
        r"^[A-Z][a-z]{2,8}$",
        r"^(foo|bar)+baz?$",
        r"^[^0-9]{2,5}$",
        r"^\w+(\.\w+)*@example\.(com|org)$",
        r"^(?:[01]\d|2[0-3]):[0-5]\d$",
        r"^(?P<year>\d{4})-\d\d$",
        r"abc",
        r"^[\d\-+ ]{4,}$",
        r"^x{,2}y{2,}$",
        r"^a{1}b*?c+?$",
        r"^\u00e9\x41[]a]$",
        r"^.\..$",
        r"^[a-f0-9]{8}\t\S\s\D\W$",
        r"\Aok\Z",
        r"^{literal}$",
    ],
)
def test_pattern_samples_match(pattern: str) -> None:
    compiled = re.compile(pattern)
    for seed in range(25):
        assert compiled.search(pattern_sample(pattern, Random(seed)))


@pytest.mark.parametrize(
    ("pattern", "message"),
    [
        ("(?=a)a", "pattern '(?=a)a': lookarounds are not supported by the mock server"),
        ("a(?<!b)", "pattern 'a(?<!b)': lookarounds are not supported by the mock server"),
        ("(?i)abc", "pattern '(?i)abc': inline flags are not supported by the mock server"),
        (r"(a)\1", "pattern '(a)\\\\1': '\\1' is not supported by the mock server"),
        (r"\bword\b", "pattern '\\\\bword\\\\b': '\\b' is not supported by the mock server"),
        ("[", "invalid pattern '[': unterminated character set at position 0"),
        (
            "[^\\x00-\\x7f]",
            "pattern '[^\\\\x00-\\\\x7f]': a character class matches nothing printable",
        ),
    ],
)
def test_unsupported_patterns(pattern: str, message: str) -> None:
    with pytest.raises(ValueError) as info:
        pattern_sample(pattern, Random(0))
    assert str(info.value) == message
