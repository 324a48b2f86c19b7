"""runner.client: request bodies, headers, error mapping (real HTTP replies on loopback and
in-process), timeouts that cancel, SSE assembly at every chunk split, the ASGI streaming
transport, the sync façade, and that the API key leaks nowhere."""

from __future__ import annotations

import asyncio
import json
import logging
import random
import re
import threading
import traceback
from collections.abc import AsyncIterator, Callable, Iterable, Mapping
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx2
import pytest

from runner import client as client_mod
from runner.client import (
    ChatClient,
    SyncChatClient,
    build_body,
    error_from_response,
    error_from_transport,
    is_reasoning_model,
    parse_retry_after,
    response_format_for,
)
from runner.errors import (
    AuthenticationFailed,
    BadRequest,
    ConfigError,
    ConnectFailed,
    HTTPStatusFailure,
    NotFound,
    PermissionDenied,
    QuotaExhausted,
    RateLimited,
    ReadTimedOut,
    RunnerError,
    ServerFailed,
    StreamBroken,
)
from runner.records import Choice, Completion, StreamDelta, Usage

SSE = Path(__file__).resolve().parent / "data" / "sse"
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


# --- build_body ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("model", "expected"),
    [
        ("o1", True),
        ("o1-mini", True),
        ("o3-mini-2025-01-31", True),
        ("o4-mini", True),
        ("gpt-5", True),
        ("gpt-5-mini", True),
        ("gpt-5.1", True),
        ("gpt-5.2-pro", True),
        ("ft:o4-mini-2025-04-16:acme::abc", True),
        ("openai/o3", True),
        ("gpt-5-chat-latest", False),
        ("gpt-5.1-chat-latest", False),
        ("gpt-4o", False),
        ("gpt-4.1-mini", False),
        ("omni-moderation-latest", False),
        ("gpt-50", False),
        ("llama3", False),
    ],
)
def test_is_reasoning_model(model: str, expected: bool) -> None:
    assert is_reasoning_model(model) is expected


@pytest.mark.parametrize(
    ("model", "kwargs", "expected"),
    [
        (
            "gpt-4o-mini",
            {"params": {"temperature": 0.3, "max_tokens": 400, "seed": None, "stop": ["\n\n"]}},
            {"temperature": 0.3, "max_tokens": 400, "stop": ["\n\n"]},
        ),
        (
            "gpt-4o-mini",
            {"stream": True},
            {"stream": True, "stream_options": {"include_usage": True}},
        ),
        (
            "gpt-4o-mini",
            {"stream": True, "params": {"stream_options": {"include_obfuscation": False}}},
            {
                "stream": True,
                "stream_options": {"include_usage": True, "include_obfuscation": False},
            },
        ),
        (
            "o3-mini",
            {"params": {"max_tokens": 300, "temperature": 1, "reasoning_effort": "low"}},
            {"max_completion_tokens": 300, "reasoning_effort": "low"},
        ),
        (
            "gpt-5.2",
            {"params": {"temperature": 0.2, "reasoning_effort": "none", "logprobs": True}},
            {"temperature": 0.2, "reasoning_effort": "none", "logprobs": True},
        ),
        ("gpt-5-chat-latest", {"params": {"temperature": 0.2}}, {"temperature": 0.2}),
        (
            "gpt-4o",
            {
                "tools": [{"type": "function", "function": {"name": "f", "parameters": {}}}],
                "tool_choice": "required",
                "params": {"parallel_tool_calls": False},
            },
            {
                "parallel_tool_calls": False,
                "tools": [{"type": "function", "function": {"name": "f", "parameters": {}}}],
                "tool_choice": "required",
            },
        ),
        ("gpt-4o", {"tools": []}, {}),
        (
            "gpt-4o",
            {"response_format": {"type": "json_object"}},
            {"response_format": {"type": "json_object"}},
        ),
        (
            "gpt-4o",
            {"params": {"n": 2, "logit_bias": {"50256": -100}, "user": "u1"}},
            {"n": 2, "logit_bias": {"50256": -100}, "user": "u1"},
        ),
    ],
)
def test_build_body(model: str, kwargs: dict[str, Any], expected: dict[str, Any]) -> None:
    assert build_body(model, USER, **kwargs) == {"model": model, "messages": USER, **expected}


