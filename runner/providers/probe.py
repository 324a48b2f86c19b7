"""What `runner probe` asks of a server beside its model calls, at the level of HTTP: the listing
endpoints (GET /models, /files, /batches, /models/{id}) answered as a status, the ids listed and
the rate-limit headers — an error status is an answer here, not a failure — and the shape of an
error body: OpenAI's `{"error": {"message", "type", ...}}` or another. It sends GETs only (the
probe's model calls go through the engine, which records them) and uploads nothing.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from runner.errors import HTTPStatusFailure
from runner.providers._errors import EXCERPT_CHARS, api_error
from runner.providers._json import reply_json
from runner.providers.http import rate_headers

if TYPE_CHECKING:
    from collections.abc import Mapping

    from runner.providers.client import ModelClient

__all__ = [
    "BATCHES",
    "FILES",
    "MODELS",
    "ErrorShape",
    "Listing",
    "error_message",
    "error_shape",
    "get_listing",
    "model_path",
]

# Below the base URL. One item is enough to learn whether the endpoint exists.
MODELS = "/models"
FILES = "/files?limit=1"
BATCHES = "/batches?limit=1"
# The longest a GET of the probe may take: a listing is quick where it exists.
GET_TIMEOUT = 30.0


def model_path(model: str) -> str:
    """GET /models/{model}, the model name as one path segment whatever it holds."""
    return f"{MODELS}/{quote(model, safe='')}"


@dataclass(frozen=True)
class Listing:
    """What a GET of a listing endpoint came back with."""

    url: str
    status: int
    # The ids of the `data` list of a 2xx reply; None when the reply is not such a list.
    ids: tuple[str, ...] | None = None
    rate_headers: Mapping[str, str] = field(default_factory=dict)
    body: str = ""  # an error reply's body (cut, secrets masked)

    @property
    def ok(self) -> bool:
        return 200 <= self.status < 300

    @property
    def missing(self) -> bool:
        """The server has no such endpoint (404, 405)."""
        return self.status in (404, 405)


async def get_listing(client: ModelClient, path: str) -> Listing:
    """GET `path` below the client's base URL. An error status is returned as the Listing;
    a server that cannot be reached raises as a model call would (ConnectFailed,
    ReadTimedOut)."""
    http = client.http
    target = http.target(path)
    try:
        async with http.exchange(
            "GET", target, http.get_headers, None, http.limit(GET_TIMEOUT)
        ) as response:
            status, headers = response.status_code, rate_headers(response)
            raw = await http.read(response, target.url)
    except HTTPStatusFailure as exc:
        return Listing(target.url, exc.status, None, dict(exc.headers), exc.body_excerpt)
    return Listing(target.url, status, _ids(raw), headers)


def _ids(raw: bytes) -> tuple[str, ...] | None:
    try:
        data = reply_json(raw)
    except (ValueError, UnicodeDecodeError, RecursionError):
        return None
    items = data.get("data") if isinstance(data, dict) else None
    if not isinstance(items, list):
        return None
    return tuple(
        item["id"] for item in items if isinstance(item, dict) and isinstance(item.get("id"), str)
    )


@dataclass(frozen=True)
class ErrorShape:
    """The shape of an error body: whether it is OpenAI's, and how it looks, in a few words."""

    openai: bool
    words: str


_OPENAI_START = re.compile(r'\s*\{\s*"error"\s*:\s*\{\s*"message"\s*:')


def error_shape(body: str) -> ErrorShape:
    """Classify an error reply's body (as HTTPStatusFailure.body_excerpt keeps it): OpenAI's
    `{"error": {"message", "type", ...}}`, or `{"error": "<string>"}`, `{"detail": ...}`,
    other JSON, an HTML page, plain text or nothing."""
    text = body.strip()
    if not text:
        return ErrorShape(False, "an empty body")
    try:
        data = reply_json(text)
    except (ValueError, UnicodeDecodeError, RecursionError):
        if len(body) >= EXCERPT_CHARS and _OPENAI_START.match(text):
            # Cut where the excerpt ends: its start is OpenAI's.
            return ErrorShape(True, '{"error": {"message", ...}} (a long body)')
        if text.startswith("<"):
            return ErrorShape(False, "an HTML page")
        return ErrorShape(False, f"plain text ({_quoted(text)})")
    if not isinstance(data, dict):
        return ErrorShape(False, f"JSON that is not an object ({_quoted(text)})")
    error = data.get("error")
    if isinstance(error, dict):
        keys = ", ".join(f'"{k}"' for k in list(error)[:5]) + (", ..." if len(error) > 5 else "")
        words = f'{{"error": {{{keys}}}}}'
        return ErrorShape(isinstance(error.get("message"), str) and "type" in error, words)
    if isinstance(error, str):
        return ErrorShape(False, '{"error": "<string>"}')
    if "detail" in data:
        return ErrorShape(False, '{"detail": ...}')
    keys = ", ".join(f'"{k}"' for k in list(data)[:4]) + (", ..." if len(data) > 4 else "")
    return ErrorShape(False, f"{{{keys}}}")


def error_message(body: str) -> str:
    """The message an error body carries (OpenAI's error.message, a string error, FastAPI's
    detail), or its first words."""
    found: Any = api_error(body.encode("utf-8", "replace"))
    if isinstance(found, dict) and found.get("message"):
        return " ".join(str(found["message"]).split())
    flat = " ".join(body.split())
    return "an HTML page" if flat.startswith("<") else flat[:200]


def _quoted(text: str, limit: int = 40) -> str:
    flat = " ".join(text.split())
    return f'"{flat[: limit - 1]}…"' if len(flat) > limit else f'"{flat}"'
