"""Tests for runner.mock.reply, through the app in-process (httpx2's ASGITransport): reply
shapes, usage counted with the tokenizer, n/stop/max_tokens, schema-valid JSON, tool calls,
refusals, and answers that stay the same for the same request and seed."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest
from _mock_helpers import (
    CITY,
    CORPUS,
    MODEL,
    TIME_TOOL,
    WEATHER_TOOL,
    body,
    chat,
    in_process,
    schema_format,
    valid,
)

from runner import tokens
from runner.mock import (
    REFUSAL,
    Faults,
)

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
        limit: dict[str, Any] = {param: 7}
        data = (await chat(client, body(**limit))).json()
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
