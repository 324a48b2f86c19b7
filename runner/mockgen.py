"""Values for the mock server: JSON instances valid against the OpenAI strict-mode subset of JSON
Schema, JSON that breaks a schema on purpose, strings matching simple regexes, and prose. Every
random choice comes from the caller's `random.Random`; this module must not import jsonschema.
"""

from __future__ import annotations

import copy
import json
import math
import re
import string
import uuid
from collections.abc import Callable, Mapping, Sequence
from random import Random
from typing import Any

__all__ = ["generate_instance", "invalid_json", "pattern_sample", "prose"]

_SOFT_DEPTH = 5  # past this nesting, prefer choices that end a recursive schema
_HARD_DEPTH = 48  # still nesting here: the schema has no finite instance
_ANNOTATIONS = frozenset({"description", "title", "$comment", "examples", "default", "deprecated"})
_GENERIC_NAMES = frozenset({"name", "title", "label", "value"})


def generate_instance(schema: Mapping[str, Any] | bool, rng: Random, *, hint: str = "") -> Any:
    """Return a JSON value valid against `schema`; ValueError when it cannot make one.

    `hint` names the value (a schema name such as "city") to make strings and numbers plausible.
    """
    root = schema if isinstance(schema, Mapping) else {}
    if schema is False:
        raise ValueError("the schema `false` accepts no value")
    return _Generator(root, rng).value(schema, 0, hint)


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
            return self._string(schema, hint)
        if kind in ("integer", "number"):
            return _number(schema, kind == "integer", hint, self.rng)
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
        wanted = int(schema.get("minProperties", 0))
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
        lo = int(schema.get("minItems", 0))
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
            item = self.value(sub, depth + 1, _singular(hint))
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

    def _string(self, schema: Mapping[str, Any], hint: str) -> str:
        lo = int(schema.get("minLength", 0))
        hi = schema.get("maxLength")
        top = None if hi is None else int(hi)
        if top is not None and lo > top:
            raise ValueError(f"minLength {lo} is above maxLength {top}")
        pattern = schema.get("pattern")
        fmt = schema.get("format")
        if pattern is not None:
            for _ in range(40):
                text = pattern_sample(pattern, self.rng)
                if lo <= len(text) and (top is None or len(text) <= top):
                    return text
            raise ValueError(
                f"cannot make a string of {lo} to {top} characters matching pattern {pattern!r}"
            )
        maker = _FORMATS.get(fmt) if isinstance(fmt, str) else None
        if maker is not None:
            return maker(self.rng)
        return _fit(_plausible_text(hint, self.rng), lo, top, self.rng)


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


# --- numbers ----------------------------------------------------------------------------------

_NUMBER_HINTS: dict[str, tuple[float, float, int]] = {  # low, high, decimals
    "population": (10_000, 20_000_000, 0),
    "inhabitants": (10_000, 20_000_000, 0),
    "age": (18, 90, 0),
    "year": (1950, 2025, 0),
    "founded": (1200, 2020, 0),
    "price": (1, 500, 2),
    "cost": (1, 500, 2),
    "amount": (1, 500, 2),
    "total": (10, 2000, 2),
    "salary": (30_000, 150_000, 0),
    "latitude": (-90, 90, 4),
    "lat": (-90, 90, 4),
    "longitude": (-180, 180, 4),
    "lng": (-180, 180, 4),
    "lon": (-180, 180, 4),
    "rating": (1, 5, 1),
    "stars": (1, 5, 0),
    "score": (0, 100, 0),
    "percent": (0, 100, 1),
    "percentage": (0, 100, 1),
    "confidence": (0, 1, 2),
    "probability": (0, 1, 2),
    "count": (1, 20, 0),
    "quantity": (1, 20, 0),
    "area": (10, 1000, 1),
    "elevation": (0, 3000, 0),
    "altitude": (0, 3000, 0),
    "height": (1, 300, 1),
    "temperature": (-10, 35, 1),
    "minutes": (1, 120, 0),
    "seconds": (1, 3600, 0),
    "page": (1, 400, 0),
}


