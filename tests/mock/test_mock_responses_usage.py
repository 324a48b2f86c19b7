"""The Responses API's figures and shapes, in process: usage counted exactly with runner's
tokenizer (as a chat request of the same messages), max_output_tokens spent on reasoning, every
body and stream event validated strictly against the openai SDK's models, the content key
shared with chat, latency, the new fault rates and batch input checks per endpoint."""

from __future__ import annotations

import json
from random import Random
from typing import Any

import pydantic
import pytest
from _mock_helpers import CITY, MODEL, in_process
from openai.types.responses import Response, ResponseStreamEvent

from runner import tokens
from runner.mock import Faults, create_app
from runner.mock.batch_input import read_input
from runner.mock.reply import build_answer
from runner.mock.request import parse_body
from runner.mock.responses_reply import SUMMARY_TITLE, build_response, response_events
from runner.mock.responses_request import parse_responses_body

TOOL = {
    "type": "function",
    "name": "get_weather",
    "description": "Weather in a city.",
    "parameters": {
        "type": "object",
        "properties": {"city": {"type": "string"}},
        "required": ["city"],
        "additionalProperties": False,
    },
}
CHAT_TOOL = {"type": "function", "function": {k: v for k, v in TOOL.items() if k != "type"}}
EVENTS = pydantic.TypeAdapter(ResponseStreamEvent)


def _usage(body: dict[str, Any], seed: int = 0) -> dict[str, Any]:
    return build_response(parse_responses_body(body), seed, False).usage


def test_text_usage_is_exact() -> None:
    body = {"model": MODEL, "instructions": "Be brief.", "input": "Tell me about Paris."}
    usage = _usage(body)
    req = parse_responses_body(body)
    text = build_response(req, 0, False).answer.choices[0].content or ""
    # 3 priming + (3 + "system" 1 + "Be brief." 3) + (3 + "user" 1 + "Tell me about Paris." 5)
    assert usage["input_tokens"] == 19 == tokens.count_messages(req.ask.messages, MODEL)
    assert usage["output_tokens"] == tokens.count_text(text, MODEL) > 20
    assert usage["total_tokens"] == 19 + usage["output_tokens"]
    assert usage["input_tokens_details"] == {"cached_tokens": 0, "cache_write_tokens": 0}
    assert usage["output_tokens_details"] == {"reasoning_tokens": 0}


def test_tools_and_tool_items_count_as_their_chat_messages() -> None:
    items = [
        {"role": "user", "content": "Weather in Paris?"},
        {"type": "function_call", "call_id": "c1", "name": "get_weather", "arguments": '{"a":1}'},
        {"type": "function_call", "call_id": "c2", "name": "get_weather", "arguments": '{"b":2}'},
        {"type": "function_call_output", "call_id": "c1", "output": "sunny"},
        {"type": "function_call_output", "call_id": "c2", "output": "rainy"},
    ]
    chat_messages = [
        {"role": "user", "content": "Weather in Paris?"},
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [
                {
                    "id": c,
                    "type": "function",
                    "function": {"name": "get_weather", "arguments": a},
                }
                for c, a in (("c1", '{"a":1}'), ("c2", '{"b":2}'))
            ],
        },
        {"role": "tool", "tool_call_id": "c1", "content": "sunny"},
        {"role": "tool", "tool_call_id": "c2", "content": "rainy"},
    ]
    usage = _usage({"model": MODEL, "input": items, "tools": [TOOL]})
    assert usage["input_tokens"] == tokens.count_messages(chat_messages, MODEL, tools=[CHAT_TOOL])
    called = build_response(
        parse_responses_body({"model": MODEL, "input": "Weather?", "tools": [TOOL]}), 0, False
    )
    [call] = called.answer.choices[0].tool_calls
    expected = tokens.count_text("get_weather", MODEL) + tokens.count_text(call.arguments, MODEL)
    assert called.usage["output_tokens"] == expected


def test_the_answer_is_the_chat_answer_and_only_the_key_differs() -> None:
    body = {
        "model": MODEL,
        "input": "A city.",
        "text": {"format": {"type": "json_schema", "name": "c", "schema": CITY}},
    }
    req = parse_responses_body(body)
    chat = parse_body(
        {
            "model": MODEL,
            "messages": [{"role": "user", "content": "A city."}],
            "response_format": {
                "type": "json_schema",
                "json_schema": {"name": "c", "schema": CITY},
            },
        }
    )
    assert req.ask.content_key == chat.content_key and req.ask.key != chat.key
    assert build_response(req, 3, False).answer.choices == build_answer(chat, 3, False).choices
    # max_output_tokens only cuts: it is not part of what the answer is made from
    cut = parse_responses_body({**body, "max_output_tokens": 30})
    assert cut.ask.content_key == req.ask.content_key and cut.ask.key != req.ask.key


