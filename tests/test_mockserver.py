"""Tests for runner.mockserver: reply shapes, usage, schema-valid answers, errors, seeded faults
and the X-Mock-Fault header, in-process (httpx2's ASGITransport) and on a loopback uvicorn server
(streams, drops), and the official openai SDK against it."""

from __future__ import annotations

import contextlib
import json
import queue
import re
import socket
import threading
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from random import Random
from typing import Any

import httpx2
import jsonschema
import openai
import pydantic
import pytest

from runner import mockserver, tokens
from runner.mockserver import (
    DEFAULT_MODELS,
    REFUSAL,
    Faults,
    create_app,
    generate_instance,
    parse_duration,
    parse_fault_header,
    parse_statuses,
    serve,
)

MODEL = "gpt-4o-mini"
CORPUS = Path(__file__).parent / "data" / "strict-schemas"
CITY = json.loads((CORPUS / "city.json").read_text())
WEATHER_TOOL = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Weather in a city.",
        "strict": True,
        "parameters": {
            "type": "object",
            "properties": {
                "city": {"type": "string"},
                "unit": {"type": "string", "enum": ["celsius", "fahrenheit"]},
                "days": {"type": "integer", "minimum": 1, "maximum": 7},
            },
            "required": ["city", "unit", "days"],
            "additionalProperties": False,
        },
    },
}
TIME_TOOL = {
    "type": "function",
    "function": {
        "name": "get_time",
        "parameters": {
            "type": "object",
            "properties": {"timezone": {"type": "string", "pattern": "^[A-Z][a-z]+/[A-Z][a-z]+$"}},
            "required": ["timezone"],
            "additionalProperties": False,
        },
    },
}


def body(text: str = "Tell me about Paris.", **extra: Any) -> dict[str, Any]:
    return {"model": MODEL, "messages": [{"role": "user", "content": text}], **extra}


def valid(schema: dict[str, Any], instance: Any) -> bool:
    checker = jsonschema.Draft202012Validator.FORMAT_CHECKER
    return bool(jsonschema.Draft202012Validator(schema, format_checker=checker).is_valid(instance))


@contextlib.asynccontextmanager
async def in_process(app: Any = None, **kw: Any) -> AsyncIterator[httpx2.AsyncClient]:
    transport = httpx2.ASGITransport(app or create_app(**kw))
    async with httpx2.AsyncClient(transport=transport, base_url="http://mock/v1") as client:
        yield client


async def chat(
    client: httpx2.AsyncClient, payload: Any, headers: dict[str, str] | None = None
) -> httpx2.Response:
    return await client.post("/chat/completions", json=payload, headers=headers)


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


# --- shapes and usage -------------------------------------------------------------------------


@pytest.mark.anyio
async def test_plain_reply_has_openai_shape() -> None:
    async with in_process() as client:
        reply = await chat(client, body())
    assert reply.status_code == 200
    assert reply.headers["content-type"] == "application/json"
    assert re.fullmatch(r"req_[0-9a-f]{32}", reply.headers["x-request-id"])
    data = reply.json()
    assert set(data) == {
        "id",
        "object",
        "created",
        "model",
        "choices",
        "usage",
        "service_tier",
        "system_fingerprint",
    }
    assert re.fullmatch(r"chatcmpl-[0-9a-f]{29}", data["id"])
    assert data["object"] == "chat.completion"
    assert isinstance(data["created"], int)
    assert data["model"] == MODEL
    assert data["system_fingerprint"] == "fp_runner_mock"
    [choice] = data["choices"]
    assert choice["index"] == 0
    assert choice["logprobs"] is None
    assert choice["finish_reason"] == "stop"
    message = choice["message"]
    assert set(message) == {"role", "content", "refusal", "annotations"}
    assert message["role"] == "assistant"
    assert message["refusal"] is None
    assert message["annotations"] == []
    assert message["content"].startswith('Mock answer to "Tell me about Paris.".')
    assert data["usage"]["prompt_tokens_details"] == {"cached_tokens": 0, "audio_tokens": 0}
    assert data["usage"]["completion_tokens_details"] == {
        "reasoning_tokens": 0,
        "audio_tokens": 0,
        "accepted_prediction_tokens": 0,
        "rejected_prediction_tokens": 0,
    }