def _number(schema: Mapping[str, Any], integer: bool, hint: str, rng: Random) -> int | float:
    lo, lo_open = _bound(schema, "minimum", "exclusiveMinimum", max)
    hi, hi_open = _bound(schema, "maximum", "exclusiveMaximum", min)
    plo, phi, decimals = _hint_for(hint, _NUMBER_HINTS) or (0, 100 if integer else 1000, 2)
    if integer:
        decimals = 0
        lo = None if lo is None else (math.floor(lo) + 1 if lo_open else math.ceil(lo))
        hi = None if hi is None else (math.ceil(hi) - 1 if hi_open else math.floor(hi))
        lo_open = hi_open = False
    a = plo if lo is None else max(lo, plo)
    b = phi if hi is None else min(hi, phi)
    if a > b:  # the plausible range misses the bounds: fall back to the bounds
        a = lo if lo is not None else b - 100
        b = hi if hi is not None else a + 100
    if lo is not None and hi is not None and (lo > hi or (lo == hi and (lo_open or hi_open))):
        raise ValueError(f"no number lies between {lo} and {hi}")

    def ok(v: float) -> bool:
        above = lo is None or (v > lo if lo_open else v >= lo)
        below = hi is None or (v < hi if hi_open else v <= hi)
        return above and below

    step = schema.get("multipleOf")
    if step is not None:
        return _multiple(float(a), float(b), step, integer, ok, rng)
    if integer:
        return rng.randint(int(a), int(b))
    raw = rng.uniform(a, b)
    for candidate in (round(raw, decimals), raw, (a + b) / 2):
        if ok(candidate):
            return candidate
    raise ValueError(f"no number lies between {lo} and {hi}")


def _bound(
    schema: Mapping[str, Any],
    inclusive: str,
    exclusive: str,
    tighter: Callable[[float, float], float],
) -> tuple[float | None, bool]:
    value = schema.get(inclusive)
    excl = schema.get(exclusive)
    if isinstance(excl, bool):  # draft-04 style: a flag on the inclusive bound
        return value, excl and value is not None
    if excl is None:
        return value, False
    if value is None or tighter(value, excl) == excl:
        return excl, True
    return value, False


def _multiple(
    a: float, b: float, step: float, integer: bool, ok: Callable[[float], bool], rng: Random
) -> int | float:
    if step <= 0:
        raise ValueError(f"multipleOf must be positive, not {step}")
    first, last = math.ceil(a / step), math.floor(b / step)
    if first > last:
        first, last = last, first
    text = repr(float(step))
    decimals = 12 if "e" in text else len(text.split(".")[1])
    for k in [rng.randint(first, last) for _ in range(12)] + list(range(first, last + 1))[:200]:
        value: int | float = round(k * step, decimals)
        if float(value).is_integer() and (integer or not isinstance(step, float)):
            value = int(value)
        elif integer:
            continue
        exact = value % step == 0 if not isinstance(step, float) else (value / step).is_integer()
        if exact and ok(value):
            return value
    raise ValueError(f"no multiple of {step} lies between {a} and {b}")


# --- strings ----------------------------------------------------------------------------------


def _fit(text: str, lo: int, hi: int | None, rng: Random) -> str:
    while len(text) < lo:
        text += " " + rng.choice(_WORDS)
    if hi is not None and len(text) > hi:
        text = text[:hi].rstrip() or text[:hi]
    if len(text) < lo:  # rstrip went below the minimum
        text = text.ljust(lo, "x")
    return text


def _split(words: str) -> list[str]:
    return words.split()


