"""OpenAI Structured Outputs strict mode: what keeps a JSON Schema from `strict: true`, each
issue saying what to change.

Plain walking of the schema as data: it never imports jsonschema (the meta-schema check is
runner.schema.validator' job and comes first) and never changes the schema it is given.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from runner.schema.wording import SchemaIssue, issue_at, sorted_issues

__all__ = [
    "MAX_ENUM_VALUES",
    "MAX_NESTING",
    "MAX_PROPERTIES",
    "MAX_STRING_CHARS",
    "STRICT_FORMATS",
    "strict_mode_issues",
]

# The string formats OpenAI's strict mode accepts; runner.schema.validator checks every one itself.
STRICT_FORMATS = frozenset(
    {"date-time", "time", "date", "duration", "email", "hostname", "ipv4", "ipv6", "uuid"}
)

# What OpenAI's Structured Outputs guide ("Supported schemas") accepts under strict: true.
_STRICT_KEYWORDS = frozenset(
    {
        "type",
        "properties",
        "required",
        "additionalProperties",
        "items",
        "enum",
        "const",
        "anyOf",
        "$ref",
        "$defs",
        "definitions",
        "description",
        "title",
        "$schema",
        "$comment",
        "pattern",
        "format",
        "minLength",
        "maxLength",
        "multipleOf",
        "minimum",
        "maximum",
        "exclusiveMinimum",
        "exclusiveMaximum",
        "minItems",
        "maxItems",
    }
)
_STRICT_TYPES = frozenset({"string", "number", "integer", "boolean", "object", "array", "null"})
MAX_NESTING = 10
MAX_PROPERTIES = 5000
MAX_STRING_CHARS = 120_000
MAX_ENUM_VALUES = 1000
_BIG_ENUM = 250
_BIG_ENUM_CHARS = 15_000


@dataclass
class _StrictTally:
    properties: int = 0
    chars: int = 0
    enum_values: int = 0


def strict_mode_issues(schema: Any) -> list[SchemaIssue]:
    """Return what keeps a schema from OpenAI's strict mode, each saying what to change."""
    if not isinstance(schema, Mapping):
        return [issue_at((), 'strict mode needs an object schema ("type": "object")', "type")]
    issues: list[SchemaIssue] = []
    if "anyOf" in schema:
        issues.append(
            issue_at(
                ("anyOf",),
                'strict mode does not allow "anyOf" at the root; make the root an object '
                "and put the union in one of its properties",
                "anyOf",
            )
        )
    elif schema.get("type") != "object":
        issues.append(
            issue_at(
                (),
                'make the root an object ("type": "object"): strict mode requires it, '
                f"got {_describe_type(schema)}",
                "type",
            )
        )
    tally = _StrictTally()
    _strict_node(schema, (), 1, tally, issues)
    for key in ("$defs", "definitions"):
        defs = schema.get(key)
        if isinstance(defs, Mapping):
            for name, sub in defs.items():
                tally.chars += len(str(name))
                _strict_node(sub, (key, name), 1, tally, issues)
    if tally.properties > MAX_PROPERTIES:
        issues.append(
            issue_at(
                (),
                f"the schema has {tally.properties} properties; strict mode allows "
                f"at most {MAX_PROPERTIES}: split it or turn strict mode off",
                "properties",
            )
        )
    if tally.chars > MAX_STRING_CHARS:
        issues.append(
            issue_at(
                (),
                f"property names, definition names, enum and const values add up to "
                f"{tally.chars} characters; strict mode allows at most {MAX_STRING_CHARS}",
                "enum",
            )
        )
    if tally.enum_values > MAX_ENUM_VALUES:
        issues.append(
            issue_at(
                (),
                f"the schema has {tally.enum_values} enum values; strict mode allows "
                f"at most {MAX_ENUM_VALUES}",
                "enum",
            )
        )
    return sorted_issues(issues)


def _describe_type(schema: Mapping[str, Any]) -> str:
    kind = schema.get("type")
    if kind is None:
        return "a schema without a type"
    return f'"type": {json.dumps(kind)}'


def _types_of(schema: Mapping[str, Any]) -> set[str]:
    kind = schema.get("type")
    if isinstance(kind, str):
        return {kind}
    if isinstance(kind, list):
        return {k for k in kind if isinstance(k, str)}
    return set()


def _nullable_hint(schema: Any) -> str:
    """How to make a property accept null, in the user's own terms."""
    if isinstance(schema, Mapping):
        kind = schema.get("type")
        if isinstance(kind, str):
            return f'"type": {json.dumps([kind, "null"])}'
        if isinstance(kind, list):
            return f'"type": {json.dumps([*kind, "null"] if "null" not in kind else kind)}'
        if "anyOf" in schema:
            return 'add {"type": "null"} to its "anyOf"'
    return '"anyOf": [<its schema>, {"type": "null"}]'