@pytest.mark.anyio
async def test_usage_is_counted_with_the_tokenizer() -> None:
    messages = [
        {"role": "system", "content": "You are terse."},
        {"role": "user", "name": "ada", "content": "Weather in Oslo?"},
    ]
    payload = {"model": MODEL, "messages": messages, "tools": [WEATHER_TOOL], "n": 2}
    async with in_process() as client:
        data = (await chat(client, payload)).json()
    usage = data["usage"]
    assert usage["prompt_tokens"] == tokens.count_messages(messages, MODEL, tools=[WEATHER_TOOL])
    completion = 0
    for choice in data["choices"]:
        for call in choice["message"]["tool_calls"]:
            fn = call["function"]
            completion += tokens.count_text(fn["name"], MODEL)
            completion += tokens.count_text(fn["arguments"], MODEL)
    assert usage["completion_tokens"] == completion
    assert usage["total_tokens"] == usage["prompt_tokens"] + completion


@pytest.mark.anyio
async def test_n_choices_are_distinct_and_usage_adds_up() -> None:
    async with in_process() as client:
        data = (await chat(client, body(n=3))).json()
    texts = [c["message"]["content"] for c in data["choices"]]
    assert [c["index"] for c in data["choices"]] == [0, 1, 2]
    assert len(set(texts)) == 3
    assert data["usage"]["completion_tokens"] == sum(tokens.count_text(t, MODEL) for t in texts)


@pytest.mark.anyio
async def test_n_does_not_change_the_first_choice() -> None:
    async with in_process() as client:
        one = (await chat(client, body())).json()
        three = (await chat(client, body(n=3))).json()
    assert three["choices"][0] == one["choices"][0]
    assert three["id"] != one["id"]  # a different request all the same


@pytest.mark.anyio
@pytest.mark.parametrize("param", ["max_tokens", "max_completion_tokens"])
async def test_max_tokens_cuts_the_text(param: str) -> None:
    async with in_process() as client:
        full = (await chat(client, body())).json()["choices"][0]["message"]["content"]
        data = (await chat(client, body(**{param: 7}))).json()
    choice = data["choices"][0]
    assert choice["finish_reason"] == "length"
    text = choice["message"]["content"]
    assert full.startswith(text)
    assert 0 < tokens.count_text(text, MODEL) <= 7
    assert data["usage"]["completion_tokens"] == tokens.count_text(text, MODEL)


@pytest.mark.anyio
async def test_a_long_enough_limit_changes_nothing() -> None:
    async with in_process() as client:
        full = (await chat(client, body())).json()["choices"][0]
        roomy = (await chat(client, body(max_tokens=4000))).json()["choices"][0]
    assert roomy == full


@pytest.mark.anyio
async def test_stop_sequences_cut_before_the_first_match() -> None:
    async with in_process() as client:
        full = (await chat(client, body())).json()["choices"][0]["message"]["content"]
        assert "\n\n" in full
        stops = ["\n\n", "zzz-never"]
        data = (await chat(client, body(stop=stops))).json()
        single = (await chat(client, body(stop="\n\n"))).json()
    choice = data["choices"][0]
    assert choice["message"]["content"] == full[: full.index("\n\n")]
    assert choice["finish_reason"] == "stop"
    assert single["choices"][0]["message"]["content"] == choice["message"]["content"]


@pytest.mark.anyio
async def test_stop_applies_before_max_tokens() -> None:
    async with in_process() as client:
        full = (await chat(client, body())).json()["choices"][0]["message"]["content"]
        first = full[: full.index(".") + 1]
        short = (await chat(client, body(stop=".", max_tokens=500))).json()["choices"][0]
    assert short["message"]["content"] == first[:-1]
    assert short["finish_reason"] == "stop"


# --- structured answers -----------------------------------------------------------------------


def schema_format(schema: dict[str, Any], name: str = "answer") -> dict[str, Any]:
    return {"type": "json_schema", "json_schema": {"name": name, "strict": True, "schema": schema}}


@pytest.mark.anyio
@pytest.mark.parametrize("name", ["city", "defs-chain", "ui-root-recursive", "formats"])
async def test_json_schema_answers_are_valid(name: str) -> None:
    schema = json.loads((CORPUS / f"{name}.json").read_text())
    async with in_process() as client:
        data = (await chat(client, body(response_format=schema_format(schema, name), n=3))).json()
    for choice in data["choices"]:
        assert choice["finish_reason"] == "stop"
        content = choice["message"]["content"]
        assert valid(schema, json.loads(content))
        assert ": " not in content.split('"')[0]  # compact, as the API writes it