@pytest.mark.parametrize(
    ("model", "kwargs", "message"),
    [
        (
            "o3-mini",
            {"params": {"temperature": 0.3}},
            "model o3-mini does not accept temperature=0.3; remove `temperature` from params",
        ),
        (
            "o1",
            {"params": {"presence_penalty": 0.5}},
            "model o1 does not accept presence_penalty=0.5; remove `presence_penalty` from params",
        ),
        (
            "gpt-5-mini",
            {"params": {"top_p": 0.9, "reasoning_effort": "none"}},
            "model gpt-5-mini does not accept top_p=0.9; remove `top_p` from params",
        ),
        (
            "gpt-5.1",
            {"params": {"temperature": 0}},
            'model gpt-5.1 does not accept temperature=0 unless reasoning_effort is "none"; '
            "remove `temperature` from params",
        ),
        (
            "gpt-5.2",
            {"params": {"frequency_penalty": 1, "reasoning_effort": "none"}},
            "model gpt-5.2 does not accept frequency_penalty=1; "
            "remove `frequency_penalty` from params",
        ),
        (
            "o4-mini",
            {"params": {"top_logprobs": 3}},
            "model o4-mini does not accept top_logprobs=3; remove `top_logprobs` from params",
        ),
        (
            "o4-mini",
            {"params": {"stop": ["END"]}},
            "model o4-mini does not accept stop; remove `stop` from params",
        ),
        (
            "gpt-4o",
            {"params": {"max_tokens": 1, "max_completion_tokens": 2}},
            "model gpt-4o got both max_tokens and max_completion_tokens; keep one of them",
        ),
        (
            "gpt-4o",
            {"params": {"stream": True}},
            "`stream` cannot be given in params; it has its own setting",
        ),
        ("gpt-4o", {"tool_choice": "auto"}, "`tool_choice` is only allowed when tools are given"),
        (
            "gpt-4o",
            {"params": {"parallel_tool_calls": True}},
            "`parallel_tool_calls` is only allowed when tools are given",
        ),
        (
            "gpt-4o",
            {"params": {"stream_options": {"include_usage": True}}},
            "`stream_options` is only allowed when streaming",
        ),
        (
            "gpt-4o",
            {"response_format": {"type": "yaml"}},
            "response_format type 'yaml' is not one of 'text', 'json_object', 'json_schema'",
        ),
        (
            "gpt-4o",
            {"response_format": {"type": "json_schema", "json_schema": {"name": "a b"}}},
            "response_format json_schema needs a `name` of 1-64 letters, digits, _ or -",
        ),
    ],
)
def test_build_body_refuses(model: str, kwargs: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError) as info:
        build_body(model, USER, **kwargs)
    assert str(info.value) == message
    assert info.value.exit_code == 2


@pytest.mark.parametrize(
    ("messages", "message"),
    [
        ([], "messages must not be empty"),
        ([{"content": "x"}], "each message needs a string `role`, got {'content': 'x'}"),
    ],
)
def test_build_body_caller_mistakes(messages: Any, message: str) -> None:
    with pytest.raises(ValueError, match=re.escape(message)):
        build_body("gpt-4o", messages)


def test_build_body_passes_every_role_through_unchanged() -> None:
    messages: list[dict[str, Any]] = [
        {"role": "developer", "content": "be brief"},
        {"role": "system", "content": "sys", "name": "s"},
        {"role": "user", "content": [{"type": "text", "text": "hi"}]},
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [
                {"id": "c1", "type": "function", "function": {"name": "f", "arguments": "{}"}}
            ],
        },
        {"role": "tool", "tool_call_id": "c1", "content": "42"},
        {"role": "assistant", "content": None, "function_call": {"name": "g", "arguments": "{}"}},
        {"role": "function", "name": "g", "content": "7"},
    ]
    built = build_body("gpt-4o", messages)
    assert built["messages"] == messages
    assert built["messages"][0] is not messages[0]  # copied, so later edits cannot leak in


