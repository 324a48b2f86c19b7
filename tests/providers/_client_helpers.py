"""Shared by the tests/test_client*.py files: canned replies, a recording in-process transport
and a raw loopback HTTP/1.1 server. Not a test module (pytest does not collect it)."""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import AsyncIterator, Callable, Iterable, Mapping
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx2

from runner.providers import ChatClient
from runner.providers.openai_chat import build_body

SSE = Path(__file__).resolve().parents[1] / "data" / "sse"
URL = "https://api.openai.com/v1/chat/completions"
KEY = "sk-test-RECOGNISABLE-0123456789abcdef"
USER = [{"role": "user", "content": "hi"}]
REPLY: dict[str, Any] = {
    "id": "chatcmpl-1",
    "object": "chat.completion",
    "model": "gpt-4o-mini-2024-07-18",
    "system_fingerprint": "fp_1",
    "choices": [
        {"index": 0, "message": {"role": "assistant", "content": "Hello"}, "finish_reason": "stop"}
    ],
    "usage": {"prompt_tokens": 9, "completion_tokens": 1, "total_tokens": 10},
}


def body(stream: bool = False, **params: Any) -> dict[str, Any]:
    return build_body("gpt-4o-mini", USER, params=params, stream=stream)


def api_error(message: str, type_: str | None, code: str | None, param: str | None = None) -> bytes:
    return json.dumps(
        {"error": {"message": message, "type": type_, "param": param, "code": code}}
    ).encode()


class Chunks(httpx2.AsyncByteStream):
    def __init__(self, chunks: Iterable[bytes]) -> None:
        self.chunks = list(chunks)
        self.closed = False

    async def __aiter__(self) -> AsyncIterator[bytes]:
        for chunk in self.chunks:
            yield chunk

    async def aclose(self) -> None:
        self.closed = True


def sse_reply(chunks: Iterable[bytes], **headers: str) -> httpx2.Response:
    return httpx2.Response(
        200,
        headers={"content-type": "text/event-stream; charset=utf-8", **headers},
        stream=Chunks(chunks),
    )


def mock_client(
    handler: Callable[[httpx2.Request], Any], **kwargs: Any
) -> tuple[ChatClient, list[httpx2.Request]]:
    seen: list[httpx2.Request] = []

    def record(request: httpx2.Request) -> Any:
        seen.append(request)
        return handler(request)

    kwargs.setdefault("environ", {})
    return ChatClient(transport=httpx2.MockTransport(record), **kwargs), seen


@asynccontextmanager
async def raw_server(
    script: Callable[[bytes, asyncio.StreamReader, asyncio.StreamWriter], Any],
) -> AsyncIterator[tuple[str, list[str]]]:
    """A loopback HTTP/1.1 server whose replies are raw bytes written by `script`."""
    events: list[str] = []

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                length = re.search(rb"(?i)content-length: *(\d+)", head)
                content = await reader.readexactly(int(length.group(1))) if length else b""
                if await script(head + content, reader, writer) == "close":
                    break
        except (asyncio.IncompleteReadError, ConnectionError):
            events.append("client closed")
        finally:
            writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        yield f"http://127.0.0.1:{port}/v1", events
    finally:
        server.close()
        await server.wait_closed()


def http_reply(status: int, content: bytes, headers: Mapping[str, str] | None = None) -> bytes:
    lines = [f"HTTP/1.1 {status} {httpx2.codes.get_reason_phrase(status)}"]
    lines += [f"{k}: {v}" for k, v in (headers or {}).items()]
    lines.append(f"content-length: {len(content)}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + content