@pytest.mark.anyio
async def test_json_cut_by_max_tokens_is_cut() -> None:
    async with in_process() as client:
        reply = await chat(client, body(response_format=schema_format(CITY), max_tokens=5))
    choice = reply.json()["choices"][0]
    assert choice["finish_reason"] == "length"
    with pytest.raises(json.JSONDecodeError):
        json.loads(choice["message"]["content"])


@pytest.mark.anyio
async def test_json_object_answer_is_an_object() -> None:
    async with in_process() as client:
        reply = await chat(client, body("Answer in JSON.", response_format={"type": "json_object"}))
    assert isinstance(json.loads(reply.json()["choices"][0]["message"]["content"]), dict)


@pytest.mark.anyio
async def test_tool_call_arguments_are_valid() -> None:
    async with in_process() as client:
        data = (await chat(client, body("Weather in Oslo?", tools=[WEATHER_TOOL], n=2))).json()
    for choice in data["choices"]:
        assert choice["finish_reason"] == "tool_calls"
        message = choice["message"]
        assert message["content"] is None
        [call] = message["tool_calls"]
        assert re.fullmatch(r"call_[0-9a-f]{24}", call["id"])
        assert call["type"] == "function"
        assert call["function"]["name"] == "get_weather"
        args = json.loads(call["function"]["arguments"])
        assert valid(WEATHER_TOOL["function"]["parameters"], args)


@pytest.mark.anyio
async def test_tool_choice_rules() -> None:
    tools = [WEATHER_TOOL, TIME_TOOL]
    named = {"type": "function", "function": {"name": "get_time"}}
    async with in_process() as client:
        auto = (await chat(client, body(tools=tools))).json()["choices"][0]["message"]
        chosen = (await chat(client, body(tools=tools, tool_choice=named))).json()
        parallel = (await chat(client, body(tools=tools, parallel_tool_calls=True))).json()
        off = (await chat(client, body(tools=tools, tool_choice="none"))).json()
        after = {
            "model": MODEL,
            "tools": tools,
            "messages": [
                {"role": "user", "content": "Weather in Oslo?"},
                {"role": "assistant", "content": None, "tool_calls": auto["tool_calls"]},
                {"role": "tool", "tool_call_id": auto["tool_calls"][0]["id"], "content": "12 C"},
            ],
        }
        answered = (await chat(client, after)).json()["choices"][0]
    assert [c["function"]["name"] for c in auto["tool_calls"]] == ["get_weather"]
    [call] = chosen["choices"][0]["message"]["tool_calls"]
    assert call["function"]["name"] == "get_time"
    assert valid(TIME_TOOL["function"]["parameters"], json.loads(call["function"]["arguments"]))
    calls = parallel["choices"][0]["message"]["tool_calls"]
    assert [c["function"]["name"] for c in calls] == ["get_weather", "get_time"]
    assert len({c["id"] for c in calls}) == 2
    assert off["choices"][0]["finish_reason"] == "stop"
    assert "tool_calls" not in off["choices"][0]["message"]
    assert answered["finish_reason"] == "stop"
    assert answered["message"]["content"].startswith('Mock answer to "Weather in Oslo?".')


@pytest.mark.anyio
async def test_legacy_functions_get_a_function_call() -> None:
    functions = [WEATHER_TOOL["function"]]
    async with in_process() as client:
        data = (await chat(client, body(functions=functions))).json()
    choice = data["choices"][0]
    assert choice["finish_reason"] == "function_call"
    call = choice["message"]["function_call"]
    assert call["name"] == "get_weather"
    assert valid(functions[0]["parameters"], json.loads(call["arguments"]))


@pytest.mark.anyio
async def test_the_refusal_marker_gets_a_refusal() -> None:
    async with in_process() as client:
        data = (await chat(client, body("Do the bad thing [[refuse]]", n=2))).json()
    for choice in data["choices"]:
        assert choice["message"]["content"] is None
        assert choice["message"]["refusal"] == REFUSAL
        assert choice["finish_reason"] == "stop"
    assert data["usage"]["completion_tokens"] == 2 * tokens.count_text(REFUSAL, MODEL)


# --- determinism ------------------------------------------------------------------------------


