"""runner.fastjson: orjson writes what `json` writes, or the caller is told to use `json`."""

from __future__ import annotations

import enum
import hashlib
import json
import math
import re
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from runner.fastjson import UNREAD, plain_json, plain_loads, sorted_plain_json
from runner.ledger import encoding
from runner.ledger.encoding import encode_line
from runner.ledger.fingerprint import Fingerprinter, request_fingerprint


def _reference(value: Any) -> bytes:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":")).encode()


def test_every_code_point_is_written_as_json_writes_it() -> None:
    text = "".join(chr(c) for c in range(0x110000) if not 0xD800 <= c <= 0xDFFF)
    assert plain_json(text) == _reference(text)
    assert plain_json({text: [text]}) == _reference({text: [text]})


_SCALARS = (
    st.none() | st.booleans() | st.integers(min_value=-(2**63), max_value=2**63 - 1) | st.text()
)
_PLAIN = st.recursive(
    _SCALARS,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner, max_size=4),
    max_leaves=20,
)


@given(_PLAIN)
@settings(max_examples=300)
def test_plain_values_without_floats_are_byte_for_byte_json(value: Any) -> None:
    assert plain_json(value) == _reference(value)


@given(st.floats(allow_nan=False, allow_infinity=False))
def test_a_finite_float_is_the_same_number(number: float) -> None:
    written = plain_json({"usd": number})
    assert written is not None
    back = json.loads(written)["usd"]
    assert back == number and math.copysign(1, back) == math.copysign(1, number)


class _Kind(enum.IntEnum):
    ONE = 1


class _Text(str):
    pass


@pytest.mark.parametrize(
    "value",
    [
        float("nan"),
        {"a": [float("inf")]},
        -math.inf,
        Decimal("0.1"),
        datetime.now(UTC),
        _Kind.ONE,  # json writes an int subclass by its int value, orjson would call default
        _Text("x"),
        {1: "a"},  # json turns the key into "1"
        2**64,  # orjson refuses integers past 64 bits
        "\ud800",  # a lone surrogate: UTF-8 cannot carry it
        {"set": {1, 2}},
    ],
)
def test_what_json_writes_its_own_way_is_left_to_json(value: Any) -> None:
    assert plain_json(value) is None


def test_deep_nesting_is_left_to_json() -> None:
    deep: Any = "x"
    for _ in range(300):  # past orjson's 255 levels
        deep = [deep]
    assert plain_json(deep) is None
    deeper: Any = "x"
    for _ in range(100_000):  # past Python's stack for the check itself
        deeper = [deeper]
    assert plain_json(deeper) is None


def test_a_ledger_line_with_a_non_finite_number_is_still_refused() -> None:
    # orjson would write null and the line would say what did not happen.
    with pytest.raises(ValueError, match="cannot hold"):
        encode_line({"id": "x", "output": {"json": {"population": float("nan")}}})


def test_a_ledger_line_reads_back_as_the_standard_library_wrote_it() -> None:
    record = {
        "v": 1,
        "params": {"temperature": 0.3, "top_p": 1, "stop": ["\n\n\n"]},
        "messages": [{"role": "user", "content": 'Tell me about Zürich \u2028 \x00 "q"'}],
        "cost": {"usd": 2.445e-05, "estimated": False},
        "usage": {"prompt": 39, "completion": 31},
        "latency_ms": 105.3,
    }
    line = encode_line(record)
    assert line.endswith(b"\n") and line.count(b"\n") == 1
    assert json.loads(line) == json.loads(_reference(record))


def test_a_request_body_is_sent_as_before() -> None:
    from runner.providers.client import _body_bytes

    body = {"model": "m", "messages": [{"role": "user", "content": "é"}], "seed": 7}
    assert _body_bytes(body) == _reference(body)
    odd = {"model": "m", "temperature": float("nan")}  # the standard library's spelling
    assert _body_bytes(odd) == b'{"model":"m","temperature":NaN}'


# --- sorted keys: canonical JSON and request fingerprints ---------------------------------------


