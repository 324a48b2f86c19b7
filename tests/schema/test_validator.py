"""runner.schema.validator: packaged schemas, compiled validators, explanations and the
meta-schema check."""

from __future__ import annotations

import json
import urllib.request
from pathlib import Path
from typing import Any

import pytest

from runner.schema.validator import (
    SchemaIssue,
    check_schema,
    compile_validator,
    packaged_schema,
)

ROOT = Path(__file__).resolve().parents[2]


# --- packaged schemas -------------------------------------------------------------------------


def test_packaged_schema_reads_the_repository_copy() -> None:
    schema = packaged_schema("prompt-spec.schema.json")
    on_disk = json.loads((ROOT / "schemas" / "prompt-spec.schema.json").read_text("utf-8"))
    assert schema == on_disk
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    assert packaged_schema("prompt-spec.schema.json") is schema  # cached


@pytest.mark.parametrize("name", ["../pyproject.toml", "a/b.json", ".hidden.json"])
def test_packaged_schema_refuses_paths(name: str) -> None:
    with pytest.raises(ValueError, match="not a packaged schema name"):
        packaged_schema(name)


def test_packaged_schema_missing_file() -> None:
    with pytest.raises(FileNotFoundError):
        packaged_schema("no-such-schema.json")


@pytest.mark.parametrize("name", sorted(p.name for p in (ROOT / "schemas").glob("*.json")))
def test_every_shipped_schema_is_a_valid_schema(name: str) -> None:
    assert check_schema(packaged_schema(name)) == []


def _walk_properties(node: Any, path: str = "") -> list[str]:
    """Every schema under a `properties` keyword that lacks a description."""
    missing: list[str] = []
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "properties" and isinstance(value, dict):
                for name, sub in value.items():
                    if isinstance(sub, dict) and "description" not in sub and "$ref" not in sub:
                        missing.append(f"{path}/properties/{name}")
            missing.extend(_walk_properties(value, f"{path}/{key}"))
    elif isinstance(node, list):
        for i, value in enumerate(node):
            missing.extend(_walk_properties(value, f"{path}/{i}"))
    return missing


@pytest.mark.parametrize("name", ["prompt-spec.schema.json", "runner-config.schema.json"])
def test_format_schemas_describe_every_property_and_have_an_id(name: str) -> None:
    schema = packaged_schema(name)
    assert schema["$id"].endswith("/" + name)
    # `if` conditions repeat property names without describing them: only look elsewhere.
    missing = [p for p in _walk_properties(schema) if "/if/" not in p]
    assert missing == []


# --- validators -------------------------------------------------------------------------------

CITY = {
    "type": "object",
    "properties": {
        "name": {"type": "string", "minLength": 1},
        "landmarks": {"type": "array", "items": {"type": "string", "minLength": 2}},
    },
    "required": ["name", "landmarks"],
    "additionalProperties": False,
}


def test_issues_lists_every_error_sorted() -> None:
    validator = compile_validator(CITY)
    issues = validator.issues({"landmarks": ["ok", "x", 3], "extra": 1})
    assert [str(i) for i in issues] == [
        "/: 'name' is a required property",
        "/: Additional properties are not allowed ('extra' was unexpected)",
        "/landmarks/1: 'x' is too short",
        "/landmarks/2: 3 is not of type 'string'",
    ]
    assert issues[2] == SchemaIssue(
        "/landmarks/1", "'x' is too short", ("landmarks", 1), "minLength"
    )
    assert validator.is_valid({"name": "Paris", "landmarks": []})
    assert not validator.is_valid({"name": "Paris"})


def test_compile_validator_shares_equal_schemas() -> None:
    first = compile_validator(CITY)
    assert compile_validator(json.loads(json.dumps(CITY))) is first
    assert compile_validator({**CITY, "required": ["name"]}) is not first


def test_compile_validator_refuses_non_json() -> None:
    with pytest.raises(ValueError, match="not a JSON schema"):
        compile_validator({"type": "number", "maximum": float("nan")})


def test_unknown_dialect_is_a_value_error() -> None:
    with pytest.raises(ValueError, match="unknown JSON Schema dialect"):
        compile_validator({"$schema": "https://example.com/mine", "type": "string"})


def test_other_drafts_are_honoured() -> None:
    draft4 = {
        "$schema": "http://json-schema.org/draft-04/schema#",
        "maximum": 3,
        "exclusiveMaximum": True,
    }
    assert not compile_validator(draft4).is_valid(3)
    assert compile_validator({"maximum": 3}).is_valid(3)