_FIRST: list[str] = _split("Ada Alan Grace Linus Margaret Tim Barbara Dennis Katherine")
_LAST: list[str] = _split("Lovelace Turing Hopper Torvalds Hamilton Lee Liskov Ritchie")
_CITIES: list[str] = _split("Paris Lyon Berlin Madrid Lisbon Rome Vienna Oslo Tokyo Lima")
_COUNTRIES: list[str] = _split("France Germany Spain Portugal Italy Austria Norway Japan")
_LANDMARKS = ["Eiffel Tower", "Louvre Museum", "Brandenburg Gate", "Colosseum", "Belem Tower"]
_WORDS: list[str] = _split(
    "river bridge market garden harbor museum tower square street forest valley island mountain "
    "library station theater castle village canal park lake coast window lantern meadow orchard "
    "copper silver amber quiet bright early gentle steady rapid careful simple modern ancient "
    "northern eastern warm calm clear open broad narrow golden green blue red stone glass wooden "
    "builds keeps shows holds draws carries follows opens links guides joins frames marks "
    "season evening morning journey story record signal pattern measure answer detail sample"
)


def _two(rng: Random, lo: int, hi: int) -> str:
    return f"{rng.randint(lo, hi):02d}"


def _date(rng: Random) -> str:
    return f"{rng.randint(2000, 2030)}-{_two(rng, 1, 12)}-{_two(rng, 1, 28)}"


def _time(rng: Random) -> str:
    return f"{_two(rng, 0, 23)}:{_two(rng, 0, 59)}:{_two(rng, 0, 59)}Z"


_FORMATS: dict[str, Callable[[Random], str]] = {
    "date-time": lambda r: f"{_date(r)}T{_time(r)}",
    "date": _date,
    "time": _time,
    "email": lambda r: f"{r.choice(_FIRST).lower()}.{r.choice(_LAST).lower()}@example.com",
    "uuid": lambda r: str(uuid.UUID(int=r.getrandbits(128), version=4)),
    "ipv4": lambda r: f"192.0.2.{r.randint(1, 254)}",
    "ipv6": lambda r: f"2001:db8::{r.randint(1, 0xFFFF):x}:{r.randint(1, 0xFFFF):x}",
    "hostname": lambda r: f"{r.choice(_WORDS)}.example.com",
    "duration": lambda r: f"P{r.randint(1, 30)}DT{r.randint(1, 23)}H{r.randint(1, 59)}M",
    "uri": lambda r: f"https://example.com/{r.choice(_WORDS)}",
    "url": lambda r: f"https://example.com/{r.choice(_WORDS)}",
}

_CATEGORIES: list[tuple[frozenset[str], Callable[[Random], str]]] = [
    (frozenset({"email", "mail"}), _FORMATS["email"]),
    (frozenset({"url", "website", "link", "homepage", "uri"}), _FORMATS["url"]),
    (frozenset({"uuid", "guid"}), _FORMATS["uuid"]),
    (frozenset({"date", "day", "birthday"}), _FORMATS["date"]),
    (frozenset({"country", "nation"}), lambda r: r.choice(_COUNTRIES)),
    (frozenset({"city", "capital", "town"}), lambda r: r.choice(_CITIES)),
    (frozenset({"landmark", "attraction", "sight", "monument"}), lambda r: r.choice(_LANDMARKS)),
    (frozenset({"language"}), lambda r: r.choice(["French", "German", "Spanish", "Japanese"])),
    (frozenset({"currency"}), lambda r: r.choice(["EUR", "USD", "JPY", "GBP", "NOK"])),
    (frozenset({"color", "colour"}), lambda r: r.choice(["red", "green", "blue", "amber"])),
    (frozenset({"phone", "telephone"}), lambda r: f"+1-555-{r.randint(1000, 9999)}"),
    (frozenset({"first", "given"}), lambda r: r.choice(_FIRST)),
    (frozenset({"last", "family", "surname"}), lambda r: r.choice(_LAST)),
    (
        frozenset({"name", "author", "person", "owner", "customer", "user", "manager", "mayor"}),
        lambda r: f"{r.choice(_FIRST)} {r.choice(_LAST)}",
    ),
    (frozenset({"id", "code", "sku", "ref", "key"}), lambda r: f"id-{r.randint(1000, 99999)}"),
    (
        frozenset({"title", "headline", "subject", "heading"}),
        lambda r: " ".join(w.capitalize() for w in r.sample(_WORDS, 3)),
    ),
    (
        frozenset({"tag", "keyword", "category", "label", "genre", "topic"}),
        lambda r: r.choice(_WORDS),
    ),
    (
        frozenset(
            _split(
                "description summary reason explanation answer text comment note content body "
                "message bio fact detail rationale"
            )
        ),
        lambda r: prose(r, sentences=1),
    ),
]


