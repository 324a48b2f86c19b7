"""Where a problem in a JSON document is and how it is worded: RFC 6901 pointers and their human
form (`messages[1].content`), `SchemaIssue`, and the words for JSON kinds and failed keywords.

Plain data and pure functions: no third-party imports, no files; it never decides what is wrong.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sized
from dataclasses import dataclass
from typing import Any

from runner.schema.regex import pattern_problem

__all__ = [
    "SchemaIssue",
    "issue_at",
    "json_pointer",
    "keyword_message",
    "nearest",
    "path_label",
    "pointer_path",
    "at_location",
    "quoted_value",
    "sorted_issues",
    "value_kind",
    "type_words",
]


# --- pointers and paths -----------------------------------------------------------------------


def json_pointer(path: Iterable[str | int]) -> str:
    """Return the RFC 6901 pointer of a path ("" for the root)."""
    return "".join("/" + str(p).replace("~", "~0").replace("/", "~1") for p in path)


def pointer_path(pointer: str) -> tuple[str | int, ...]:
    """The steps of a pointer; a step made of digits is a list index."""
    steps: list[str | int] = []
    for raw in pointer.split("/")[1:]:
        part = raw.replace("~1", "/").replace("~0", "~")
        steps.append(int(part) if part.isdigit() else part)
    return tuple(steps)


def path_label(path: Iterable[str | int]) -> str:
    """A path as people write it: messages[1].content, params.temperature."""
    out = ""
    for step in path:
        out += f"[{step}]" if isinstance(step, int) else (f".{step}" if out else str(step))
    return out


def at_location(pointer: str, message: str) -> str:
    """The message prefixed with where it applies ("messages[0]: ..."), bare at the root."""
    label = path_label(pointer_path(pointer))
    return f"{label}: {message}" if label else message


def nearest(positions: Mapping[str, tuple[int, int]], pointer: str) -> tuple[int, int]:
    """The position of a pointer, or of its nearest ancestor that has one ((1, 1) at worst)."""
    while True:
        if pointer in positions:
            return positions[pointer]
        if not pointer:
            return (1, 1)
        pointer = pointer.rsplit("/", 1)[0]


# --- issues -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class SchemaIssue:
    """One way an instance (or a schema) fails. `pointer` is "" for the root; `str()` shows "/"."""

    pointer: str
    message: str
    path: tuple[str | int, ...] = ()
    validator: str = ""

    def __str__(self) -> str:
        return f"{self.pointer or '/'}: {self.message}"


def issue_at(path: Iterable[str | int], message: str, validator: str = "") -> SchemaIssue:
    """An issue at a path (its pointer computed)."""
    steps = tuple(path)
    return SchemaIssue(json_pointer(steps), message, steps, validator)


def sorted_issues(issues: Iterable[SchemaIssue]) -> list[SchemaIssue]:
    """Issues without repeats, ordered by pointer then message, so output is stable."""
    return sorted(set(issues), key=lambda i: (i.pointer, i.message))


# --- words ------------------------------------------------------------------------------------

_TYPE_WORDS = {
    "string": "a string",
    "integer": "an integer",
    "number": "a number",
    "boolean": "true or false",
    "object": "a mapping",
    "array": "a list",
    "null": "null",
}


def value_kind(value: Any) -> str:
    """Name the JSON type of a value in words ("a string", "a mapping", ...)."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int):
        return "an integer"
    if isinstance(value, float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list | tuple):
        return "a list"
    if isinstance(value, Mapping):
        return "a mapping"
    return type(value).__name__


def type_words(types: Any) -> str:
    """JSON Schema type names in words: "a string, a list or null"."""
    names = [types] if isinstance(types, str) else list(types)
    words = list(dict.fromkeys(_TYPE_WORDS.get(str(t), str(t)) for t in names))
    return words[0] if len(words) == 1 else f"{', '.join(words[:-1])} or {words[-1]}"


def quoted_value(value: Any) -> str:
    """A value as it appears in a message, cut to 60 characters."""
    text = repr(value) if isinstance(value, str) else json.dumps(value, default=str)
    return text if len(text) <= 60 else text[:57] + "..."


def _plain(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value)


def _len(value: Any) -> int:
    return len(value) if isinstance(value, Sized) else 0


_BOUNDS = {
    "minimum": "at least",
    "maximum": "at most",
    "exclusiveMinimum": "greater than",
    "exclusiveMaximum": "less than",
}


def keyword_message(kind: str, wanted: Any, value: Any, fallback: str) -> str:
    """Say in words why `value` fails the keyword `kind` (whose value is `wanted`); `fallback`
    (the validator's own message) for keywords without words of their own."""
    if kind == "type":
        return f"expected {type_words(wanted)}, got {value_kind(value)}"
    if kind == "enum":
        return f"{quoted_value(value)} is not one of: {', '.join(_plain(v) for v in wanted)}"
    if kind == "const":
        return f"expected {_plain(wanted)}, got {quoted_value(value)}"
    if kind in _BOUNDS:
        return f"must be {_BOUNDS[kind]} {wanted}, got {value}"
    if kind in ("minItems", "minLength", "minProperties") and wanted == 1:
        return "must not be empty"
    if kind in ("minItems", "maxItems", "minProperties", "maxProperties"):
        unit = "items" if kind.endswith("Items") else "entries"
        bound = "at least" if kind.startswith("min") else "at most"
        return f"must have {bound} {wanted} {unit}, got {_len(value)}"
    if kind in ("minLength", "maxLength"):
        bound = "at least" if kind == "minLength" else "at most"
        return f"must be {bound} {wanted} characters long, got {_len(value)}"
    if kind == "pattern":
        return f"{quoted_value(value)} does not match the pattern {wanted}"
    if kind == "format":
        why = pattern_problem(value) if wanted == "regex" else None
        return f"{quoted_value(value)} is not a valid {wanted}" + (f": {why}" if why else "")
    if kind == "uniqueItems":
        return "must not repeat items"
    if kind == "multipleOf":
        return f"must be a multiple of {wanted}, got {value}"
    return fallback
