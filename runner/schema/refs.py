"""Local `$ref`s of a JSON Schema: each must stay inside the schema and lead somewhere, since
runner never fetches a schema from anywhere else.

Plain walking of the schema as data: it never imports jsonschema and never resolves a remote
reference (runner.schema.validator refuses those when it validates).
"""

from __future__ import annotations

import urllib.parse
from collections.abc import Iterator, Mapping
from typing import Any

from runner.schema.wording import SchemaIssue, issue_at

__all__ = ["ref_issues"]

_Path = tuple[str | int, ...]


# Keywords whose value maps names (not keywords) to schemas.
_SCHEMA_MAPS = frozenset(
    {"properties", "patternProperties", "$defs", "definitions", "dependentSchemas"}
)
# Keywords whose values are data, never schemas.
_DATA_KEYWORDS = frozenset({"enum", "const", "default", "examples"})


def _walk_refs(node: Any, path: _Path, names: bool = False) -> Iterator[tuple[_Path, str]]:
    if isinstance(node, Mapping):
        for key, value in node.items():
            if names:
                yield from _walk_refs(value, path + (key,))
            elif key == "$ref" and isinstance(value, str):
                yield path + (key,), value
            elif key not in _DATA_KEYWORDS:
                yield from _walk_refs(value, path + (key,), key in _SCHEMA_MAPS)
    elif isinstance(node, list):
        for i, value in enumerate(node):
            yield from _walk_refs(value, path + (i,))


def _resolve_pointer(root: Any, fragment: str) -> bool:
    node = root
    for raw in fragment.split("/")[1:] if fragment else []:
        part = urllib.parse.unquote(raw).replace("~1", "/").replace("~0", "~")
        if isinstance(node, Mapping) and part in node:
            node = node[part]
        elif isinstance(node, list) and part.isdigit() and int(part) < len(node):
            node = node[int(part)]
        else:
            return False
    return True


def ref_issues(schema: Mapping[str, Any]) -> Iterator[SchemaIssue]:
    """Yield an issue for each `$ref` that points outside the schema or leads nowhere in it."""
    anchors = {
        n["$anchor"]
        for n in _walk_nodes(schema)
        if isinstance(n, Mapping) and isinstance(n.get("$anchor"), str)
    }
    for path, ref in _walk_refs(schema, ()):
        if not ref.startswith("#"):
            yield issue_at(
                path,
                f"$ref {ref!r} points outside this schema; runner never fetches schemas: "
                'move the definition under "$defs" and use "#/$defs/..."',
                "$ref",
            )
            continue
        fragment = ref[1:]
        found = (
            _resolve_pointer(schema, fragment)
            if fragment == "" or fragment.startswith("/")
            else fragment in anchors
        )
        if not found:
            yield issue_at(path, f"$ref {ref!r} leads nowhere in this schema", "$ref")


def _walk_nodes(node: Any) -> Iterator[Any]:
    yield node
    if isinstance(node, Mapping):
        for value in node.values():
            yield from _walk_nodes(value)
    elif isinstance(node, list):
        for value in node:
            yield from _walk_nodes(value)
