"""The patterns of a JSON Schema as runner runs them: where a schema keeps them (walking only
the places that hold schemas), which of them runner refuses, jsonschema's `pattern`,
`patternProperties` and `additionalProperties` keywords on RE2 instead of Python's
backtracking `re`, and the copy of a schema whose patterns jsonschema-rs reads the same way.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from typing import Any

from runner.schema import regex
from runner.schema.wording import SchemaIssue, issue_at

__all__ = [
    "RE2_KEYWORDS",
    "pattern_issues",
    "rs_patterns",
    "schema_nodes",
    "schema_patterns",
]

# --- where a schema keeps its patterns ---------------------------------------------------------

_ONE = frozenset(
    {
        "additionalProperties", "additionalItems", "items", "contains", "propertyNames", "not",
        "if", "then", "else", "unevaluatedItems", "unevaluatedProperties", "contentSchema",
    }
)  # fmt: skip
_LIST = frozenset({"allOf", "anyOf", "oneOf", "prefixItems", "items"})
_MAP = frozenset(
    {"properties", "patternProperties", "$defs", "definitions", "dependentSchemas", "dependencies"}
)

_Path = tuple[str | int, ...]


def schema_nodes(schema: Any, path: _Path = ()) -> Iterator[tuple[_Path, Mapping[str, Any]]]:
    """Every schema object inside `schema` (itself included), with its path, walking only the
    places that hold schemas: never `const`, `enum`, `default` or unknown keywords, which hold
    data."""
    stack: list[tuple[Any, _Path]] = [(schema, path)]
    while stack:
        node, at = stack.pop()
        if not isinstance(node, Mapping):
            continue
        yield at, node
        for key, value in node.items():
            if key in _MAP and isinstance(value, Mapping):
                stack.extend((sub, at + (key, name)) for name, sub in value.items())
            elif key in _LIST and isinstance(value, list):
                stack.extend((sub, at + (key, i)) for i, sub in enumerate(value))
            elif key in _ONE:
                stack.append((value, at + (key,)))


def schema_patterns(schema: Any) -> Iterator[tuple[_Path, str]]:
    """Every regular expression a schema uses, with its path: `pattern` values and
    `patternProperties` names."""
    for at, node in schema_nodes(schema):
        pattern = node.get("pattern")
        if isinstance(pattern, str):
            yield at + ("pattern",), pattern
        names = node.get("patternProperties")
        if isinstance(names, Mapping):
            for name in names:
                yield at + ("patternProperties", name), str(name)


# --- jsonschema keywords on RE2 ---------------------------------------------------------------


def _pattern(validator: Any, pattern: str, instance: Any, schema: Any) -> Iterator[Any]:
    if validator.is_type(instance, "string") and not regex.search(pattern, instance):
        import jsonschema.exceptions

        yield jsonschema.exceptions.ValidationError(f"{instance!r} does not match {pattern!r}")


def _pattern_properties(
    validator: Any, patterns: Mapping[str, Any], instance: Any, schema: Any
) -> Iterator[Any]:
    if not validator.is_type(instance, "object"):
        return
    for pattern, subschema in patterns.items():
        for key, value in instance.items():
            if regex.search(pattern, key):
                yield from validator.descend(value, subschema, path=key, schema_path=pattern)


def _additional_properties(
    validator: Any, extra: Any, instance: Any, schema: Mapping[str, Any]
) -> Iterator[Any]:
    if not validator.is_type(instance, "object"):
        return
    extras = [key for key in instance if not _declared(schema, key)]
    if validator.is_type(extra, "object"):
        for key in extras:
            yield from validator.descend(instance[key], extra, path=key)
    elif extra is False and extras:
        names = ", ".join(repr(key) for key in sorted(extras))
        if "patternProperties" in schema:
            patterns = ", ".join(repr(p) for p in sorted(schema["patternProperties"]))
            verb = "does" if len(extras) == 1 else "do"
            message = f"{names} {verb} not match any of the regexes: {patterns}"
        else:
            verb = "was" if len(extras) == 1 else "were"
            message = f"Additional properties are not allowed ({names} {verb} unexpected)"
        import jsonschema.exceptions

        yield jsonschema.exceptions.ValidationError(message)


def _declared(schema: Mapping[str, Any], key: str) -> bool:
    """Whether `properties` or `patternProperties` cover a key (so it is not additional)."""
    if key in schema.get("properties", {}):
        return True
    return any(regex.search(p, key) for p in schema.get("patternProperties", {}))


RE2_KEYWORDS = {
    "pattern": _pattern,
    "patternProperties": _pattern_properties,
    "additionalProperties": _additional_properties,
}


# --- refusals, and the copy for jsonschema-rs --------------------------------------------------


def pattern_issues(schema: Any) -> Iterator[SchemaIssue]:
    """A pattern runner cannot run in linear time, and patternProperties next to
    unevaluatedProperties (jsonschema would run those patterns on Python's `re`)."""
    found = list(schema_patterns(schema))
    for path, pattern in found:
        problem = regex.pattern_problem(pattern)
        if problem is not None:
            yield issue_at(path, f"{pattern!r} is not a valid regex: {problem}", "format")
    nodes = [node for _, node in schema_nodes(schema)]
    if any("patternProperties" in n for n in nodes) and any(
        "unevaluatedProperties" in n for n in nodes
    ):
        yield issue_at(
            (),
            "patternProperties cannot be used together with unevaluatedProperties "
            "(runner runs every pattern in linear time, and that combination would not)",
            "patternProperties",
        )


def rs_patterns(schema: Mapping[str, Any]) -> dict[str, Any]:
    """A copy of the schema with every pattern as jsonschema-rs must read it; ValueError when
    a pattern cannot be used or a `$ref` points into patternProperties (its keys change)."""
    copy: dict[str, Any] = json.loads(json.dumps(schema))
    nodes = [node for _, node in schema_nodes(copy)]
    if any("patternProperties" in str(node.get("$ref", "")) for node in nodes):
        raise ValueError("a $ref points into patternProperties, whose names are rewritten")
    for node in nodes:
        if not isinstance(node, dict):
            continue
        if isinstance(node.get("pattern"), str):
            node["pattern"] = regex.translate(node["pattern"])[1]
        names = node.get("patternProperties")
        if isinstance(names, dict):
            node["patternProperties"] = {regex.translate(k)[1]: v for k, v in names.items()}
    return copy
