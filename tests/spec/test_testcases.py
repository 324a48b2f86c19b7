"""runner.spec.testcases: the tests: block of a spec (case variables and assertion shapes)."""

from __future__ import annotations

import pytest
from _spec_helpers import spec_problems


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        pytest.param(
            "model: x\ninputs:\n  type: object\n  properties: {n: {type: integer, minimum: 1}}\n"
            "  required: [n]\nmessages:\n  - {role: user, content: '{{ n }}'}\n"
            "tests:\n"
            "  - {name: a, vars: {n: 0}}\n"
            "  - {name: b, vars: {}}\n"
            "  - {name: a, vars: {n: 1}, expect: [{path: x}, {equals: 1}, {max_tokens: 1, "
            "text_contains: x}, {schema_valid: true}, {path: x, matches: '(['}]}\n",
            [
                "spec.yaml:9:25: test 'a': the vars do not match inputs: /n: must be at least 1, "
                "got 0",
                "spec.yaml:10:21: test 'b': the vars do not match inputs: /: missing required key "
                "'n'",
                "spec.yaml:11:12: tests[2]: a second test named 'a' (the first is tests[0])",
                "spec.yaml:11:38: tests[2].expect[0]: an assertion with 'path' needs exactly one "
                "of equals, not_equals, min, max, min_items, max_items, contains, matches, one_of",
                "spec.yaml:11:49: tests[2].expect[1]: 'equals' needs a 'path' to check",
                "spec.yaml:11:62: tests[2].expect[2]: an assertion checks one thing: one of "
                "schema_valid, text_contains, text_matches, max_cost_usd, max_tokens, "
                "max_latency_ms, judge",
                "spec.yaml:11:112: tests[2].expect[3]: schema_valid needs an output schema",
                "spec.yaml:11:138: tests[2].expect[4].matches: '([' is not a valid regex: missing "
                "']' (at character 3)",
            ],
            id="tests",
        ),
        pytest.param(
            "model: x\nmessages:\n  - {role: user, content: '{{ city }}'}\n"
            "tests:\n  - {name: a}\n  - {name: b, vars: {city: X}}\n",
            ["spec.yaml:5:5: test 'a': no value for 'city' (used by the templates)"],
            id="tests-without-inputs",
        ),
    ],
)
def test_semantic_checks(text: str, expected: list[str]) -> None:
    assert spec_problems(text) == expected
