"""What every wire API's reader shares: JSON from a server parsed safely, string fields checked,
tool calls in runner's neutral shape, rate-limit headers and request ids. No wire format lives
here. It only reads bytes already received and must not do I/O.

A reply is untrusted input: every field a Completion keeps is checked for its type and kept
only in its documented shape, so nothing downstream meets a nested structure it did not ask
for, and counts are bounded (`MAX_CHOICES`, `MAX_TOOL_CALLS`). Every JSON a server sends is
parsed by `reply_json`, which replaces lone surrogates with U+FFFD: the one place where that
rule lives.
"""

from __future__ import annotations

from typing import Any

import httpx2

from runner.errors import StreamBroken
from runner.ledger.encoding import loads_text

__all__ = [
    "MAX_CHOICES",
    "MAX_TOOL_CALLS",
    "Malformed",
    "checked_index",
    "checked_text",
    "load_json",
    "ratelimit_headers",
    "reply_json",
    "request_id_of",
    "short_text",
    "tool_call",
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


def checked_text(value: Any, field: str) -> str | None:
    if value is None or isinstance(value, str):
        return value
    raise Malformed(f"{field} is {type(value).__name__}, not a string")


def checked_index(value: Any, field: str, limit: int) -> int:
    if isinstance(value, int) and not isinstance(value, bool) and 0 <= value < limit:
        return value
    raise Malformed(f"{field} {str(value)[:40]!r} is not an index below {limit}")


def tool_call(call_id: Any, name: Any, arguments: Any, field: str) -> dict[str, Any]:
    """A tool call in runner's neutral shape, every field checked: {"id", "name",
    "arguments"} with the arguments as the JSON text the model wrote (keys left out when
    the server sent none)."""
    out: dict[str, Any] = {}
    for key, value in (("id", call_id), ("name", name), ("arguments", arguments)):
        text = checked_text(value, f"{field}.{key}")
        if text is not None:
            out[key] = text
    return out


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