@pytest.mark.parametrize(
    ("schema", "instance", "expected"),
    [
        # anyOf/oneOf: the sub-error of the branch whose type matches explains best.
        (
            {"anyOf": [{"type": "string"}, {"type": "object", "required": ["a"]}]},
            {},
            "/: 'a' is a required property",
        ),
        (
            {"anyOf": [{"type": "string"}, {"type": "object"}]},
            3,
            "/: 3 is not of type 'string', 'object'",
        ),
        (
            {"oneOf": [{"type": "integer", "minimum": 5}, {"type": "string"}]},
            2,
            "/: 2 is less than the minimum of 5",
        ),
    ],
)
def test_unions_report_the_best_branch(schema: Any, instance: Any, expected: str) -> None:
    assert [str(i) for i in compile_validator(schema).issues(instance)] == [expected]


@pytest.mark.parametrize(
    ("fmt", "good", "bad"),
    [
        ("date-time", "2024-02-29T12:30:00Z", "2024-02-30T12:30:00Z"),
        ("date-time", "1990-12-31T23:59:60+01:00", "2024-01-01 noon"),
        ("time", "23:59:59.5+02:00", "24:00:00Z"),
        ("date", "2024-01-31", "2024-01-32"),
        ("duration", "P1DT2H30M", "P"),
        ("duration", "PT0.5S", "1 hour"),
        ("email", "a@example.com", "example.com"),
        ("hostname", "api.openai.com", "-bad-.com"),
        ("ipv4", "192.168.0.1", "256.1.1.1"),
        ("ipv6", "::1", "::g"),
        ("uuid", "12345678-1234-5678-1234-567812345678", "1234"),
    ],
)
def test_formats_are_checked(fmt: str, good: str, bad: str) -> None:
    validator = compile_validator({"type": "string", "format": fmt})
    assert validator.is_valid(good)
    assert [i.message for i in validator.issues(bad)] == [f"{bad!r} is not a {fmt!r}"]


def test_remote_refs_are_never_fetched(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError("network access")

    monkeypatch.setattr(urllib.request, "urlopen", refuse)
    validator = compile_validator({"$ref": "https://example.com/schema.json"})
    [issue] = validator.issues(1)
    assert (
        issue.message == "the schema cannot be used: Unresolvable: https://example.com/schema.json"
    )
    assert not validator.is_valid(1)


# --- explain: messages for people who edit YAML --------------------------------------------

SHAPE = {
    "type": "object",
    "additionalProperties": False,
    "required": ["model"],
    "properties": {
        "model": {"type": "string", "minLength": 1},
        "temperature": {"type": "number", "minimum": 0, "maximum": 2},
        "top_p": {"type": "number", "exclusiveMinimum": 0},
        "role": {"enum": ["system", "user"]},
        "messages": {"type": "array", "minItems": 1},
        "stop": {"type": "array", "maxItems": 2},
        "name": {"type": "string", "pattern": "^[a-z]+$"},
        "bias": {"type": "object", "propertyNames": {"pattern": "^[0-9]+$"}},
        "timeout": {
            "title": "duration",
            "anyOf": [{"type": "string", "pattern": "^[0-9]+s$"}, {"type": "number"}],
        },
        "content": {"anyOf": [{"type": "string"}, {"type": "array"}, {"type": "null"}]},
    },
}


@pytest.mark.parametrize(
    ("instance", "expected"),
    [
        ({}, ["/: missing required key 'model'"]),
        (
            {"model": "m", "temprature": 1},
            ["/temprature: unknown key 'temprature' (did you mean 'temperature'?)"],
        ),
        ({"model": "m", "zzz": 1}, ["/zzz: unknown key 'zzz'"]),
        ({"model": 5}, ["/model: expected a string, got an integer"]),
        ({"model": ""}, ["/model: must not be empty"]),
        ({"model": "m", "temperature": 3}, ["/temperature: must be at most 2, got 3"]),
        ({"model": "m", "temperature": -1}, ["/temperature: must be at least 0, got -1"]),
        ({"model": "m", "top_p": 0}, ["/top_p: must be greater than 0, got 0"]),
        ({"model": "m", "role": "robot"}, ["/role: 'robot' is not one of: system, user"]),
        ({"model": "m", "messages": []}, ["/messages: must not be empty"]),
        ({"model": "m", "stop": [1, 2, 3]}, ["/stop: must have at most 2 items, got 3"]),
        ({"model": "m", "name": "A1"}, ["/name: 'A1' does not match the pattern ^[a-z]+$"]),
        (
            {"model": "m", "bias": {"x": 1}},
            ["/bias/x: invalid key 'x': 'x' does not match the pattern ^[0-9]+$"],
        ),
        (
            {"model": "m", "timeout": "5 minutes"},
            ["/timeout: '5 minutes' is not a duration (use 30s)"],
        ),
        (
            {"model": "m", "content": 5},
            ["/content: expected a string, a list or null, got an integer"],
        ),
    ],
)
def test_explain_speaks_plainly(instance: Any, expected: list[str]) -> None:
    issues = compile_validator(SHAPE).explain(instance, hints={"duration": "use 30s"})
    assert [str(i) for i in issues] == expected


def test_explain_marks_unknown_keys_and_missing_keys() -> None:
    issues = compile_validator(SHAPE).explain({"modle": "m"})
    assert [(i.path, i.validator) for i in issues] == [
        ((), "required"),
        (("modle",), "additionalProperties"),
    ]


# --- check_schema -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("schema", "expected"),
    [
        ({"type": "object"}, []),
        (True, []),
        ([], ["/: a schema must be a JSON object"]),
        (
            {"type": "strin"},
            [
                "/type: 'strin' is not one of ['array', 'boolean', 'integer', 'null', 'number', "
                "'object', 'string']"
            ],
        ),
        (
            {"type": "string", "pattern": "(["},
            ["/pattern: '([' is not a valid regex: missing ']' (at character 3)"],
        ),
        ({"$schema": "http://json-schema.org/draft-07/schema#", "definitions": {}}, []),
        (
            {"$schema": "https://example.com/s", "type": "string"},
            [
                "/$schema: unknown JSON Schema dialect 'https://example.com/s' (known: "
                "http://json-schema.org/draft-04/schema, http://json-schema.org/draft-06/schema, "
                "http://json-schema.org/draft-07/schema, "
                "https://json-schema.org/draft/2019-09/schema, "
                "https://json-schema.org/draft/2020-12/schema)"
            ],
        ),
    ],
)
def test_check_schema(schema: Any, expected: list[str]) -> None:
    assert [str(i) for i in check_schema(schema)] == expected


