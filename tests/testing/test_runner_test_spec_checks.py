"""What `runner validate` says about the `tests:` additions of `runner test`: the new
expectations are accepted in their right shape, a regex over the length cap is refused, a
judge must exist and give a verdict, and `skip:` is read."""

from __future__ import annotations

from pathlib import Path

import pytest

from runner.errors import SpecError
from runner.spec.load import load_spec

HEAD = "model: gpt-4o-mini\nmessages:\n  - {role: user, content: hi}\n"
JUDGE = """\
model: gpt-4o-mini
messages:
  - {role: user, content: "{{ output }} {{ text }} {{ vars }}"}
output:
  schema:
    type: object
    properties: {pass: {type: boolean}, reason: {type: string}}
    required: [pass, reason]
    additionalProperties: false
"""


def problems(tmp_path: Path, tests: str) -> list[str]:
    (tmp_path / ".git").mkdir(exist_ok=True)
    spec = tmp_path / "prompts" / "s.yaml"
    spec.parent.mkdir(exist_ok=True)
    spec.write_text(HEAD + "tests:\n" + tests, encoding="utf-8")
    try:
        load_spec(spec)
    except SpecError as exc:
        return [p.message for p in exc.problems]
    return []


def test_the_new_expectations_validate(tmp_path: Path) -> None:
    (tmp_path / "prompts").mkdir()
    (tmp_path / "prompts" / "judge.yaml").write_text(JUDGE, encoding="utf-8")
    tests = (
        "  - name: a\n    skip: not today\n    expect:\n"
        "      - {path: x, not_equals: 1}\n      - {path: x, min: 0}\n      - {path: x, max: 2}\n"
        "      - {text_matches: '^h'}\n      - {judge: judge.yaml}\n"
        "      - {judge: prompts/judge.yaml}\n"
    )
    assert problems(tmp_path, tests) == []
    spec = load_spec(tmp_path / "prompts" / "s.yaml")
    assert spec.tests[0].skip == "not today"


@pytest.mark.parametrize(
    ("expect", "message"),
    [
        ("{text_matches: '" + "a" * 501 + "'}", "must be at most 500 characters long, got 501"),
        ("{path: x, min: 'one'}", "min: expected a number, got a string"),
        ("{min: 1}", "'min' needs a 'path' to check"),
        ("{text_matches: '(['}", "is not a valid regex"),
        ("{judge: nowhere.yaml}", "judge nowhere.yaml is not a spec file inside the project"),
        ("{judge: ../../outside.yaml}", "is not a spec file inside the project"),
    ],
)
def test_bad_expectations_are_refused(tmp_path: Path, expect: str, message: str) -> None:
    (tmp_path / "outside.yaml").write_text(JUDGE, encoding="utf-8")
    found = problems(tmp_path, f"  - name: a\n    expect:\n      - {expect}\n")
    assert len(found) == 1 and message in found[0], found


@pytest.mark.parametrize(
    ("schema", "why"),
    [
        (
            "{type: object, properties: {ok: {type: boolean}}, required: [ok], "
            "additionalProperties: false}",
            "no 'pass' property; no 'reason' property",
        ),
        (
            "{type: object, properties: {pass: {type: string}, reason: {type: string}}, "
            "required: [pass, reason], additionalProperties: false}",
            "'pass' is not of type boolean",
        ),
        (
            "{type: object, properties: {pass: {type: boolean}, reason: {type: string}}, "
            "required: [pass], additionalProperties: false}",
            "'reason' is not required",
        ),
    ],
)
def test_a_judge_must_give_a_verdict(tmp_path: Path, schema: str, why: str) -> None:
    (tmp_path / "prompts").mkdir()
    text = JUDGE.split("output:")[0] + f"output:\n  schema: {schema}\n"
    (tmp_path / "prompts" / "j.yaml").write_text(text, encoding="utf-8")
    found = problems(tmp_path, "  - name: a\n    expect:\n      - {judge: j.yaml}\n")
    assert len(found) == 1 and "its output schema must have a required boolean 'pass'" in found[0]
    assert why in found[0]