def _name_words(hint: str) -> list[str]:
    spaced = re.sub(r"([a-z0-9])([A-Z])", r"\1 \2", hint)
    return [_singular(w) for w in re.split(r"[^A-Za-z0-9]+", spaced.lower()) if w]


def _singular(word: str) -> str:
    if word.endswith("ies") and len(word) > 4:
        return word[:-3] + "y"
    if word.endswith("s") and not word.endswith("ss") and len(word) > 3:
        return word[:-1]
    return word


def _hint_for(hint: str, table: Mapping[str, Any]) -> Any:
    for word in reversed(_name_words(hint)):
        if word in table:
            return table[word]
    return None


def _plausible_text(hint: str, rng: Random) -> str:
    words = set(_name_words(hint))
    for keys, maker in _CATEGORIES:
        if keys & words:
            return maker(rng)
    return " ".join(rng.sample(_WORDS, rng.randint(1, 3)))


def prose(rng: Random, *, sentences: int = 4, topic: str = "") -> str:
    """Return deterministic filler prose: sentences in paragraphs of two, opened by `topic`."""
    parts: list[str] = []
    if topic:
        words = topic.split()
        excerpt = " ".join(words[:12]) + (" ..." if len(words) > 12 else "")
        parts.append(f'Mock answer to "{excerpt}".')
    for i in range(sentences):
        words = [rng.choice(_WORDS) for _ in range(rng.randint(6, 14))]
        sentence = " ".join(words).capitalize() + "."
        if parts and i % 2 == 0 and i:
            parts.append("\n\n" + sentence)
        else:
            parts.append((" " if parts else "") + sentence)
    return "".join(parts)


# --- regular expressions ----------------------------------------------------------------------

_DIGITS = string.digits
_WORD_CHARS = string.ascii_letters + string.digits + "_"
_PRINTABLE = string.ascii_letters + string.digits + " -_.,:;!?@#%&*+=/()"
_ESCAPES = {
    "d": _DIGITS,
    "w": _WORD_CHARS,
    "s": " ",
    "D": string.ascii_letters + " -",
    "W": " -.,:;!?",
    "S": string.ascii_letters + _DIGITS,
}
_CONTROL = {"n": "\n", "t": "\t", "r": "\r", "f": "\f", "v": "\v", "0": "\0"}
_UNSUPPORTED_ESCAPES = set("bBkpPX") | set("123456789")

# Parsed nodes: ("chars", str) one character from the set; ("seq", [node]); ("alt", [node]);
# ("rep", node, min, max).
_Node = tuple[Any, ...]


def pattern_sample(pattern: str, rng: Random) -> str:
    """Return a string that `re.search(pattern, ...)` accepts; ValueError for constructs it does
    not support (lookarounds, backreferences, word boundaries, inline flags)."""
    try:
        compiled = re.compile(pattern)
    except re.error as exc:
        raise ValueError(f"invalid pattern {pattern!r}: {exc}") from exc
    node = _parse_pattern(pattern)
    for _ in range(20):
        text = _emit(node, rng)
        if compiled.search(text):
            return text
    raise ValueError(f"cannot make a string matching pattern {pattern!r}")


def _parse_pattern(pattern: str) -> _Node:
    node, pos = _parse_alt(pattern, 0)
    if pos != len(pattern):
        raise ValueError(f"unbalanced ')' in pattern {pattern!r}")
    return node


def _parse_alt(p: str, i: int) -> tuple[_Node, int]:
    branches = []
    while True:
        seq, i = _parse_seq(p, i)
        branches.append(seq)
        if i < len(p) and p[i] == "|":
            i += 1
            continue
        return ("alt", branches), i


def _parse_seq(p: str, i: int) -> tuple[_Node, int]:
    items: list[_Node] = []
    while i < len(p) and p[i] not in "|)":
        atom, i = _parse_atom(p, i)
        atom, i = _parse_quantifier(p, i, atom)
        items.append(atom)
    return ("seq", items), i


