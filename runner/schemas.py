"""Packaged JSON Schemas and the one jsonschema helper: compiled validators, meta-schema checks
and OpenAI strict-mode rules, all reported as sorted `SchemaIssue`s.

This is the only module that imports jsonschema. It never fetches a remote `$ref` and knows
nothing about specs, files or positions: callers map an issue's pointer to wherever it came from.
"""

from __future__ import annotations

import difflib
import functools
import importlib.resources
import json
import re
import urllib.parse
from collections.abc import Callable, Iterable, Iterator, Mapping, Sized
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import jsonschema
import jsonschema.exceptions
import jsonschema.validators
import referencing
import referencing.exceptions
from jsonschema.protocols import Validator

__all__ = [
    "STRICT_FORMATS",
    "SchemaIssue",
    "SchemaValidator",
    "check_schema",
    "compile_validator",
    "json_pointer",
    "packaged_schema",
    "strict_mode_issues",
    "value_kind",
]


# --- issues -----------------------------------------------------------------------------------


def json_pointer(path: Iterable[str | int]) -> str:
    """Return the RFC 6901 pointer of a path ("" for the root)."""
    return "".join("/" + str(p).replace("~", "~0").replace("/", "~1") for p in path)


@dataclass(frozen=True)
class SchemaIssue:
    """One way an instance (or a schema) fails. `pointer` is "" for the root; `str()` shows "/"."""

    pointer: str
    message: str
    path: tuple[str | int, ...] = ()
    validator: str = ""

    def __str__(self) -> str:
        return f"{self.pointer or '/'}: {self.message}"


def _issue(path: Iterable[str | int], message: str, validator: str = "") -> SchemaIssue:
    steps = tuple(path)
    return SchemaIssue(json_pointer(steps), message, steps, validator)


def _sorted(issues: Iterable[SchemaIssue]) -> list[SchemaIssue]:
    return sorted(set(issues), key=lambda i: (i.pointer, i.message))


# --- packaged schemas -------------------------------------------------------------------------


@functools.cache
def packaged_schema(name: str) -> dict[str, Any]:
    """Read a JSON Schema shipped with runner (the result is shared: do not mutate it)."""
    if "/" in name or "\\" in name or name.startswith("."):
        raise ValueError(f"not a packaged schema name: {name!r}")
    resource = importlib.resources.files("runner") / "schemas" / name
    if resource.is_file():
        text = resource.read_text(encoding="utf-8")
    else:  # a checkout or an editable install: schemas/ sits beside the package
        text = (Path(__file__).resolve().parent.parent / "schemas" / name).read_text("utf-8")
    data = json.loads(text)
    if not isinstance(data, dict):
        raise ValueError(f"packaged schema {name} is not a JSON object")
    return data


# --- formats ----------------------------------------------------------------------------------

# The string formats OpenAI's strict mode accepts; runner checks every one of them itself.
STRICT_FORMATS = frozenset(
    {"date-time", "time", "date", "duration", "email", "hostname", "ipv4", "ipv6", "uuid"}
)

_DATE_TIME = re.compile(
    r"^\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}:\d{2}(?:\.\d+)?(?:[Zz]|[+-]\d{2}:\d{2})$", re.ASCII
)
_TIME = re.compile(r"^(\d{2}):(\d{2}):(\d{2})(?:\.\d+)?(?:[Zz]|[+-](\d{2}):(\d{2}))$", re.ASCII)
_DURATION = re.compile(
    r"^P(?!$)(?:\d+Y)?(?:\d+M)?(?:\d+W)?(?:\d+D)?(?:T(?=\d)(?:\d+H)?(?:\d+M)?(?:\d+(?:\.\d+)?S)?)?$",
    re.ASCII,
)
_LABEL = re.compile(r"^[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?$", re.ASCII)


def _is_date_time(value: object) -> bool:
    if not isinstance(value, str):
        return True
    if not _DATE_TIME.match(value):
        return False
    # datetime has no leap second; 60 is valid in RFC 3339, so check it as 59.
    text = value[:17] + "59" + value[19:] if value[17:19] == "60" else value
    try:
        datetime.fromisoformat(text.replace("z", "Z").replace("t", "T"))
    except ValueError:
        return False
    return True


