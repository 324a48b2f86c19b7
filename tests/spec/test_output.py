"""runner.spec.output: the output schema of a spec, inline or a file inside the repository,
checked against its meta-schema and strict mode."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from _spec_helpers import OK, spec_problems, write_file


@pytest.mark.parametrize(
    ("text", "files", "expected"),
    [
        pytest.param(
            "model: x\n" + OK + "output: {schema: schemas/none.json}\n",
            {},
            ["spec.yaml:4:18: output.schema: schemas/none.json does not exist"],
            id="missing-output-schema",
        ),
        pytest.param(
            "model: x\n" + OK + "output: {schema: bad.json, strict: false}\n",
            {"bad.json": '{"type": "object", "properties": {"a": {"type": "strin"}}}'},
            [
                "spec.yaml:4:18: output.schema: bad.json: /properties/a/type: 'strin' is not one "
                "of "
                "['array', 'boolean', 'integer', 'null', 'number', 'object', 'string']"
            ],
            id="invalid-output-schema",
        ),
        pytest.param(
            "model: x\n" + OK + "output: {schema: bad.json}\n",
            {"bad.json": '{\n  "type": "object",\n}\n'},
            [
                "spec.yaml:4:18: output.schema: bad.json: not valid JSON: Expecting property name "
                "enclosed in double quotes (line 3, column 1)"
            ],
            id="output-schema-not-json",
        ),
        pytest.param(
            "model: x\n" + OK + "output: {schema: list.json}\n",
            {"list.json": "[1, 2]"},
            [
                "spec.yaml:4:18: output.schema: list.json: must hold a JSON object (a schema), "
                "not a list"
            ],
            id="output-schema-not-an-object",
        ),
        pytest.param(
            "model: x\n" + OK + "output: {schema: /etc/passwd}\n",
            {},
            [
                "spec.yaml:4:18: output.schema: /etc/passwd is an absolute path; give a path "
                "relative to the spec"
            ],
            id="absolute-output-schema",
        ),
        pytest.param(
            "model: x\n" + OK + "output:\n  schema:\n    type: object\n    properties:\n"
            "      name: {type: string}\n      population: {type: integer}\n"
            "    required: [name]\n",
            {},
            [
                'spec.yaml:6:5: output.schema: /: "required" must list every property; missing: '
                '"population" (make it required, and allow null if it is optional: "type": '
                '["integer", "null"])',
                'spec.yaml:6:5: output.schema: /: add "additionalProperties": false (strict mode '
                "requires it on every object)",
            ],
            id="not-strict-compatible-inline",
        ),
        pytest.param(
            "model: x\n" + OK + "output: {schema: loose.json}\n",
            {
                "loose.json": '{"type": "object", "properties": {"a": {"type": "string"}}, '
                '"required": ["a"]}'
            },
            [
                'spec.yaml:4:18: output.schema: loose.json: /: add "additionalProperties": false '
                "(strict mode requires it on every object)"
            ],
            id="not-strict-compatible-file",
        ),
    ],
)
def test_bad_specs(repo: Path, text: str, files: dict[str, str], expected: list[str]) -> None:
    for name, content in files.items():
        write_file(name, content)
    assert spec_problems(text) == expected
    assert not Path("pwned").exists()  # nothing executed


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        pytest.param(
            "model: x\n" + OK + "output: {schema: {type: object, properties: {a: {type: array}},"
            " required: [a], additionalProperties: false}, name: 'no spaces'}\n",
            [
                'spec.yaml:4:49: output.schema: /properties/a: add "items" (strict mode needs the '
                "item schema of every array)",
                "spec.yaml:4:116: output.name: 'no spaces' does not match the pattern "
                "^[a-zA-Z0-9_-]{1,64}$",
            ],
            id="output-inline",
        ),
    ],
)
def test_semantic_checks(text: str, expected: list[str]) -> None:
    assert spec_problems(text) == expected


@pytest.mark.parametrize("levels", [70, 100_000])
def test_deeply_nested_output_schema_files(repo: Path, levels: int) -> None:
    write_file("deep.json", '{"items": ' * levels + "{}" + "}" * levels)
    assert spec_problems("model: x\n" + OK + "output: {schema: deep.json}\n") == [
        "spec.yaml:4:18: output.schema: deep.json: nested more than 64 levels deep"
    ]


def test_output_schema_outside_the_repository(tmp_path: Path) -> None:
    (tmp_path / "repo" / ".git").mkdir(parents=True)
    write_file("outside.json", '{"type": "object"}')
    os.chdir(tmp_path / "repo")
    problems = spec_problems("model: x\n" + OK + "output: {schema: ../outside.json}\n")
    assert problems == [
        f"spec.yaml:4:18: output.schema: ../outside.json leads outside the repository "
        f"({(tmp_path / 'repo').resolve()}, the spec's git work tree); keep schemas inside it"
    ]


def test_outside_git_and_any_project_the_refusal_says_what_to_do(tmp_path: Path) -> None:
    """A first spec in a bare folder: the message names the folder it is bound to and the
    way out, and the schema_valid expectations add no second error."""
    (tmp_path / "prompts").mkdir()
    write_file("schemas/city.json", '{"type": "object"}')
    os.chdir(tmp_path / "prompts")
    problems = spec_problems(
        "model: x\n" + OK + "output: {schema: ../schemas/city.json}\n"
        "tests:\n  - name: a\n    expect: [{schema_valid: true}]\n"
    )
    assert problems == [
        f"spec.yaml:4:18: output.schema: ../schemas/city.json leads outside "
        f"{(tmp_path / 'prompts').resolve()}, the only folder a schema may come from here: the "
        "spec is in no git repository and no folder above it holds a runner.yaml or "
        "pyproject.toml. Mark the project's top folder (`git init` there, or a runner.yaml: "
        "`runner init` writes one), or keep the schema beside the spec"
    ]
    (tmp_path / "runner.yaml").write_text("prices: {}\n")
    assert spec_problems("model: x\n" + OK + "output: {schema: ../../elsewhere.json}\n") == [
        f"spec.yaml:4:18: output.schema: ../../elsewhere.json leads outside the project "
        f"({tmp_path.resolve()}, the folder that holds runner.yaml); keep schemas inside it"
    ]


def test_output_schema_symlink_leading_outside(tmp_path: Path) -> None:
    (tmp_path / "repo" / ".git").mkdir(parents=True)
    write_file("secret.json", '{"type": "object"}')
    (tmp_path / "repo" / "link.json").symlink_to(tmp_path / "secret.json")
    os.chdir(tmp_path / "repo")
    [problem] = spec_problems("model: x\n" + OK + "output: {schema: link.json, strict: false}\n")
    assert "output.schema: link.json leads outside the repository" in problem