def _canonical_reference(value: Any) -> str:
    """canonical_json as it was before the fast path: resume compares fingerprints across
    versions, so not one byte may change."""
    return encoding._CANONICAL.encode(encoding._canonical(value))


_KEYS = st.text() | st.sampled_from(
    ["", "a", "B", "é", "z", "\U0001f600", "\uffff", "\ue000", "10"]
)
_SORTABLE = st.recursive(
    _SCALARS,
    lambda inner: (
        st.lists(inner, max_size=4)
        | st.dictionaries(_KEYS, inner, max_size=6)
        | st.tuples(inner, inner)
    ),
    max_leaves=24,
)


@given(_SORTABLE)
@settings(max_examples=400)
def test_sorted_keys_are_written_as_json_sorts_them(value: Any) -> None:
    assert (
        sorted_plain_json(value)
        == json.dumps(value, sort_keys=True, ensure_ascii=False, separators=(",", ":")).encode()
    )
    assert encoding.canonical_json(value) == _canonical_reference(value)


@pytest.mark.parametrize(
    "value",
    [
        {"temperature": 0.3},
        [1.0, 2],
        {1: "int key"},
        {"big": 2**64},
        {"text": "\ud800"},
        {"when": Decimal("1.5")},
        _Text("subclass"),
    ],
)
def test_what_only_the_canonical_walk_writes_right_is_left_to_it(value: Any) -> None:
    assert sorted_plain_json(value) is None
    assert encoding.canonical_json(value) == _canonical_reference(value)


_PARAM = (
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False)
)


@given(
    st.lists(
        st.fixed_dictionaries(
            {"role": st.sampled_from(["system", "user", "assistant"]), "content": st.text()}
        ),
        min_size=1,
        max_size=4,
    ),
    st.sampled_from([None, ["\n\n\n"], ["END", "é"], [1.5, "x"]]),
    st.dictionaries(
        st.sampled_from(["temperature", "top_p", "seed", "max_tokens", "reasoning", "user"]),
        _PARAM | st.dictionaries(st.text(max_size=4), _PARAM, max_size=3),
        max_size=5,
    ),
    st.booleans(),
)
@settings(max_examples=300)
def test_a_request_fingerprint_is_what_it_was(
    messages: list[dict[str, str]], stop: Any, params: dict[str, Any], static: bool
) -> None:
    body = {"model": "gpt-4o-mini", "messages": messages, "stop": stop, "stream": True, **params}
    body["response_format"] = {"type": "json_schema", "json_schema": {"name": "x", "n": 1.0}}
    parts = [
        f"{_canonical_reference(key)}:{_canonical_reference(body[key])}"
        for key in sorted(body)
        if body[key] is not None and key != "stream"
    ]
    expected = hashlib.sha256(("{" + ",".join(parts) + "}").encode()).hexdigest()
    assert request_fingerprint(body) == expected
    if static:  # the spec's many bodies: the second reuses the first one's fixed text
        fingerprinter = Fingerprinter(("response_format",))
        assert fingerprinter(body) == expected
        assert fingerprinter({**body, "response_format": dict(body["response_format"])}) == expected


# --- reading: plain_loads, and loads_text on it ------------------------------------------------


def _old_loads_text(raw: str | bytes) -> Any:
    """loads_text as it was before orjson read for it: json.loads, then lone surrogates out."""
    value = json.loads(raw)
    text = raw if isinstance(raw, str) else raw.decode("utf-8", "replace")
    if re.search(r"\\u[dD][89a-fA-F]", text) is None:
        return value
    return encoding._without_surrogates(value)


def _same(a: Any, b: Any) -> bool:
    """Equal, type for type (1 is not 1.0, nor True), NaN equal to NaN, keys in order."""
    if type(a) is not type(b):
        return False
    if type(a) is float:
        if math.isnan(a):
            return math.isnan(b)
        return bool(a == b and math.copysign(1, a) == math.copysign(1, b))
    if type(a) is dict:
        return list(a) == list(b) and all(_same(a[k], b[k]) for k in a)
    if type(a) is list:
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b, strict=True))
    return bool(a == b)


