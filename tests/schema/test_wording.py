"""runner.schema.wording: JSON pointers, SchemaIssue and the words issues are written in."""

from __future__ import annotations

from typing import Any

import pytest

from runner.schema.wording import SchemaIssue, json_pointer, value_kind


def test_json_pointer_escapes() -> None:
    assert json_pointer(()) == ""
    assert json_pointer(("a/b", "c~d", 0)) == "/a~1b/c~0d/0"
    assert str(SchemaIssue("", "x")) == "/: x"


@pytest.mark.parametrize(
    ("value", "kind"),
    [
        (None, "null"),
        (True, "a boolean"),
        (1, "an integer"),
        (1.5, "a number"),
        ("x", "a string"),
        ([1], "a list"),
        ({}, "a mapping"),
    ],
)
def test_value_kind(value: Any, kind: str) -> None:
    assert value_kind(value) == kind
