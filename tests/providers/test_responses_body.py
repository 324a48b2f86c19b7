"""The Responses API body runner builds from a neutral request (runner.providers.openai_responses):
instructions and input items, content parts, tools, text.format per output mode, params, store,
the params it refuses; and messages_of, the way back, which must give the messages again."""

from __future__ import annotations

from typing import Any

import pytest

from runner.errors import ConfigError
from runner.providers import SCHEMA_INSTRUCTION, WireRequest, format_for_mode, messages_for_mode
from runner.providers.openai_responses import RESPONSES, body_for, messages_of
from runner.providers.wire import OutputFormat
from runner.tokens import count_messages
from runner.types import Message

MODEL = "gpt-4o-mini"
SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {"city": {"type": "string"}},
    "required": ["city"],
    "additionalProperties": False,
}
WEATHER_TOOL: dict[str, Any] = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Weather in a city.",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}},
        "strict": True,
    },
}


def req(messages: list[Message], **kw: Any) -> WireRequest:
    return WireRequest(model=kw.pop("model", MODEL), messages=messages, **kw)


SYSTEM_USER: list[Message] = [
    {"role": "system", "content": "Be brief."},
    {"role": "user", "content": "Hi"},
]


def test_first_system_message_is_instructions_the_rest_input() -> None:
    assert body_for(req(SYSTEM_USER)) == {
        "model": MODEL,
        "instructions": "Be brief.",
        "input": [{"role": "user", "content": "Hi"}],
        "store": False,
    }


def test_first_developer_message_is_instructions_later_ones_stay_input() -> None:
    messages: list[Message] = [
        {"role": "developer", "content": "Rule one."},
        {"role": "user", "content": "Hi"},
        {"role": "system", "content": "Rule two."},
        {"role": "developer", "content": "Rule three."},
    ]
    assert body_for(req(messages)) == {
        "model": MODEL,
        "instructions": "Rule one.",
        "input": [
            {"role": "user", "content": "Hi"},
            {"role": "system", "content": "Rule two."},
            {"role": "developer", "content": "Rule three."},
        ],
        "store": False,
    }


def test_no_system_message_no_instructions() -> None:
    body = body_for(req([{"role": "user", "content": "Hi"}]))
    assert body == {"model": MODEL, "input": [{"role": "user", "content": "Hi"}], "store": False}
    assert "instructions" not in body
    # A system message that is not first is not lifted into instructions either.
    later = body_for(req([{"role": "user", "content": "Hi"}, {"role": "system", "content": "S"}]))
    assert "instructions" not in later
    assert later["input"] == [
        {"role": "user", "content": "Hi"},
        {"role": "system", "content": "S"},
    ]


TOOL_CONVERSATION: list[Message] = [
    {"role": "system", "content": "Use tools."},
    {"role": "user", "content": "Weather in Oslo and Rome?"},
    {
        "role": "assistant",
        "content": None,
        "tool_calls": [
            {
                "id": "call_1",
                "type": "function",
                "function": {"name": "get_weather", "arguments": '{"city":"Oslo"}'},
            },
            {
                "id": "call_2",
                "type": "function",
                "function": {"name": "get_weather", "arguments": '{"city":"Rome"}'},
            },
        ],
    },
    {"role": "tool", "tool_call_id": "call_1", "content": "4 C"},
    {"role": "tool", "tool_call_id": "call_2", "content": "19 C"},
    {"role": "assistant", "content": "Cold in Oslo, mild in Rome."},
    {"role": "user", "content": "Thanks"},
]