def _is_time(value: object) -> bool:
    if not isinstance(value, str):
        return True
    m = _TIME.match(value)
    if not m:
        return False
    hour, minute, second = int(m[1]), int(m[2]), int(m[3])
    offset_ok = m[4] is None or (int(m[4]) < 24 and int(m[5]) < 60)
    return hour < 24 and minute < 60 and second <= 60 and offset_ok


def _is_duration(value: object) -> bool:
    return not isinstance(value, str) or bool(_DURATION.match(value))


def _is_hostname(value: object) -> bool:
    if not isinstance(value, str):
        return True
    name = value[:-1] if value.endswith(".") else value
    return 0 < len(name) <= 253 and all(_LABEL.match(label) for label in name.split("."))


def _format_checker() -> jsonschema.FormatChecker:
    checker = jsonschema.FormatChecker()
    # jsonschema checks these only when optional packages are installed; runner must check
    # every format strict mode allows, so it brings its own (stdlib only).
    own: dict[str, Callable[[object], bool]] = {
        "date-time": _is_date_time,
        "time": _is_time,
        "duration": _is_duration,
        "hostname": _is_hostname,
    }
    for name, func in own.items():
        checker.checks(name)(func)
    return checker


_FORMATS = _format_checker()


# --- validators -------------------------------------------------------------------------------


def _no_remote(uri: str) -> referencing.Resource[Any]:
    # Never fetch a schema over the network: an unresolvable remote $ref is an error.
    raise referencing.exceptions.NoSuchResource(uri)


_REGISTRY: referencing.Registry[Any] = referencing.Registry(retrieve=_no_remote)  # type: ignore[call-arg]


_DRAFTS: tuple[type[Validator], ...] = (
    jsonschema.Draft202012Validator,
    jsonschema.Draft201909Validator,
    jsonschema.Draft7Validator,
    jsonschema.Draft6Validator,
    jsonschema.Draft4Validator,
)
_DIALECTS: dict[str, type[Validator]] = {
    str(cls.META_SCHEMA.get("$id") or cls.META_SCHEMA.get("id")).rstrip("#"): cls for cls in _DRAFTS
}


def _validator_class(schema: Mapping[str, Any] | bool) -> type[Validator] | None:
    """The draft a schema's `$schema` names (2020-12 when it names none); None if unknown."""
    if isinstance(schema, bool) or "$schema" not in schema:
        return jsonschema.Draft202012Validator
    dialect = schema["$schema"]
    return _DIALECTS.get(dialect.rstrip("#")) if isinstance(dialect, str) else None


def _error_issue(error: jsonschema.exceptions.ValidationError) -> SchemaIssue:
    """Turn one error into an issue; for anyOf/oneOf, use the most relevant sub-error."""
    while error.validator in ("anyOf", "oneOf") and error.context:
        if all(e.validator == "type" and not e.relative_path for e in error.context):
            wanted = ", ".join(repr(e.validator_value) for e in error.context)
            message = f"{error.instance!r} is not of type {wanted}"
            return _issue(error.absolute_path, message, "type")
        error = _best_branch_error(error)
    return _issue(error.absolute_path, error.message, str(error.validator))


def _best_branch_error(
    error: jsonschema.exceptions.ValidationError,
) -> jsonschema.exceptions.ValidationError:
    """The sub-error of an anyOf/oneOf failure that explains it best: one from a branch whose
    type the instance matches (a missing key beats "is not of type 'string'")."""
    context = error.context or []
    typed = [e for e in context if not (e.validator == "type" and not e.relative_path)]
    return jsonschema.exceptions.best_match(typed or context) or error


