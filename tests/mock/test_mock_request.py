"""Tests for runner.mock.request, through the app in-process: every malformed request gets
the 400 OpenAI sends, with its message, param and code."""

from __future__ import annotations

import json
from typing import Any

import pytest
from _mock_helpers import MODEL, WEATHER_TOOL, body, in_process, schema_format

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