def test_tool_calls_become_function_call_items_and_tool_messages_outputs() -> None:
    body = body_for(req(TOOL_CONVERSATION, tools=[WEATHER_TOOL]))
    assert body["instructions"] == "Use tools."
    assert body["input"] == [
        {"role": "user", "content": "Weather in Oslo and Rome?"},
        {
            "type": "function_call",
            "call_id": "call_1",
            "name": "get_weather",
            "arguments": '{"city":"Oslo"}',
        },
        {
            "type": "function_call",
            "call_id": "call_2",
            "name": "get_weather",
            "arguments": '{"city":"Rome"}',
        },
        {"type": "function_call_output", "call_id": "call_1", "output": "4 C"},
        {"type": "function_call_output", "call_id": "call_2", "output": "19 C"},
        {"role": "assistant", "content": "Cold in Oslo, mild in Rome."},
        {"role": "user", "content": "Thanks"},
    ]


def test_content_parts_in_the_responses_shape() -> None:
    messages: list[Message] = [
        {
            "role": "user",
            "content": [
                {"type": "text", "text": "What is in this picture?"},
                {"type": "image_url", "image_url": {"url": "https://x.test/a.png"}},
                {
                    "type": "image_url",
                    "image_url": {"url": "data:image/png;base64,AAAA", "detail": "low"},
                },
            ],
        },
        {"role": "assistant", "content": [{"type": "text", "text": "A cat."}]},
        {"role": "user", "content": "Sure?"},
    ]
    assert body_for(req(messages))["input"] == [
        {
            "role": "user",
            "content": [
                {"type": "input_text", "text": "What is in this picture?"},
                {"type": "input_image", "image_url": "https://x.test/a.png"},
                {"type": "input_image", "image_url": "data:image/png;base64,AAAA", "detail": "low"},
            ],
        },
        {"role": "assistant", "content": [{"type": "output_text", "text": "A cat."}]},
        {"role": "user", "content": "Sure?"},
    ]


def test_file_audio_and_refusal_parts() -> None:
    messages: list[Message] = [
        {
            "role": "user",
            "content": [
                {"type": "file", "file": {"file_id": "file-1"}},
                {
                    "type": "file",
                    "file": {"file_data": "data:application/pdf;base64,AA", "filename": "a.pdf"},
                },
                {"type": "input_audio", "input_audio": {"data": "AAAA", "format": "mp3"}},
            ],
        },
        {"role": "assistant", "content": [{"type": "refusal", "refusal": "No."}]},
    ]
    assert body_for(req(messages))["input"] == [
        {
            "role": "user",
            "content": [
                {"type": "input_file", "file_id": "file-1"},
                {
                    "type": "input_file",
                    "file_data": "data:application/pdf;base64,AA",
                    "filename": "a.pdf",
                },
                {"type": "input_audio", "input_audio": {"data": "AAAA", "format": "mp3"}},
            ],
        },
        {"role": "assistant", "content": [{"type": "refusal", "refusal": "No."}]},
    ]


def test_tools_and_tool_choice_from_the_chat_shape() -> None:
    body = body_for(
        req(
            SYSTEM_USER,
            tools=[WEATHER_TOOL, {"type": "function", "function": {"name": "now"}}],
            tool_choice={"type": "function", "function": {"name": "get_weather"}},
            params={"parallel_tool_calls": False},
        )
    )
    assert body["tools"] == [
        {
            "type": "function",
            "name": "get_weather",
            "description": "Weather in a city.",
            "parameters": {"type": "object", "properties": {"city": {"type": "string"}}},
            "strict": True,
        },
        {"type": "function", "name": "now"},
    ]
    assert body["tool_choice"] == {"type": "function", "name": "get_weather"}
    assert body["parallel_tool_calls"] is False
    for choice in ("auto", "none", "required"):
        assert (
            body_for(req(SYSTEM_USER, tools=[WEATHER_TOOL], tool_choice=choice))["tool_choice"]
            == choice
        )
    with pytest.raises(ConfigError, match="`tool_choice` is only allowed when tools are given"):
        body_for(req(SYSTEM_USER, tool_choice="auto"))


def _in_mode(mode: str, messages: list[Message] = SYSTEM_USER) -> dict[str, Any]:
    return body_for(
        req(
            messages_for_mode(messages, mode, SCHEMA),
            output=format_for_mode(mode, SCHEMA, name="city info!", strict=True),
        )
    )


