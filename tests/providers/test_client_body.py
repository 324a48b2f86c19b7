"""runner.providers request bodies: which models reason, what build_body sends and refuses (exact
messages), response_format."""

from __future__ import annotations

import re
from typing import Any

import pytest
from _client_helpers import USER

from runner.errors import ConfigError
from runner.providers.openai_chat import build_body, is_reasoning_model, response_format_for


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