def test_reasoning_tokens_are_the_summary_and_count_against_the_limit() -> None:
    body = {"model": "o3-mini", "input": "Why?", "reasoning": {"summary": "concise"}}
    full = build_response(parse_responses_body(body), 0, False)
    assert full.summary is not None and full.summary.startswith(SUMMARY_TITLE)
    thought = tokens.count_text(full.summary, "o3-mini")
    text = full.answer.choices[0].content or ""
    assert full.usage["output_tokens_details"] == {"reasoning_tokens": thought}
    assert full.usage["output_tokens"] == thought + tokens.count_text(text, "o3-mini")
    limit = thought + 5  # five tokens of text are left after the reasoning
    cut = build_response(parse_responses_body({**body, "max_output_tokens": limit}), 0, False)
    assert cut.incomplete and cut.message
    assert tokens.count_text(cut.answer.choices[0].content or "", "o3-mini") == 5
    assert cut.usage["output_tokens"] == limit
    spent = build_response(parse_responses_body({**body, "max_output_tokens": 16}), 0, False)
    assert thought > 16 and not spent.message and spent.incomplete
    assert spent.usage["output_tokens"] == spent.usage["output_tokens_details"]["reasoning_tokens"]
    assert spent.usage["output_tokens"] == 16
    assert full.summary.startswith(spent.summary or "-")


_BODIES: list[dict[str, Any]] = [
    {"model": MODEL, "input": "Text.", "metadata": {"k": "v"}, "user": "u1"},
    {"model": MODEL, "input": "Weather?", "tools": [TOOL], "tool_choice": "required"},
    {"model": MODEL, "input": "No [[refuse]]"},
    {"model": MODEL, "input": "Cut.", "max_output_tokens": 16},
    {"model": "o3-mini", "input": "Think.", "reasoning": {"effort": "high", "summary": "auto"}},
    {
        "model": "o3-mini",
        "input": "Spent.",
        "reasoning": {"summary": "auto"},
        "max_output_tokens": 16,
    },
]


@pytest.mark.anyio
@pytest.mark.parametrize("body", _BODIES)
async def test_bodies_and_events_validate_against_the_sdk_models(body: dict[str, Any]) -> None:
    async with in_process() as client:
        plain = await client.post("/responses", json=body)
        stream = await client.post("/responses", json={**body, "stream": True})
        failed = await client.post(
            "/responses", json=body, headers={"X-Mock-Fault": "response_failed"}
        )
    reply = Response.model_validate(plain.json())  # strict: every required field is there
    assert reply.model == body["model"] and reply.usage is not None
    Response.model_validate(failed.json())
    frames = stream.text.removesuffix("\n\n").split("\n\n")
    events = [EVENTS.validate_json(f.split("\ndata: ", 1)[1]) for f in frames]
    assert [e.sequence_number for e in events] == list(range(len(events)))
    last = events[-1]
    assert last.type in ("response.completed", "response.incomplete")
    assert last.response.model_dump() == reply.model_dump()  # type: ignore[union-attr]


def test_fault_endings_cut_after_the_opening_events() -> None:
    req = parse_responses_body({"model": MODEL, "input": "Cut me."})
    ra = build_response(req, 0, False)
    whole, last = response_events(ra, req, 1, 0, None, Random(0))
    assert last == len(whole) - 1 and whole[last].startswith(b"event: response.completed\n")
    for seed in range(20):
        for end, kind in (("failed", b"response.failed"), ("error", b"error")):
            frames, before = response_events(ra, req, 1, 0, end, Random(seed))
            assert 2 <= before == len(frames) - 1 < last
            assert frames[:before] == whole[:before]
            assert frames[-1].startswith(b"event: " + kind + b"\n")
            assert json.loads(frames[-1].split(b"data: ", 1)[1])["sequence_number"] == before


@pytest.mark.anyio
async def test_latency_waits_with_the_injected_sleep() -> None:
    waits: list[float] = []

    async def sleep(seconds: float) -> None:
        waits.append(seconds)

    body = {"model": MODEL, "input": "Slow."}
    async with in_process(create_app(Faults(latency=0.1), sleep=sleep)) as client:
        assert (await client.post("/responses", json=body)).status_code == 200
        await client.post("/responses", json=body, headers={"X-Mock-Fault": "latency=250ms"})
    assert waits == [0.1, 0.25]


@pytest.mark.parametrize("name", ["response_failed_rate", "error_event_rate"])
def test_the_new_rates_are_checked(name: str) -> None:
    with pytest.raises(ValueError, match=f"{name} must be between 0 and 1, not 1.5"):
        Faults(**{name: 1.5})


def test_batch_rows_must_post_to_the_batch_endpoint() -> None:
    row = {"custom_id": "a", "method": "POST", "url": "/v1/responses", "body": {"model": MODEL}}
    data = json.dumps(row).encode()
    rows, problems, model = read_input(data, "/v1/responses")
    assert (len(rows), problems, model) == (1, [], MODEL)
    _, problems, _ = read_input(data)  # a chat completions batch
    assert [p["code"] for p in problems] == ["mismatched_endpoint"]