def test_response_format_for() -> None:
    schema = {"type": "object", "properties": {}, "additionalProperties": False}
    assert response_format_for(schema, name="city facts.v2", strict=True) == {
        "type": "json_schema",
        "json_schema": {"name": "city_facts_v2", "schema": schema, "strict": True},
    }
    fmt = response_format_for(schema, name="x" * 80, strict=False)
    assert len(fmt["json_schema"]["name"]) == 64
    assert build_body("gpt-4o", USER, response_format=fmt)["response_format"] == fmt


# --- helpers: in-process transports and a raw loopback HTTP server ---------------------------


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
        Choice(
            1, None, "tool_calls", tool_calls=(reply["choices"][0]["message"]["tool_calls"][0],)
        ),
        Choice(2, None, "function_call", function_call={"name": "g", "arguments": "{}"}),
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
        (b'{"choices": ["x"]}', "malformed reply from {url}: a choice is not an object "
         "('str' object has no attribute 'get')"),
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


# --- error replies ---------------------------------------------------------------------------


def api_error(message: str, type_: str | None, code: str | None, param: str | None = None) -> bytes:
    return json.dumps(
        {"error": {"message": message, "type": type_, "param": param, "code": code}}
    ).encode()


ERROR_CASES = [
    (401, api_error("Incorrect API key provided: sk-test-********************cdef. You can "
                    "find your API key at https://platform.openai.com/account/api-keys.",
                    "invalid_request_error", "invalid_api_key"), {},
     AuthenticationFailed, "auth", False, None,
     "401 from {url}: Incorrect API key provided: sk-***. You can find your API key at "
     "https://platform.openai.com/account/api-keys (invalid_request_error, code "
     "invalid_api_key; request req_abc). Check the API key (OPENAI_API_KEY, or the variable "
     "the spec's provider.api_key_env names)."),
    (403, api_error("Project `proj_1` does not have access to model `o3`",
                    "invalid_request_error", "model_not_found"), {},
     PermissionDenied, "permission", False, None,
     "403 from {url}: Project `proj_1` does not have access to model `o3` "
     "(invalid_request_error, code model_not_found; request req_abc). The key may not use "
     "this model or endpoint: check its project, organization and permissions."),
    (404, api_error("The model `gpt-9` does not exist or you do not have access to it.",
                    "invalid_request_error", "model_not_found"), {},
     NotFound, "not_found", False, None,
     "404 from {url}: The model `gpt-9` does not exist or you do not have access to it "
     "(invalid_request_error, code model_not_found; request req_abc). Check `model`: this "
     "server does not serve it to this key."),
    (404, b"404 page not found", {}, NotFound, "not_found", False, None,
     "404 from {url}: 404 page not found (request req_abc). Check base_url: "
     "OpenAI-compatible servers usually end in /v1."),
    (400, api_error("Invalid type for 'temperature': expected a decimal, but got a string "
                    "instead.", "invalid_request_error", "invalid_type", "temperature"), {},
     BadRequest, "bad_request", False, None,
     "400 from {url}: Invalid type for 'temperature': expected a decimal, but got a string "
     "instead (invalid_request_error, code invalid_type, param temperature; request "
     "req_abc). Fix `temperature` in the request; resending it unchanged cannot work."),
    (422, b'{"detail":[{"loc":["body","messages"],"msg":"Field required"}]}', {},
     BadRequest, "bad_request", False, None,
     "422 from {url}: body.messages: Field required (request req_abc). The server refused "
     "the request; resending it unchanged cannot work."),
    (413, b"", {}, BadRequest, "bad_request", False, None,
     "413 from {url}: Content Too Large (request req_abc). The server refused the "
     "request; resending it unchanged cannot work."),
    (429, api_error("Rate limit reached for gpt-4o on requests per min (RPM): Limit 3.",
                    "requests", "rate_limit_exceeded"),
     {"retry-after-ms": "1500", "retry-after": "2", "x-ratelimit-remaining-requests": "0",
      "x-ratelimit-reset-requests": "1.5s"},
     RateLimited, "rate_limit", True, 1.5,
     "429 from {url}: Rate limit reached for gpt-4o on requests per min (RPM): Limit 3 "
     "(requests, code rate_limit_exceeded; request req_abc). Rate limited: the server asks "
     "to wait 1.5 s; lower `rate` (rpm, tpm, concurrency) if it keeps happening."),
    (429, api_error("You exceeded your current quota, please check your plan and billing "
                    "details.", "insufficient_quota", "insufficient_quota"), {},
     QuotaExhausted, "quota", False, None,
     "429 from {url}: You exceeded your current quota, please check your plan and billing "
     "details (insufficient_quota, code insufficient_quota; request req_abc). The account "
     "is out of quota: check its plan and billing; retries cannot help."),
    (500, api_error("The server had an error while processing your request.",
                    "server_error", None), {},
     ServerFailed, "server_error", True, None,
     "500 from {url}: The server had an error while processing your request (server_error; "
     "request req_abc). The server failed; another try may succeed."),
    (503, b"<html><h1>503 Service Unavailable</h1></html>", {"retry-after": "7"},
     ServerFailed, "server_error", True, 7.0,
     "503 from {url}: Service Unavailable (request req_abc). The server failed; another try "
     "may succeed."),
    (408, b"", {}, ServerFailed, "server_error", True, None,
     "408 from {url}: Request Timeout (request req_abc). The server failed; another try may "
     "succeed."),
    (409, b"", {}, ServerFailed, "server_error", True, None,
     "409 from {url}: Conflict (request req_abc). The server failed; another try may "
     "succeed."),
    (307, b"", {"location": "https://elsewhere.test/v1/chat/completions"},
     BadRequest, "bad_request", False, None,
     "307 from {url}: Temporary Redirect (request req_abc). The server redirects to "
     "https://elsewhere.test/v1/chat/completions: check base_url."),
]  # fmt: skip