class SchemaValidator:
    """A compiled JSON Schema. Build it with `compile_validator`, which caches instances."""

    def __init__(self, schema: Mapping[str, Any] | bool) -> None:
        cls = _validator_class(schema)
        if cls is None:
            raise ValueError(f"unknown JSON Schema dialect: {schema['$schema']!r}")  # type: ignore[index]
        self.schema = schema
        self._validator = cls(schema, format_checker=_FORMATS, registry=_REGISTRY)

    def is_valid(self, instance: Any) -> bool:
        """Return whether the instance satisfies the schema (stops at the first error)."""
        try:
            return bool(self._validator.is_valid(instance))
        except referencing.exceptions.Unresolvable:
            return False

    def issues(self, instance: Any) -> list[SchemaIssue]:
        """Return every way the instance breaks the schema, sorted by pointer then message."""
        try:
            return _sorted(_error_issue(e) for e in self._validator.iter_errors(instance))
        except referencing.exceptions.Unresolvable as exc:
            return [_issue((), f"the schema cannot be used: {exc}", "$ref")]

    def explain(
        self, instance: Any, *, hints: Mapping[str, str] | None = None
    ) -> list[SchemaIssue]:
        """Like `issues`, in words for people who edit YAML: one issue per unknown key (its
        path is the key's; validator "additionalProperties", or "propertyNames" for a bad
        key), one per missing key (at the parent), and plain messages for the rest.
        `hints` maps a schema `title` to advice shown when a value is not one of those
        (e.g. {"duration": "use e.g. 30s"})."""
        try:
            errors = list(self._validator.iter_errors(instance))
        except referencing.exceptions.Unresolvable as exc:
            return [_issue((), f"the schema cannot be used: {exc}", "$ref")]
        return _sorted(issue for error in errors for issue in _explain(error, hints or {}))


@functools.lru_cache(maxsize=256)
def _compile_canonical(canonical: str) -> SchemaValidator:
    return SchemaValidator(json.loads(canonical))


def compile_validator(schema: Mapping[str, Any] | bool) -> SchemaValidator:
    """Return a validator for a schema (Draft 2020-12 unless `$schema` names another draft,
    formats checked). Equal schemas share one compiled validator."""
    try:
        canonical = json.dumps(schema, sort_keys=True, separators=(",", ":"), allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"not a JSON schema: {exc}") from exc
    return _compile_canonical(canonical)


# --- explanations ---------------------------------------------------------------------------

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


def _want(types: Any) -> str:
    names = [types] if isinstance(types, str) else list(types)
    words = list(dict.fromkeys(_TYPE_WORDS.get(str(t), str(t)) for t in names))
    return words[0] if len(words) == 1 else f"{', '.join(words[:-1])} or {words[-1]}"


def _show(value: Any) -> str:
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


def _explain(
    error: jsonschema.exceptions.ValidationError, hints: Mapping[str, str]
) -> Iterator[SchemaIssue]:
    path = tuple(error.absolute_path)
    kind, wanted, value = str(error.validator), error.validator_value, error.instance
    schema = error.schema if isinstance(error.schema, Mapping) else {}
    if "propertyNames" in error.relative_schema_path and isinstance(value, str):
        # propertyNames checks each key as an instance of its own, reported at the parent.
        inner = next(_explain_value(error, kind, wanted, value, schema, hints), error.message)
        yield _issue(path + (value,), f"invalid key {_show(value)}: {inner}", "propertyNames")
    elif kind == "additionalProperties" and wanted is False and isinstance(value, Mapping):
        allowed = [str(k) for k in schema.get("properties", {})]
        patterns = [str(p) for p in schema.get("patternProperties", {})]
        for key in value:
            if key in allowed or any(re.search(p, str(key)) for p in patterns):
                continue
            close = difflib.get_close_matches(str(key), allowed, n=1, cutoff=0.6)
            hint = f" (did you mean '{close[0]}'?)" if close else ""
            yield _issue(path + (key,), f"unknown key '{key}'{hint}", kind)
    elif kind == "required" and isinstance(value, Mapping):
        for key in _as_list(wanted):
            if key not in value:
                yield _issue(path, f"missing required key '{key}'", kind)
    elif kind in ("anyOf", "oneOf") and error.context:
        yield from _explain_union(error, hints)
    else:
        for message in _explain_value(error, kind, wanted, value, schema, hints):
            yield _issue(path, message, kind)


