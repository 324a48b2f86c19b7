"""Whole (non-streamed) JSON replies decoded into a Completion; a reply that is not the documented
shape raises StreamBroken. It only reads bytes already received and must not do I/O.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

import httpx2

from runner.errors import StreamBroken
from runner.types import Choice, Completion, Usage

__all__ = ["completion_from_reply", "load_json", "ratelimit_headers"]


def load_json(raw: bytes, url: str, request_id: str | None) -> Any:
    """Parse a reply body as JSON; anything else is a StreamBroken naming the URL."""
    try:
        return json.loads(raw)
    except (ValueError, UnicodeDecodeError) as exc:
        raise StreamBroken(
            f"malformed reply from {url}: not JSON ({exc})", url=url, request_id=request_id
        ) from exc


def _content_text(content: Any) -> str | None:
    if content is None or isinstance(content, str):
        return content
    if isinstance(content, list):  # some compatible servers answer with content parts
        return "".join(p.get("text", "") for p in content if isinstance(p, dict))
    return str(content)


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
            f"the server reported an error: {error.get('message', error)}"
            if isinstance(error, dict)
            else "no `choices` list"
        )
        raise StreamBroken(f"malformed reply from {url}: {why}", url=url, request_id=request_id)
    choices = []
    try:
        for position, item in enumerate(data["choices"]):
            message = item.get("message") or {}
            choices.append(
                Choice(
                    index=_index(item.get("index", position)),
                    text=_content_text(message.get("content")),
                    finish_reason=_optional_str(item.get("finish_reason"), "finish_reason"),
                    refusal=_optional_str(message.get("refusal"), "refusal") or None,
                    tool_calls=_tool_calls(message.get("tool_calls")),
                    function_call=_object(message.get("function_call"), "function_call"),
                )
            )
    except (AttributeError, TypeError, ValueError) as exc:
        raise StreamBroken(
            f"malformed reply from {url}: a choice is not the documented shape ({exc})",
            url=url,
            request_id=request_id,
        ) from exc
    if len({c.index for c in choices}) != len(choices):
        raise StreamBroken(
            f"malformed reply from {url}: two choices have the same index",
            url=url,
            request_id=request_id,
        )
    choices.sort(key=lambda c: c.index)
    return Completion(
        id=str(data.get("id") or ""),
        model=str(data.get("model") or model),
        choices=tuple(choices),
        usage=Usage.from_api(data.get("usage")),
        request_id=request_id,
        latency_ms=latency_ms,
        system_fingerprint=_optional_str(data.get("system_fingerprint"), "system_fingerprint"),
        rate_headers=rate_headers,
    )


def _index(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"index is {type(value).__name__}, not an integer")
    return value


def _optional_str(value: Any, field: str) -> str | None:
    if value is None or isinstance(value, str):
        return value
    raise TypeError(f"{field} is {type(value).__name__}, not a string")


def _object(value: Any, field: str) -> dict[str, Any] | None:
    if not value:
        return None
    if not isinstance(value, dict):
        raise TypeError(f"{field} is {type(value).__name__}, not an object")
    return value


def _tool_calls(value: Any) -> tuple[dict[str, Any], ...]:
    if not value:
        return ()
    if not isinstance(value, list) or not all(isinstance(c, dict) for c in value):
        raise TypeError("tool_calls is not a list of objects")
    for call in value:
        _object(call.get("function"), "a tool call's function")
    return tuple(value)


def ratelimit_headers(headers: httpx2.Headers) -> dict[str, str]:
    """Keep the `x-ratelimit-*` headers, which the engine records with the call."""
    return {k: v for k, v in headers.items() if k.startswith("x-ratelimit-")}
