"""Tests for runner.mock.server: the names it exports, routes, the API key, /v1/models, errors
as OpenAI shapes them, streams and dropped connections on a loopback uvicorn server, and the
official openai SDK against it."""

from __future__ import annotations

import contextlib
import json
import queue
import socket
import threading
from collections.abc import AsyncIterator, Iterator
from random import Random
from typing import Any

import httpx2
import openai
import pydantic
import pytest
from _mock_helpers import CITY, MODEL, TIME_TOOL, WEATHER_TOOL, body, chat, in_process, valid

import runner.mock as mockserver
import runner.mock.server as mock_server_module
import runner.mock.wires as mock_wires_module
from runner.mock import (
    DEFAULT_MODELS,
    REFUSAL,
    create_app,
    generate_instance,
    serve,
)


@pytest.fixture(scope="module")
def server() -> Iterator[str]:
    """The mock server on a free loopback port, in a thread, for the whole module."""
    ports: queue.Queue[int] = queue.Queue()
    stop = threading.Event()
    thread = threading.Thread(
        target=serve, kwargs={"port": 0, "ready": ports.put, "stop": stop}, daemon=True
    )
    thread.start()
    port = ports.get(timeout=15)
    yield f"http://127.0.0.1:{port}/v1"
    stop.set()
    thread.join(10)
    assert not thread.is_alive()


@contextlib.asynccontextmanager
async def loopback(url: str) -> AsyncIterator[httpx2.AsyncClient]:
    async with httpx2.AsyncClient(base_url=url, timeout=10) as client:
        yield client


# --- exports ----------------------------------------------------------------------------------


def test_the_public_names_of_the_mock() -> None:
    # cli, engine and other tests import these from runner.mock, whichever module owns them.
    assert set(mockserver.__all__) == {
        "DEFAULT_MODELS",
        "FAULT_HEADER",
        "REFUSAL",
        "REFUSE_MARKER",
        "Faults",
        "create_app",
        "generate_instance",
        "parse_fault_header",
        "parse_statuses",
        "serve",
    }
    for name in mockserver.__all__:
        assert getattr(mockserver, name) is not None, name
    assert (mockserver.FAULT_HEADER, mockserver.REFUSE_MARKER) == ("x-mock-fault", "[[refuse]]")


def test_generate_instance_is_exported() -> None:
    assert valid(CITY, generate_instance(CITY, Random(0)))


# --- routes, keys and models ------------------------------------------------------------------


@pytest.mark.anyio
async def test_unknown_routes_and_methods() -> None:
    async with in_process() as client:
        missing = await client.post("/completions", json={})
        wrong = await client.get("/chat/completions")
    assert missing.status_code == 404
    assert missing.json()["error"] == {
        "message": "Invalid URL (POST /v1/completions)",
        "type": "invalid_request_error",
        "param": None,
        "code": None,
    }
    assert wrong.status_code == 405
    assert wrong.json()["error"]["message"] == "Invalid method for URL (GET /v1/chat/completions)"
    assert wrong.headers["allow"] == "POST"


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("headers", "message", "code"),
    [
        (
            {},
            "You didn't provide an API key. You need to provide your API key in an "
            "Authorization header using Bearer auth (i.e. Authorization: Bearer YOUR_KEY).",
            None,
        ),
        (
            {"authorization": "Bearer sk-wrong-secret"},
            "Incorrect API key provided. You can find "
            "your API key at https://platform.openai.com/account/api-keys.",
            "invalid_api_key",
        ),
        (
            {"authorization": "Basic sk-right"},
            "Incorrect API key provided. You can find your API "
            "key at https://platform.openai.com/account/api-keys.",
            "invalid_api_key",
        ),
    ],
)
async def test_a_required_key_is_checked(
    headers: dict[str, str], message: str, code: str | None
) -> None:
    async with in_process(api_key="sk-right") as client:
        reply = await chat(client, body(), headers)
        models = await client.get("/models", headers=headers)
    assert reply.status_code == models.status_code == 401
    assert reply.json()["error"] == {
        "message": message,
        "type": "invalid_request_error",
        "param": None,
        "code": code,
    }
    assert "secret" not in reply.text and "sk-right" not in reply.text
    assert not any("secret" in v for v in reply.headers.values())