def _explain_value(
    error: jsonschema.exceptions.ValidationError,
    kind: str,
    wanted: Any,
    value: Any,
    schema: Mapping[str, Any],
    hints: Mapping[str, str],
) -> Iterator[str]:
    if kind == "type":
        yield f"expected {_want(wanted)}, got {value_kind(value)}"
    elif kind == "enum":
        yield f"{_show(value)} is not one of: {', '.join(_plain(v) for v in wanted)}"
    elif kind == "const":
        yield f"expected {_plain(wanted)}, got {_show(value)}"
    elif kind in _BOUNDS:
        yield f"must be {_BOUNDS[kind]} {wanted}, got {value}"
    elif kind in ("minItems", "minLength", "minProperties") and wanted == 1:
        yield "must not be empty"
    elif kind in ("minItems", "maxItems", "minProperties", "maxProperties"):
        unit = "items" if kind.endswith("Items") else "entries"
        bound = "at least" if kind.startswith("min") else "at most"
        yield f"must have {bound} {wanted} {unit}, got {_len(value)}"
    elif kind in ("minLength", "maxLength"):
        bound = "at least" if kind == "minLength" else "at most"
        yield f"must be {bound} {wanted} characters long, got {_len(value)}"
    elif kind == "pattern":
        yield f"{_show(value)} does not match the pattern {wanted}"
    elif kind == "format":
        yield f"{_show(value)} is not a valid {wanted}"
    elif kind == "uniqueItems":
        yield "must not repeat items"
    elif kind == "multipleOf":
        yield f"must be a multiple of {wanted}, got {value}"
    else:
        yield error.message


def _explain_union(
    error: jsonschema.exceptions.ValidationError, hints: Mapping[str, str]
) -> Iterator[SchemaIssue]:
    path = tuple(error.absolute_path)
    schema = error.schema if isinstance(error.schema, Mapping) else {}
    title = schema.get("title")
    context = error.context or []
    if isinstance(title, str) and title in hints:
        yield _issue(path, f"{_show(error.instance)} is not a {title} ({hints[title]})", "anyOf")
        return
    if all(e.validator == "type" and not e.relative_path for e in context):
        wanted = _want([w for e in context for w in _as_list(e.validator_value)])
        yield _issue(path, f"expected {wanted}, got {value_kind(error.instance)}", "type")
        return
    branches: dict[Any, list[jsonschema.exceptions.ValidationError]] = {}
    for sub in context:
        branches.setdefault(sub.relative_schema_path[0], []).append(sub)
    typed = [
        errs
        for errs in branches.values()
        if not any(e.validator == "type" and not e.relative_path for e in errs)
    ]
    if len(typed) == 1:
        chosen = typed[0]
    else:
        best = jsonschema.exceptions.best_match([e for errs in typed for e in errs] or context)
        chosen = [best] if best is not None else []
    for sub in chosen:
        yield from _explain(sub, hints)


def _as_list(value: Any) -> list[Any]:
    return [value] if isinstance(value, str) else list(value)


# --- meta-schema ------------------------------------------------------------------------------


def check_schema(schema: Any) -> list[SchemaIssue]:
    """Check a schema against its meta-schema, and that every local `$ref` leads somewhere."""
    if isinstance(schema, bool):
        return []
    if not isinstance(schema, Mapping):
        return [_issue((), "a schema must be a JSON object", "type")]
    try:
        canonical = json.dumps(schema, sort_keys=True, separators=(",", ":"), allow_nan=False)
    except (TypeError, ValueError) as exc:
        return [_issue((), f"not a JSON schema: {exc}", "type")]
    return list(_check_canonical(canonical))


@functools.lru_cache(maxsize=256)
def _check_canonical(canonical: str) -> tuple[SchemaIssue, ...]:
    schema = json.loads(canonical)
    cls = _validator_class(schema)
    if cls is None:
        known = ", ".join(sorted(_DIALECTS))
        return (
            _issue(
                ("$schema",),
                f"unknown JSON Schema dialect {schema['$schema']!r} (known: {known})",
                "$schema",
            ),
        )
    meta = cls(cls.META_SCHEMA, format_checker=_FORMATS)
    issues = [_error_issue(e) for e in meta.iter_errors(schema)]
    if not issues:
        issues.extend(_ref_issues(schema))
    return tuple(_sorted(issues))


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