@pytest.mark.anyio
async def test_answers_are_deterministic() -> None:
    payload = body(response_format=schema_format(CITY), n=2)
    async with in_process() as one, in_process() as two, in_process(faults=Faults(seed=9)) as other:
        a = (await chat(one, payload)).json()
        b = (await chat(one, payload)).json()
        c = (await chat(two, payload)).json()
        reseeded = (await chat(one, {**payload, "seed": 7})).json()
        other_seed = (await chat(other, payload)).json()
    assert a["id"] == b["id"] == c["id"]
    assert a["choices"] == b["choices"] == c["choices"]
    assert reseeded["choices"] != a["choices"]
    assert other_seed["choices"] != a["choices"]


def test_generate_instance_is_exported() -> None:
    assert valid(CITY, generate_instance(CITY, Random(0)))


# --- request errors ---------------------------------------------------------------------------

REASONING = "o3-mini"


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("payload", "message", "param", "code"),
    [
        (
            b"{nope",
            "We could not parse the JSON body of your request. The OpenAI API expects a "
            "JSON payload, but what was sent was not valid JSON.",
            None,
            None,
        ),
        (
            [1],
            "Invalid type for 'body': expected an object, but got an array instead.",
            "body",
            "invalid_type",
        ),
        (
            {"messages": []},
            "Missing required parameter: 'model'.",
            "model",
            "missing_required_parameter",
        ),
        (
            {"model": 4, "messages": []},
            "Invalid type for 'model': expected a non-empty string, but got an integer instead.",
            "model",
            "invalid_type",
        ),
        (
            {"model": MODEL},
            "Missing required parameter: 'messages'.",
            "messages",
            "missing_required_parameter",
        ),
        (
            {"model": MODEL, "messages": "hi"},
            "Invalid type for 'messages': expected an array, but got a string instead.",
            "messages",
            "invalid_type",
        ),
        (
            {"model": MODEL, "messages": []},
            "Invalid 'messages': empty array. Expected an array "
            "with minimum length 1, but got an empty array instead.",
            "messages",
            "empty_array",
        ),
        (
            {"model": MODEL, "messages": [None]},
            "Invalid type for 'messages[0]': expected an object, but got null instead.",
            "messages[0]",
            "invalid_type",
        ),
        (
            {"model": MODEL, "messages": [{"content": "x"}]},
            "Missing required parameter: 'messages[0].role'.",
            "messages[0].role",
            "missing_required_parameter",
        ),
        (
            {"model": MODEL, "messages": [{"role": "robot"}]},
            'Invalid value: "robot". Supported '
            "values are: 'system', 'assistant', 'user', 'function', 'tool', and 'developer'.",
            "messages[0].role",
            "invalid_value",
        ),
        (
            body(n=0),
            "Invalid 'n': integer below minimum value. Expected a value >= 1, but got 0 instead.",
            "n",
            "integer_below_min_value",
        ),
        (
            body(n=129),
            "Invalid 'n': integer above maximum value. Expected a value <= 128, but "
            "got 129 instead.",
            "n",
            "integer_above_max_value",
        ),
        (
            body(n=True),
            "Invalid type for 'n': expected an integer, but got a boolean instead.",
            "n",
            "invalid_type",
        ),
        (
            body(max_tokens=0),
            "Invalid 'max_tokens': integer below minimum value. Expected a value "
            ">= 1, but got 0 instead.",
            "max_tokens",
            "integer_below_min_value",
        ),
        (
            {**body(max_tokens=5), "model": REASONING},
            "Unsupported parameter: 'max_tokens' is not "
            "supported with this model. Use 'max_completion_tokens' instead.",
            "max_tokens",
            "unsupported_parameter",
        ),
        (
            body(stop=5),
            "Invalid type for 'stop': expected a string or an array of strings, but "
            "got an integer instead.",
            "stop",
            "invalid_type",
        ),
        (
            body(stop=list("abcde")),
            "Invalid 'stop': array too long. Expected an array with "
            "maximum length 4, but got an array with length 5 instead.",
            "stop",
            "array_above_max_length",
        ),
        (
            body(stream_options={"include_usage": True}),
            "The 'stream_options' parameter is only allowed when 'stream' is enabled.",
            "stream_options",
            None,
        ),
        (
            body(response_format="json"),
            "Invalid type for 'response_format': expected an object, but got a string instead.",
            "response_format",
            "invalid_type",
        ),
        (
            body(response_format={"type": "xml"}),
            'Invalid value: "xml". Supported values are: '
            "'text', 'json_object', and 'json_schema'.",
            "response_format.type",
            "invalid_value",
        ),
        (
            body(response_format={"type": "json_schema"}),
            "Missing required parameter: 'response_format.json_schema'.",
            "response_format.json_schema",
            "missing_required_parameter",
        ),
        (
            body(response_format={"type": "json_schema", "json_schema": {"schema": {}}}),
            "Missing required parameter: 'response_format.json_schema.name'.",
            "response_format.json_schema.name",
            "missing_required_parameter",
        ),
        (
            body(response_format={"type": "json_object"}),
            "'messages' must contain the word 'json' "
            "in some form, to use 'response_format' of type 'json_object'.",
            "messages",
            None,
        ),
        (
            body(response_format=schema_format({"type": "string", "pattern": "(?=a)"}, "x")),
            "Invalid schema for response_format 'x': the mock server cannot generate a value for "
            "it: pattern '(?=a)': lookarounds are not supported by the mock server.",
            "response_format",
            "invalid_json_schema",
        ),
        (
            body(
                tools=[
                    {
                        "type": "function",
                        "function": {
                            "name": "f",
                            "parameters": {"type": "object", "properties": []},
                        },
                    }
                ]
            ),
            "Invalid schema for function 'f': the mock server cannot generate a value for it: "
            "'list' object has no attribute 'items'.",
            "tools",
            "invalid_json_schema",
        ),
        (
            body(tool_choice="auto"),
            "Invalid value for 'tool_choice': 'tool_choice' is only "
            "allowed when 'tools' are specified.",
            "tool_choice",
            None,
        ),
        (
            body(tools={}),
            "Invalid type for 'tools': expected an array, but got an object instead.",
            "tools",
            "invalid_type",
        ),
        (
            body(tools=[{"type": "function", "function": {}}]),
            "Missing required parameter: 'tools[0].function.name'.",
            "tools[0].function.name",
            "missing_required_parameter",
        ),
        (
            body(tools=[WEATHER_TOOL], tool_choice={"type": "function", "function": {"name": "x"}}),
            "Invalid value for 'tool_choice': function \"x\" is not among the function 'tools'.",
            "tool_choice",
            None,
        ),
        (
            body(functions=[{"parameters": {}}]),
            "Missing required parameter: 'functions[0].name'.",
            "functions[0].name",
            "missing_required_parameter",
        ),
    ],
)
async def test_bad_requests_get_openai_errors(
    payload: Any, message: str, param: str | None, code: str | None
) -> None:
    content = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
    async with in_process() as client:
        reply = await client.post("/chat/completions", content=content)
    assert reply.status_code == 400
    assert reply.json() == {
        "error": {"message": message, "type": "invalid_request_error", "param": param, "code": code}
    }
    assert reply.headers["x-request-id"].startswith("req_")


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

    monkeypatch.setattr(mockserver, "_answer", broken)
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