def test_text_format_per_output_mode() -> None:
    schema_body = _in_mode("json_schema")
    assert schema_body["text"] == {
        "format": {"type": "json_schema", "name": "city_info_", "schema": SCHEMA, "strict": True}
    }
    assert schema_body["instructions"] == "Be brief."  # the server gets the schema: no prompt
    assert _in_mode("auto") == schema_body  # auto starts as json_schema
    non_strict = body_for(req(SYSTEM_USER, output=OutputFormat("json_schema", SCHEMA)))
    assert non_strict["text"]["format"] == {
        "type": "json_schema",
        "name": "output",
        "schema": SCHEMA,
        "strict": False,
    }

    instruction = SCHEMA_INSTRUCTION + '{"type":"object","properties":{"city":{"type":"string"}},'
    object_body = _in_mode("json_object")
    assert object_body["text"] == {"format": {"type": "json_object"}}
    assert object_body["instructions"].startswith("Be brief.\n\n" + instruction)

    prompt_body = _in_mode("prompt")
    assert "text" not in prompt_body
    assert prompt_body["instructions"].startswith("Be brief.\n\n" + instruction)
    # Without a system message the instruction is put first, so it becomes the instructions.
    alone = _in_mode("prompt", [{"role": "user", "content": "Hi"}])
    assert alone["instructions"].startswith(instruction)
    assert alone["input"] == [{"role": "user", "content": "Hi"}]


def test_params_pass_through() -> None:
    params = {
        "max_output_tokens": 500,
        "reasoning": {"effort": "low", "summary": "auto"},
        "truncation": "auto",
        "metadata": {"run": "7"},
        "temperature": 1,
        "service_tier": "flex",
        "prompt_cache_key": "k",
        "safety_identifier": "u1",
        "top_logprobs": 2,
        "max_tool_calls": 3,
        "seed": None,  # None is left out, as on chat
    }
    body = body_for(req(SYSTEM_USER, model="o3-mini", params=params))
    assert body == {
        "model": "o3-mini",
        "instructions": "Be brief.",
        "input": [{"role": "user", "content": "Hi"}],
        "max_output_tokens": 500,
        "reasoning": {"effort": "low", "summary": "auto"},
        "truncation": "auto",
        "metadata": {"run": "7"},
        "service_tier": "flex",
        "prompt_cache_key": "k",
        "safety_identifier": "u1",
        "top_logprobs": 2,
        "max_tool_calls": 3,
        "store": False,
    }  # temperature 1 is the reasoning model's own default: left out, as chat does


def test_store_is_false_by_default_and_true_is_kept() -> None:
    assert body_for(req(SYSTEM_USER))["store"] is False
    assert body_for(req(SYSTEM_USER, params={"store": True}))["store"] is True
    assert body_for(req(SYSTEM_USER, params={"store": False}))["store"] is False


def test_stream_flag() -> None:
    body = body_for(req(SYSTEM_USER, stream=True))
    assert body["stream"] is True
    assert "stream_options" not in body  # usage always comes with response.completed
    assert "stream" not in body_for(req(SYSTEM_USER))


@pytest.mark.parametrize(
    "param",
    [
        {"max_tokens": 10},
        {"max_completion_tokens": 10},
        {"n": 2},
        {"seed": 7},
        {"stop": ["\n"]},
        {"reasoning_effort": "low"},
        {"response_format": {"type": "json_object"}},
        {"messages": []},
        {"logprobs": True},
    ],
)
def test_a_param_the_responses_api_does_not_take_is_a_config_error(param: dict[str, Any]) -> None:
    [name] = param
    with pytest.raises(ConfigError) as info:
        body_for(req(SYSTEM_USER, params=param))
    assert str(info.value).startswith(f"the Responses API takes no `{name}`")
    assert "provider.api: chat" in str(info.value)


