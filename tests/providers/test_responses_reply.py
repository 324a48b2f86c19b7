"""Responses API replies read into runner's neutral Completion (runner.providers.openai_responses):
text, refusals, function calls, the incomplete and failed statuses mapped onto runner's errors,
usage; and any JSON at all, through ResponsesClient, gives a Completion or StreamBroken, never a
crash."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import httpx2
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from runner.engine.answer import completion_values
from runner.engine.results import Preflight
from runner.errors import (
    BadRequest,
    OutputFiltered,
    OutputRefused,
    OutputTruncated,
    RateLimited,
    RunnerError,
    ServerFailed,
    StreamBroken,
)
from runner.providers import ResponsesClient, WireRequest
from runner.providers.openai_responses import RESPONSES, body_for, completion_from_response
from runner.spec.model import OutputConfig
from runner.types import Completion, Cost, Usage

URL = "https://api.openai.com/v1/responses"
MODEL = "gpt-4o-mini"
SCHEMA = {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}


def message(*parts: dict[str, Any]) -> dict[str, Any]:
    return {"type": "message", "id": "msg_1", "role": "assistant", "content": list(parts)}


def text(value: str) -> dict[str, Any]:
    return {"type": "output_text", "text": value, "annotations": []}


def response(output: list[dict[str, Any]], **fields: Any) -> dict[str, Any]:
    return {
        "id": "resp_1",
        "object": "response",
        "model": "gpt-4o-mini-2024-07-18",
        "status": "completed",
        "output": output,
        "usage": {
            "input_tokens": 20,
            "input_tokens_details": {"cached_tokens": 0},
            "output_tokens": 5,
            "output_tokens_details": {"reasoning_tokens": 0},
            "total_tokens": 25,
        },
        **fields,
    }


def read(data: Any) -> Completion:
    return completion_from_response(
        data, url=URL, request_id="req_1", model=MODEL, latency_ms=12.0, rate_headers={}
    )


def test_text_from_every_output_text_part() -> None:
    done = read(
        response(
            [
                {"type": "reasoning", "id": "rs_1", "summary": []},
                message(text("Paris is "), text("in France.")),
            ]
        )
    )
    assert (done.id, done.model, done.request_id) == ("resp_1", "gpt-4o-mini-2024-07-18", "req_1")
    [choice] = done.choices
    assert (choice.index, choice.text, choice.finish_reason) == (0, "Paris is in France.", "stop")
    assert choice.refusal is None and choice.tool_calls == ()
    assert done.text == "Paris is in France."


def test_refusal() -> None:
    done = read(response([message({"type": "refusal", "refusal": "I can't help with that."})]))
    [choice] = done.choices
    assert choice.refusal == "I can't help with that." and choice.text is None
    pre = _pre(None)
    with pytest.raises(OutputRefused) as info:
        completion_values(done, None, pre)
    assert info.value.refusal == "I can't help with that."


def test_function_calls_become_neutral_tool_calls() -> None:
    done = read(
        response(
            [
                {
                    "type": "function_call",
                    "id": "fc_1",
                    "call_id": "call_A",
                    "name": "get_weather",
                    "arguments": '{"city":"Oslo"}',
                    "status": "completed",
                },
                {
                    "type": "function_call",
                    "id": "fc_2",
                    "call_id": "call_B",
                    "name": "get_time",
                    "arguments": "{}",
                },
            ]
        )
    )
    [choice] = done.choices
    assert choice.finish_reason == "tool_calls" and choice.text is None
    assert choice.tool_calls == (
        {"id": "call_A", "name": "get_weather", "arguments": '{"city":"Oslo"}'},
        {"id": "call_B", "name": "get_time", "arguments": "{}"},
    )


def _pre(limit: int | None) -> Preflight:
    """What the engine knows before sending a Responses request with this max_output_tokens."""
    return Preflight(
        MODEL,
        {},
        [],
        {},
        20,
        limit,
        128_000,
        Cost(None, "test"),
        api="responses",
        output_limit_name=RESPONSES.capabilities.output_limit,
    )


def _output(schema: dict[str, Any]) -> OutputConfig:
    return OutputConfig(schema=schema, schema_path=None)


def test_incomplete_at_max_output_tokens_is_length() -> None:
    cut = response(
        [message(text('{"city": "Par'))],
        status="incomplete",
        incomplete_details={"reason": "max_output_tokens"},
    )
    done = read(cut)
    assert done.choices[0].finish_reason == "length"
    assert done.text == '{"city": "Par'
    # Cut prose is still an answer; cut JSON is not, and the message names the spec's param.
    assert completion_values(read({**cut, "output": [message(text("Par"))]}), None, _pre(16))[
        0
    ] == ("Par")
    with pytest.raises(OutputTruncated) as info:
        completion_values(done, _output(SCHEMA), _pre(16))
    assert info.value.kind == "length" and not info.value.retryable
    assert "(max_output_tokens 16)" in str(info.value)
    assert "raise max_output_tokens" in str(info.value)
    assert "max_tokens" not in str(info.value).replace("max_output_tokens", "")


def test_incomplete_by_the_content_filter_is_its_own_kind() -> None:
    done = read(
        response(
            [message(text("Some"))],
            status="incomplete",
            incomplete_details={"reason": "content_filter"},
        )
    )
    assert done.choices[0].finish_reason == "content_filter"
    for output in (None, _output(SCHEMA)):
        with pytest.raises(OutputFiltered) as info:
            completion_values(done, output, _pre(None))
        assert info.value.kind == "content_filter"


def test_incomplete_with_no_output_at_all() -> None:
    """A reasoning model that spent max_output_tokens thinking sends no message item."""
    done = read(
        response(
            [{"type": "reasoning", "id": "rs_1", "summary": []}],
            status="incomplete",
            incomplete_details={"reason": "max_output_tokens"},
        )
    )
    assert done.choices[0].text is None and done.choices[0].finish_reason == "length"
    with pytest.raises(OutputTruncated, match="max_output_tokens 16"):
        completion_values(done, _output(SCHEMA), _pre(16))


@pytest.mark.parametrize(
    ("code", "cls", "kind", "retryable"),
    [
        ("server_error", StreamBroken, "connection", True),
        (None, StreamBroken, "connection", True),
        ("rate_limit_exceeded", RateLimited, "rate_limit", True),
        ("vector_store_timeout", ServerFailed, "server_error", True),
        ("invalid_prompt", BadRequest, "bad_request", False),
        ("invalid_image_url", BadRequest, "bad_request", False),
    ],
)
def test_a_failed_response_is_its_error(
    code: str | None, cls: type[RunnerError], kind: str, retryable: bool
) -> None:
    failed = response(
        [], status="failed", error={"code": code, "message": "It went wrong."}, usage=None
    )
    with pytest.raises(RunnerError) as info:
        read(failed)
    error = info.value
    assert type(error) is cls
    assert (error.kind, error.retryable) == (kind, retryable)
    suffix = f" (code {code})" if code else ""
    assert str(error) == f"{URL}: the response failed: It went wrong.{suffix}"
    assert getattr(error, "request_id", None) == "req_1"


def test_a_body_that_is_only_an_error_is_that_error() -> None:
    with pytest.raises(RateLimited, match="the server reported: Slow down"):
        read({"error": {"code": "rate_limit_exceeded", "message": "Slow down"}})


def test_usage_maps_onto_runner_usage() -> None:
    usage = {
        "input_tokens": 1200,
        "input_tokens_details": {"cached_tokens": 1024},
        "output_tokens": 300,
        "output_tokens_details": {"reasoning_tokens": 256},
        "total_tokens": 1500,
    }
    done = read(response([message(text("x"))], usage=usage))
    assert done.usage == Usage(prompt=1200, completion=300, cached=1024, reasoning=256)
    assert done.usage is not None and not done.usage.implausible
    wrong = read(response([message(text("x"))], usage={**usage, "total_tokens": 1499}))
    assert wrong.usage is not None
    assert (wrong.usage.prompt, wrong.usage.completion) == (1200, 300)
    assert wrong.usage.implausible == ("total_tokens 1499 ≠ prompt + completion (1500)",)
    assert read(response([message(text("x"))], usage=None)).usage is None
    # Chat's names are not the Responses API's: such counts are not read as these.
    chat = read(response([message(text("x"))], usage={"prompt_tokens": 5, "completion_tokens": 1}))
    assert chat.usage == Usage()


@pytest.mark.parametrize(
    ("data", "problem"),
    [
        ({"id": "resp_1"}, "no `output` list"),
        ([], "no `output` list"),
        ({"output": {"type": "message"}}, "no `output` list"),
        ({"output": ["x"]}, "output[0] is str, not an object"),
        ({"output": [{"type": "message", "content": "hi"}]}, "output[0].content is not a list"),
        ({"output": [{"type": "message", "content": [3]}]}, "output[0].content holds a non-object"),
        (
            {"output": [{"type": "message", "content": [{"type": "output_text", "text": 7}]}]},
            "output_text.text is int, not a string",
        ),
        (
            {"output": [{"type": "function_call", "call_id": "c", "name": ["f"]}]},
            "function_call.name is list, not a string",
        ),
    ],
)
def test_malformed_replies_are_stream_broken(data: Any, problem: str) -> None:
    with pytest.raises(StreamBroken) as info:
        read(data)
    assert str(info.value) == f"malformed reply from {URL}: {problem}"
    assert info.value.retryable and info.value.kind == "connection"


def test_too_many_function_calls_are_malformed() -> None:
    calls = [{"type": "function_call", "call_id": "c", "name": "f", "arguments": "{}"}] * 1025
    with pytest.raises(StreamBroken, match="more than 1024 function calls"):
        read(response(calls))


# --- any JSON at all, through the client --------------------------------------------------------

_SCALARS = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats()
    | st.text(max_size=12)
)
_JSON = st.recursive(
    _SCALARS,
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=6), inner, max_size=4)
    ),
    max_leaves=16,
)


def _maybe(value: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    return st.one_of(value, _JSON)


_PART = st.fixed_dictionaries(
    {},
    optional={
        "type": _maybe(st.sampled_from(["output_text", "refusal"])),
        "text": _maybe(st.text(max_size=10)),
        "refusal": _maybe(st.text(max_size=10)),
    },
)
_ITEM = st.fixed_dictionaries(
    {},
    optional={
        "type": _maybe(st.sampled_from(["message", "function_call", "reasoning"])),
        "content": _maybe(st.lists(_maybe(_PART), max_size=3)),
        "call_id": _maybe(st.text(max_size=8)),
        "name": _maybe(st.text(max_size=8)),
        "arguments": _JSON,
    },
)
_USAGE = st.fixed_dictionaries(
    {},
    optional={
        "input_tokens": _maybe(st.integers(0, 10**30)),
        "output_tokens": _JSON,
        "input_tokens_details": _maybe(st.fixed_dictionaries({"cached_tokens": _JSON})),
        "output_tokens_details": _JSON,
        "total_tokens": _JSON,
    },
)
_RESPONSE = st.fixed_dictionaries(
    {},
    optional={
        "id": _JSON,
        "model": _JSON,
        "status": _maybe(st.sampled_from(["completed", "incomplete", "failed", "in_progress"])),
        "output": _maybe(st.lists(_maybe(_ITEM), max_size=4)),
        "incomplete_details": _maybe(
            st.fixed_dictionaries(
                {}, optional={"reason": _maybe(st.sampled_from(["max_output_tokens", "x"]))}
            )
        ),
        "error": _maybe(
            st.fixed_dictionaries({}, optional={"code": _JSON, "message": _JSON, "param": _JSON})
        ),
        "usage": _maybe(_USAGE),
    },
)
_BODIES = st.one_of(
    _RESPONSE.map(lambda r: json.dumps(r).encode()),
    _JSON.map(lambda v: json.dumps(v).encode()),
    st.tuples(_RESPONSE, st.floats(0, 1)).map(
        lambda t: json.dumps(t[0]).encode()[: int(len(json.dumps(t[0])) * t[1])]
    ),
    st.sampled_from([b"1e999", b"NaN", b'{"output": ' + b"[" * 100_000 + b"]" * 100_000 + b"}"]),
    st.binary(max_size=64),
)


def _well_formed(done: Completion) -> None:
    assert isinstance(done.id, str) and isinstance(done.model, str)
    [choice] = done.choices
    assert choice.text is None or isinstance(choice.text, str)
    assert isinstance(choice.finish_reason, str)
    assert choice.refusal is None or isinstance(choice.refusal, str)
    for call in choice.tool_calls:
        assert all(isinstance(v, str) for v in call.values())
    if done.usage is not None:
        counts = [done.usage.prompt, done.usage.completion, done.usage.cached, done.usage.reasoning]
        assert all(type(v) is int for v in counts)
        assert not done.usage.unreadable or done.usage.estimated


def _call(content: bytes, *, stream: bool) -> Completion | RunnerError:
    kind = "text/event-stream" if stream else "application/json"

    def handler(request: httpx2.Request) -> httpx2.Response:
        return httpx2.Response(200, content=content, headers={"content-type": kind})

    async def go() -> Completion | RunnerError:
        request = WireRequest(MODEL, [{"role": "user", "content": "hi"}], stream=stream)
        async with ResponsesClient(
            transport=httpx2.MockTransport(handler), environ={}, api_key="sk-x"
        ) as client:
            try:
                if stream:
                    return await client.stream(body_for(request))
                return await client.complete(body_for(request))
            except RunnerError as exc:
                return exc

    return asyncio.run(go())


_ALLOWED = (StreamBroken, RateLimited, ServerFailed, BadRequest)  # a failed response's errors


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(content=_BODIES)
def test_any_json_body_gives_a_completion_or_a_runner_error(content: bytes) -> None:
    result = _call(content, stream=False)
    if isinstance(result, Completion):
        _well_formed(result)
    else:
        assert isinstance(result, _ALLOWED), result


_EVENT_TYPES = st.sampled_from(
    [
        "response.created",
        "response.output_text.delta",
        "response.refusal.delta",
        "response.function_call_arguments.delta",
        "response.completed",
        "response.incomplete",
        "response.failed",
        "error",
        "x",
    ]
)
_EVENT = st.fixed_dictionaries(
    {},
    optional={
        "type": _maybe(_EVENT_TYPES),
        "delta": _maybe(st.text(max_size=10)),
        "response": _maybe(_RESPONSE),
        "code": _JSON,
        "message": _JSON,
    },
)
_EVENTS = st.lists(
    st.one_of(
        _EVENT.map(json.dumps),
        st.sampled_from(["[DONE]", "", "{not json", "[" * 5000 + "]" * 5000]),
        st.text(max_size=20),
    ),
    max_size=6,
)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(events=_EVENTS, names=st.lists(_EVENT_TYPES, max_size=6))
def test_any_event_stream_gives_a_completion_or_a_runner_error(
    events: list[str], names: list[str]
) -> None:
    frames = []
    for i, data in enumerate(events):
        head = f"event: {names[i]}\n" if i < len(names) else ""
        frames.append(head + "".join(f"data: {line}\n" for line in data.split("\n")) + "\n")
    result = _call("".join(frames).encode(), stream=True)
    if isinstance(result, Completion):
        _well_formed(result)
    else:
        assert isinstance(result, _ALLOWED), result
