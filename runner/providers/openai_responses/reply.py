"""Responses API replies read into runner's neutral Completion: a `response` object's output
items (message text and refusals, function calls), its status (completed; incomplete at
`max_output_tokens` is `length`, for the content filter `content_filter`; failed is the error it
carries) and its usage (`input_tokens`, `output_tokens` and their details). Also the errors a
stream reports. It only reads what was already received and must not do I/O.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from runner.errors import (
    BadRequest,
    ProviderError,
    RateLimited,
    ServerFailed,
    StreamBroken,
)
from runner.providers._json import (
    MAX_TOOL_CALLS,
    Malformed,
    checked_text,
    short_text,
    tool_call,
)
from runner.types import Choice, Completion, Usage

__all__ = ["USAGE_FIELDS", "completion_from_response", "failure", "usage_from"]

# Where the Responses API puts each count of its `usage` object (our name, holder, key).
USAGE_FIELDS = (
    ("prompt", None, "input_tokens"),
    ("completion", None, "output_tokens"),
    ("cached", "input_tokens_details", "cached_tokens"),
    ("reasoning", "output_tokens_details", "reasoning_tokens"),
)
# An incomplete response's reason, as runner's finish reasons name it.
_INCOMPLETE = {"max_output_tokens": "length", "content_filter": "content_filter"}


def usage_from(usage: Any) -> Usage | None:
    """The usage object as the server sent it; unreadable counts become an `estimated` Usage
    saying why, for the engine to count locally."""
    return Usage.read(usage, USAGE_FIELDS, total_key="total_tokens")


def failure(
    error: Any, *, url: str, request_id: str | None, where: str = "the response failed"
) -> ProviderError:
    """The error of a failed response (or of a stream's `error` event), as runner's error
    tree has it: the server's own trouble and rate limits are retried, anything else is not."""
    fields = error if isinstance(error, Mapping) else {}
    inner = fields.get("error")
    if isinstance(inner, Mapping):  # some servers nest it: {"error": {...}}
        fields = inner
    code = checked_or_none(fields.get("code"))
    message = checked_or_none(fields.get("message")) or "no details"
    text = f"{url}: {where}: {message[:500]}" + (f" (code {code})" if code else "")
    kw: dict[str, Any] = {"url": url, "request_id": request_id, "code": code}
    if code in ("server_error", None):
        return StreamBroken(text, url=url, request_id=request_id)
    if code == "rate_limit_exceeded":
        return RateLimited(text, status=429, **kw)
    if code in ("vector_store_timeout",):
        return ServerFailed(text, status=500, **kw)
    return BadRequest(text, status=400, param=checked_or_none(fields.get("param")), **kw)


def checked_or_none(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


def completion_from_response(
    data: Any,
    *,
    url: str,
    request_id: str | None,
    model: str,
    latency_ms: float,
    rate_headers: Mapping[str, str],
    ttft_ms: float | None = None,
) -> Completion:
    """Build a Completion from a decoded `response` object: one choice, its text the joined
    output_text parts of its message items, its tool calls the function_call items."""
    if not isinstance(data, dict) or not isinstance(data.get("output"), list):
        error = data.get("error") if isinstance(data, dict) else None
        if isinstance(error, dict) and error.get("message"):
            raise failure(error, url=url, request_id=request_id, where="the server reported")
        raise StreamBroken(
            f"malformed reply from {url}: no `output` list", url=url, request_id=request_id
        )
    if data.get("status") == "failed":
        raise failure(data.get("error"), url=url, request_id=request_id)
    try:
        choice = _choice(data)
        usage = usage_from(data.get("usage"))
    except Malformed as exc:
        raise StreamBroken(
            f"malformed reply from {url}: {exc}", url=url, request_id=request_id
        ) from None
    return Completion(
        id=short_text(data.get("id")) or "",
        model=short_text(data.get("model")) or model,
        choices=(choice,),
        usage=usage,
        request_id=request_id,
        latency_ms=latency_ms,
        ttft_ms=ttft_ms,
        rate_headers=rate_headers,
    )


def _choice(data: Mapping[str, Any]) -> Choice:
    texts: list[str] = []
    refusals: list[str] = []
    calls: list[dict[str, Any]] = []
    for position, item in enumerate(data["output"]):
        if not isinstance(item, Mapping):
            raise Malformed(f"output[{position}] is {type(item).__name__}, not an object")
        kind = item.get("type")
        if kind == "message":
            content = item.get("content") or []
            if not isinstance(content, list):
                raise Malformed(f"output[{position}].content is not a list")
            for part in content:
                if not isinstance(part, Mapping):
                    raise Malformed(f"output[{position}].content holds a non-object")
                if part.get("type") == "output_text":
                    texts.append(checked_text(part.get("text"), "output_text.text") or "")
                elif part.get("type") == "refusal":
                    refusals.append(checked_text(part.get("refusal"), "refusal") or "")
        elif kind == "function_call":
            if len(calls) >= MAX_TOOL_CALLS:
                raise Malformed(f"more than {MAX_TOOL_CALLS} function calls")
            calls.append(
                tool_call(
                    item.get("call_id"), item.get("name"), item.get("arguments"), "function_call"
                )
            )
    status = data.get("status")
    details = data.get("incomplete_details")
    reason = details.get("reason") if isinstance(details, Mapping) else None
    if status == "incomplete":
        finish: str | None = _INCOMPLETE.get(str(reason), "length")
    elif calls:
        finish = "tool_calls"
    else:
        finish = "stop"
    return Choice(
        index=0,
        text="".join(texts) if texts else None,
        finish_reason=finish,
        refusal="".join(refusals) or None,
        tool_calls=tuple(calls),
    )
