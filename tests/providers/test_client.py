"""runner.providers ChatClient and SyncChatClient: headers and configuration, completions, timeouts
that cancel, the sync façade, and that the API key leaks nowhere."""

from __future__ import annotations

import asyncio
import json
import logging
import re
import threading
import traceback
from typing import Any

import httpx2
import pytest
from _client_helpers import (
    KEY,
    REPLY,
    SSE,
    URL,
    USER,
    api_error,
    body,
    http_reply,
    mock_client,
    raw_server,
    sse_reply,
)

from runner.errors import (
    AuthenticationFailed,
    ConfigError,
    ConnectFailed,
    NotFound,
    ReadTimedOut,
    StreamBroken,
)
from runner.providers import ChatClient, SyncChatClient
from runner.providers.openai_chat import build_body
from runner.types import Choice, StreamDelta, Usage

# --- headers and configuration ---------------------------------------------------------------

NULL_TRANSPORT = httpx2.MockTransport(lambda r: httpx2.Response(200))


@pytest.mark.anyio
async def test_headers_and_body_on_the_wire() -> None:
    client, seen = mock_client(
        lambda r: httpx2.Response(200, json=REPLY),
        api_key=KEY,
        organization="org-1",
        project="proj_1",
        headers={"X-Trace": "t1"},
        base_url="https://example.test/v1/",
    )
    async with client:
        await client.complete(body(temperature=0.2))
    (request,) = seen
    assert str(request.url) == "https://example.test/v1/chat/completions"
    assert request.headers["authorization"] == f"Bearer {KEY}"
    assert request.headers["openai-organization"] == "org-1"
    assert request.headers["openai-project"] == "proj_1"
    assert request.headers["x-trace"] == "t1"
    assert request.headers["content-type"] == "application/json"
    assert request.headers["accept"] == "application/json"
    assert re.fullmatch(r"runner/\S+ \(python 3\.\d+; httpx2 \S+\)", request.headers["user-agent"])
    assert json.loads(request.content) == {
        "model": "gpt-4o-mini",
        "messages": USER,
        "temperature": 0.2,
    }


@pytest.mark.anyio
async def test_openai_environment_fills_unset_arguments_only() -> None:
    environ = {
        "OPENAI_API_KEY": KEY,
        "OPENAI_BASE_URL": "http://localhost:8000/v1",
        "OPENAI_ORG_ID": "org-env",
        "OPENAI_PROJECT_ID": "proj-env",
    }
    client, seen = mock_client(
        lambda r: sse_reply([(SSE / "text.sse").read_bytes()]),
        environ=environ,
        project="proj-arg",
    )
    async with client:
        await client.stream(body(stream=True))
    (request,) = seen
    assert str(request.url) == "http://localhost:8000/v1/chat/completions"
    assert request.headers["authorization"] == f"Bearer {KEY}"
    assert request.headers["openai-organization"] == "org-env"
    assert request.headers["openai-project"] == "proj-arg"
    assert request.headers["accept"] == "text/event-stream"


@pytest.mark.anyio
async def test_no_key_means_no_authorization_header() -> None:
    # An empty string is "no key, do not look in the environment" (local servers).
    client, seen = mock_client(
        lambda r: httpx2.Response(200, json=REPLY), api_key="", environ={"OPENAI_API_KEY": KEY}
    )
    async with client:
        await client.complete(body())
    assert "authorization" not in seen[0].headers
    assert "openai-organization" not in seen[0].headers
    assert repr(client) == (
        "ChatClient(base_url='https://api.openai.com/v1', api_key=<unset>, "
        "organization=None, project=None)"
    )


@pytest.mark.parametrize(
    ("kwargs", "error", "message"),
    [
        ({"transport": NULL_TRANSPORT, "asgi_app": object()}, ValueError,
         "give transport or asgi_app, not both"),
        ({"timeout": 0}, ValueError,
         "timeouts must be positive and max_connections at least 1"),
        ({"headers": {"Accept": "text/plain"}}, ValueError,
         "header 'Accept' is set by the client for each request"),
        ({"api_key": KEY, "headers": {"Authorization": "Bearer x"}}, ValueError,
         "give the key as api_key or as an Authorization header, not both"),
        ({"base_url": "ftp://example.test"}, ConfigError,
         "base URL 'ftp://example.test' must start with http:// or https://"),
        ({"api_key": "sk-abc\u201d"}, ConfigError,
         "the API key value contains characters that cannot be sent in an HTTP header "
         "(non-ASCII, or a line break): check for stray quotes or spaces"),
        ({"project": "p\n1"}, ConfigError,
         "the project value contains characters that cannot be sent in an HTTP header "
         "(non-ASCII, or a line break): check for stray quotes or spaces"),
    ],
)  # fmt: skip
def test_client_configuration_errors(
    kwargs: dict[str, Any], error: type[Exception], message: str
) -> None:
    with pytest.raises(error) as info:
        ChatClient(environ={}, **kwargs)
    assert str(info.value) == message


