"""Whole (non-streamed) JSON replies decoded into a Completion; a reply that is not the documented
shape raises StreamBroken. It only reads bytes already received and must not do I/O.

A reply is untrusted input: every field the Completion keeps is checked for its type and kept
only in the documented shape (tool calls hold their id, type, name and arguments and nothing
deeper), so nothing downstream meets a nested structure it did not ask for, and counts are
bounded (`MAX_CHOICES`, `MAX_TOOL_CALLS`). Every JSON a server sends is parsed by `reply_json`,
which replaces lone surrogates with U+FFFD: the one place where that rule lives.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import httpx2

from runner.errors import StreamBroken
from runner.ledger.encoding import loads_text
from runner.types import Choice, Completion, Usage

__all__ = [
    "MAX_CHOICES",
    "MAX_TOOL_CALLS",
    "Malformed",
    "clean_call",
    "completion_from_reply",
    "load_json",
    "ratelimit_headers",
    "reply_json",
    "request_id_of",
    "short_text",
    "usage_from",
]

MAX_CHOICES = 128  # OpenAI's largest `n`
MAX_TOOL_CALLS = 1024  # per choice
_MAX_HEADER_CHARS = 256  # a rate-limit header or request id longer than this is not kept


class Malformed(ValueError):
    """A field of the reply that is not what the API documents."""


def reply_json(raw: str | bytes) -> Any:
    """json.loads for everything a server sends (bodies, stream events, tool arguments, the
    JSON a model wrote): runner.ledger.encoding.loads_text, which replaces lone surrogates
    with U+FFFD so that a reply can always be printed and recorded."""
    return loads_text(raw)


def load_json(raw: bytes, url: str, request_id: str | None) -> Any:
    """Parse a reply body as JSON (reply_json); anything else is a StreamBroken naming the URL."""
    try:
        return reply_json(raw)
    except (ValueError, UnicodeDecodeError) as exc:
        raise StreamBroken(
            f"malformed reply from {url}: not JSON ({str(exc)[:200]})",
            url=url,
            request_id=request_id,
        ) from exc
    except RecursionError:
        raise StreamBroken(
            f"malformed reply from {url}: its JSON nests too deeply to read",
            url=url,
            request_id=request_id,
        ) from None


def short_text(value: Any) -> str | None:
    """A string field kept as such (id, model, fingerprint), or None for any other type."""
    return value if isinstance(value, str) else None


def _text(value: Any, field: str) -> str | None:
    if value is None or isinstance(value, str):
        return value
    raise Malformed(f"{field} is {type(value).__name__}, not a string")


def _content_text(content: Any) -> str | None:
    if content is None or isinstance(content, str):
        return content
    if isinstance(content, list):  # some compatible servers answer with content parts
        return "".join(
            p["text"] for p in content if isinstance(p, dict) and isinstance(p.get("text"), str)
        )
    raise Malformed(f"message content is {type(content).__name__}, not a string")


def _index(value: Any, field: str, limit: int) -> int:
    if isinstance(value, int) and not isinstance(value, bool) and 0 <= value < limit:
        return value
    raise Malformed(f"{field} {str(value)[:40]!r} is not an index below {limit}")


def clean_call(call: Any, field: str) -> dict[str, Any]:
    """A tool call or function call in its documented shape, every string field checked."""
    if not isinstance(call, Mapping):
        raise Malformed(f"a {field} is {type(call).__name__}, not an object")
    out: dict[str, Any] = {}
    for key in ("id", "type", "name", "arguments", "input"):
        if call.get(key) is not None:
            out[key] = _text(call[key], f"{field}.{key}")
    for key in ("function", "custom"):
        inner = call.get(key)
        if inner is not None:
            out[key] = clean_call(inner, f"{field}.{key}")
    return out


def usage_from(usage: Any) -> Usage | None:
    """The usage object as the server sent it. Counts that cannot be read do not break the
    reply: they become an `estimated` Usage saying why, for the engine to count locally."""
    return Usage.from_api(usage)


def _choice(item: Any, position: int) -> Choice:
    if not isinstance(item, Mapping):
        raise Malformed(f"choice {position} is {type(item).__name__}, not an object")
    message = item.get("message") or {}
    if not isinstance(message, Mapping):
        raise Malformed(f"choice {position}: message is not an object")
    calls = message.get("tool_calls") or []
    if not isinstance(calls, list) or len(calls) > MAX_TOOL_CALLS:
        raise Malformed(f"choice {position}: tool_calls is not a list of at most {MAX_TOOL_CALLS}")
    function = message.get("function_call")
    return Choice(
        index=_index(item.get("index", position), "choice index", MAX_CHOICES),
        text=_content_text(message.get("content")),
        finish_reason=_text(item.get("finish_reason"), "finish_reason"),
        refusal=_text(message.get("refusal"), "refusal") or None,
        tool_calls=tuple(clean_call(c, "tool call") for c in calls),
        function_call=clean_call(function, "function_call") if function else None,
    )


def completion_from_reply(
    data: Any,
    *,
    url: str,
    request_id: str | None,
    model: str,
    latency_ms: float,
    rate_headers: Mapping[str, str],
) -> Completion:
    """Build a Completion from a decoded `chat.completion` object (every choice, by index)."""
    if not isinstance(data, dict) or not isinstance(data.get("choices"), list):
        error = data.get("error") if isinstance(data, dict) else None
        why = (
            f"the server reported an error: {str(error.get('message', ''))[:500]}"
            if isinstance(error, dict)
            else "no `choices` list"
        )
        raise StreamBroken(f"malformed reply from {url}: {why}", url=url, request_id=request_id)
    try:
        if len(data["choices"]) > MAX_CHOICES:
            raise Malformed(f"{len(data['choices'])} choices, more than {MAX_CHOICES}")
        choices = sorted(
            (_choice(item, position) for position, item in enumerate(data["choices"])),
            key=lambda c: c.index,
        )
        usage = usage_from(data.get("usage"))
        if len({c.index for c in choices}) != len(choices):
            raise Malformed("two choices have the same index")
    except Malformed as exc:
        raise StreamBroken(
            f"malformed reply from {url}: {exc}", url=url, request_id=request_id
        ) from None
    return Completion(
        id=short_text(data.get("id")) or "",
        model=short_text(data.get("model")) or model,
        choices=tuple(choices),
        usage=usage,
        request_id=request_id,
        latency_ms=latency_ms,
        system_fingerprint=short_text(data.get("system_fingerprint")),
        rate_headers=rate_headers,
    )


def ratelimit_headers(headers: httpx2.Headers) -> dict[str, str]:
    """Keep the `x-ratelimit-*` headers, which the engine records with the call (each at most
    256 characters: a longer one is not a rate-limit hint)."""
    return {
        k: v
        for k, v in headers.items()
        if k.startswith("x-ratelimit-") and len(v) <= _MAX_HEADER_CHARS
    }


def request_id_of(headers: httpx2.Headers) -> str | None:
    """The server's `x-request-id`, unless it is too long to be one."""
    value = headers.get("x-request-id")
    return value if value is not None and len(value) <= _MAX_HEADER_CHARS else None