def _ref_issues(schema: Mapping[str, Any]) -> Iterator[SchemaIssue]:
    anchors = {
        n["$anchor"]
        for n in _walk_nodes(schema)
        if isinstance(n, Mapping) and isinstance(n.get("$anchor"), str)
    }
    for path, ref in _walk_refs(schema, ()):
        if not ref.startswith("#"):
            yield _issue(
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
            yield _issue(path, f"$ref {ref!r} leads nowhere in this schema", "$ref")


def _walk_nodes(node: Any) -> Iterator[Any]:
    yield node
    if isinstance(node, Mapping):
        for value in node.values():
            yield from _walk_nodes(value)
    elif isinstance(node, list):
        for value in node:
            yield from _walk_nodes(value)


# --- OpenAI strict mode -----------------------------------------------------------------------

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
        return [_issue((), 'strict mode needs an object schema ("type": "object")', "type")]
    issues: list[SchemaIssue] = []
    if "anyOf" in schema:
        issues.append(
            _issue(
                ("anyOf",),
                'strict mode does not allow "anyOf" at the root; make the root an object '
                "and put the union in one of its properties",
                "anyOf",
            )
        )
    elif schema.get("type") != "object":
        issues.append(
            _issue(
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
            _issue(
                (),
                f"the schema has {tally.properties} properties; strict mode allows "
                f"at most {MAX_PROPERTIES}: split it or turn strict mode off",
                "properties",
            )
        )
    if tally.chars > MAX_STRING_CHARS:
        issues.append(
            _issue(
                (),
                f"property names, definition names, enum and const values add up to "
                f"{tally.chars} characters; strict mode allows at most {MAX_STRING_CHARS}",
                "enum",
            )
        )
    if tally.enum_values > MAX_ENUM_VALUES:
        issues.append(
            _issue(
                (),
                f"the schema has {tally.enum_values} enum values; strict mode allows "
                f"at most {MAX_ENUM_VALUES}",
                "enum",
            )
        )
    return _sorted(issues)


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
            _issue(
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
                _issue(
                    path + (key,),
                    f'"{key}" is not supported in strict mode; remove it or turn strict mode off',
                    str(key),
                )
            )
    types = _types_of(node)
    for kind in types - _STRICT_TYPES:
        issues.append(_issue(path + ("type",), f'type "{kind}" is not supported', "type"))
    if not types and not any(k in node for k in ("anyOf", "$ref", "enum", "const")):
        issues.append(
            _issue(
                path, 'give this schema a "type" (strict mode needs one on every schema)', "type"
            )
        )
    fmt = node.get("format")
    if isinstance(fmt, str) and fmt not in STRICT_FORMATS:
        issues.append(
            _issue(
                path + ("format",),
                f'format "{fmt}" is not supported in strict mode '
                f"(supported: {', '.join(sorted(STRICT_FORMATS))})",
                "format",
            )
        )
    ref = node.get("$ref")
    if isinstance(ref, str) and not ref.startswith("#"):
        issues.append(
            _issue(
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
                _issue(
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
                _issue(
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
            _issue(
                path,
                f"objects are nested {depth} levels deep here; strict mode allows "
                f"at most {MAX_NESTING}",
                "properties",
            )
        )
    extra = node.get("additionalProperties", None)
    if "additionalProperties" not in node:
        issues.append(
            _issue(
                path,
                'add "additionalProperties": false (strict mode requires it on every object)',
                "additionalProperties",
            )
        )
    elif extra is not False:
        issues.append(
            _issue(
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
            _issue(
                path,
                f'"required" must list every property; missing: {names} (make it '
                "required, and allow null if it is optional: "
                f"{_nullable_hint(properties[missing[0]])})",
                "required",
            )
        )
    for name, sub in properties.items():
        _strict_node(sub, path + ("properties", name), depth + 1, tally, issues)