_READ_TEXT = st.text() | st.sampled_from(["\ud800", "a\udfffb", "\ud83d\ude00", "\u2028", "\x00"])
_READ_SCALARS = (
    st.none() | st.booleans() | st.integers() | st.floats() | _READ_TEXT  # any size, NaN too
)
_READ_VALUES = st.recursive(
    _READ_SCALARS,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(_READ_TEXT, inner, max_size=4),
    max_leaves=20,
)


@given(_READ_VALUES, st.booleans(), st.booleans())
@settings(max_examples=400)
def test_a_text_reads_as_json_reads_it(value: Any, ascii_only: bool, as_bytes: bool) -> None:
    text = json.dumps(value, ensure_ascii=ascii_only)
    raw: str | bytes = text
    if as_bytes:
        try:
            raw = text.encode("utf-8")
        except UnicodeEncodeError:  # a lone surrogate written as itself: only a str holds it
            pass
    assert _same(encoding.loads_text(raw), _old_loads_text(raw))


@given(
    st.from_regex(r"-?(0|[1-9][0-9]{0,24})(\.[0-9]{1,24})?([eE][+-]?[0-9]{1,3})?", fullmatch=True)
)
@settings(max_examples=400)
def test_a_number_reads_as_json_reads_it(literal: str) -> None:
    # Rounding of long mantissas, exponents past a float's range, integers past 64 bits.
    assert _same(encoding.loads_text(f'{{"n":{literal}}}'), json.loads(f'{{"n":{literal}}}'))


_A_REPLY = json.dumps(
    {
        "id": "chatcmpl-1",
        "created": 1733600000,
        "model": "gpt-4o-mini",
        "choices": [{"index": 0, "message": {"role": "assistant", "content": '{"a": 1.5}'}}],
        "usage": {"prompt_tokens": 41, "completion_tokens": 9, "total_tokens": 50},
    }
).encode()


def test_an_ordinary_reply_is_read_by_orjson() -> None:
    # The fast path: if it were never taken, every reply would cost json.loads again.
    assert plain_loads(_A_REPLY) is not UNREAD
    assert plain_loads(_A_REPLY.decode()) is not UNREAD
    assert _same(plain_loads(_A_REPLY), json.loads(_A_REPLY))


@pytest.mark.parametrize(
    "raw",
    [
        "18446744073709551616",  # 2**64: orjson would read a float
        "-9223372036854775809",
        '{"n": [1, 123456789012345678901234567890]}',
        "NaN",
        "[Infinity, -Infinity]",
        "1e400",
        '"\\ud800"',  # a lone surrogate escape
        '"\ud800"',  # a lone surrogate in the text itself
        '"a"'.encode("utf-16"),  # json.loads takes UTF-16 bytes
        b'\xef\xbb\xbf{"a": 1}',  # and a UTF-8 byte-order mark in bytes
        "[" * 257 + "]" * 257,  # json's depth is its own to refuse
        bytearray(b"[1]"),
        b"[1, 2",
        "",
    ],
)
def test_what_json_reads_its_own_way_is_left_to_json(raw: Any) -> None:
    assert plain_loads(raw) is UNREAD


def test_json_still_refuses_what_it_refused() -> None:
    with pytest.raises(ValueError, match="Expecting"):
        encoding.loads_text(b'{"a": }')
    with pytest.raises(RecursionError):
        encoding.loads_text("[" * 100_000 + "]" * 100_000)
    assert encoding.loads_text('"\\ud800x"') == "\ufffdx"
    assert encoding.loads_text(b"123456789012345678901234567890") == 123456789012345678901234567890


@pytest.mark.parametrize(
    "raw",
    ['{"a": 1, "b": 2, "a": 3}', '{"a": {"x": 1}, "a": [1.5, -0.0, 1e-400]}', ' [1, \t"x"]\r\n'],
)
def test_duplicate_keys_and_whitespace_read_as_json_reads_them(raw: str) -> None:
    # A server may repeat a key: the last value wins, in the place of the first, as in json.
    read = plain_loads(raw)
    assert read is not UNREAD
    assert _same(read, json.loads(raw))