# --- the fast path agrees with jsonschema --------------------------------------------------------

CORPUS = sorted((Path(__file__).resolve().parents[1] / "data" / "strict-schemas").glob("*.json"))


@pytest.mark.parametrize("path", CORPUS, ids=lambda p: p.stem)
def test_jsonschema_rs_and_jsonschema_agree(path: Path) -> None:
    """is_valid answers from jsonschema-rs first; on valid and broken instances of every corpus
    schema it must agree with jsonschema, the authority that explains failures."""
    import json as json_
    from random import Random

    import jsonschema as reference

    from runner.mock.generate import generate_instance, invalid_json

    schema = json_.loads(path.read_text(encoding="utf-8"))
    validator = compile_validator(schema)
    assert validator._fast is not None, "jsonschema-rs should accept every strict-mode schema"
    checker = reference.Draft202012Validator(schema, format_checker=reference.FormatChecker())
    for seed in range(25):
        rng = Random(seed)
        good = generate_instance(schema, rng)
        assert validator._fast.is_valid(good) and validator.is_valid(good)
        try:
            bad = json_.loads(invalid_json(schema, good, rng))
        except ValueError:
            continue  # not JSON at all: nothing to validate
        expected = checker.is_valid(bad)
        assert validator._fast.is_valid(bad) == expected, (seed, bad)
        assert validator.is_valid(bad) == expected


def test_the_fast_path_never_overrules_a_rejection() -> None:
    # A "no" from jsonschema-rs is checked again: jsonschema decides.
    validator = compile_validator({"type": "object", "required": ["a"]})
    assert not validator.is_valid({})
    assert validator.is_valid({"a": 1})


# --- jsonschema only when needed ------------------------------------------------------------


def test_the_dialect_table_is_jsonschemas_own() -> None:
    import jsonschema

    from runner.schema import validator

    theirs = [
        str(cls.META_SCHEMA.get("$id") or cls.META_SCHEMA.get("id")).rstrip("#")
        for cls in (
            jsonschema.Draft202012Validator,
            jsonschema.Draft201909Validator,
            jsonschema.Draft7Validator,
            jsonschema.Draft6Validator,
            jsonschema.Draft4Validator,
        )
    ]
    assert list(validator.DIALECTS) == theirs
    assert [c.META_SCHEMA for c in validator._drafts()] == [
        getattr(jsonschema, n).META_SCHEMA
        for n in ("Draft202012Validator", "Draft201909Validator", "Draft7Validator")
        + ("Draft6Validator", "Draft4Validator")
    ]


_LAZY = """
import sys
from runner.schema import check_schema, compile_validator
schema = {"type": "object", "properties": {"n": {"type": "integer", "pattern": "^a"}},
          "required": ["n"], "additionalProperties": False}
assert check_schema(schema) == []
v = compile_validator(schema)
assert v.is_valid({"n": 1}) and v.issues({"n": 1}) == [] and v.explain({"n": 1}) == []
print("jsonschema" in sys.modules)
bad = v.explain({"n": "x", "m": 1})
print("jsonschema" in sys.modules, sorted(i.message for i in bad))
print(check_schema({"type": "objectx"})[0].message)
"""


def test_valid_schemas_and_values_never_import_jsonschema_and_a_fault_still_explains() -> None:
    import subprocess
    import sys

    out = subprocess.run(
        [sys.executable, "-c", _LAZY], capture_output=True, text=True, check=True
    ).stdout.splitlines()
    assert out[0] == "False"
    assert out[1].startswith("True ")
    assert "unknown key 'm'" in out[1] and "integer" in out[1]
    assert "objectx" in out[2]
