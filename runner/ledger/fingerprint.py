"""Request fingerprints: the sha256 of a request body's canonical JSON (`request_sha256` in the
ledger, the key of replay and --cache), made the long way (`request_fingerprint`) or for the
many bodies of one spec at once (`Fingerprinter`, the same sha256 for less work). Pure; no
file I/O.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping
from typing import Any

from runner.ledger.encoding import canonical_json

__all__ = ["Fingerprinter", "request_fingerprint"]

_NOT_FINGERPRINTED = frozenset({"stream", "stream_options"})
_KEY_TEXT: dict[str, str] = {}  # a body key -> its canonical JSON text
# (key, type, value) of a short scalar parameter (model, temperature, seed...) -> its canonical
# JSON text: the same on every row of a run, so not walked and encoded again each time.
_SCALAR_TEXT: dict[tuple[str, type, Any], str] = {}
_SCALAR_TYPES = frozenset({str, int, float, bool})


def request_fingerprint(body: Mapping[str, Any]) -> str:
    """Return the sha256 (hex) of the canonical request body, streaming options and nulls left out.

    The same request sent streamed or not, with keys in any order, has the same fingerprint.
    """
    parts = []
    for key in sorted(body):
        value = body[key]
        if key in _NOT_FINGERPRINTED or value is None:
            continue
        parts.append(f"{_key_text(key)}:{_value_text(key, value)}")
    return _digest("{" + ",".join(parts) + "}")


def _digest(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def _key_text(key: str) -> str:
    name = _KEY_TEXT.get(key)
    if name is None:
        name = canonical_json(key)
        if len(_KEY_TEXT) < 256:  # the API's parameter names, not whatever a caller sends
            _KEY_TEXT[key] = name
    return name


def _value_text(key: str, value: Any) -> str:
    if type(value) not in _SCALAR_TYPES:
        return canonical_json(value)
    cache_key = (key, type(value), value)
    text = _SCALAR_TEXT.get(cache_key)
    if text is None:
        text = canonical_json(value)
        if len(_SCALAR_TEXT) < 1024 and not (type(value) is str and len(value) > 256):
            _SCALAR_TEXT[cache_key] = text
    return text


class Fingerprinter:
    """`request_fingerprint` of the many bodies of one spec (a session's calls, a batch's
    rows): the same sha256, with the canonical JSON of what a body shares with the body before
    made once, not on every call.

    What a body shares is checked on every call, never assumed: the same keys, the very same
    scalar objects (a spec's model and parameters pass through unchanged), and, under
    `static_keys` (the wire's output format and tools, rebuilt on every call), values equal to
    a copy taken when their text was made. Every other value (the messages, any list or dict)
    is written out on every call, as is a scalar seen to change. A body that does not fit
    becomes the shape the next one is checked against; after 64 such, every body is
    fingerprinted the long way (`request_fingerprint`)."""

    _MAX_RESHAPES = 64  # bodies of ever new shapes: stop learning, fingerprint the long way

    def __init__(self, static_keys: Iterable[str] = ()) -> None:
        self._static = frozenset(static_keys)
        self._varying: set[str] = set()  # scalar keys seen to change from one body to the next
        self._shape: _Shape | None = None
        self._reshapes = 0

    def __call__(self, body: Mapping[str, Any]) -> str:
        shape = self._shape
        if shape is not None:
            text = shape.text(body)
            if text is not None:
                return _digest(text)
            self._varying.update(shape.changed(body))
        if self._reshapes >= self._MAX_RESHAPES:
            return request_fingerprint(body)
        self._reshapes += 1
        self._shape = shape = _Shape(body, self._static, self._varying)
        text = shape.text(body)
        assert text is not None  # a shape always fits the body it was made from
        return _digest(text)


class _Shape:
    """The canonical text of one body, as fixed pieces around the values written per call."""

    def __init__(self, body: Mapping[str, Any], static: frozenset[str], varying: set[str]):
        self.keys = frozenset(body)
        fixed: list[tuple[str, Any]] = []  # scalars (and nulls), checked by identity
        equal: list[tuple[str, Any]] = []  # static keys' containers, checked by equality
        parts: list[tuple[str, str | None]] = []  # ("name:" + fixed text, or a key to write)
        for key in sorted(body):
            if key in _NOT_FINGERPRINTED:
                continue
            value = body[key]
            scalar = value is None or type(value) in _SCALAR_TYPES
            if value is None or (scalar and key not in varying):
                fixed.append((key, value))
            elif key in static and not scalar:
                equal.append((key, _copy(value)))
            else:  # written on every call: the messages, any list or dict, a changing scalar
                parts.append((_key_text(key) + ":", key))
                continue
            if value is not None:  # a null is left out of the text
                parts.append((_key_text(key) + ":" + _value_text(key, value), None))
        gaps: list[str] = []  # the fixed text between the values written per call
        written: list[str] = []
        gap = "{"
        for index, (text, per_call) in enumerate(parts):
            gap += ("," if index else "") + text
            if per_call is not None:
                gaps.append(gap)
                written.append(per_call)
                gap = ""
        gaps.append(gap + "}")
        self.fixed, self.equal = tuple(fixed), tuple(equal)
        self.gaps, self.written = tuple(gaps), tuple(written)

    def text(self, body: Mapping[str, Any]) -> str | None:
        """The canonical JSON of `body`, or None when it does not have this shape."""
        if body.keys() != self.keys:
            return None
        for key, value in self.fixed:
            if body[key] is not value:
                return None
        for key, value in self.equal:
            if body[key] != value:
                return None
        gaps = self.gaps
        out = [gaps[0]]
        for key, gap in zip(self.written, gaps[1:], strict=True):
            value = body[key]
            if value is None:  # left out of the text: another shape
                return None
            out.append(canonical_json(value))
            out.append(gap)
        return "".join(out)

    def changed(self, body: Mapping[str, Any]) -> list[str]:
        """The scalar keys whose values `body` does not share with this shape."""
        return [key for key, value in self.fixed if key in body and body[key] is not value]


def _copy(value: Any) -> Any:
    """A deep copy of JSON-shaped data to compare later bodies against, its numbers and booleans
    held as `_Exact`: Python finds 1, 1.0 and True equal (and 10**16 and 1e16), which canonical
    JSON writes apart."""
    kind = type(value)
    if kind is dict:
        return {k: _copy(v) for k, v in value.items()}
    if kind is list or kind is tuple:
        return [_copy(v) for v in value]
    if kind is str or value is None:
        return value
    return _Exact(value)


class _Exact:
    """A value equal only to a value of its exact type that is equal to it."""

    __slots__ = ("value",)

    def __init__(self, value: Any) -> None:
        self.value = value

    def __eq__(self, other: object) -> bool:
        return type(other) is type(self.value) and other == self.value

    __hash__ = None  # type: ignore[assignment]
