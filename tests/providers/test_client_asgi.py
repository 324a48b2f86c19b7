"""runner.providers.ASGIStreamTransport: chunks reach the client as the app sends them, app failures
look like dropped connections, plain JSON and GET are served."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from typing import Any

import pytest
from _client_helpers import REPLY, SSE, URL, body

from runner.errors import ConnectFailed
from runner.providers import ChatClient
from runner.types import StreamDelta


def asgi_app(
    parts: list[bytes], *, gate: asyncio.Event | None = None, fail: str = ""
) -> Callable[..., Any]:
    async def app(scope: Any, receive: Any, send: Any) -> None:
        message = await receive()
        assert json.loads(message["body"])["model"] == "gpt-4o-mini"
        if fail == "before":
            raise RuntimeError("boom before start")
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [(b"content-type", b"text/event-stream"), (b"x-request-id", b"r")],
            }
        )
        for i, part in enumerate(parts):
            await send({"type": "http.response.body", "body": part, "more_body": True})
            if i == 1 and gate is not None:
                await gate.wait()  # only a transport that streams lets the client get here
        if fail == "after":
            raise RuntimeError("boom mid-stream")
        if fail != "stop":
            await send({"type": "http.response.body", "body": b"", "more_body": False})

    return app


@pytest.mark.anyio
async def test_asgi_transport_streams_chunks_as_the_app_sends_them() -> None:
    parts = [p + b"\n\n" for p in (SSE / "text.sse").read_bytes().split(b"\n\n") if p]
    gate = asyncio.Event()
    seen: list[str] = []

    def on_delta(delta: StreamDelta) -> None:
        seen.append(delta.text)
        gate.set()

    async with ChatClient(asgi_app=asgi_app(parts, gate=gate), environ={}) as client:
        done = await client.stream(body(stream=True), on_delta=on_delta, timeout=1)
    assert done.text == "".join(seen) == "Paris is the capital of France — café 🗼."
    assert done.request_id == "r"


@pytest.mark.parametrize(
    ("fail", "message"),
    [
        ("before", "the connection to {url} broke while reading"),
        ("after", "the connection to {url} broke while reading (the app raised "
         "RuntimeError('boom mid-stream') before the reply was complete)"),
        ("stop", "the connection to {url} broke while reading (the app stopped before the "
         "reply was complete)"),
    ],
)  # fmt: skip
@pytest.mark.anyio
async def test_asgi_app_failures_look_like_dropped_connections(fail: str, message: str) -> None:
    parts = [p + b"\n\n" for p in (SSE / "text.sse").read_bytes().split(b"\n\n")[:3]]
    async with ChatClient(asgi_app=asgi_app(parts, fail=fail), environ={}) as client:
        with pytest.raises(ConnectFailed) as info:
            await client.stream(body(stream=True))
    if fail == "before":
        assert str(info.value) == (
            f"{URL} broke the HTTP protocol (Server disconnected without a response: the app "
            "raised RuntimeError('boom before start'))"
        )
    else:
        assert str(info.value) == message.format(url=URL)
    assert info.value.retryable


@pytest.mark.anyio
async def test_asgi_transport_serves_plain_json_and_get() -> None:
    async def app(scope: Any, receive: Any, send: Any) -> None:
        await receive()
        if scope["method"] == "GET":
            payload = json.dumps({"data": [{"id": "mock-model"}]}).encode()
        else:
            payload = json.dumps(REPLY).encode()
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [(b"content-type", b"application/json")],
            }
        )
        await send({"type": "http.response.body", "body": payload[:10], "more_body": True})
        await send({"type": "http.response.body", "body": payload[10:]})

    # fmt: skip

    async with ChatClient(asgi_app=app, environ={}) as client:
        assert (await client.complete(body())).text == "Hello"
        assert await client.list_models() == ["mock-model"]
