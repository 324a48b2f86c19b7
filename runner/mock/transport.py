"""What every mock route shares at the HTTP level: a reply sent as prepared parts (and dropped
on purpose), OpenAI's response headers and error replies, the capped request body reader and
the API key check. It knows nothing of answers, routes or faults.
"""

from __future__ import annotations

import hmac
import time
from typing import TYPE_CHECKING

from starlette.requests import Request
from starlette.responses import Response

from runner.errors import HTTPStatusFailure
from runner.mock.reply import dumps
from runner.mock.request import api_error, error_body

if TYPE_CHECKING:
    from starlette.types import Receive, Scope, Send

__all__ = [
    "DROP_MESSAGE",
    "MAX_REQUEST_BYTES",
    "Reply",
    "authorize",
    "error_reply",
    "read_body",
    "reply_headers",
]

DROP_MESSAGE = "runner mock server dropped the connection (fault injection)"
MAX_REQUEST_BYTES = 32 * 1024 * 1024  # a larger request body is refused (413) unread


class Reply(Response):
    """A reply sent as prepared parts; `abort` raises after them, which drops the connection
    under uvicorn (and surfaces as ConnectionResetError through an in-process ASGI transport)."""

    def __init__(
        self, status: int, parts: list[bytes], headers: dict[str, str], *, abort: bool = False
    ) -> None:
        self.status_code = status
        self.parts = parts
        self.abort = abort
        self.background = None
        self.raw_headers = [(k.encode(), v.encode()) for k, v in headers.items()]

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await send(
            {"type": "http.response.start", "status": self.status_code, "headers": self.raw_headers}
        )
        for part in self.parts:
            await send({"type": "http.response.body", "body": part, "more_body": True})
        if self.abort:
            raise ConnectionResetError(DROP_MESSAGE)
        await send({"type": "http.response.body", "body": b"", "more_body": False})


def authorize(api_key: str | None, request: Request) -> None:
    """Refuse a request without the bearer `api_key` (when there is one) with OpenAI's 401."""
    if api_key is None:
        return
    header = request.headers.get("authorization", "")
    if not header:
        raise api_error(
            401,
            "You didn't provide an API key. You need to provide your API key in an "
            "Authorization header using Bearer auth (i.e. Authorization: Bearer YOUR_KEY).",
        )
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not hmac.compare_digest(
        token.strip().encode(), api_key.encode()
    ):
        # Never echo the key that was sent: it may be a real one sent to the wrong server.
        raise api_error(
            401,
            "Incorrect API key provided. You can find your API key at "
            "https://platform.openai.com/account/api-keys.",
            code="invalid_api_key",
        )


def reply_headers(request_id: str, content_type: str, started: float) -> dict[str, str]:
    """The headers OpenAI sends with every reply."""
    return {
        "content-type": content_type,
        "x-request-id": request_id,
        "openai-version": "2020-10-01",
        "openai-processing-ms": str(round((time.perf_counter() - started) * 1000)),
    }


def error_reply(err: HTTPStatusFailure, request_id: str, started: float) -> Reply:
    """`err` as OpenAI's error reply, with its headers (retry-after...)."""
    body = dumps(error_body(err))
    headers = reply_headers(request_id, "application/json", started)
    headers.update((k.lower(), v) for k, v in err.headers.items())
    headers["content-length"] = str(len(body))
    return Reply(err.status, [body], headers)


async def read_body(request: Request) -> bytes:
    """The request body, read up to MAX_REQUEST_BYTES; a 413 past it."""
    declared = request.headers.get("content-length", "")
    too_large = api_error(
        413,
        f"Request body too large: at most {MAX_REQUEST_BYTES} bytes.",
        code="request_too_large",
    )
    if declared.isdigit() and int(declared) > MAX_REQUEST_BYTES:
        raise too_large
    parts, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > MAX_REQUEST_BYTES:
            raise too_large
        parts.append(chunk)
    return b"".join(parts)
