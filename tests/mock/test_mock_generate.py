"""Tests for runner.mock.generate: instances valid against a corpus of strict-mode schemas
(checked by jsonschema, Draft 2020-12 with formats), schema-breaking JSON, plausible values
by name, uniqueness, bounded recursion and the schemas it refuses."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from random import Random
from typing import Any

import jsonschema
import pytest
from _mock_helpers import CORPUS, format_validator

from runner.mock.generate import generate_instance, invalid_json

SCHEMA_FILES = sorted(CORPUS.glob("*.json"))
SEEDS = range(60)

# jsonschema checks these formats only when optional packages are installed (they are not):
# check them here, strictly, so a wrong value cannot pass unnoticed.
_FORMAT_RES = {
    "time": re.compile(r"([01]\d|2[0-3]):[0-5]\d:[0-5]\d(\.\d+)?(Z|[+-]\d\d:\d\d)"),
    "hostname": re.compile(r"(?=.{1,253}$)([A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.?)+"),
    "duration": re.compile(r"P(?!$)(\d+Y)?(\d+M)?(\d+W)?(\d+D)?(T(?=\d)(\d+H)?(\d+M)?(\d+S)?)?"),
}


def _strings_with_format(schema: Any, instance: Any, root: Any) -> Iterator[tuple[str, str]]:
    """(format, value) for every string in `instance` whose schema names a format."""
    if isinstance(schema, dict) and "$ref" in schema:
        ref = schema["$ref"]
        node = root
        for part in ref[2:].split("/") if ref != "#" else []:
            node = node[part]
        yield from _strings_with_format(node, instance, root)
        return
    if not isinstance(schema, dict):
        return
    if isinstance(instance, str) and "format" in schema:
        yield schema["format"], instance
    if isinstance(instance, dict):
        for key, value in instance.items():
            yield from _strings_with_format(schema.get("properties", {}).get(key), value, root)
    if isinstance(instance, list):
        for value in instance:
            yield from _strings_with_format(schema.get("items"), value, root)
    for branch in schema.get("anyOf", []):
        if format_validator({**root, **branch}).is_valid(instance):
            yield from _strings_with_format(branch, instance, root)
            break


def _check_formats(schema: dict[str, Any], instance: Any) -> None:
    for fmt, value in _strings_with_format(schema, instance, schema):
        if fmt == "date-time":
            assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?(Z|[+-]\d\d:\d\d)", value)
            datetime.fromisoformat(value.replace("Z", "+00:00"))
        elif fmt in _FORMAT_RES:
            assert _FORMAT_RES[fmt].fullmatch(value), (fmt, value)


def _strict_problems(schema: Any, where: str = "#") -> list[str]:
    """OpenAI strict-mode rules the corpus must follow: closed objects, every property required."""
    problems: list[str] = []
    if isinstance(schema, dict):
        if schema.get("type") == "object" or "properties" in schema:
            if schema.get("additionalProperties") is not False:
                problems.append(f"{where}: additionalProperties must be false")
            if set(schema.get("required", [])) != set(schema.get("properties", {})):
                problems.append(f"{where}: every property must be required")
        for key, value in schema.items():
            if key in ("enum", "const"):
                continue
            problems += _strict_problems(value, f"{where}/{key}")
    elif isinstance(schema, list):
        for i, value in enumerate(schema):
            problems += _strict_problems(value, f"{where}/{i}")
    return problems


def test_the_corpus_is_large_enough() -> None:
    assert len(SCHEMA_FILES) >= 15


@pytest.mark.parametrize("path", SCHEMA_FILES, ids=lambda p: p.stem)
def test_corpus_schemas_are_strict_mode_schemas(path: Path) -> None:
    schema = json.loads(path.read_text())
    jsonschema.Draft202012Validator.check_schema(schema)
    assert _strict_problems(schema) == []


@pytest.mark.parametrize("path", SCHEMA_FILES, ids=lambda p: p.stem)
def test_instances_are_valid_for_many_seeds(path: Path) -> None:
    schema = json.loads(path.read_text())
    validator = format_validator(schema)
    for seed in SEEDS:
        instance = generate_instance(schema, Random(seed))
        errors = [f"{e.json_path}: {e.message}" for e in validator.iter_errors(instance)]
        assert errors == [], f"seed {seed}"
        _check_formats(schema, instance)


@pytest.mark.parametrize("path", SCHEMA_FILES, ids=lambda p: p.stem)
def test_invalid_json_breaks_the_schema(path: Path) -> None:
    schema = json.loads(path.read_text())
    validator = format_validator(schema)
    for seed in range(20):
        instance = generate_instance(schema, Random(seed))
        text = invalid_json(schema, instance, Random(seed))
        assert not validator.is_valid(json.loads(text)), f"seed {seed}: {text}"


@pytest.mark.parametrize("path", SCHEMA_FILES, ids=lambda p: p.stem)
def test_same_seed_same_instance(path: Path) -> None:
    schema = json.loads(path.read_text())
    first = [generate_instance(schema, Random(seed)) for seed in range(5)]
    again = [generate_instance(schema, Random(seed)) for seed in range(5)]
    assert first == again
    assert len({json.dumps(v, sort_keys=True) for v in first}) > 1


def test_invalid_json_for_a_schema_that_accepts_anything_is_not_json() -> None:
    text = invalid_json({}, "anything", Random(0))
    with pytest.raises(json.JSONDecodeError):
        json.loads(text)


@pytest.mark.parametrize(
    ("schema", "instance", "broken"),
    [
        ({"type": "integer"}, 3, {"unexpected": True}),
        ({"type": "object"}, {}, "unexpected text"),
        ({"type": ["object", "string"]}, "x", 12345),
        ({"type": "number"}, 1.5, {"unexpected": True}),
        ({"enum": ["a", "b"]}, "a", {"not": "one of the allowed values"}),
        ({"const": 7}, 7, {"not": 7}),
        (
            {"type": "object", "properties": {"a": {"type": "string"}}},
            {"a": "x"},
            {"a": {"unexpected": True}},
        ),
    ],
)
def test_invalid_json_shapes(schema: dict[str, Any], instance: Any, broken: Any) -> None:
    assert json.loads(invalid_json(schema, instance, Random(0))) == broken
    assert not format_validator(schema).is_valid(broken)


def test_invalid_json_drops_a_required_property() -> None:
    schema = json.loads((CORPUS / "city.json").read_text())
    instance = generate_instance(schema, Random(1))
    broken = json.loads(invalid_json(schema, instance, Random(1)))
    assert len(broken) == len(instance) - 1
    assert all(instance[k] == v for k, v in broken.items())


# --- plausibility -----------------------------------------------------------------------------


def test_values_are_plausible_for_their_names() -> None:
    schema = json.loads((CORPUS / "city.json").read_text())
    for seed in range(10):
        city = generate_instance(schema, Random(seed), hint="city")
        assert city["name"] in {
            "Paris",
            "Lyon",
            "Berlin",
            "Madrid",
            "Lisbon",
            "Rome",
            "Vienna",
            "Oslo",
            "Tokyo",
            "Lima",
        }
        assert city["country"] in {
            "France",
            "Germany",
            "Spain",
            "Portugal",
            "Italy",
            "Austria",
            "Norway",
            "Japan",
        }
        assert 10_000 <= city["population"] <= 20_000_000
        assert len(set(city["landmarks"])) == len(city["landmarks"])


def test_a_name_inside_a_titled_object_follows_the_title() -> None:
    schema = {
        "title": "Person",
        "type": "object",
        "properties": {"name": {"type": "string"}, "email": {"type": "string"}},
    }
    person = generate_instance(schema, Random(4))
    assert re.fullmatch(r"[A-Z][a-z]+ [A-Z][a-z]+", person["name"])
    assert re.fullmatch(r"[a-z]+\.[a-z]+@example\.com", person["email"])


def test_unique_items_are_unique() -> None:
    schema = {
        "type": "array",
        "uniqueItems": True,
        "minItems": 4,
        "items": {"type": "integer", "minimum": 0, "maximum": 5},
    }
    for seed in range(20):
        value = generate_instance(schema, Random(seed))
        assert len(value) >= 4
        assert len(set(value)) == len(value)


def test_recursion_is_bounded() -> None:
    schema = json.loads((CORPUS / "tree-recursive.json").read_text())

    def depth(node: dict[str, Any]) -> int:
        return 1 + max((depth(c) for c in node["children"]), default=0)

    depths = [depth(generate_instance(schema, Random(seed))["root"]) for seed in range(30)]
    assert max(depths) <= 4
    assert max(depths) >= 2  # it does recurse


@pytest.mark.parametrize(
    ("schema", "message"),
    [
        (False, "the schema `false` accepts no value"),
        ({"enum": []}, "an empty enum accepts no value"),
        ({"anyOf": []}, "an empty anyOf accepts no value"),
        ({"type": "array", "minItems": 3, "maxItems": 1}, "minItems 3 is above maxItems 1"),
        ({"type": "string", "minLength": 3, "maxLength": 1}, "minLength 3 is above maxLength 1"),
        ({"type": "integer", "minimum": 3, "maximum": 1}, "no number lies between 3 and 1"),
        ({"type": "number", "exclusiveMinimum": 1, "maximum": 1}, "no number lies between 1 and 1"),
        (
            {"type": "integer", "multipleOf": 10, "minimum": 1, "maximum": 9},
            "no multiple of 10 lies between 1.0 and 9.0",
        ),
        (
            {"$ref": "other.json#/x"},
            "unsupported $ref 'other.json#/x': only local references ('#/...') work",
        ),
        ({"$ref": "#/$defs/missing"}, "$ref '#/$defs/missing' points at nothing"),
        (
            {"type": "object", "properties": {"a": {"$ref": "#"}}, "required": ["a"]},
            "the schema nests deeper than 48 levels without an end",
        ),
        (
            {"type": "object", "required": ["x"], "additionalProperties": False},
            "required property 'x' is not allowed by the schema",
        ),
        (
            {"type": "string", "pattern": "^a{2}$", "maxLength": 1},
            "cannot make a string of 0 to 1 characters matching pattern '^a{2}$'",
        ),
        (
            {"type": "string", "pattern": "(?=x)x"},
            "pattern '(?=x)x': lookarounds are not supported by the mock server",
        ),
    ],
)
def test_impossible_or_unsupported_schemas(schema: Any, message: str) -> None:
    with pytest.raises(ValueError) as info:
        generate_instance(schema, Random(0))
    assert str(info.value) == message