def test_a_reasoning_model_refuses_non_default_sampling() -> None:
    for key, value in (("temperature", 0.2), ("top_p", 0.5)):
        with pytest.raises(ConfigError) as info:
            body_for(req(SYSTEM_USER, model="o3-mini", params={key: value}))
        assert str(info.value) == (
            f"model o3-mini does not accept {key}={value!r}; remove `{key}` from params"
        )
    # ... but a non-reasoning model takes them.
    assert body_for(req(SYSTEM_USER, params={"temperature": 0.2}))["temperature"] == 0.2


def test_effort_none_lets_gpt_5_1_take_sampling_params() -> None:
    """OpenAI's GPT-5 guide: from gpt-5.1 on, reasoning effort none accepts temperature and
    top_p again (chat's reasoning_effort: none does the same)."""
    params = {"reasoning": {"effort": "none"}, "temperature": 0.2, "top_p": 0.5}
    body = body_for(req(SYSTEM_USER, model="gpt-5.1", params=params))
    assert (body["temperature"], body["top_p"]) == (0.2, 0.5)
    with pytest.raises(ConfigError, match="does not accept temperature=0.2"):
        body_for(req(SYSTEM_USER, model="gpt-5", params=params))  # gpt-5 itself does not
    with pytest.raises(ConfigError, match="does not accept temperature=0.2"):
        body_for(
            req(SYSTEM_USER, model="gpt-5.1", params={**params, "reasoning": {"effort": "low"}})
        )


ROUND_TRIPS: dict[str, list[Message]] = {
    "system and user": SYSTEM_USER,
    "user only": [{"role": "user", "content": "Hi"}],
    "tools": TOOL_CONVERSATION,
    "parts": [
        {"role": "system", "content": "Look."},
        {
            "role": "user",
            "content": [
                {"type": "text", "text": "What is it?"},
                {"type": "image_url", "image_url": {"url": "https://x.test/a.png"}},
                {
                    "type": "image_url",
                    "image_url": {"url": "https://x.test/b.png", "detail": "low"},
                },
            ],
        },
        {"role": "assistant", "content": [{"type": "text", "text": "Two cats."}]},
    ],
    "assistant text with its tool call": [
        {"role": "user", "content": "Weather?"},
        {
            "role": "assistant",
            "content": "Let me look.",
            "tool_calls": [
                {
                    "id": "call_9",
                    "type": "function",
                    "function": {"name": "get_weather", "arguments": "{}"},
                }
            ],
        },
        {"role": "tool", "tool_call_id": "call_9", "content": "sunny"},
    ],
    "file, audio and refusal parts": [
        {
            "role": "user",
            "content": [
                {"type": "text", "text": "Summarise."},
                {"type": "file", "file": {"file_id": "file-1", "filename": "a.pdf"}},
                {"type": "input_audio", "input_audio": {"data": "AAAA", "format": "wav"}},
            ],
        },
        {"role": "assistant", "content": [{"type": "refusal", "refusal": "No."}]},
        {"role": "user", "content": "Please."},
    ],
    "two system messages": [
        {"role": "system", "content": "One."},
        {"role": "system", "content": "Two."},
        {"role": "user", "content": "Hi"},
    ],
}


@pytest.mark.parametrize("name", sorted(ROUND_TRIPS))
def test_messages_of_round_trips_the_messages(name: str) -> None:
    messages = ROUND_TRIPS[name]
    tools = [WEATHER_TOOL] if "tool" in name else None
    request = req(messages, tools=tools)
    body = body_for(request)
    assert messages_of(body) == messages
    # So the prompt counted before sending (count_prompt) is the count of the body read back
    # (count_body: a batch row, a re-ask).
    assert RESPONSES.count_body(body) == RESPONSES.count_prompt(request)
    assert RESPONSES.count_prompt(request) == count_messages(messages, MODEL, tools=tools)