@pytest.mark.parametrize(
    ("status", "content", "headers", "cls", "kind", "retryable", "retry_after", "message"),
    ERROR_CASES,
)
@pytest.mark.parametrize("stream", [False, True])
@pytest.mark.anyio
async def test_error_replies_over_real_http(
    status: int,
    content: bytes,
    headers: dict[str, str],
    cls: type[HTTPStatusFailure],
    kind: str,
    retryable: bool,
    retry_after: float | None,
    message: str,
    stream: bool,
) -> None:
    reply = http_reply(status, content, {"x-request-id": "req_abc", **headers})

    async def script(request: bytes, reader: Any, writer: asyncio.StreamWriter) -> None:
        writer.write(reply)
        await writer.drain()

    async with (
        raw_server(script) as (base, _),
        ChatClient(base_url=base, api_key=KEY, environ={}) as client,
    ):
        with pytest.raises(HTTPStatusFailure) as info:
            if stream:
                await client.stream(body(stream=True))
            else:
                await client.complete(body())
    error = info.value
    url = f"{base}/chat/completions"
    assert type(error) is cls
    assert (error.kind, error.retryable, error.status) == (kind, retryable, status)
    assert str(error) == message.format(url=url)
    assert error.url == url
    assert error.request_id == "req_abc"
    assert getattr(error, "retry_after", None) == retry_after
    assert error.headers == {k: v for k, v in headers.items() if k.startswith("x-ratelimit-")}
    assert error.body_excerpt == content.decode().replace(
        "sk-test-********************cdef", "sk-***"
    )
    assert KEY not in repr(error.__dict__)


