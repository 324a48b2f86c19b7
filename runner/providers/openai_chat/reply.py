"""Chat Completions replies read into runner's neutral Completion: a whole `chat.completion`
object, its choices, tool calls and usage. A reply that is not the documented shape raises
StreamBroken. It only reads what was already received and must not do I/O.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from runner.errors import StreamBroken
from runner.providers._json import (
    MAX_CHOICES,
    MAX_TOOL_CALLS,
    Malformed,
    checked_index,
    checked_text,
    short_text,
    tool_call,
)
from runner.types import Choice, Completion, Usage

__all__ = ["USAGE_FIELDS", "completion_from_reply", "neutral_call", "usage_from"]

# Where Chat Completions puts each count of its `usage` object (our name, holder, key).
USAGE_FIELDS = (
    ("prompt", None, "prompt_tokens"),
    ("completion", None, "completion_tokens"),
    ("cached", "prompt_tokens_details", "cached_tokens"),
    ("reasoning", "completion_tokens_details", "reasoning_tokens"),
)


def usage_from(usage: Any) -> Usage | None:
    """The usage object as the server sent it. Counts that cannot be read do not break the
    reply: they become an `estimated` Usage saying why, for the engine to count locally."""
    return Usage.read(usage, USAGE_FIELDS, total_key="total_tokens")


def neutral_call(call: Any, field: str) -> dict[str, Any]:
    """A Chat Completions tool call ({id, type, function: {name, arguments}}, or a custom
    tool's {custom: {name, input}}, or a legacy function_call {name, arguments}) in runner's
    neutral shape {id, name, arguments}."""
    if not isinstance(call, Mapping):
        raise Malformed(f"a {field} is {type(call).__name__}, not an object")
    inner: Any = call.get("function") or call.get("custom") or call
    if not isinstance(inner, Mapping):
        raise Malformed(f"{field}.function is {type(inner).__name__}, not an object")
    arguments = inner.get("arguments", inner.get("input"))
    return tool_call(call.get("id"), inner.get("name"), arguments, field)


def _content_text(content: Any) -> str | None:
    if content is None or isinstance(content, str):
        return content
    if isinstance(content, list):  # some compatible servers answer with content parts
        return "".join(
            p["text"] for p in content if isinstance(p, dict) and isinstance(p.get("text"), str)
        )
    raise Malformed(f"message content is {type(content).__name__}, not a string")


def _choice(item: Any, position: int) -> Choice:
    # A reply is parsed JSON: its objects are dicts, which skip the ABC check.
    if type(item) is not dict and not isinstance(item, Mapping):
        raise Malformed(f"choice {position} is {type(item).__name__}, not an object")
    message = item.get("message") or {}
    if type(message) is not dict and not isinstance(message, Mapping):
        raise Malformed(f"choice {position}: message is not an object")
    calls = message.get("tool_calls") or []
    if not isinstance(calls, list) or len(calls) > MAX_TOOL_CALLS:
        raise Malformed(f"choice {position}: tool_calls is not a list of at most {MAX_TOOL_CALLS}")
    neutral = [neutral_call(c, "tool call") for c in calls]
    function = message.get("function_call")
    if function:
        neutral.append(neutral_call(function, "function_call"))
    return Choice(
        index=checked_index(item.get("index", position), "choice index", MAX_CHOICES),
        text=_content_text(message.get("content")),
        finish_reason=checked_text(item.get("finish_reason"), "finish_reason"),
        refusal=checked_text(message.get("refusal"), "refusal") or None,
        tool_calls=tuple(neutral),
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