def test_a_first_developer_message_comes_back_as_the_system_message() -> None:
    """`instructions` does not say which role it came from: it comes back as system, which
    counts the same (one token for the role either way)."""
    messages: list[Message] = [
        {"role": "developer", "content": "Rule."},
        {"role": "user", "content": "Hi"},
    ]
    body = body_for(req(messages))
    assert messages_of(body) == [{"role": "system", "content": "Rule."}, messages[1]]
    assert RESPONSES.count_body(body) == RESPONSES.count_prompt(req(messages))


def test_messages_of_reads_a_string_input_and_skips_junk() -> None:
    assert messages_of({"instructions": "S", "input": "Hi"}) == [
        {"role": "system", "content": "S"},
        {"role": "user", "content": "Hi"},
    ]
    assert messages_of(
        {"input": [1, None, {"type": "reasoning"}, {"role": "user", "content": "x"}]}
    ) == [{"role": "user", "content": "x"}]
    assert messages_of({}) == []


def test_capabilities() -> None:
    caps = RESPONSES.capabilities
    assert (caps.name, caps.path, caps.batch_endpoint) == (
        "responses",
        "/responses",
        "/v1/responses",
    )
    assert caps.choices is False and caps.output_limit == "max_output_tokens"
    assert RESPONSES.output_limit({"max_output_tokens": 64}) == 64
    assert RESPONSES.output_limit({"max_tokens": 64}) is None
    assert RESPONSES.output_allowance({"max_output_tokens": 64}) == 64
    assert RESPONSES.output_allowance({}) is None
    assert RESPONSES.body_choices({"n": 3}) == 1


@pytest.mark.parametrize(
    ("message", "what"),
    [
        ({"role": "user", "content": "Hi", "name": "bob"}, "a message's `name`"),
        (
            {
                "role": "assistant",
                "content": None,
                "function_call": {"name": "f", "arguments": "{}"},
            },
            "a message's `function_call`",
        ),
        ({"role": "assistant", "content": "x", "refusal": "No."}, "a message's `refusal`"),
        ({"role": "function", "name": "f", "content": "42"}, "a function message"),
    ],
)
def test_what_the_responses_api_cannot_carry_is_refused_not_dropped(
    message: Message, what: str
) -> None:
    with pytest.raises(ConfigError) as info:
        body_for(req([{"role": "user", "content": "Hi"}, message]))
    assert str(info.value).startswith(f"the Responses API has no place for {what}")


def test_the_params_each_api_takes_agree_everywhere() -> None:
    """The spec schema's params, runner validate's lists of one API's params, the params the
    Responses body takes, and the table in docs/spec.md say the same."""
    import re
    from pathlib import Path

    from runner.providers.openai_responses.body import PARAMS
    from runner.schema.validator import packaged_schema
    from runner.spec.params import CHAT_ONLY as _CHAT_ONLY
    from runner.spec.params import RESPONSES_ONLY as _RESPONSES_ONLY

    every = set(packaged_schema("prompt-spec.schema.json")["properties"]["params"]["properties"])
    assert set(PARAMS) == every - set(_CHAT_ONLY)
    assert set(_RESPONSES_ONLY) <= set(PARAMS) and not set(_CHAT_ONLY) & set(PARAMS)
    for name in _CHAT_ONLY:  # the chat body passes them on; the Responses body refuses them
        with pytest.raises(ConfigError):
            body_for(req(SYSTEM_USER, params={name: 1}))
    doc = (Path(__file__).resolve().parents[2] / "docs" / "spec.md").read_text("utf-8")
    section = doc.split("### `provider.api`", 1)[1].split("\n### ", 1)[0]
    named = set(re.findall(r"`([a-z_]+)`", section))
    assert set(_CHAT_ONLY) | set(_RESPONSES_ONLY) <= named
    assert every - set(_CHAT_ONLY) - set(_RESPONSES_ONLY) <= named  # the shared ones
