"""POST /v1/responses on `runner mock-server` (loopback), driven by the official openai SDK:
create (text, json_schema, json_object, tools, refusal, max_output_tokens, reasoning), stream,
parse, batches of /v1/responses rows, every fault kind, OpenAI's 400s and --no-responses. The
answer must be the chat endpoint's answer to the same prompt, counted alike."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from typing import Any

import httpx2
import openai
import pydantic
import pytest
from _mock_helpers import CITY, MODEL, valid
from openai.lib._parsing._responses import type_to_text_format_param
from openai.types.responses import Response

from runner import tokens
from runner.mock.reply import REFUSAL

WEATHER: dict[str, Any] = {
    "type": "function",
    "name": "get_weather",
    "description": "Weather in a city.",
    "strict": True,
    "parameters": {
        "type": "object",
        "properties": {
            "city": {"type": "string"},
            "unit": {"type": "string", "enum": ["celsius", "fahrenheit"]},
        },
        "required": ["city", "unit"],
        "additionalProperties": False,
    },
}
TIME: dict[str, Any] = {
    "type": "function",
    "name": "get_time",
    "parameters": {
        "type": "object",
        "properties": {"timezone": {"type": "string"}},
        "required": ["timezone"],
        "additionalProperties": False,
    },
}
SCHEMA_FORMAT = {"type": "json_schema", "name": "city", "schema": CITY, "strict": True}


def _start(*flags: str) -> tuple[subprocess.Popen[str], str]:
    exe = shutil.which("runner") or f"{sys.prefix}/bin/runner"
    proc = subprocess.Popen(
        [exe, "mock-server", "--port", "0", *flags],
        stderr=subprocess.PIPE,
        stdout=subprocess.DEVNULL,
        text=True,
    )
    assert proc.stderr is not None
    match = re.search(r"on http://[^:]+:(\d+)/v1", proc.stderr.readline())
    assert match is not None
    return proc, f"http://127.0.0.1:{match.group(1)}/v1"


def _stop(proc: subprocess.Popen[str]) -> None:
    proc.terminate()
    proc.wait(timeout=10)
    if proc.stderr is not None:
        proc.stderr.close()


@pytest.fixture(scope="module")
def server() -> Iterator[str]:
    proc, url = _start()
    try:
        yield url
    finally:
        _stop(proc)


@pytest.fixture
def client(server: str) -> Iterator[openai.OpenAI]:
    with openai.OpenAI(base_url=server, api_key="sk-test", max_retries=0) as c:
        yield c


def _events(server: str, body: dict[str, Any], fault: str | None = None) -> list[tuple[str, Any]]:
    """The raw SSE frames of a streamed request as (event line, decoded data); bad JSON stays a
    string."""
    headers = {"X-Mock-Fault": fault} if fault else {}
    with httpx2.Client(base_url=server) as http:
        reply = http.post("/responses", json={**body, "stream": True}, headers=headers)
    assert reply.status_code == 200
    assert reply.headers["content-type"] == "text/event-stream; charset=utf-8"
    out = []
    for frame in reply.text.removesuffix("\n\n").split("\n\n"):
        event, data = frame.split("\n")
        assert event.startswith("event: ") and data.startswith("data: ")
        try:
            out.append((event[7:], json.loads(data[6:])))
        except ValueError:
            out.append((event[7:], data[6:]))
    return out


# --- create -----------------------------------------------------------------------------------


def test_text_is_the_chat_answer_counted_alike(client: openai.OpenAI) -> None:
    reply = client.responses.create(
        model=MODEL, instructions="Be brief.", input="Tell me about Paris.", store=False
    )
    chat = client.chat.completions.create(
        model=MODEL,
        messages=[
            {"role": "system", "content": "Be brief."},
            {"role": "user", "content": "Tell me about Paris."},
        ],
        store=False,
    )
    assert reply.id.startswith("resp_") and reply.object == "response"
    assert reply.status == "completed" and reply.incomplete_details is None
    assert reply.output_text == chat.choices[0].message.content
    assert reply.output_text.startswith('Mock answer to "Tell me about Paris.".')
    [message] = reply.output
    assert message.type == "message" and message.status == "completed"
    assert message.id.startswith("msg_") and message.role == "assistant"
    assert reply.usage is not None and chat.usage is not None
    assert reply.usage.input_tokens == chat.usage.prompt_tokens == 19
    assert reply.usage.output_tokens == chat.usage.completion_tokens
    assert reply.usage.output_tokens == tokens.count_text(reply.output_text, MODEL)
    assert reply.usage.total_tokens == reply.usage.input_tokens + reply.usage.output_tokens
    assert reply.usage.input_tokens_details.cached_tokens == 0
    assert reply.usage.output_tokens_details.reasoning_tokens == 0
    assert (reply.instructions, reply.store, reply.model) == ("Be brief.", False, MODEL)
    assert reply.text is not None and reply.text.format is not None
    assert reply.text.format.type == "text"
    again = client.responses.create(
        model=MODEL, instructions="Be brief.", input="Tell me about Paris.", store=False
    )
    assert (again.id, again.output_text) == (reply.id, reply.output_text)


def test_input_items_count_as_their_chat_messages(client: openai.OpenAI) -> None:
    reply = client.responses.create(
        model=MODEL,
        input=[
            {"role": "developer", "content": "Answer in French."},
            {"role": "user", "content": [{"type": "input_text", "text": "Hello there"}]},
            {"role": "assistant", "content": [{"type": "output_text", "text": "Bonjour"}]},
            {"type": "message", "role": "user", "content": "And Paris?"},
        ],
    )
    chat = client.chat.completions.create(
        model=MODEL,
        messages=[
            {"role": "developer", "content": "Answer in French."},
            {"role": "user", "content": [{"type": "text", "text": "Hello there"}]},
            {"role": "assistant", "content": [{"type": "text", "text": "Bonjour"}]},
            {"role": "user", "content": "And Paris?"},
        ],
    )
    assert reply.usage is not None and chat.usage is not None
    assert reply.usage.input_tokens == chat.usage.prompt_tokens
    assert reply.output_text == chat.choices[0].message.content


def test_json_schema_is_valid_and_the_chat_answer(client: openai.OpenAI) -> None:
    reply = client.responses.create(
        model=MODEL, input="A city, please.", text={"format": SCHEMA_FORMAT}
    )
    chat = client.chat.completions.create(
        model=MODEL,
        messages=[{"role": "user", "content": "A city, please."}],
        response_format={
            "type": "json_schema",
            "json_schema": {"name": "city", "schema": CITY, "strict": True},
        },
    )
    assert valid(CITY, json.loads(reply.output_text))
    assert reply.output_text == chat.choices[0].message.content
    assert reply.text is not None and reply.text.format is not None
    assert reply.text.format.type == "json_schema"


def test_json_object(client: openai.OpenAI) -> None:
    reply = client.responses.create(
        model=MODEL, input="Answer in JSON.", text={"format": {"type": "json_object"}}
    )
    assert isinstance(json.loads(reply.output_text), dict)
    with pytest.raises(openai.BadRequestError) as caught:
        client.responses.create(model=MODEL, input="Hi", text={"format": {"type": "json_object"}})
    assert caught.value.body == {
        "message": "Response input messages must contain the word 'json' in some form to use "
        "'text.format' of type 'json_object'.",
        "type": "invalid_request_error",
        "param": "input",
        "code": None,
    }


def test_tools_are_called_with_valid_arguments(client: openai.OpenAI) -> None:
    reply = client.responses.create(model=MODEL, input="Weather in Paris?", tools=[WEATHER])
    [call] = reply.output
    assert call.type == "function_call" and call.name == "get_weather"
    assert call.id is not None and call.id.startswith("fc_") and call.status == "completed"
    assert valid(WEATHER["parameters"], json.loads(call.arguments))
    chat = client.chat.completions.create(
        model=MODEL,
        messages=[{"role": "user", "content": "Weather in Paris?"}],
        tools=[
            {
                "type": "function",
                "function": {k: v for k, v in WEATHER.items() if k != "type"},
            }
        ],
    )
    chat_call = (chat.choices[0].message.tool_calls or [])[0]
    assert (call.call_id, call.arguments) == (chat_call.id, chat_call.function.arguments)  # type: ignore[union-attr]
    assert reply.output_text == ""
    assert reply.tools[0].type == "function" and reply.tools[0].strict is True
    assert reply.usage is not None
    assert reply.usage.output_tokens == tokens.count_text("get_weather", MODEL) + (
        tokens.count_text(call.arguments, MODEL)
    )


def test_tool_choice_parallel_calls_and_tool_results(client: openai.OpenAI) -> None:
    named = client.responses.create(
        model=MODEL,
        input="Time?",
        tools=[WEATHER, TIME],
        tool_choice={"type": "function", "name": "get_time"},
    )
    assert [item.name for item in named.output] == ["get_time"]  # type: ignore[union-attr]
    both = client.responses.create(
        model=MODEL, input="Both?", tools=[WEATHER, TIME], parallel_tool_calls=True
    )
    assert [item.name for item in both.output] == ["get_weather", "get_time"]  # type: ignore[union-attr]
    none = client.responses.create(model=MODEL, input="Hi", tools=[WEATHER], tool_choice="none")
    assert none.output[0].type == "message"
    answered = client.responses.create(
        model=MODEL,
        input=[
            {"role": "user", "content": "Weather in Paris?"},
            {
                "type": "function_call",
                "call_id": "call_1",
                "name": "get_weather",
                "arguments": '{"city":"Paris","unit":"celsius"}',
            },
            {"type": "function_call_output", "call_id": "call_1", "output": "18C, sunny"},
        ],
        tools=[WEATHER],
    )
    assert answered.output[0].type == "message"
    assert answered.output_text.startswith('Mock answer to "Weather in Paris?".')


def test_refusal(client: openai.OpenAI) -> None:
    reply = client.responses.create(model=MODEL, input="Do it [[refuse]]")
    [message] = reply.output
    assert message.type == "message"
    assert [part.model_dump() for part in message.content] == [
        {"type": "refusal", "refusal": REFUSAL}
    ]
    assert reply.output_text == ""


def test_max_output_tokens_makes_an_incomplete_response(client: openai.OpenAI) -> None:
    whole = client.responses.create(model=MODEL, input="Tell me about Lyon.")
    cut = client.responses.create(model=MODEL, input="Tell me about Lyon.", max_output_tokens=16)
    assert cut.status == "incomplete"
    assert cut.incomplete_details is not None
    assert cut.incomplete_details.reason == "max_output_tokens"
    assert cut.output[0].status == "incomplete"
    assert whole.output_text.startswith(cut.output_text) and cut.output_text != whole.output_text
    assert cut.usage is not None and cut.usage.output_tokens == 16
    assert tokens.count_text(cut.output_text, MODEL) == 16
    assert cut.max_output_tokens == 16


def test_a_reasoning_model_opens_with_a_reasoning_item(client: openai.OpenAI) -> None:
    plain = client.responses.create(model="o3-mini", input="Why?", reasoning={"effort": "low"})
    reasoning, message = plain.output
    assert reasoning.type == "reasoning" and reasoning.summary == []
    assert reasoning.id.startswith("rs_") and message.type == "message"
    assert plain.usage is not None and plain.usage.output_tokens_details.reasoning_tokens == 0
    assert plain.reasoning is not None and plain.reasoning.effort == "low"
    summed = client.responses.create(
        model="o3-mini", input="Why?", reasoning={"effort": "low", "summary": "auto"}
    )
    reasoning = summed.output[0]
    assert reasoning.type == "reasoning"
    [summary] = reasoning.summary
    assert summary.text.startswith("**Planning the answer**\n\n")
    assert summed.output_text == plain.output_text  # the summary does not change the answer
    usage = summed.usage
    assert usage is not None
    assert usage.output_tokens_details.reasoning_tokens == tokens.count_text(summary.text, "o3")
    assert usage.output_tokens == usage.output_tokens_details.reasoning_tokens + tokens.count_text(
        summed.output_text, "o3-mini"
    )


# --- stream and parse -------------------------------------------------------------------------


def test_stream_events_in_order(client: openai.OpenAI, server: str) -> None:
    plain = client.responses.create(model=MODEL, input="Stream about Rome.")
    with client.responses.stream(model=MODEL, input="Stream about Rome.") as stream:
        events = list(stream)
        final = stream.get_final_response()
    kinds = [e.type for e in events]
    deltas = [e.delta for e in events if e.type == "response.output_text.delta"]
    assert len(deltas) >= 5
    assert kinds == [
        "response.created",
        "response.in_progress",
        "response.output_item.added",
        "response.content_part.added",
        *["response.output_text.delta"] * len(deltas),
        "response.output_text.done",
        "response.content_part.done",
        "response.output_item.done",
        "response.completed",
    ]
    assert [e.sequence_number for e in events] == list(range(len(events)))
    assert "".join(deltas) == final.output_text == plain.output_text
    assert final.id == plain.id and final.usage == plain.usage
    assert events[0].response.status == "in_progress"  # type: ignore[union-attr]
    raw = _events(server, {"model": MODEL, "input": "Stream about Rome."})
    assert all(event == data["type"] for event, data in raw)


def test_streamed_tool_calls_and_summaries_assemble(client: openai.OpenAI) -> None:
    body: dict[str, Any] = {
        "model": "o3-mini",
        "input": "Weather?",
        "tools": [WEATHER, TIME],
        "parallel_tool_calls": True,
        "reasoning": {"summary": "detailed"},
    }
    plain = client.responses.create(**body)
    with client.responses.stream(**body) as stream:
        events = list(stream)
        final = stream.get_final_response()
    # (the SDK adds parsed_arguments to the calls it assembles from a stream)
    streamed = [
        {k: v for k, v in i.to_dict().items() if k != "parsed_arguments"} for i in final.output
    ]
    assert streamed == [i.to_dict() for i in plain.output]
    for index, item in enumerate(plain.output[1:], 1):
        assert item.type == "function_call"
        pieces = [
            e.delta
            for e in events
            if e.type == "response.function_call_arguments.delta" and e.output_index == index
        ]
        assert len(pieces) >= 2 and "".join(pieces) == item.arguments
    summary = "".join(e.delta for e in events if e.type == "response.reasoning_summary_text.delta")
    assert summary == plain.output[0].summary[0].text  # type: ignore[union-attr]
    kinds = [e.type for e in events]
    assert kinds.index("response.reasoning_summary_part.added") < kinds.index(
        "response.function_call_arguments.delta"
    )


def test_a_cut_stream_ends_with_response_incomplete(client: openai.OpenAI) -> None:
    with client.responses.stream(model=MODEL, input="Long", max_output_tokens=20) as stream:
        events = list(stream)
        with pytest.raises(RuntimeError, match=r"response\.completed"):
            stream.get_final_response()
    last = events[-1]
    assert last.type == "response.incomplete"
    assert last.response.incomplete_details is not None
    assert last.response.incomplete_details.reason == "max_output_tokens"
    assert "response.completed" not in [e.type for e in events]


class City(pydantic.BaseModel):
    name: str
    country: str
    population: int


def test_parse_and_stream_with_a_text_format(client: openai.OpenAI) -> None:
    parsed = client.responses.parse(model=MODEL, input="A city.", text_format=City)
    assert isinstance(parsed.output_parsed, City)
    assert parsed.output_parsed == City.model_validate_json(parsed.output_text)
    # The text.format the SDK sends for City, sent by hand: the same request, the same answer.
    plain = client.responses.create(
        model=MODEL, input="A city.", text={"format": type_to_text_format_param(City)}
    )
    assert plain.output_text == parsed.output_text
    with client.responses.stream(model=MODEL, input="A city.", text_format=City) as stream:
        streamed = stream.get_final_response()
    assert streamed.output_parsed == parsed.output_parsed


# --- OpenAI's 400s ----------------------------------------------------------------------------

_BASE: dict[str, Any] = {"model": MODEL, "input": "Hi"}
_SCHEMA_NO_NAME = {"type": "json_schema", "schema": CITY}
_CHAT_TOOL = {"type": "function", "function": {"name": "f", "parameters": {}}}
_BAD_PATTERN = {"type": "object", "properties": {"a": {"type": "string", "pattern": "(?=a)"}}}


def _e(message: str, param: str | None, code: str | None) -> dict[str, Any]:
    return {"message": message, "type": "invalid_request_error", "param": param, "code": code}


@pytest.mark.parametrize(
    ("body", "error"),
    [
        (
            {**_BASE, "n": 2},
            _e("Unknown parameter: 'n'.", "n", "unknown_parameter"),
        ),
        (
            {**_BASE, "seed": 7},
            _e("Unknown parameter: 'seed'.", "seed", "unknown_parameter"),
        ),
        (
            {"model": MODEL},
            _e("Missing required parameter: 'input'.", "input", "missing_required_parameter"),
        ),
        (
            {"input": "Hi"},
            _e("Missing required parameter: 'model'.", "model", "missing_required_parameter"),
        ),
        (
            {**_BASE, "max_output_tokens": 15},
            _e(
                "Invalid 'max_output_tokens': integer below minimum value. Expected a value "
                ">= 16, but got 15 instead.",
                "max_output_tokens",
                "integer_below_min_value",
            ),
        ),
        (
            {**_BASE, "max_output_tokens": "16"},
            _e(
                "Invalid type for 'max_output_tokens': expected an integer, but got a string "
                "instead.",
                "max_output_tokens",
                "invalid_type",
            ),
        ),
        (
            {**_BASE, "text": {"format": _SCHEMA_NO_NAME}},
            _e(
                "Missing required parameter: 'text.format.name'.",
                "text.format.name",
                "missing_required_parameter",
            ),
        ),
        (
            {**_BASE, "text": {"format": {"type": "json_schema", "name": "x"}}},
            _e(
                "Missing required parameter: 'text.format.schema'.",
                "text.format.schema",
                "missing_required_parameter",
            ),
        ),
        (
            {**_BASE, "text": {"format": {"type": "xml"}}},
            _e(
                "Invalid value: \"xml\". Supported values are: 'text', 'json_object', and "
                "'json_schema'.",
                "text.format.type",
                "invalid_value",
            ),
        ),
        (
            {
                **_BASE,
                "text": {"format": {"type": "json_schema", "name": "x", "schema": _BAD_PATTERN}},
            },
            _e(
                "Invalid schema for response_format 'x': the mock server cannot generate a value "
                "for it: pattern '(?=a)': lookarounds are not supported by the mock server.",
                "text.format.schema",
                "invalid_json_schema",
            ),
        ),
        (
            {**_BASE, "reasoning": {"effort": "low"}},
            _e(
                "Unsupported parameter: 'reasoning.effort' is not supported with this model.",
                "reasoning.effort",
                "unsupported_parameter",
            ),
        ),
        (
            {**_BASE, "model": "o3-mini", "reasoning": {"effort": "huge"}},
            _e(
                "Invalid value: \"huge\". Supported values are: 'none', 'minimal', 'low', "
                "'medium', 'high', 'xhigh', and 'max'.",
                "reasoning.effort",
                "invalid_value",
            ),
        ),
        (
            {**_BASE, "input": [{"role": "tool", "content": "x"}]},
            _e(
                "Invalid value: \"tool\". Supported values are: 'user', 'assistant', 'system', "
                "and 'developer'.",
                "input[0].role",
                "invalid_value",
            ),
        ),
        (
            {
                **_BASE,
                "input": [{"role": "assistant", "content": [{"type": "input_text", "text": "x"}]}],
            },
            _e(
                "Invalid value: \"input_text\". Supported values are: 'output_text' and 'refusal'.",
                "input[0].content[0].type",
                "invalid_value",
            ),
        ),
        (
            {**_BASE, "input": [{"type": "image_generation_call", "id": "x"}]},
            _e(
                "Invalid value: \"image_generation_call\". Supported values are: 'message', "
                "'function_call', 'function_call_output', and 'reasoning'.",
                "input[0].type",
                "invalid_value",
            ),
        ),
        (
            {**_BASE, "input": []},
            _e(
                "Invalid 'input': empty array. Expected an array with minimum length 1, but got "
                "an empty array instead.",
                "input",
                "empty_array",
            ),
        ),
        (
            {**_BASE, "instructions": 3},
            _e(
                "Invalid type for 'instructions': expected a string, but got an integer instead.",
                "instructions",
                "invalid_type",
            ),
        ),
        (
            {**_BASE, "temperature": 3},
            _e(
                "Invalid 'temperature': decimal above maximum value. Expected a value <= 2, but "
                "got 3 instead.",
                "temperature",
                "decimal_above_max_value",
            ),
        ),
        (
            {**_BASE, "previous_response_id": "resp_1"},
            _e(
                "Previous response with id 'resp_1' not found.",
                "previous_response_id",
                "previous_response_not_found",
            ),
        ),
        (
            {**_BASE, "stream_options": {"include_obfuscation": False}},
            _e(
                "The 'stream_options' parameter is only allowed when 'stream' is enabled.",
                "stream_options",
                None,
            ),
        ),
        (
            {**_BASE, "tools": [_CHAT_TOOL]},  # the chat shape, a likely client bug
            _e(
                "Missing required parameter: 'tools[0].name'.",
                "tools[0].name",
                "missing_required_parameter",
            ),
        ),
        (
            {**_BASE, "tools": [WEATHER], "tool_choice": {"type": "web_search_preview"}},
            _e(
                'Unsupported value: tool_choice type "web_search_preview" is not supported by '
                "the mock server; use 'none', 'auto', 'required' or a function.",
                "tool_choice.type",
                "unsupported_value",
            ),
        ),
        (
            {**_BASE, "background": True},
            _e(
                "Unsupported parameter: 'background' is not supported by the mock server.",
                "background",
                "unsupported_parameter",
            ),
        ),
    ],
)
def test_openai_400s(client: openai.OpenAI, body: dict[str, Any], error: dict[str, Any]) -> None:
    with pytest.raises(openai.BadRequestError) as caught:
        client.responses.create(extra_body=body)
    assert caught.value.body == error


# --- batches ----------------------------------------------------------------------------------


def _row(i: int, url: str = "/v1/responses") -> dict[str, Any]:
    body = {"model": MODEL, "input": f"Say {i}.", "max_output_tokens": 40}
    return {"custom_id": f"row-{i}", "method": "POST", "url": url, "body": body}


def _batch(client: openai.OpenAI, rows: list[dict[str, Any]]) -> Any:
    data = "\n".join(json.dumps(r) for r in rows).encode() + b"\n"
    uploaded = client.files.create(file=("in.jsonl", data), purpose="batch")
    batch = client.batches.create(
        input_file_id=uploaded.id, endpoint="/v1/responses", completion_window="24h"
    )
    assert batch.endpoint == "/v1/responses"
    for _ in range(100):
        batch = client.batches.retrieve(batch.id)
        if batch.status in ("completed", "failed"):
            return batch
        time.sleep(0.05)
    raise AssertionError("the batch never ended")


def test_a_batch_of_responses(client: openai.OpenAI) -> None:
    done = _batch(client, [_row(i) for i in range(3)])
    assert done.status == "completed" and done.request_counts.completed == 3
    lines = [json.loads(x) for x in client.files.content(done.output_file_id).text.splitlines()]
    bodies = {
        line["custom_id"]: Response.model_validate(line["response"]["body"]) for line in lines
    }
    live = client.responses.create(**_row(1)["body"])
    assert bodies["row-1"].output_text == live.output_text
    assert bodies["row-1"].usage == live.usage
    assert done.usage.input_tokens == sum(b.usage.input_tokens for b in bodies.values())  # type: ignore[union-attr]
    assert done.usage.output_tokens == sum(b.usage.output_tokens for b in bodies.values())  # type: ignore[union-attr]


def test_a_batch_mixing_urls_fails_naming_the_line(client: openai.OpenAI) -> None:
    done = _batch(client, [_row(0), _row(1, "/v1/chat/completions")])
    assert done.status == "failed" and done.errors is not None
    assert [(e.code, e.line, e.message) for e in done.errors.data] == [
        (
            "mismatched_endpoint",
            2,
            "The URL provided for this request does not match the batch endpoint /v1/responses.",
        )
    ]


# --- faults -----------------------------------------------------------------------------------


def _create(client: openai.OpenAI, fault: str, **body: Any) -> Response:
    body = {"model": MODEL, "input": "Fault me.", **body}
    return client.responses.create(**body, extra_headers={"X-Mock-Fault": fault})


@pytest.mark.parametrize(
    ("fault", "error", "status", "code"),
    [
        ("status=429;retry_after=2s", openai.RateLimitError, 429, "rate_limit_exceeded"),
        ("status=quota", openai.RateLimitError, 429, "insufficient_quota"),
        ("status=500", openai.InternalServerError, 500, None),
        ("status=503", openai.InternalServerError, 503, None),
    ],
)
def test_status_faults(
    client: openai.OpenAI, fault: str, error: type[openai.APIStatusError], status: int, code: Any
) -> None:
    with pytest.raises(error) as caught:
        _create(client, fault)
    assert caught.value.status_code == status and caught.value.code == code
    if "retry_after" in fault:
        assert caught.value.response.headers["retry-after"] == "2"


def test_fail_first_then_succeed(client: openai.OpenAI) -> None:
    with pytest.raises(openai.InternalServerError):
        _create(client, "fail_first=1", input="Once.")
    assert _create(client, "fail_first=1", input="Once.").status == "completed"


def test_invalid_output_breaks_the_schema(client: openai.OpenAI) -> None:
    good = _create(client, "status=500;fail_first=0", text={"format": SCHEMA_FORMAT})
    bad = _create(client, "invalid_output", text={"format": SCHEMA_FORMAT})
    assert valid(CITY, json.loads(good.output_text))
    assert not valid(CITY, json.loads(bad.output_text))


@pytest.mark.parametrize("stream", [False, True])
def test_a_dropped_connection(server: str, stream: bool) -> None:
    with httpx2.Client(base_url=server) as http, pytest.raises(httpx2.RemoteProtocolError):
        body = {"model": MODEL, "input": "Drop.", "stream": stream}
        http.post("/responses", json=body, headers={"X-Mock-Fault": "drop"})


def test_truncated_and_malformed_replies(server: str) -> None:
    body = {"model": MODEL, "input": "Break."}
    with httpx2.Client(base_url=server) as http:
        whole = http.post("/responses", json=body).content
        cut = http.post("/responses", json=body, headers={"X-Mock-Fault": "truncate"})
        garbage = http.post("/responses", json=body, headers={"X-Mock-Fault": "malformed"})
    assert cut.status_code == 200 and whole.startswith(cut.content) and cut.content != whole
    assert garbage.content == b"{not json"
    truncated = _events(server, body, "truncate")
    assert truncated[0][0] == "response.created"
    assert not {"response.completed", "response.incomplete"} & {e for e, _ in truncated}
    malformed = _events(server, body, "malformed")
    assert [d for _, d in malformed if isinstance(d, str)] == ["{not json"]
    assert malformed[-1][0] == "response.completed"


def test_sdk_breaks_on_a_malformed_stream(client: openai.OpenAI) -> None:
    with (
        pytest.raises(json.JSONDecodeError),
        client.responses.stream(
            model=MODEL, input="Break.", extra_headers={"X-Mock-Fault": "malformed"}
        ) as stream,
    ):
        list(stream)


def test_response_failed(client: openai.OpenAI, server: str) -> None:
    events = _events(server, {"model": MODEL, "input": "Fail."}, "response_failed")
    kinds = [e for e, _ in events]
    assert kinds[:2] == ["response.created", "response.in_progress"]
    assert kinds[-1] == "response.failed" and kinds.count("response.failed") == 1
    failed = events[-1][1]
    assert failed["sequence_number"] == len(events) - 1
    assert failed["response"]["status"] == "failed"
    assert failed["response"]["error"] == {
        "code": "server_error",
        "message": "The server had an error while processing your request. Sorry about that!",
    }
    with client.responses.stream(
        model=MODEL, input="Fail.", extra_headers={"X-Mock-Fault": "response_failed"}
    ) as stream:
        assert [e.type for e in stream][-1] == "response.failed"
    plain = _create(client, "response_failed")
    assert plain.status == "failed" and plain.output == [] and plain.usage is None
    assert plain.error is not None and plain.error.code == "server_error"


def test_error_event(client: openai.OpenAI, server: str) -> None:
    events = _events(server, {"model": MODEL, "input": "Err."}, "error_event")
    kind, data = events[-1]
    assert kind == "error"
    assert data == {
        "type": "error",
        "code": "server_error",
        "message": "The server had an error while processing your request. Sorry about that!",
        "param": None,
        "sequence_number": len(events) - 1,
    }
    assert not {"response.completed", "response.failed"} & {e for e, _ in events}
    with client.responses.stream(
        model=MODEL, input="Err.", extra_headers={"X-Mock-Fault": "error_event"}
    ) as stream:
        last = list(stream)[-1]
    assert last.type == "error" and last.code == "server_error"
    assert _create(client, "error_event").status == "completed"  # a plain reply has no events


def test_no_json_schema_names_text_format(client: openai.OpenAI) -> None:
    with pytest.raises(openai.BadRequestError) as caught:
        _create(client, "no_json_schema", text={"format": SCHEMA_FORMAT})
    assert caught.value.body == {
        "message": "text.format type 'json_schema' is not supported by this server; use "
        "'json_object' or 'text'",
        "type": "invalid_request_error",
        "param": "text.format",
        "code": None,
    }
    fallback = _create(
        client, "no_json_schema", input="JSON please", text={"format": {"type": "json_object"}}
    )
    assert isinstance(json.loads(fallback.output_text), dict)


def test_the_server_flags_apply_too() -> None:
    proc, url = _start("--no-json-schema", "--fail-first", "1", "--status", "503")
    try:
        with openai.OpenAI(base_url=url, api_key="sk-test", max_retries=0) as c:
            with pytest.raises(openai.InternalServerError):
                c.responses.create(model=MODEL, input="Hi")
            assert c.responses.create(model=MODEL, input="Hi").status == "completed"
            with pytest.raises(openai.BadRequestError, match="text.format type 'json_schema'"):
                c.responses.create(model=MODEL, input="Hi", text={"format": SCHEMA_FORMAT})
    finally:
        _stop(proc)


# --- --no-responses ---------------------------------------------------------------------------


def test_no_responses_is_a_404_and_batches_refuse_it() -> None:
    proc, url = _start("--no-responses")
    try:
        with openai.OpenAI(base_url=url, api_key="sk-test", max_retries=0) as c:
            with pytest.raises(openai.NotFoundError) as caught:
                c.responses.create(model=MODEL, input="Hi")
            assert caught.value.body == {
                "message": "Invalid URL (POST /v1/responses)",
                "type": "invalid_request_error",
                "param": None,
                "code": None,
            }
            chat = c.chat.completions.create(
                model=MODEL, messages=[{"role": "user", "content": "Hi"}]
            )
            assert chat.choices[0].message.content
            uploaded = c.files.create(
                file=("in.jsonl", json.dumps(_row(0)).encode()), purpose="batch"
            )
            with pytest.raises(openai.BadRequestError, match="batches only /v1/chat/completions,"):
                c.batches.create(
                    input_file_id=uploaded.id, endpoint="/v1/responses", completion_window="24h"
                )
    finally:
        _stop(proc)