def test_error_fields_and_long_bodies() -> None:
    content = api_error("bad " * 300, "invalid_request_error", "c1", "messages[0]")
    error = error_from_response(400, httpx2.Headers(), content, url=URL)
    assert (error.type, error.code, error.param) == ("invalid_request_error", "c1", "messages[0]")
    assert len(error.body_excerpt) == 500
    assert str(error).startswith(f"400 from {URL}: {'bad ' * 74}bad… (invalid_request_error")
    assert error.request_id is None
    odd = error_from_response(400, httpx2.Headers(), b'{"error": "plain text"}', url=URL)
    assert str(odd) == (
        f"400 from {URL}: plain text. The server refused the request; resending it "
        "unchanged cannot work."
    )


@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        ({"retry-after-ms": "250"}, 0.25),
        ({"retry-after-ms": "nan", "retry-after": "3"}, 3.0),
        ({"retry-after": "1.5"}, 1.5),
        ({"retry-after": "-4"}, 0.0),
        (
            {
                "retry-after": "Wed, 21 Oct 2015 07:28:30 GMT",
                "date": "Wed, 21 Oct 2015 07:28:00 GMT",
            },
            30.0,
        ),
        ({"retry-after": "Wed, 21 Oct 2015 07:28:30 GMT"}, 10.0),  # relative to `now`
        ({"retry-after": "soon"}, None),
        ({}, None),
    ],
)
def test_parse_retry_after(headers: dict[str, str], expected: float | None) -> None:
    now = 1445412500.0  # 07:28:20 GMT that day
    assert parse_retry_after(httpx2.Headers(headers), now=now) == expected


# --- transport errors ------------------------------------------------------------------------

TRANSPORT_TARGETS: dict[type[httpx2.HTTPError], type[RunnerError]] = {
    httpx2.HTTPError: ConnectFailed,
    httpx2.RequestError: ConnectFailed,
    httpx2.TransportError: ConnectFailed,
    httpx2.TimeoutException: ReadTimedOut,
    httpx2.ConnectTimeout: ConnectFailed,
    httpx2.ReadTimeout: ReadTimedOut,
    httpx2.WriteTimeout: ReadTimedOut,
    httpx2.PoolTimeout: ReadTimedOut,
    httpx2.NetworkError: ConnectFailed,
    httpx2.ConnectError: ConnectFailed,
    httpx2.ReadError: ConnectFailed,
    httpx2.WriteError: ConnectFailed,
    httpx2.CloseError: ConnectFailed,
    httpx2.ProtocolError: ConnectFailed,
    httpx2.LocalProtocolError: ConfigError,
    httpx2.RemoteProtocolError: ConnectFailed,
    httpx2.ProxyError: ConnectFailed,
    httpx2.UnsupportedProtocol: ConfigError,
    httpx2.DecodingError: StreamBroken,
    httpx2.TooManyRedirects: ConfigError,
    httpx2.SSEError: StreamBroken,
    httpx2.HTTPStatusError: ServerFailed,
}


def test_every_exported_httpx2_error_is_mapped() -> None:
    exported = {
        obj
        for name in httpx2.__all__
        if isinstance(obj := getattr(httpx2, name), type) and issubclass(obj, httpx2.HTTPError)
    }
    # A new httpx2 error class fails here until someone decides what it means for runner.
    assert exported == set(TRANSPORT_TARGETS)
    assert exported == set(client_mod._TRANSPORT_ERRORS)
    request = httpx2.Request("POST", URL)
    for cls, target in TRANSPORT_TARGETS.items():
        if cls is httpx2.HTTPStatusError:
            response = httpx2.Response(502, content=b"", request=request)
            exc: httpx2.HTTPError = cls("x", request=request, response=response)
        else:
            exc = cls("boom")
        mapped = error_from_transport(exc, url=URL, request_id="req_1", limit=5)
        assert type(mapped) is target, cls
        assert URL in str(mapped) or cls is httpx2.HTTPStatusError