# --- faults -----------------------------------------------------------------------------------


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("status", "code", "type_", "message"),
    [
        (
            429,
            429,
            "requests",
            f"Rate limit reached for {MODEL} on requests per min (RPM): "
            "Limit 500, Used 500, Requested 1. (mock fault)",
        ),
        (
            "quota",
            429,
            "insufficient_quota",
            "You exceeded your current quota, please check your plan and billing details.",
        ),
        (
            500,
            500,
            "server_error",
            "The server had an error while processing your request. Sorry about that!",
        ),
        (
            503,
            503,
            "server_error",
            "The engine is currently overloaded, please try again later.",
        ),
        (502, 502, "server_error", "The server returned status 502. (mock fault)"),
        (400, 400, "invalid_request_error", "Mock fault: status 400."),
    ],
)
async def test_fault_statuses_have_realistic_bodies(
    status: int | str, code: int, type_: str, message: str
) -> None:
    faults = Faults(fail_rate=1.0, statuses=(status,), retry_after=1.5)
    async with in_process(faults=faults) as client:
        reply = await chat(client, body())
    assert reply.status_code == code
    error = reply.json()["error"]
    assert (error["type"], error["message"]) == (type_, message)
    expected_code = {429: "rate_limit_exceeded", "quota": "insufficient_quota"}.get(status)
    assert error["code"] == expected_code
    assert reply.headers["retry-after"] == "1.5"
    assert reply.headers["retry-after-ms"] == "1500"


