"""runner.schema.refs: every $ref of a schema stays inside it and leads somewhere (checked as
part of check_schema, once the schema passes its meta-schema)."""

from __future__ import annotations

from typing import Any

import pytest

from runner.schema.validator import check_schema


@pytest.mark.parametrize(
    ("schema", "expected"),
    [
        (
            {"properties": {"a": {"$ref": "#/$defs/nope"}}},
            ["/properties/a/$ref: $ref '#/$defs/nope' leads nowhere in this schema"],
        ),
        (
            {"properties": {"a": {"$ref": "other.json#/x"}}},
            [
                "/properties/a/$ref: $ref 'other.json#/x' points outside this schema; runner never "
                'fetches schemas: move the definition under "$defs" and use "#/$defs/..."'
            ],
        ),
        ({"$defs": {"a": {"type": "string"}}, "properties": {"a": {"$ref": "#/$defs/a"}}}, []),
        ({"$defs": {"a": {"$anchor": "here"}}, "items": {"$ref": "#here"}}, []),
        ({"items": {"$ref": "#"}}, []),
        ({"$defs": {"a b": {}}, "items": {"$ref": "#/$defs/a%20b"}}, []),
        (
            {"properties": {"enum": {"$ref": "#/$defs/x"}}},
            ["/properties/enum/$ref: $ref '#/$defs/x' leads nowhere in this schema"],
        ),
        ({"enum": [{"$ref": "#/nowhere"}]}, []),
    ],
)
def test_check_schema(schema: Any, expected: list[str]) -> None:
    assert [str(i) for i in check_schema(schema)] == expected