def _parse_atom(p: str, i: int) -> tuple[_Node, int]:
    c = p[i]
    if c == "(":
        if p.startswith(("(?=", "(?!", "(?<=", "(?<!"), i):
            raise ValueError(f"pattern {p!r}: lookarounds are not supported by the mock server")
        if p.startswith("(?:", i):
            i += 3
        elif p.startswith("(?P<", i):
            i = p.index(">", i) + 1
        elif p.startswith("(?", i):
            raise ValueError(f"pattern {p!r}: inline flags are not supported by the mock server")
        else:
            i += 1
        inner, i = _parse_alt(p, i)
        return inner, i + 1
    if c == "[":
        return _parse_class(p, i + 1)
    if c in "^$":
        return ("seq", []), i + 1
    if c == ".":
        return ("chars", string.ascii_letters + _DIGITS), i + 1
    if c == "\\":
        chars, i = _parse_escape(p, i + 1)
        return ("chars", chars), i
    return ("chars", c), i + 1


def _parse_escape(p: str, i: int) -> tuple[str, int]:
    c = p[i]
    if c in _UNSUPPORTED_ESCAPES:
        raise ValueError(f"pattern {p!r}: '\\{c}' is not supported by the mock server")
    if c in "AZz":
        return "", i + 1  # anchors: nothing to emit
    if c in _ESCAPES:
        return _ESCAPES[c], i + 1
    if c in _CONTROL:
        return _CONTROL[c], i + 1
    if c in "xu":
        width = 2 if c == "x" else 4
        return chr(int(p[i + 1 : i + 1 + width], 16)), i + 1 + width
    return c, i + 1


def _parse_class(p: str, i: int) -> tuple[_Node, int]:
    negated = p[i] == "^"
    i += negated
    members: list[str] = []
    first = True
    while i < len(p) and (p[i] != "]" or first):
        first = False
        if p[i] == "\\":
            chars, i = _parse_escape(p, i + 1)
        else:
            chars, i = p[i], i + 1
        if len(chars) == 1 and p[i : i + 1] == "-" and i + 1 < len(p) and p[i + 1] != "]":
            if p[i + 1] == "\\":
                end, i = _parse_escape(p, i + 2)
            else:
                end, i = p[i + 1], i + 2
            chars = "".join(chr(c) for c in range(ord(chars), ord(end[-1]) + 1))
        members.append(chars)
    allowed = "".join(members)
    if negated:
        allowed = "".join(c for c in _PRINTABLE if c not in allowed)
    if not allowed:
        raise ValueError(f"pattern {p!r}: a character class matches nothing printable")
    return ("chars", allowed), i + 1


_QUANTIFIER = re.compile(r"\{(\d*)(,?)(\d*)\}")


def _parse_quantifier(p: str, i: int, atom: _Node) -> tuple[_Node, int]:
    if i >= len(p):
        return atom, i
    c = p[i]
    low: int
    high: int | None
    if c in "*+?":
        low, high, i = {"*": 0, "+": 1, "?": 0}[c], (1 if c == "?" else None), i + 1
    else:
        m = _QUANTIFIER.match(p, i)
        if m is None or not (m.group(1) or m.group(3)):
            return atom, i
        low = int(m.group(1) or 0)
        high = None if m.group(2) and not m.group(3) else int(m.group(3) or m.group(1))
        i = m.end()
    if i < len(p) and p[i] in "?+":  # lazy or possessive: the same strings match
        i += 1
    return ("rep", atom, low, high), i


def _emit(node: _Node, rng: Random) -> str:
    kind = node[0]
    if kind == "chars":
        return rng.choice(node[1]) if node[1] else ""
    if kind == "seq":
        return "".join(_emit(n, rng) for n in node[1])
    if kind == "alt":
        return _emit(rng.choice(node[1]), rng)
    _, inner, low, high = node
    count = rng.randint(low, low + 3 if high is None else high)
    return "".join(_emit(inner, rng) for _ in range(count))