@pytest.mark.anyio
async def test_body_mode_must_match_the_method() -> None:
    client, seen = mock_client(lambda r: httpx2.Response(200, json=REPLY))
    async with client:
        with pytest.raises(ValueError, match="call stream\\(\\) instead"):
            await client.complete(body(stream=True))
        with pytest.raises(ValueError, match="needs a body built with stream=True"):
            await client.stream(body())
        with pytest.raises(ValueError, match="timeout must be positive, got -1"):
            await client.complete(body(), timeout=-1)
    assert seen == []


# --- completions -----------------------------------------------------------------------------


@pytest.mark.anyio
async def test_complete_returns_every_choice_and_the_reply_metadata() -> None:
    reply = {
        **REPLY,
        "choices": [
            {
                "index": 1,
                "message": {
                    "role": "assistant",
                    "content": None,
                    "tool_calls": [
                        {"id": "c", "type": "function",
                         "function": {"name": "f", "arguments": "{}"}}
                    ],
                },
                "finish_reason": "tool_calls",
            },
            {
                "index": 0,
                "message": {"role": "assistant", "content": None, "refusal": "No."},
                "finish_reason": "stop",
            },
            {
                "index": 2,
                "message": {"role": "assistant", "content": None,
                            "function_call": {"name": "g", "arguments": "{}"}},
                "finish_reason": "function_call",
            },
        ],
        "usage": {
            "prompt_tokens": 30,
            "completion_tokens": 20,
            "prompt_tokens_details": {"cached_tokens": 10},
            "completion_tokens_details": {"reasoning_tokens": 5},
        },
    }  # fmt: skip
    headers = {"x-request-id": "req_9", "x-ratelimit-remaining-tokens": "999", "server": "x"}
    client, _ = mock_client(lambda r: httpx2.Response(200, json=reply, headers=headers))
    async with client:
        done = await client.complete(body(n=3))
    assert done.id == "chatcmpl-1"
    assert done.model == "gpt-4o-mini-2024-07-18"
    assert done.choices == (
        Choice(0, None, "stop", refusal="No."),
        # Tool calls in the neutral shape of every wire: {id, name, arguments}; a legacy
        # function_call is one too.
        Choice(1, None, "tool_calls", tool_calls=({"id": "c", "name": "f", "arguments": "{}"},)),
        Choice(2, None, "function_call", tool_calls=({"name": "g", "arguments": "{}"},)),
    )
    assert done.usage == Usage(prompt=30, completion=20, cached=10, reasoning=5)
    assert done.request_id == "req_9"
    assert done.rate_headers == {"x-ratelimit-remaining-tokens": "999"}
    assert done.system_fingerprint == "fp_1"
    assert done.latency_ms > 0
    assert done.ttft_ms is None


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"<html>oops</html>", "malformed reply from {url}: not JSON (Expecting value: line 1 "
         "column 1 (char 0))"),
        (b'{"id": "x"}', "malformed reply from {url}: no `choices` list"),
        (b'{"error": {"message": "model overloaded"}}',
         "malformed reply from {url}: the server reported an error: model overloaded"),
        (b'{"choices": ["x"]}', "malformed reply from {url}: choice 0 is str, not an object"),
    ],
)  # fmt: skip
@pytest.mark.anyio
async def test_malformed_success_reply_is_a_broken_stream(content: bytes, message: str) -> None:
    client, _ = mock_client(lambda r: httpx2.Response(200, content=content))
    async with client:
        with pytest.raises(StreamBroken) as info:
            await client.complete(body())
    assert str(info.value) == message.format(url=URL)
    assert info.value.retryable and info.value.kind == "connection"


@pytest.mark.anyio
async def test_list_models() -> None:
    data = {"object": "list", "data": [{"id": "gpt-4o"}, {"id": "babbage-002"}]}
    client, seen = mock_client(lambda r: httpx2.Response(200, json=data), api_key=KEY)
    async with client:
        assert await client.list_models() == ["babbage-002", "gpt-4o"]
    assert seen[0].method == "GET"
    assert str(seen[0].url) == "https://api.openai.com/v1/models"
    assert seen[0].headers["authorization"] == f"Bearer {KEY}"


# --- timeouts and cancellation ---------------------------------------------------------------


class SlowApp:
    """An ASGI app that starts a stream, sends one chunk, then stalls; it records its fate."""

    def __init__(self) -> None:
        self.cancelled = asyncio.Event()
        self.first = (SSE / "text.sse").read_bytes().split(b"\n\n")[0] + b"\n\n"

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        await receive()
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [(b"content-type", b"text/event-stream")],
            }
        )
        await send({"type": "http.response.body", "body": self.first, "more_body": True})
        try:
            await asyncio.sleep(30)
        except asyncio.CancelledError:
            self.cancelled.set()
            raise


