"""Schema-driven values for the mock server: JSON instances valid against the OpenAI strict-mode
subset of JSON Schema ($ref, anyOf, allOf, objects, arrays) and JSON that breaks a schema on
purpose; leaf numbers and strings come from mockscalars. Every random choice comes from the
caller's `random.Random`; this module must not import jsonschema.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Mapping, Sequence
from random import Random
from typing import Any

from runner.mock.scalars import MAX_STRING, number_value, singular, string_value

__all__ = [
    "MAX_CHARACTERS",
    "MAX_ITEMS",
    "MAX_STRING",
    "MAX_VALUES",
    "generate_instance",
    "invalid_json",
]

_SOFT_DEPTH = 5  # past this nesting, prefer choices that end a recursive schema
_HARD_DEPTH = 48  # still nesting here: the schema has no finite instance
# The most one instance may hold, so that no schema makes the server work for long: a value
# (string, array, object) asked for larger than these is refused before anything is built.
MAX_VALUES = 20_000  # values in one instance, nested ones included
MAX_CHARACTERS = 200_000  # characters of all its strings together
MAX_ITEMS = 10_000  # items of one array, properties of one object
_MAX_CHECKS = 100_000  # steps of the search for a finite branch of a recursive schema
_ANNOTATIONS = frozenset({"description", "title", "$comment", "examples", "default", "deprecated"})
_GENERIC_NAMES = frozenset({"name", "title", "label", "value"})


def generate_instance(schema: Mapping[str, Any] | bool, rng: Random, *, hint: str = "") -> Any:
    """Return a JSON value valid against `schema`; ValueError when it cannot make one.

    `hint` names the value (a schema name such as "city") to make strings and numbers plausible.
    """
    root = schema if isinstance(schema, Mapping) else {}
    if schema is False:
        raise ValueError("the schema `false` accepts no value")
    try:
        return _Generator(root, rng).value(schema, 0, hint)
    except RecursionError:
        raise ValueError("the schema's references go round without an end") from None


def invalid_json(schema: Mapping[str, Any], instance: Any, rng: Random) -> str:
    """Return JSON text that `schema` rejects, made from a valid `instance`; text that is not JSON
    at all when the schema accepts any JSON value."""
    gen = _Generator(schema, rng)
    node = gen.resolved(schema)
    if isinstance(instance, dict):
        required = [k for k in node.get("required", ()) if k in instance]
        if required:
            broken = dict(instance)
            del broken[rng.choice(required)]
            return json.dumps(broken, ensure_ascii=False)
        props = node.get("properties", {})
        for key in instance:
            wrong = _wrong_value(gen, props.get(key, {}))
            if wrong is not _NOTHING:
                return json.dumps({**instance, key: wrong}, ensure_ascii=False)
    wrong = _wrong_value(gen, node)
    if wrong is not _NOTHING:
        return json.dumps(wrong, ensure_ascii=False)
    return 'Sure! Here is the JSON you asked for: {"answer": '


# --- the generator ----------------------------------------------------------------------------


class _Generator:
    def __init__(self, root: Mapping[str, Any], rng: Random) -> None:
        self.root = root
        self.rng = rng
        self.values = 0
        self.characters = 0
        self.checks = 0
        # Keyed by id(): the schema is kept in the value so its id cannot be reused meanwhile.
        self._finite_memo: dict[tuple[int, frozenset[str]], tuple[Any, bool]] = {}

    def resolve_ref(self, ref: str) -> Any:
        if ref == "#":
            return self.root
        if not ref.startswith("#/"):
            raise ValueError(f"unsupported $ref {ref!r}: only local references ('#/...') work")
        node: Any = self.root
        for raw in ref[2:].split("/"):
            part = raw.replace("~1", "/").replace("~0", "~")
            if isinstance(node, Mapping) and part in node:
                node = node[part]
            elif isinstance(node, list) and part.isdigit() and int(part) < len(node):
                node = node[int(part)]
            else:
                raise ValueError(f"$ref {ref!r} points at nothing")
        return node

    def resolved(self, schema: Any) -> Mapping[str, Any]:
        """`schema` with local $refs followed (siblings other than annotations merged over it)."""
        seen: set[str] = set()
        while isinstance(schema, Mapping) and "$ref" in schema:
            ref = schema["$ref"]
            if ref in seen:
                raise ValueError(f"$ref {ref!r} refers to itself")
            seen.add(ref)
            target = self.resolve_ref(ref)
            extra = {k: v for k, v in schema.items() if k != "$ref" and k not in _ANNOTATIONS}
            schema = {**target, **extra} if extra and isinstance(target, Mapping) else target
        return schema if isinstance(schema, Mapping) else {}

    def value(self, schema: Any, depth: int, hint: str) -> Any:
        if schema is True:
            schema = {}
        if not isinstance(schema, Mapping):
            raise ValueError("the schema `false` accepts no value")
        if depth > _HARD_DEPTH:
            raise ValueError(f"the schema nests deeper than {_HARD_DEPTH} levels without an end")
        self.values += 1
        if self.values > MAX_VALUES:
            raise ValueError(f"the schema asks for more than {MAX_VALUES:,} values in one answer")
        if "$ref" in schema:
            return self.value(self.resolved(schema), depth + 1, hint)
        deep = depth >= _SOFT_DEPTH
        if "const" in schema:
            return copy.deepcopy(schema["const"])
        if "enum" in schema:
            if not schema["enum"]:
                raise ValueError("an empty enum accepts no value")
            return copy.deepcopy(self.rng.choice(schema["enum"]))
        for key in ("anyOf", "oneOf"):
            if key in schema:
                rest = {k: v for k, v in schema.items() if k != key}
                branch = self._pick_branch(schema[key], deep)
                return self.value({**rest, **self.resolved(branch)}, depth, hint)
        if "allOf" in schema:
            merged = {k: v for k, v in schema.items() if k != "allOf"}
            for part in schema["allOf"]:
                merged = _merge(merged, self.resolved(part))
            return self.value(merged, depth, hint)
        kind = self._pick_type(schema, deep)
        if kind == "object":
            return self._object(schema, depth, deep, str(schema.get("title") or hint))
        if kind == "array":
            return self._array(schema, depth, deep, hint)
        if kind == "string":
            text = string_value(schema, hint, self.rng)
            self.characters += len(text)
            if self.characters > MAX_CHARACTERS:
                raise ValueError(
                    f"the schema asks for more than {MAX_CHARACTERS:,} characters in one answer"
                )
            return text
        if kind in ("integer", "number"):
            return number_value(schema, kind == "integer", hint, self.rng)
        if kind == "boolean":
            return self.rng.random() < 0.5
        return None

    def _pick_branch(self, branches: Sequence[Any], deep: bool) -> Any:
        if not branches:
            raise ValueError("an empty anyOf accepts no value")
        if not deep:
            return self.rng.choice(list(branches))
        finite = [b for b in branches if self.finite(b, frozenset())]
        if not finite:
            raise ValueError("no branch of an anyOf has a finite instance")
        flat = [b for b in finite if "$ref" not in json.dumps(b)]
        return (flat or finite)[0]

    def _pick_type(self, schema: Mapping[str, Any], deep: bool) -> str:
        declared = schema.get("type")
        if isinstance(declared, str):
            return declared
        if isinstance(declared, list) and declared:
            if "null" in declared and (deep or self.rng.random() < 0.15 or len(declared) == 1):
                return "null"
            others: list[str] = [t for t in declared if t != "null"]
            return self.rng.choice(others)
        return _infer_type(schema)

    def finite(self, schema: Any, visiting: frozenset[str]) -> bool:
        """Whether `schema` has an instance that does not go through a $ref in `visiting`."""
        if not isinstance(schema, Mapping):
            return schema is not False
        self.checks += 1
        if self.checks > _MAX_CHECKS:
            raise ValueError("the schema's references are too tangled to find a finite value")
        memo_key = (id(schema), visiting)
        if memo_key not in self._finite_memo:
            self._finite_memo[memo_key] = (schema, self._finite(schema, visiting))
        return self._finite_memo[memo_key][1]

    def _finite(self, schema: Mapping[str, Any], visiting: frozenset[str]) -> bool:
        ref = schema.get("$ref")
        if ref is not None:
            return ref not in visiting and self.finite(self.resolve_ref(ref), visiting | {ref})
        if "const" in schema or "enum" in schema:
            return True
        for key in ("anyOf", "oneOf"):
            if key in schema:
                return any(self.finite(b, visiting) for b in schema[key])
        if "allOf" in schema:
            return all(self.finite(b, visiting) for b in schema["allOf"])
        declared = schema.get("type")
        types = [declared] if isinstance(declared, str) else list(declared or [_infer_type(schema)])
        if "null" in types or any(t not in ("object", "array") for t in types):
            return True
        if "object" in types:
            required = set(schema.get("required", ()))
            props = schema.get("properties", {})
            return all(self.finite(sub, visiting) for k, sub in props.items() if k in required)
        return int(schema.get("minItems", 0)) == 0 or self.finite(schema.get("items", {}), visiting)

    def _object(
        self, schema: Mapping[str, Any], depth: int, deep: bool, hint: str
    ) -> dict[str, Any]:
        props: Mapping[str, Any] = schema.get("properties", {})
        required = set(schema.get("required", props))
        extra = schema.get("additionalProperties", True)
        out: dict[str, Any] = {}
        for name, sub in props.items():
            if name in required or not (deep or self.rng.random() < 0.25):
                # A bare "name" takes its meaning from the object: a city's name is a city.
                child = f"{hint} {name}" if name in _GENERIC_NAMES else name
                out[name] = self.value(sub, depth + 1, child)
        for name in sorted(required - set(props)):
            if extra is False:
                raise ValueError(f"required property {name!r} is not allowed by the schema")
            out[name] = self.value(extra if isinstance(extra, Mapping) else {}, depth + 1, name)
        wanted = _bounded(schema, "minProperties")
        if not props and isinstance(extra, Mapping) and not deep:
            wanted = max(wanted, self.rng.randint(1, 2))
        index = 1
        while len(out) < wanted:
            if extra is False:
                raise ValueError("minProperties asks for more properties than the schema allows")
            key = f"key_{index}"
            index += 1
            if key not in out:
                out[key] = self.value(extra if isinstance(extra, Mapping) else {}, depth + 1, key)
        return out

    def _array(self, schema: Mapping[str, Any], depth: int, deep: bool, hint: str) -> list[Any]:
        prefix = list(schema.get("prefixItems", ()))
        items = schema.get("items", {})
        lo = _bounded(schema, "minItems")
        hi = schema.get("maxItems")
        if items is False:
            hi = len(prefix) if hi is None else min(int(hi), len(prefix))
        top = max(lo, 2) + 2 if hi is None else int(hi)
        if lo > top:
            raise ValueError(f"minItems {lo} is above maxItems {top}")
        count = lo if deep else self.rng.randint(max(lo, min(1, top)), min(top, max(lo, 2) + 2))
        unique = bool(schema.get("uniqueItems"))
        out: list[Any] = []
        seen: set[str] = set()
        tries = 0
        while len(out) < count:
            sub = prefix[len(out)] if len(out) < len(prefix) else items
            item = self.value(sub, depth + 1, singular(hint))
            key = json.dumps(item, sort_keys=True)
            tries += 1
            # Repeats are legal without uniqueItems, but distinct items look more like an answer.
            if key in seen and (unique or tries <= 3 * (len(out) + 1)):
                if tries > 20 * (count + 1):
                    if len(out) >= lo:
                        break
                    raise ValueError("cannot find enough distinct items for uniqueItems")
                continue
            seen.add(key)
            out.append(item)
        return out


def _bounded(schema: Mapping[str, Any], keyword: str) -> int:
    """A minItems / minProperties the mock server can meet; ValueError past MAX_ITEMS."""
    wanted = int(schema.get(keyword, 0))
    if wanted > MAX_ITEMS:
        raise ValueError(f"{keyword} {wanted} is more than the mock server makes ({MAX_ITEMS:,})")
    return wanted


def _infer_type(schema: Mapping[str, Any]) -> str:
    if {"properties", "required", "additionalProperties", "minProperties"} & schema.keys():
        return "object"
    if {"items", "prefixItems", "minItems", "maxItems"} & schema.keys():
        return "array"
    if {"minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum", "multipleOf"} & schema.keys():
        return "number"
    return "string"


def _merge(a: Mapping[str, Any], b: Mapping[str, Any]) -> dict[str, Any]:
    out = dict(a)
    for key, val in b.items():
        if key == "properties" and key in out:
            out[key] = {**out[key], **val}
        elif key == "required" and key in out:
            out[key] = list(dict.fromkeys([*out[key], *val]))
        else:
            out[key] = val
    return out


_NOTHING: Any = object()


def _wrong_value(gen: _Generator, schema: Any) -> Any:
    """A value whose JSON type (or enum/const membership) `schema` rejects, else _NOTHING."""
    node = gen.resolved(schema)
    if "const" in node:
        return {"not": node["const"]}
    if "enum" in node:
        return {"not": "one of the allowed values"}
    branches = node.get("anyOf") or node.get("oneOf")
    allowed: set[str] = set()
    for part in branches or [node]:
        declared = gen.resolved(part).get("type")
        if declared is None:
            return _NOTHING
        allowed.update([declared] if isinstance(declared, str) else declared)
    if "number" in allowed:
        allowed.add("integer")
    for kind, wrong in (
        ("object", {"unexpected": True}),
        ("string", "unexpected text"),
        ("integer", 12345),
        ("array", ["unexpected"]),
        ("boolean", True),
    ):
        if kind not in allowed:
            return wrong
    return _NOTHING
