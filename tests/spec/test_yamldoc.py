"""runner.spec.yamldoc: YAML read as JSON values with positions (YAML 1.2 core scalars, plain data
only, size/nesting/alias limits), seen through load_spec as users meet it."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from _spec_helpers import OK, spec_problems, write_file

from runner.errors import SpecError, TemplateError
from runner.spec.load import load_spec
from runner.spec.yamldoc import MAX_NODES

# --- unreadable files and YAML: each one exit 2, one positioned line per problem ------------------


@pytest.mark.parametrize(
    ("text", "files", "expected"),
    [
        pytest.param(
            "model: x\nmessages: [\n",
            {},
            [
                "spec.yaml:3:1: invalid YAML: while parsing a flow node: did not find expected "
                "node content"
            ],
            id="invalid-yaml",
        ),
        pytest.param(
            "model: x\n\tmessages: []\n",
            {},
            [
                "spec.yaml:2:1: invalid YAML: while scanning a plain scalar: found a tab character "
                "that violates indentation"
            ],
            id="tab",
        ),
        pytest.param(
            "model: x\nmessages: []\nmodel: y\n",
            {},
            ["spec.yaml:3:1: duplicate key 'model' (first defined on line 1)"],
            id="duplicate-keys",
        ),
        pytest.param(
            "model: !!python/object/apply:os.system ['touch pwned']\n" + OK,
            {},
            [
                "spec.yaml:1:8: model: tag !!python/object/apply:os.system is not allowed: a spec "
                "holds plain data (strings, numbers, true/false, null, lists and mappings)"
            ],
            id="python-tag",
        ),
        pytest.param(
            "model: !secret x\n" + OK,
            {},
            [
                "spec.yaml:1:8: model: tag !secret is not allowed: a spec holds plain data "
                "(strings, numbers, true/false, null, lists and mappings)"
            ],
            id="local-tag",
        ),
        pytest.param(
            "model: x\ntools: !!set {a}\n" + OK,
            {},
            [
                "spec.yaml:2:8: tools: tag !!set is not allowed: a spec holds plain data "
                "(strings, numbers, true/false, null, lists and mappings)"
            ],
            id="set-tag",
        ),
        pytest.param("", {}, ["spec.yaml: the file is empty"], id="empty-file"),
        pytest.param("\n  \n\t\n", {}, ["spec.yaml: the file is empty"], id="whitespace"),
        pytest.param(
            "# a comment\n",
            {},
            ["spec.yaml: the file has no YAML content (only comments)"],
            id="comments-only",
        ),
        pytest.param(
            "- model: x\n",
            {},
            ["spec.yaml:1:1: a spec must be a mapping of keys, not a list"],
            id="list",
        ),
        pytest.param(
            "just text\n",
            {},
            ["spec.yaml:1:1: a spec must be a mapping of keys, not a single value"],
            id="scalar",
        ),
        pytest.param(
            "model: x\n" + OK + "---\nmodel: y\n",
            {},
            ["spec.yaml:4:1: a spec is one YAML document; remove the second one (after '---')"],
            id="two-documents",
        ),
        pytest.param(
            "base: &b {model: x}\n<<: *b\n" + OK,
            {},
            ["spec.yaml:2:1: merge keys ('<<') are not supported; write the keys out"],
            id="merge-key",
        ),
        pytest.param(
            "model: x\n" + OK + "tools: &t [*t]\n",
            {},
            ["spec.yaml:4:8: tools[0]: a YAML alias that contains itself"],
            id="recursive-alias",
        ),
        pytest.param(
            "? [a, b]\n: 1\nmodel: x\n" + OK,
            {},
            ["spec.yaml:1:3: a mapping key must be a plain value"],
            id="complex-key",
        ),
        pytest.param(
            "model: x\n" + OK + "retry: {attempts: !!int three}\n",
            {},
            ["spec.yaml:4:19: retry.attempts: 'three' is not a valid !!int"],
            id="bad-int",
        ),
        pytest.param(
            "model: x\x07\n" + OK,
            {},
            [
                "spec.yaml:1:9: invalid YAML: character #x0007 is not allowed (control characters "
                "are not allowed)"
            ],
            id="control-character",
        ),
    ],
)
def test_bad_specs(repo: Path, text: str, files: dict[str, str], expected: list[str]) -> None:
    for name, content in files.items():
        write_file(name, content)
    assert spec_problems(text) == expected
    assert not Path("pwned").exists()  # nothing executed


def test_binary_file() -> None:
    assert spec_problems(b"\x89PNG\r\n\x1a\n\x00\x00") == [
        "spec.yaml:3:1: a binary file (a NUL byte), not a YAML text file"
    ]


def test_invalid_utf8_names_the_byte_and_its_place() -> None:
    assert spec_problems(b"model: x\nname: caf\xe9\n") == [
        "spec.yaml:2:10: not UTF-8 text (byte 0xe9); save the file as UTF-8"
    ]


def test_a_bom_is_fine() -> None:
    write_file("spec.yaml", "\ufeffmodel: x\n" + OK)
    assert load_spec("spec.yaml").model == "x"


def test_billion_laughs_is_refused_quickly() -> None:
    lines = ['a: &a ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]']
    for i in range(1, 10):
        prev, name = chr(96 + i), chr(97 + i)
        lines.append(f"{name}: &{name} [{', '.join(['*' + prev] * 9)}]")
    started = time.perf_counter()
    problems = spec_problems("\n".join(lines) + "\n")
    elapsed = time.perf_counter() - started
    assert problems == [
        f"spec.yaml:6:1: YAML aliases expand to more than {MAX_NODES} nodes (a 'billion "
        "laughs' document?); refusing to read further"
    ]
    assert elapsed < 5  # a guard against hanging, not a benchmark: it takes ~50 ms


def test_deep_nesting_is_refused() -> None:
    [problem] = spec_problems("model: x\n" + OK + "tests: " + "[" * 70 + "]" * 70 + "\n")
    assert problem.endswith("nested more than 64 levels deep")


def test_big_files_are_refused() -> None:
    assert spec_problems(b"# " + b"x" * (4 * 1024 * 1024) + b"\n") == [
        "spec.yaml: larger than 4 MB: not a prompt spec?"
    ]


def test_a_directory_is_not_a_spec(tmp_path: Path) -> None:
    (tmp_path / "d.yaml").mkdir()
    with pytest.raises(SpecError) as info:
        load_spec("d.yaml")
    assert [str(p) for p in info.value.problems] == [
        "d.yaml: cannot read the file: it is a directory"
    ]


# --- YAML values are JSON values (YAML 1.2 core rules) --------------------------------------------


def test_plain_scalars_follow_yaml_1_2() -> None:
    write_file(
        "spec.yaml",
        "model: x\n" + OK + "tests:\n  - name: t\n    vars:\n"
        "      country: NO\n      answer: yes\n      day: 2024-01-01\n      time: 1:20\n"
        "      octal: 0o17\n      hex: 0x1F\n      exp: 1e3\n      inf: .inf\n      nan: .nan\n"
        "      tilde: ~\n      empty:\n      quoted: '12'\n      str: !!str 12\n"
        "      int: !!int '7'\n      true: True\n      float: -1.5\n",
    )
    vars = dict(load_spec("spec.yaml").tests[0].vars)
    assert vars == {
        "country": "NO",
        "answer": "yes",
        "day": "2024-01-01",
        "time": "1:20",
        "octal": 15,
        "hex": 31,
        "exp": 1000.0,
        "inf": ".inf",
        "nan": ".nan",
        "tilde": None,
        "empty": None,
        "quoted": "12",
        "str": "12",
        "int": 7,
        "true": True,
        "float": -1.5,
    }


def test_aliases_are_expanded() -> None:
    write_file("spec.yaml", "model: x\nmessages:\n  - &m {role: user, content: hi}\n  - *m\n")
    spec = load_spec("spec.yaml")
    assert [m.render({}) for m in spec.messages] == [{"role": "user", "content": "hi"}] * 2


# --- templates at their place in the file ---------------------------------------------------------


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        (
            "content: '{{ a }} {{ b.c }}'",
            "spec.yaml:4:14: template /messages/0/content: "
            "undefined value: 'dict object' has no attribute 'c'",
        ),
        (
            "content: |\n      one\n      two {{ b.c }}",
            "spec.yaml:6:7: template "
            "/messages/0/content: undefined value: 'dict object' has no attribute 'c'",
        ),
        (
            "content: >-\n      one\n      {{ a }}\n\n      {{ b.c }}",
            "spec.yaml:8:7: template "
            "/messages/0/content: undefined value: 'dict object' has no attribute 'c'",
        ),
        (
            'content: "one\\n{{ b.c }}"',
            "spec.yaml:4:14: template /messages/0/content: "
            "undefined value: 'dict object' has no attribute 'c'",
        ),
    ],
)
def test_render_errors_point_into_the_file(content: str, expected: str) -> None:
    write_file("spec.yaml", f"model: x\nmessages:\n  - role: user\n    {content}\n")
    spec = load_spec("spec.yaml")
    with pytest.raises(TemplateError) as info:
        spec.render({"a": 1, "b": {}})
    assert str(info.value) == expected
    assert info.value.template == "/messages/0/content"