@pytest.mark.parametrize(
    ("exc", "cls", "message"),
    [
        (httpx2.ConnectError("[Errno 111] Connection refused"), ConnectFailed,
         "could not connect to {url} ([Errno 111] Connection refused); check base_url and "
         "the network"),
        (httpx2.ReadTimeout(""), ReadTimedOut,
         "{url} stopped sending before the reply was complete within the 5 s timeout; raise "
         "`timeout` if the model needs longer"),
        (httpx2.SSEError("Expected response with content type 'text/event-stream', got "
                         "'text/html'."), StreamBroken,
         "malformed event stream from {url} (Expected response with content type "
         "'text/event-stream', got 'text/html'.)"),
        (httpx2.UnsupportedProtocol("Request URL has an unsupported protocol 'ftp://'."),
         ConfigError,
         "cannot send a request to {url} (Request URL has an unsupported protocol 'ftp://'.); "
         "base_url must start with http:// or https://"),
    ],
)  # fmt: skip
def test_transport_error_messages(exc: httpx2.HTTPError, cls: type, message: str) -> None:
    mapped = error_from_transport(exc, url=URL, limit=5)
    assert type(mapped) is cls
    assert str(mapped) == message.format(url=URL)


@pytest.mark.anyio
async def test_transport_errors_are_chained() -> None:
    def refuse(request: httpx2.Request) -> httpx2.Response:
        raise httpx2.ConnectError("[Errno 111] Connection refused")

    client, _ = mock_client(refuse)
    async with client:
        with pytest.raises(ConnectFailed) as info:
            await client.complete(body())
    assert isinstance(info.value.__cause__, httpx2.ConnectError)
    assert info.value.url == URL and info.value.retryable


@pytest.mark.anyio
async def test_real_connection_failures_on_loopback() -> None:
    async def hang_up(request: bytes, reader: Any, writer: asyncio.StreamWriter) -> str:
        return "close"

    async def garbage(request: bytes, reader: Any, writer: asyncio.StreamWriter) -> str:
        writer.write(b"NOT HTTP AT ALL\r\n\r\n")
        await writer.drain()
        return "close"

    async def short_body(request: bytes, reader: Any, writer: asyncio.StreamWriter) -> str:
        writer.write(b'HTTP/1.1 200 OK\r\ncontent-length: 500\r\n\r\n{"id": ')
        await writer.drain()
        return "close"

    for script in (hang_up, garbage, short_body):
        async with (
            raw_server(script) as (base, _),
            ChatClient(base_url=base, environ={}) as client,
        ):
            with pytest.raises(ConnectFailed) as info:
                await client.complete(body())
        assert info.value.kind == "connection" and info.value.retryable
        assert info.value.url == f"{base}/chat/completions"

    # Nothing listens on the port of a closed server.
    async with raw_server(hang_up) as (base, _):
        pass
    async with ChatClient(base_url=base, environ={}) as client:
        with pytest.raises(ConnectFailed, match="could not connect to"):
            await client.complete(body())


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


# --- SSE streams -----------------------------------------------------------------------------


def tool_call(id_: str, name: str, arguments: str) -> dict[str, Any]:
    return {"id": id_, "type": "function", "function": {"name": name, "arguments": arguments}}