@pytest.mark.anyio
async def test_the_right_key_is_accepted() -> None:
    async with in_process(api_key="sk-right") as client:
        reply = await chat(client, body(), {"authorization": "Bearer sk-right"})
    assert reply.status_code == 200


@pytest.mark.anyio
async def test_models_are_listed() -> None:
    async with in_process() as client:
        listed = (await client.get("/models")).json()
        one = await client.get("/models/gpt-4o")
        missing = await client.get("/models/nope")
    assert listed["object"] == "list"
    assert [m["id"] for m in listed["data"]] == list(DEFAULT_MODELS)
    assert {"gpt-4o-mini", "gpt-4o", "gpt-4.1", "o3-mini"} <= set(DEFAULT_MODELS)
    assert one.json() == {
        "id": "gpt-4o",
        "object": "model",
        "created": 1_700_000_000,
        "owned_by": "runner-mock",
    }
    assert missing.status_code == 404
    assert missing.json()["error"] == {
        "message": "The model 'nope' does not exist or you do not have access to it.",
        "type": "invalid_request_error",
        "param": "model",
        "code": "model_not_found",
    }


@pytest.mark.anyio
async def test_an_internal_error_gets_an_openai_shaped_500(monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(*args: Any) -> None:
        raise RuntimeError("bug")

    monkeypatch.setattr(mock_wires_module, "build_answer", broken)
    transport = httpx2.ASGITransport(create_app(), raise_app_exceptions=False)
    async with httpx2.AsyncClient(transport=transport, base_url="http://mock/v1") as client:
        reply = await chat(client, body())
    assert reply.status_code == 500
    assert reply.json()["error"] == {
        "message": "The server had an error while processing your request. Sorry about that!",
        "type": "server_error",
        "param": None,
        "code": None,
    }


# --- streams on a real socket -----------------------------------------------------------------


def frames_of(raw: str) -> list[str]:
    assert raw.endswith("\n\n")
    frames = raw[:-2].split("\n\n")
    assert all(f.startswith("data: ") and "\n" not in f for f in frames)
    return [f[len("data: ") :] for f in frames]


async def stream_raw(
    url: str, payload: dict[str, Any], headers: dict[str, str] | None = None
) -> tuple[httpx2.Response, str]:
    async with loopback(url) as client:
        reply = await client.post("/chat/completions", json=payload, headers=headers)
    return reply, reply.text


@pytest.mark.anyio
async def test_stream_frames(server: str) -> None:
    payload = body("Stream it", stream=True, stream_options={"include_usage": True})
    reply, raw = await stream_raw(server, payload)
    async with loopback(server) as client:
        plain = (await chat(client, body("Stream it"))).json()
    assert reply.status_code == 200
    assert reply.headers["content-type"] == "text/event-stream; charset=utf-8"
    frames = frames_of(raw)
    assert frames[-1] == "[DONE]"
    chunks = [json.loads(f) for f in frames[:-1]]
    assert all(c["object"] == "chat.completion.chunk" for c in chunks)
    assert {c["id"] for c in chunks} == {plain["id"]}
    assert chunks[0]["choices"][0]["delta"] == {"role": "assistant", "content": "", "refusal": None}
    *body_chunks, finish, usage = chunks
    assert finish["choices"] == [
        {"index": 0, "delta": {}, "logprobs": None, "finish_reason": "stop"}
    ]
    assert usage["choices"] == [] and usage["usage"] == plain["usage"]
    assert all(c["usage"] is None for c in body_chunks + [finish])
    pieces = [c["choices"][0]["delta"].get("content", "") for c in body_chunks]
    assert len([p for p in pieces if p]) >= 5
    assert "".join(pieces) == plain["choices"][0]["message"]["content"]


@pytest.mark.anyio
async def test_stream_without_usage_has_no_usage_key(server: str) -> None:
    _, raw = await stream_raw(server, body(stream=True, n=2))
    frames = frames_of(raw)
    chunks = [json.loads(f) for f in frames[:-1]]
    assert all("usage" not in c for c in chunks)
    finishes = [c["choices"][0] for c in chunks if c["choices"][0]["finish_reason"]]
    assert [(f["index"], f["finish_reason"]) for f in finishes] == [(0, "stop"), (1, "stop")]
    texts = ["", ""]
    for c in chunks:
        choice = c["choices"][0]
        texts[choice["index"]] += choice["delta"].get("content") or ""
    async with loopback(server) as client:
        plain = (await chat(client, body(n=2))).json()
    assert texts == [c["message"]["content"] for c in plain["choices"]]


@pytest.mark.anyio
async def test_streamed_tool_calls_assemble_to_the_plain_ones(server: str) -> None:
    tools = [WEATHER_TOOL, TIME_TOOL]
    payload = body(tools=tools, parallel_tool_calls=True)
    _, raw = await stream_raw(server, {**payload, "stream": True})
    async with loopback(server) as client:
        plain = (await chat(client, payload)).json()["choices"][0]["message"]["tool_calls"]
    calls: dict[int, dict[str, Any]] = {}
    finish = None
    for frame in frames_of(raw)[:-1]:
        choice = json.loads(frame)["choices"][0]
        finish = choice["finish_reason"] or finish
        for delta in choice["delta"].get("tool_calls", []):
            call = calls.setdefault(delta["index"], {"function": {"arguments": ""}})
            if "id" in delta:
                call.update(id=delta["id"], type=delta["type"])
                call["function"]["name"] = delta["function"]["name"]
            call["function"]["arguments"] += delta["function"]["arguments"]
    assert [calls[i] for i in sorted(calls)] == plain
    assert finish == "tool_calls"
    assert sum('"arguments"' in f for f in frames_of(raw)) > 4  # arguments come in fragments


@pytest.mark.anyio
async def test_streamed_refusal(server: str) -> None:
    _, raw = await stream_raw(server, body("no [[refuse]]", stream=True))
    deltas = [json.loads(f)["choices"][0]["delta"] for f in frames_of(raw)[:-1]]
    assert deltas[0] == {"role": "assistant", "content": None, "refusal": ""}
    assert "".join(d.get("refusal") or "" for d in deltas) == REFUSAL


@pytest.mark.anyio
async def test_a_truncated_stream_ends_cleanly_before_finishing(server: str) -> None:
    payload = body("cut", stream=True, stream_options={"include_usage": True})
    reply, raw = await stream_raw(server, payload, {"X-Mock-Fault": "truncate"})
    assert reply.status_code == 200
    frames = frames_of(raw)
    assert "[DONE]" not in frames
    assert all(json.loads(f)["choices"][0]["finish_reason"] is None for f in frames)


@pytest.mark.anyio
async def test_a_malformed_stream_has_a_garbage_line(server: str) -> None:
    reply, raw = await stream_raw(server, body(stream=True), {"X-Mock-Fault": "malformed"})
    frames = frames_of(raw)
    assert frames.count("{not json") == 1
    assert frames.index("{not json") > 0
    assert frames[-1] == "[DONE]"


@pytest.mark.anyio
@pytest.mark.parametrize("stream", [True, False])
async def test_a_dropped_connection_breaks_the_reply(server: str, stream: bool) -> None:
    async with loopback(server) as client:
        with pytest.raises(httpx2.RemoteProtocolError):
            await chat(client, body("drop me", stream=stream), {"X-Mock-Fault": "drop"})
        after = await chat(client, body("drop me", stream=stream))
    assert after.status_code == 200  # the server itself is fine


def test_the_listening_socket_says_tcp() -> None:
    # asyncio sets TCP_NODELAY only on IPPROTO_TCP sockets; without it every kept-alive reply
    # waits 40 ms for a delayed ACK (a benchmark at concurrency 1 showed it).
    sock = mock_server_module._bind("127.0.0.1", 0)
    with sock:
        assert sock.proto == socket.IPPROTO_TCP
        assert sock.getsockname()[1] > 0


def test_serve_raises_when_the_port_is_taken() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        busy = probe.getsockname()[1]
        probe.listen()
        with pytest.raises(OSError):
            serve(host="127.0.0.1", port=busy)


# --- the official SDK -------------------------------------------------------------------------


class CityModel(pydantic.BaseModel):
    name: str
    country: str
    population: int = pydantic.Field(ge=0)
    landmarks: list[str]


def test_sdk_plain_completion(server: str) -> None:
    with openai.OpenAI(base_url=server, api_key="sk-test", max_retries=0) as client:
        reply = client.chat.completions.create(
            model=MODEL, messages=[{"role": "user", "content": "Hello"}], n=2
        )
    assert len(reply.choices) == 2
    assert reply.choices[0].message.content
    assert reply.usage is not None and reply.usage.total_tokens > 0
    assert reply.system_fingerprint == "fp_runner_mock"


@pytest.mark.anyio
async def test_sdk_stream_with_usage(server: str) -> None:
    async with openai.AsyncOpenAI(base_url=server, api_key="sk-test", max_retries=0) as client:
        stream = await client.chat.completions.create(
            model=MODEL,
            messages=[{"role": "user", "content": "Hello"}],
            stream=True,
            stream_options={"include_usage": True},
        )
        async with stream:
            chunks = [chunk async for chunk in stream]
        plain = await client.chat.completions.create(
            model=MODEL, messages=[{"role": "user", "content": "Hello"}]
        )
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == plain.choices[0].message.content
    assert chunks[-1].choices == []
    assert chunks[-1].usage == plain.usage


@pytest.mark.anyio
async def test_sdk_tools_and_parse(server: str) -> None:
    async with openai.AsyncOpenAI(base_url=server, api_key="sk-test", max_retries=0) as client:
        tooled = await client.chat.completions.create(
            model=MODEL,
            messages=[{"role": "user", "content": "Weather?"}],
            tools=[WEATHER_TOOL],  # type: ignore[list-item]
        )
        parsed = await client.chat.completions.parse(
            model=MODEL,
            messages=[{"role": "user", "content": "Tell me about a city."}],
            response_format=CityModel,
        )
        parsed_tool = await client.chat.completions.parse(
            model=MODEL,
            messages=[{"role": "user", "content": "Find a city."}],
            tools=[openai.pydantic_function_tool(CityModel)],
        )
    call = tooled.choices[0].message.tool_calls[0]  # type: ignore[index]
    assert call.function.name == "get_weather"  # type: ignore[union-attr]
    city = parsed.choices[0].message.parsed
    assert isinstance(city, CityModel)
    assert city.name in {
        "Paris",
        "Lyon",
        "Berlin",
        "Madrid",
        "Lisbon",
        "Rome",
        "Vienna",
        "Oslo",
        "Tokyo",
        "Lima",
    }
    [tool_call] = parsed_tool.choices[0].message.tool_calls  # type: ignore[misc]
    assert isinstance(tool_call.function.parsed_arguments, CityModel)


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("fault", "error"),
    [
        ("status=429;retry_after=1", openai.RateLimitError),
        ("status=quota", openai.RateLimitError),
        ("status=500", openai.InternalServerError),
        ("status=503", openai.InternalServerError),
        ("status=404", openai.NotFoundError),
        ("status=400", openai.BadRequestError),
    ],
)
async def test_sdk_raises_its_matching_error(
    server: str, fault: str, error: type[openai.APIStatusError]
) -> None:
    async with openai.AsyncOpenAI(base_url=server, api_key="sk-test", max_retries=0) as client:
        with pytest.raises(error) as info:
            await client.chat.completions.create(
                model=MODEL,
                messages=[{"role": "user", "content": "Hello"}],
                extra_headers={"X-Mock-Fault": fault},
            )
    assert info.value.request_id is not None
    assert info.value.request_id.startswith("req_")


@pytest.mark.anyio
async def test_sdk_authentication_error_in_process() -> None:
    transport = httpx2.ASGITransport(create_app(api_key="sk-right"))
    async with (
        httpx2.AsyncClient(transport=transport) as http,
        openai.AsyncOpenAI(
            base_url="http://mock/v1", api_key="sk-wrong", max_retries=0, http_client=http
        ) as client,
    ):
        with pytest.raises(openai.AuthenticationError) as info:
            await client.models.list()
    assert info.value.code == "invalid_api_key"
    assert "sk-wrong" not in str(info.value)


@pytest.mark.anyio
async def test_sdk_breaks_on_a_malformed_stream(server: str) -> None:
    async with openai.AsyncOpenAI(base_url=server, api_key="sk-test", max_retries=0) as client:
        stream = await client.chat.completions.create(
            model=MODEL,
            messages=[{"role": "user", "content": "Hello"}],
            stream=True,
            extra_headers={"X-Mock-Fault": "malformed"},
        )
        with pytest.raises(json.JSONDecodeError):
            async with stream:
                async for _ in stream:
                    pass
