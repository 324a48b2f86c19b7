"""runner.schema.strict: what keeps a schema from OpenAI's Structured Outputs strict mode."""

from __future__ import annotations

from typing import Any

import pytest

from runner.schema.strict import strict_mode_issues
from runner.schema.validator import packaged_schema


@pytest.mark.parametrize("name", ["city.json", "sentiment.json"])
def test_example_output_schemas_are_strict_mode_compatible(name: str) -> None:
    assert strict_mode_issues(packaged_schema(name)) == []


def _obj(**properties: Any) -> dict[str, Any]:
    return {
        "type": "object",
        "properties": properties,
        "required": list(properties),
        "additionalProperties": False,
    }


STR = {"type": "string"}


@pytest.mark.parametrize(
    ("schema", "expected"),
    [
        (_obj(a=STR), []),
        (_obj(a={"type": ["integer", "null"], "minimum": 0}, b={"enum": ["x", None]}), []),
        (_obj(a={"anyOf": [STR, {"type": "null"}]}), []),
        (_obj(a={"type": "array", "items": STR, "minItems": 1, "maxItems": 3}), []),
        (_obj(a={**STR, "format": "email", "pattern": "@", "description": "d", "title": "t"}), []),
        ({**_obj(a={"$ref": "#/$defs/b"}), "$defs": {"b": _obj(c={"$ref": "#"})}}, []),
        (
            {"type": "array", "items": STR},
            [
                '/: make the root an object ("type": "object"): strict mode requires it, got '
                '"type": "array"'
            ],
        ),
        (
            {"anyOf": [_obj(a=STR), _obj(b=STR)]},
            [
                '/anyOf: strict mode does not allow "anyOf" at the root; make the root an object '
                "and "
                "put the union in one of its properties"
            ],
        ),
        (
            {"type": "object", "properties": {"a": STR}, "required": ["a"]},
            ['/: add "additionalProperties": false (strict mode requires it on every object)'],
        ),
        (
            {**_obj(a=STR), "additionalProperties": True},
            [
                '/additionalProperties: set "additionalProperties" to false (strict mode requires '
                "it "
                "on every object)"
            ],
        ),
        (
            {**_obj(a=STR, population={"type": "integer"}), "required": ["a"]},
            [
                '/: "required" must list every property; missing: "population" (make it required, '
                'and allow null if it is optional: "type": ["integer", "null"])'
            ],
        ),
        (
            {**_obj(a={"anyOf": [STR, {"type": "integer"}]}), "required": []},
            [
                '/: "required" must list every property; missing: "a" (make it required, and allow '
                'null if it is optional: add {"type": "null"} to its "anyOf")'
            ],
        ),
        (
            _obj(a={"allOf": [STR]}),
            [
                '/properties/a: give this schema a "type" (strict mode needs one on every schema)',
                '/properties/a/allOf: "allOf" is not supported in strict mode; remove it or turn '
                "strict mode off",
            ],
        ),
        (
            _obj(a={**STR, "not": {"const": "x"}}),
            [
                '/properties/a/not: "not" is not supported in strict mode; remove it or turn '
                "strict "
                "mode off"
            ],
        ),
        (
            _obj(a={**STR, "default": "x"}),
            [
                '/properties/a/default: "default" is not supported in strict mode; remove it or '
                "turn "
                "strict mode off"
            ],
        ),
        (
            _obj(a={"type": "array", "items": STR, "uniqueItems": True}),
            [
                '/properties/a/uniqueItems: "uniqueItems" is not supported in strict mode; remove '
                "it "
                "or turn strict mode off"
            ],
        ),
        (
            {**_obj(a=STR), "patternProperties": {"^x": STR}},
            [
                '/patternProperties: "patternProperties" is not supported in strict mode; remove '
                "it or "
                "turn strict mode off"
            ],
        ),
        (
            _obj(a={**STR, "format": "uri"}),
            [
                '/properties/a/format: format "uri" is not supported in strict mode (supported: '
                "date, "
                "date-time, duration, email, hostname, ipv4, ipv6, time, uuid)"
            ],
        ),
        (
            _obj(a={"type": "array"}),
            ['/properties/a: add "items" (strict mode needs the item schema of every array)'],
        ),
        (
            _obj(a={}),
            ['/properties/a: give this schema a "type" (strict mode needs one on every schema)'],
        ),
        (
            _obj(a=True),
            [
                "/properties/a: use a schema object here: strict mode does not accept "
                "true as a schema"
            ],
        ),
        (
            _obj(a={"$ref": "https://example.com/x"}),
            ['/properties/a/$ref: strict mode only accepts local references ("#/$defs/...")'],
        ),
    ],
)
def test_strict_mode_issues(schema: Any, expected: list[str]) -> None:
    assert [str(i) for i in strict_mode_issues(schema)] == expected


def _nested(levels: int) -> dict[str, Any]:
    schema: dict[str, Any] = _obj(leaf=STR)
    for _ in range(levels - 1):
        schema = _obj(inner=schema)
    return schema


def test_strict_mode_nesting_limit() -> None:
    assert strict_mode_issues(_nested(10)) == []
    [issue] = strict_mode_issues(_nested(11))
    assert issue.message == "objects are nested 11 levels deep here; strict mode allows at most 10"
    assert issue.pointer == "/properties/inner" * 10


def test_strict_mode_size_limits() -> None:
    many = _obj(**{f"p{i}": STR for i in range(5001)})
    assert [i.message for i in strict_mode_issues(many)] == [
        "the schema has 5001 properties; strict mode allows at most 5000: split it or turn "
        "strict mode off"
    ]
    enums = _obj(**{f"e{i}": {"type": "integer", "enum": list(range(100))} for i in range(11)})
    assert [i.message for i in strict_mode_issues(enums)] == [
        "the schema has 1100 enum values; strict mode allows at most 1000"
    ]
    long_enum = _obj(e={"type": "string", "enum": [f"{i:03d}" + "x" * 60 for i in range(260)]})
    assert [str(i) for i in strict_mode_issues(long_enum)] == [
        "/properties/e/enum: an enum of more than 250 strings may have at most 15000 characters "
        "in all; this one has 16380"
    ]
    chars = _obj(c={"type": "string", "enum": ["y" * 121_000]})
    assert [i.message for i in strict_mode_issues(chars)] == [
        "property names, definition names, enum and const values add up to 121001 characters; "
        "strict mode allows at most 120000"
    ]


def test_strict_mode_needs_an_object_schema() -> None:
    assert [str(i) for i in strict_mode_issues("x")] == [
        '/: strict mode needs an object schema ("type": "object")'
    ]