EXPECTED_STREAMS: dict[str, tuple[str, str, tuple[Choice, ...], Usage | None, str | None]] = {
    "text.sse": (
        "chatcmpl-B9MHDbslfkBeAs8l4bebGdFOJ6PeG", "gpt-4o-2024-08-06",
        (Choice(0, "Paris is the capital of France — café 🗼.", "stop"),),
        Usage(prompt=19, completion=10, cached=6), "fp_f9f4fb6dbf",
    ),
    "n2.sse": (
        "chatcmpl-n2xYzAbC", "gpt-4o-2024-08-06",
        (Choice(0, "Red apples.", "length"), Choice(1, "Blue skies!", "stop")),
        Usage(prompt=19, completion=6), "fp_f9f4fb6dbf",
    ),
    "tool_calls.sse": (
        "chatcmpl-toolsAbC123", "gpt-4o-2024-08-06",
        (Choice(0, None, "tool_calls", tool_calls=(
            tool_call("call_DdmO9pD3xa9XTPNJ32zg2hcA", "get_weather",
                      '{"location":"Paris, France"}'),
            tool_call("call_ABCDEFghijk0123", "get_time", '{"tz":"Europe/Paris"}'),
        )),),
        Usage(prompt=80, completion=40), "fp_f9f4fb6dbf",
    ),
    "refusal.sse": (
        "chatcmpl-refusal987", "gpt-4o-2024-08-06",
        (Choice(0, None, "stop", refusal="I'm sorry, I can't help with that."),),
        Usage(prompt=19, completion=7), "fp_f9f4fb6dbf",
    ),
    "function_call.sse": (
        "chatcmpl-legacyfn", "gpt-3.5-turbo-0613",
        (Choice(0, None, "function_call", function_call={
            "name": "get_weather", "arguments": '{\n  "location": "Boston, MA"\n}'}),),
        None, None,
    ),
    "keepalive_no_done.sse": (
        "gen-1741570283-keepalive", "meta-llama/llama-3.1-8b-instruct",
        (Choice(0, "Hi there", "stop"),), Usage(prompt=5, completion=2), None,
    ),
}  # fmt: skip

BROKEN_STREAMS = {
    "error_event.sse": f"{URL} reported an error mid-stream: The server had an error while "
    "processing your request. Sorry about that! (type server_error)",
    "error_data.sse": f"{URL} reported an error mid-stream: Rate limit reached for gpt-4o in "
    "organization org-abc on tokens per min (TPM). (type tokens, code rate_limit_exceeded)",
    "truncated.sse": f"the stream from {URL} ended early: no [DONE] and no finish_reason for "
    "choice 0; the answer must start over",
    "malformed.sse": f"malformed event stream from {URL}: data is not JSON: "
    '\'{"id":"chatcmpl-bad","choices":[{"index":0,"delta":{"content":"x"\'',
}


def shape(done: Completion) -> tuple[Any, ...]:
    return (done.id, done.model, done.choices, done.usage, done.system_fingerprint)


def splits(raw: bytes) -> Iterable[list[bytes]]:
    """The stream in one piece, a byte at a time, at every single split point, and at 20
    random multi-way splits (seeded)."""
    yield [raw]
    yield [raw[i : i + 1] for i in range(len(raw))]
    for i in range(1, len(raw)):
        yield [raw[:i], raw[i:]]
    rng = random.Random(len(raw))
    for _ in range(20):
        cuts = sorted(rng.sample(range(1, len(raw)), 12))
        yield [raw[a:b] for a, b in zip([0, *cuts], [*cuts, len(raw)], strict=True)]


async def run_stream(
    client: ChatClient, holder: list[list[bytes]], chunks: list[bytes], n: int = 1
) -> tuple[Completion, list[StreamDelta]]:
    holder[0] = chunks
    deltas: list[StreamDelta] = []
    done = await client.stream(body(stream=True, n=n), on_delta=deltas.append)
    return done, deltas


@pytest.mark.parametrize("name", sorted(EXPECTED_STREAMS))
@pytest.mark.anyio
async def test_streams_decode_identically_at_every_split(name: str) -> None:
    raw = (SSE / name).read_bytes()
    holder: list[list[bytes]] = [[]]
    client, _ = mock_client(lambda r: sse_reply(holder[0], **{"x-request-id": "req_s"}))
    n = 2 if name == "n2.sse" else 1
    async with client:
        first, first_deltas = await run_stream(client, holder, [raw], n)
        assert shape(first) == EXPECTED_STREAMS[name]
        assert first.request_id == "req_s"
        for chunks in splits(raw):
            done, deltas = await run_stream(client, holder, chunks, n)
            assert shape(done) == shape(first), chunks
            assert deltas == first_deltas
    texts = {
        c.index: "".join(d.text for d in first_deltas if d.choice == c.index) for c in first.choices
    }
    refusals = "".join(d.refusal for d in first_deltas)
    assert texts == {c.index: c.text or "" for c in first.choices}
    assert refusals == (first.choices[0].refusal or "")
    assert (first.ttft_ms is not None) and 0 < first.ttft_ms <= first.latency_ms