@pytest.mark.anyio
async def test_no_retry_after_unless_configured() -> None:
    async with in_process(faults=Faults(fail_rate=1.0, statuses=(429,))) as client:
        reply = await chat(client, body())
    assert reply.status_code == 429
    assert "retry-after" not in reply.headers


@pytest.mark.anyio
async def test_fail_first_fails_each_distinct_request_n_times() -> None:
    async with in_process(faults=Faults(fail_first=2, statuses=(503,))) as client:
        first = [await chat(client, body("one")) for _ in range(3)]
        second = [(await chat(client, body("two"))).status_code for _ in range(3)]
        streamed = (await chat(client, body("one", stream=True))).status_code
    assert [r.status_code for r in first] == second == [503, 503, 200]
    assert streamed == 200  # the same request, streamed: its fourth try
    assert len({r.headers["x-request-id"] for r in first}) == 3  # one id per attempt


async def _statuses(faults: Faults, count: int = 30) -> list[int]:
    async with in_process(faults=faults) as client:
        return [(await chat(client, body(f"question {i}"))).status_code for i in range(count)]


@pytest.mark.anyio
async def test_fault_rolls_are_reproducible() -> None:
    faults = Faults(fail_rate=0.5, statuses=(429, 500), seed=1)
    first = await _statuses(faults)
    assert first == await _statuses(faults)
    assert {200, 429, 500} <= set(first)
    assert first != await _statuses(Faults(fail_rate=0.5, statuses=(429, 500), seed=2))
    assert set(await _statuses(Faults(fail_rate=0.0))) == {200}


@pytest.mark.anyio
async def test_invalid_output_breaks_what_was_asked() -> None:
    async with in_process(faults=Faults(invalid_output_rate=1.0)) as client:
        structured = (await chat(client, body(response_format=schema_format(CITY)))).json()
        loose = (await chat(client, body("json", response_format={"type": "json_object"}))).json()
        tool = (await chat(client, body(tools=[WEATHER_TOOL]))).json()
        text = (await chat(client, body())).json()
    assert not valid(CITY, json.loads(structured["choices"][0]["message"]["content"]))
    with pytest.raises(json.JSONDecodeError):
        json.loads(loose["choices"][0]["message"]["content"])
    args = tool["choices"][0]["message"]["tool_calls"][0]["function"]["arguments"]
    assert not valid(WEATHER_TOOL["function"]["parameters"], json.loads(args))
    assert text["choices"][0]["message"]["content"].startswith("Mock answer")


@pytest.mark.anyio
async def test_non_stream_truncate_and_malformed_bodies() -> None:
    async with in_process(faults=Faults(truncate_rate=1.0)) as client:
        cut = await chat(client, body())
    async with in_process(faults=Faults(malformed_rate=1.0)) as client:
        bad = await chat(client, body())
    async with in_process() as client:
        whole = await chat(client, body())
    assert cut.status_code == bad.status_code == 200
    assert whole.content.startswith(cut.content)
    assert int(cut.headers["content-length"]) == len(cut.content) < len(whole.content)
    assert bad.content == b"{not json"


@pytest.mark.anyio
async def test_a_drop_in_process_surfaces_as_a_reset_connection() -> None:
    async with in_process(faults=Faults(drop_rate=1.0)) as client:
        with pytest.raises(ConnectionResetError, match="dropped the connection"):
            await chat(client, body())


@pytest.mark.anyio
async def test_latency_waits_with_the_injected_sleep() -> None:
    waits: list[float] = []

    async def sleep(seconds: float) -> None:
        waits.append(seconds)

    app = create_app(Faults(latency=0.1), sleep=sleep)
    async with in_process(app) as client:
        await chat(client, body())
        await chat(client, body(), {"x-mock-fault": "latency=250ms"})
        await chat(client, body(), {"x-mock-fault": "status=500;latency=2s"})
    assert waits == [0.1, 0.25, 2.0]


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("header", "statuses"),
    [
        ("status=503", [503, 503, 503]),
        ("status=429;retry_after=2s", [429, 429, 429]),
        ("fail_first=2", [500, 500, 200]),
        ("fail_first=1;status=quota", [429, 200, 200]),
        (" status = 502 ; ", [502, 502, 502]),
        ("", [200, 200, 200]),
    ],
)
async def test_the_fault_header_forces_statuses(header: str, statuses: list[int]) -> None:
    async with in_process() as client:
        got = [(await chat(client, body(), {"X-Mock-Fault": header})).status_code for _ in "abc"]
        plain = (await chat(client, body())).status_code
    assert got == statuses
    assert plain == 200  # the header's counter is its own