@pytest.mark.anyio
async def test_timeout_cancels_a_slow_stream() -> None:
    app = SlowApp()
    async with ChatClient(asgi_app=app, environ={}) as client:
        loop = asyncio.get_running_loop()
        started = loop.time()
        with pytest.raises(ReadTimedOut) as info:
            await client.stream(body(stream=True), timeout=0.2)
        assert loop.time() - started < 2
    assert str(info.value) == (
        f"no complete reply from {URL} within the 0.2 s timeout; the request was cancelled. "
        "Raise `timeout` if the model needs longer."
    )
    assert info.value.retryable and info.value.kind == "timeout"
    assert app.cancelled.is_set()  # the in-flight request really stopped


@pytest.mark.anyio
async def test_timeout_cancels_a_slow_reply_on_loopback_and_releases_the_socket() -> None:
    async def stall(request: bytes, reader: asyncio.StreamReader, writer: Any) -> str:
        if await reader.read(1) == b"":  # blocks until the client drops the connection
            events.append("dropped by client")
        return "close"

    async with raw_server(stall) as (base, events):
        async with ChatClient(base_url=base, environ={}, timeout=0.2) as client:
            loop = asyncio.get_running_loop()
            started = loop.time()
            with pytest.raises(ReadTimedOut):
                await client.complete(body())
            assert loop.time() - started < 2
        for _ in range(100):
            if events:
                break
            await asyncio.sleep(0.01)
    assert events == ["dropped by client"]


@pytest.mark.anyio
async def test_caller_cancellation_cancels_the_request() -> None:
    app = SlowApp()
    async with ChatClient(asgi_app=app, environ={}) as client:
        deltas: list[StreamDelta] = []
        task = asyncio.ensure_future(client.stream(body(stream=True), on_delta=deltas.append))
        await asyncio.sleep(0.05)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        await asyncio.wait_for(app.cancelled.wait(), 1)


# --- the sync façade -------------------------------------------------------------------------


def test_sync_client() -> None:
    def handler(request: httpx2.Request) -> httpx2.Response:
        if json.loads(request.content).get("stream"):
            return sse_reply([(SSE / "text.sse").read_bytes()])
        if json.loads(request.content)["model"] == "missing":
            return httpx2.Response(404, content=api_error("no such model", None, None))
        return httpx2.Response(200, json=REPLY)

    deltas: list[StreamDelta] = []
    with SyncChatClient(transport=httpx2.MockTransport(handler), environ={}, api_key=KEY) as sync:
        assert sync.complete(body()).text == "Hello"
        assert sync.stream(body(stream=True), on_delta=deltas.append).usage == Usage(19, 10, 6)
        with pytest.raises(NotFound):
            sync.complete(build_body("missing", USER))
        assert KEY not in repr(sync)
    assert "".join(d.text for d in deltas) == "Paris is the capital of France — café 🗼."
    with pytest.raises(RuntimeError, match="closed"):
        sync.complete(body())
    sync.close()  # closing twice is fine


def test_sync_client_errors_leave_no_thread_behind() -> None:
    with pytest.raises(ConfigError):
        SyncChatClient(base_url="ftp://x", environ={})
    app = SlowApp()
    with SyncChatClient(asgi_app=app, environ={}) as sync, pytest.raises(ReadTimedOut):
        sync.stream(body(stream=True), timeout=0.1)
    assert app.cancelled.is_set()
    assert not [t for t in threading.enumerate() if t.name == "runner-client"]


# --- secrets ---------------------------------------------------------------------------------


@pytest.mark.anyio
async def test_the_api_key_appears_in_no_message_repr_or_log(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)  # httpx2 and httpcore2 debug logging included
    echo = f"Incorrect API key provided: {KEY}. Also {KEY[:12]}****cdef."
    outcomes = iter(
        [
            httpx2.Response(401, content=api_error(echo, "invalid_request_error", None)),
            httpx2.Response(200, json=REPLY),
        ]
    )

    def handler(request: httpx2.Request) -> httpx2.Response:
        try:
            return next(outcomes)
        except StopIteration:
            raise httpx2.ConnectError(f"failed with {KEY}") from None

    client, _ = mock_client(handler, api_key=KEY)
    texts = [repr(client)]
    async with client:
        with pytest.raises(AuthenticationFailed) as auth:
            await client.complete(body())
        await client.complete(body())
        with pytest.raises(ConnectFailed) as conn:
            await client.complete(body())
    for error in (auth.value, conn.value):
        texts += [str(error), repr(error), repr(vars(error))]
    texts.append(caplog.text)
    assert "sk-***" in str(auth.value)
    for text in texts:
        assert KEY not in text
        assert KEY[8:] not in text

    # The same over a real socket with the library's own debug logging on.
    async def reply(request: bytes, reader: Any, writer: asyncio.StreamWriter) -> None:
        writer.write(http_reply(401, api_error(echo, None, "invalid_api_key")))
        await writer.drain()

    async with (
        raw_server(reply) as (base, _),
        ChatClient(base_url=base, api_key=KEY, environ={}) as real,
    ):
        with pytest.raises(AuthenticationFailed) as info:
            await real.complete(body())
    rendered = "".join(traceback.format_exception(info.value)) + caplog.text
    assert KEY not in rendered and KEY[8:] not in rendered