@pytest.mark.parametrize("name", sorted(BROKEN_STREAMS))
@pytest.mark.anyio
async def test_broken_streams_at_every_split(name: str) -> None:
    raw = (SSE / name).read_bytes()
    holder: list[list[bytes]] = [[]]
    client, _ = mock_client(lambda r: sse_reply(holder[0], **{"x-request-id": "req_b"}))
    async with client:
        for chunks in splits(raw):
            with pytest.raises(StreamBroken) as info:
                await run_stream(client, holder, chunks)
            assert str(info.value) == BROKEN_STREAMS[name]
            assert info.value.kind == "connection" and info.value.retryable
            assert info.value.request_id == "req_b"


@pytest.mark.anyio
async def test_stream_edge_cases() -> None:
    raw = (SSE / "n2.sse").read_bytes()
    # Choice 0 finished, choice 1 never did, and no [DONE]: broken.
    partial = b"".join(
        part + b"\n\n"
        for part in raw.split(b"\n\n")
        if part and b'"index":1,"delta":{}' not in part and b"[DONE]" not in part
    )
    holder: list[list[bytes]] = [[]]
    client, _ = mock_client(lambda r: sse_reply(holder[0]))
    async with client:
        with pytest.raises(StreamBroken, match="no finish_reason for choice 1"):
            await run_stream(client, holder, [partial], n=2)
        with pytest.raises(StreamBroken, match="no finish_reason for choice 0"):
            await run_stream(client, holder, [b""])
        # [DONE] ends the stream: anything after it is not read.
        done, _ = await run_stream(client, holder, [(SSE / "text.sse").read_bytes() + b"junk"])
        assert done.text == "Paris is the capital of France — café 🗼."
        for data, problem in [
            (b'{"choices": [{"index": 0, "delta": {"content": 7}}]}',
             "delta content is int, not a string"),
            (b'{"choices": ["x"]}', "'str' object has no attribute 'get'"),
            (b"[1, 2]", "data is not an object"),
        ]:  # fmt: skip
            with pytest.raises(StreamBroken) as info:
                await run_stream(client, holder, [b"data: " + data + b"\n\n"])
            assert str(info.value) == f"malformed event stream from {URL}: {problem}"

        # An error in the caller's callback is the caller's, not a broken stream.
        def explode(delta: StreamDelta) -> None:
            raise KeyError("callback bug")

        holder[0] = [(SSE / "text.sse").read_bytes()]
        with pytest.raises(KeyError, match="callback bug"):
            await client.stream(body(stream=True), on_delta=explode)


@pytest.mark.anyio
async def test_stream_request_answered_with_plain_json_or_wrong_type() -> None:
    replies = iter(
        [
            httpx2.Response(200, json=REPLY),
            httpx2.Response(200, content=b"<html></html>", headers={"content-type": "text/html"}),
        ]
    )
    client, _ = mock_client(lambda r: next(replies))
    async with client:
        done = await client.stream(body(stream=True))
        assert done.text == "Hello" and done.usage == Usage(9, 1)
        with pytest.raises(StreamBroken) as info:
            await client.stream(body(stream=True))
    assert str(info.value) == (
        f"malformed event stream from {URL} (Expected response with content type "
        "'text/event-stream', got 'text/html'.)"
    )


# --- the in-process ASGI transport -----------------------------------------------------------


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


def test_keys_in_custom_auth_headers_are_redacted_too() -> None:
    secret = "tok-1234567890"
    redact = client_mod._redactor([secret])
    assert redact(f"bad token {secret} and sk-proj-abcdef123456") == "bad token sk-*** and sk-***"
    assert redact("a task-based desk-lamp") == "a task-based desk-lamp"