@pytest.mark.anyio
async def test_the_fault_header_retry_after() -> None:
    async with in_process() as client:
        reply = await chat(client, body(), {"X-Mock-Fault": "status=429;retry_after=2"})
    assert reply.headers["retry-after"] == "2"
    assert reply.headers["retry-after-ms"] == "2000"


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("header", "message"),
    [
        (
            "explode",
            "invalid x-mock-fault header: unknown fault 'explode'; use status, "
            "fail_first, retry_after, latency, drop, truncate, malformed, invalid_output",
        ),
        (
            "status=200",
            "invalid x-mock-fault header: invalid status '200' in '200': use HTTP "
            "error statuses (400-599) or quota, separated by commas",
        ),
        (
            "fail_first=x",
            "invalid x-mock-fault header: fail_first must be a whole number, not 'x'",
        ),
        ("fail_first=-1", "invalid x-mock-fault header: fail_first must be 0 or more, not -1"),
        (
            "latency=soon",
            "invalid x-mock-fault header: invalid duration 'soon': use a number "
            "with ms, s or m, such as 100ms",
        ),
    ],
)
async def test_a_bad_fault_header_is_a_400(header: str, message: str) -> None:
    async with in_process() as client:
        reply = await chat(client, body(), {"X-Mock-Fault": header})
    assert reply.status_code == 400
    assert reply.json()["error"] == {
        "message": message,
        "type": "invalid_request_error",
        "param": None,
        "code": "invalid_mock_fault",
    }


def test_parse_fault_header_sets_rates() -> None:
    base = Faults(fail_rate=0.3, drop_rate=0.2, seed=4)
    assert parse_fault_header("drop;truncate;malformed;invalid_output", base) == Faults(
        fail_rate=0.3,
        drop_rate=1.0,
        truncate_rate=1.0,
        malformed_rate=1.0,
        invalid_output_rate=1.0,
        seed=4,
    )
    assert parse_fault_header("fail_first=2", base).fail_rate == 0.0


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"fail_rate": 1.5}, "fail_rate must be between 0 and 1, not 1.5"),
        ({"drop_rate": -0.1}, "drop_rate must be between 0 and 1, not -0.1"),
        ({"invalid_output_rate": 2}, "invalid_output_rate must be between 0 and 1, not 2"),
        ({"statuses": ()}, "statuses must name at least one status"),
        ({"statuses": (200,)}, "status 200 is not an HTTP error status (400-599) or quota"),
        (
            {"statuses": ("teapot",)},
            "status 'teapot' is not an HTTP error status (400-599) or quota",
        ),
        ({"latency": -1.0}, "latency must be 0 or more seconds, not -1.0"),
        ({"retry_after": float("nan")}, "retry_after must be 0 or more seconds, not nan"),
        ({"fail_first": -2}, "fail_first must be 0 or more, not -2"),
    ],
)
def test_faults_are_validated(kwargs: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError) as info:
        Faults(**kwargs)
    assert str(info.value) == message


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("100ms", 0.1), ("2s", 2.0), ("1.5m", 90.0), ("3", 3.0), (" 0 ms ", 0.0), (".5s", 0.5)],
)
def test_parse_duration(text: str, seconds: float) -> None:
    assert parse_duration(text) == pytest.approx(seconds)


@pytest.mark.parametrize("text", ["", "ms", "-1s", "2h", "1,5s", "fast"])
def test_parse_duration_rejects(text: str) -> None:
    with pytest.raises(ValueError) as info:
        parse_duration(text)
    assert str(info.value) == (
        f"invalid duration {text!r}: use a number with ms, s or m, such as 100ms"
    )


def test_parse_statuses() -> None:
    assert parse_statuses("429,500, 503") == (429, 500, 503)
    assert parse_statuses("QUOTA,429") == ("quota", 429)
    with pytest.raises(ValueError) as info:
        parse_statuses("429,,500")
    assert str(info.value) == (
        "invalid status '' in '429,,500': use HTTP error statuses (400-599) or quota, "
        "separated by commas"
    )


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
    sock = mockserver._bind("127.0.0.1", 0)
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