def _strict_node(
    node: Any,
    path: tuple[str | int, ...],
    depth: int,
    tally: _StrictTally,
    issues: list[SchemaIssue],
) -> None:
    if not isinstance(node, Mapping):
        issues.append(
            issue_at(
                path,
                "use a schema object here: strict mode does not accept "
                f"{json.dumps(node)} as a schema",
                "type",
            )
        )
        return
    for key in node:
        if key not in _STRICT_KEYWORDS:
            issues.append(
                issue_at(
                    path + (key,),
                    f'"{key}" is not supported in strict mode; remove it or turn strict mode off',
                    str(key),
                )
            )
    types = _types_of(node)
    for kind in types - _STRICT_TYPES:
        issues.append(issue_at(path + ("type",), f'type "{kind}" is not supported', "type"))
    if not types and not any(k in node for k in ("anyOf", "$ref", "enum", "const")):
        issues.append(
            issue_at(
                path, 'give this schema a "type" (strict mode needs one on every schema)', "type"
            )
        )
    fmt = node.get("format")
    if isinstance(fmt, str) and fmt not in STRICT_FORMATS:
        issues.append(
            issue_at(
                path + ("format",),
                f'format "{fmt}" is not supported in strict mode '
                f"(supported: {', '.join(sorted(STRICT_FORMATS))})",
                "format",
            )
        )
    ref = node.get("$ref")
    if isinstance(ref, str) and not ref.startswith("#"):
        issues.append(
            issue_at(
                path + ("$ref",),
                'strict mode only accepts local references ("#/$defs/...")',
                "$ref",
            )
        )
    _strict_values(node, tally, path, issues)
    if "object" in types or "properties" in node:
        _strict_object(node, path, depth, tally, issues)
    if "array" in types:
        items = node.get("items")
        if items is None:
            issues.append(
                issue_at(
                    path, 'add "items" (strict mode needs the item schema of every array)', "items"
                )
            )
        else:
            _strict_node(items, path + ("items",), depth, tally, issues)
    branches = node.get("anyOf")
    if isinstance(branches, list):
        for i, branch in enumerate(branches):
            _strict_node(branch, path + ("anyOf", i), depth, tally, issues)


def _strict_values(
    node: Mapping[str, Any],
    tally: _StrictTally,
    path: tuple[str | int, ...],
    issues: list[SchemaIssue],
) -> None:
    enum = node.get("enum")
    if isinstance(enum, list):
        tally.enum_values += len(enum)
        chars = sum(len(v) for v in enum if isinstance(v, str))
        tally.chars += chars
        if len(enum) > _BIG_ENUM and chars > _BIG_ENUM_CHARS:
            issues.append(
                issue_at(
                    path + ("enum",),
                    f"an enum of more than {_BIG_ENUM} strings may have "
                    f"at most {_BIG_ENUM_CHARS} characters in all; this one has {chars}",
                    "enum",
                )
            )
    const = node.get("const")
    if isinstance(const, str):
        tally.chars += len(const)


def _strict_object(
    node: Mapping[str, Any],
    path: tuple[str | int, ...],
    depth: int,
    tally: _StrictTally,
    issues: list[SchemaIssue],
) -> None:
    if depth > MAX_NESTING:
        issues.append(
            issue_at(
                path,
                f"objects are nested {depth} levels deep here; strict mode allows "
                f"at most {MAX_NESTING}",
                "properties",
            )
        )
    extra = node.get("additionalProperties", None)
    if "additionalProperties" not in node:
        issues.append(
            issue_at(
                path,
                'add "additionalProperties": false (strict mode requires it on every object)',
                "additionalProperties",
            )
        )
    elif extra is not False:
        issues.append(
            issue_at(
                path + ("additionalProperties",),
                'set "additionalProperties" to false (strict mode requires it on every object)',
                "additionalProperties",
            )
        )
    properties = node.get("properties")
    if not isinstance(properties, Mapping):
        return
    tally.properties += len(properties)
    tally.chars += sum(len(str(name)) for name in properties)
    required = node.get("required")
    listed = set(required) if isinstance(required, list) else set()
    missing = [name for name in properties if name not in listed]
    if missing:
        names = ", ".join(json.dumps(name) for name in missing)
        issues.append(
            issue_at(
                path,
                f'"required" must list every property; missing: {names} (make it '
                "required, and allow null if it is optional: "
                f"{_nullable_hint(properties[missing[0]])})",
                "required",
            )
        )
    for name, sub in properties.items():
        _strict_node(sub, path + ("properties", name), depth + 1, tally, issues)
