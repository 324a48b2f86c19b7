"""What a Responses API request (`POST /v1/responses`) asks for: OpenAI's checks with its 400
messages, and the request translated into its Chat Completions equivalent and parsed into the
chat endpoint's `Ask`, so that both endpoints give one answer to one prompt. It builds no
answers and knows nothing of HTTP.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from runner.errors import HTTPStatusFailure
from runner.mock.batch_input import check_metadata
from runner.mock.request import (
    REASONING_PREFIXES,
    Ask,
    api_error,
    check_int,
    decode_body,
    fingerprint,
    invalid_type,
    message_text,
    missing,
    parse_body,
)
from runner.mock.responses_input import input_messages, invalid_value

__all__ = ["KNOWN_PARAMS", "ResponsesAsk", "parse_responses", "parse_responses_body"]

# Every body parameter of ResponseCreateParams (openai-python); anything else is refused.
KNOWN_PARAMS = frozenset(
    {
        "access_programs",
        "background",
        "background_options",
        "context_management",
        "conversation",
        "image",
        "include",
        "input",
        "instructions",
        "max_output_tokens",
        "max_tool_calls",
        "metadata",
        "model",
        "moderation",
        "parallel_tool_calls",
        "previous_response_id",
        "prompt",
        "prompt_cache_key",
        "prompt_cache_options",
        "prompt_cache_retention",
        "reasoning",
        "safety_identifier",
        "service_tier",
        "store",
        "stream",
        "stream_options",
        "temperature",
        "text",
        "tool_choice",
        "tools",
        "top_logprobs",
        "top_p",
        "truncation",
        "user",
    }
)
# Parameters that need state the mock does not keep (stored responses, conversations, prompt
# templates, background jobs): refused rather than silently ignored.
_STATEFUL = ("conversation", "prompt", "context_management")
# Parameters Chat Completions has too, under the same name: copied into the chat equivalent.
_SHARED = (
    "parallel_tool_calls",
    "temperature",
    "top_p",
    "store",
    "metadata",
    "user",
    "service_tier",
    "safety_identifier",
    "prompt_cache_key",
    "prompt_cache_retention",
    "top_logprobs",
)
_EFFORTS = ("none", "minimal", "low", "medium", "high", "xhigh", "max")
_SUMMARIES = ("auto", "concise", "detailed")


@dataclass(frozen=True)
class ResponsesAsk:
    """A validated Responses request: its chat equivalent's `Ask` (whose `key` is this body's,
    whose `content_key` is the chat equivalent's) and what the Response object repeats."""

    ask: Ask
    max_output_tokens: int | None
    reasoning_model: bool  # the output opens with a reasoning item
    summary: str | None  # reasoning.summary, when a reasoning model was asked for one
    echo: dict[str, Any]  # the request's settings, as the Response object repeats them


def parse_responses(raw: bytes) -> ResponsesAsk:
    """Validate a raw Responses request body as OpenAI does; HTTPStatusFailure (400)."""
    return parse_responses_body(decode_body(raw))


def parse_responses_body(body: dict[str, Any]) -> ResponsesAsk:
    """Validate a decoded Responses body (a batch row's too) as OpenAI does."""
    for name in body:
        if name not in KNOWN_PARAMS:
            raise api_error(
                400, f"Unknown parameter: '{name}'.", param=name, code="unknown_parameter"
            )
    model = body.get("model")
    if model is None:
        raise missing("model")
    if not isinstance(model, str) or not model:
        raise invalid_type("model", "a non-empty string", model)
    _refuse_state(body)
    messages = input_messages(body)
    max_output = check_int(body, "max_output_tokens", 16, None)
    check_int(body, "top_logprobs", 0, 20)
    check_int(body, "max_tool_calls", 1, None)
    for name, high in (("temperature", 2), ("top_p", 1)):
        _check_number(body, name, high)
    for name in ("parallel_tool_calls", "store", "stream", "background"):
        if body.get(name) is not None and not isinstance(body[name], bool):
            raise invalid_type(name, "a boolean", body[name])
    for name in ("user", "safety_identifier", "prompt_cache_key", "previous_response_id"):
        if body.get(name) is not None and not isinstance(body[name], str):
            raise invalid_type(name, "a string", body[name])
    check_metadata(body.get("metadata"))
    stream = body.get("stream") is True
    if body.get("stream_options") is not None and not stream:
        raise api_error(
            400,
            "The 'stream_options' parameter is only allowed when 'stream' is enabled.",
            param="stream_options",
        )
    _one_of(body.get("truncation"), "truncation", ("auto", "disabled"))
    effort, summary = _reasoning(body.get("reasoning"), model)
    fmt, verbosity = _text(body.get("text"), messages)
    tools, echo_tools = _tools(body.get("tools"))
    choice = _tool_choice(body.get("tool_choice"))

    chat: dict[str, Any] = {"model": model, "messages": messages}
    if fmt is not None:
        chat["response_format"] = _chat_format(fmt)
    if tools is not None:
        chat["tools"] = tools
    if choice is not None:
        chat["tool_choice"] = choice
    chat.update((name, body[name]) for name in _SHARED if name in body)
    if max_output is not None:
        chat["max_completion_tokens"] = max_output
    if effort is not None:
        chat["reasoning_effort"] = effort
    if verbosity is not None:
        chat["verbosity"] = verbosity
    ask = dataclasses.replace(
        parse_body(chat),
        key=fingerprint(body, frozenset({"stream", "stream_options"})),
        stream=stream,
    )
    reasoning_model = model.startswith(REASONING_PREFIXES)
    echo = {
        "background": False,
        "instructions": body.get("instructions"),
        "max_output_tokens": max_output,
        "max_tool_calls": body.get("max_tool_calls"),
        "metadata": body.get("metadata") or {},
        "parallel_tool_calls": body.get("parallel_tool_calls", True),
        "previous_response_id": None,
        "prompt_cache_key": body.get("prompt_cache_key"),
        "reasoning": {
            "effort": effort or ("medium" if reasoning_model else None),
            "summary": summary,
        },
        "safety_identifier": body.get("safety_identifier"),
        "service_tier": "default",
        "store": body.get("store", True),
        "temperature": body.get("temperature", 1.0),
        "text": {"format": _echo_format(fmt), "verbosity": verbosity or "medium"},
        "tool_choice": body.get("tool_choice", "auto"),
        "tools": echo_tools,
        "top_logprobs": body.get("top_logprobs", 0),
        "top_p": body.get("top_p", 1.0),
        "truncation": body.get("truncation") or "disabled",
        "user": body.get("user"),
    }
    return ResponsesAsk(ask, max_output, reasoning_model, summary, echo)


def _one_of(value: Any, param: str, allowed: tuple[str, ...]) -> None:
    if value is not None and value not in allowed:
        raise invalid_value(value, param, allowed)


def _unsupported(param: str, why: str) -> HTTPStatusFailure:
    return api_error(
        400,
        f"Unsupported parameter: '{param}' is not supported {why}.",
        param=param,
        code="unsupported_parameter",
    )


def _refuse_state(body: Mapping[str, Any]) -> None:
    previous = body.get("previous_response_id")
    if isinstance(previous, str):  # the mock stores no response, so none can be found
        raise api_error(
            400,
            f"Previous response with id '{previous}' not found.",
            param="previous_response_id",
            code="previous_response_not_found",
        )
    for name in _STATEFUL:
        if body.get(name) is not None:
            raise _unsupported(name, "by the mock server")
    if body.get("background") is True:
        raise _unsupported("background", "by the mock server")


def _check_number(body: Mapping[str, Any], name: str, high: int) -> None:
    value = body.get(name)
    if value is None:
        return
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise invalid_type(name, "a decimal", value)
    for bad, words, bound, code in (
        (value < 0, "below minimum", ">= 0", "decimal_below_min_value"),
        (value > high, "above maximum", f"<= {high}", "decimal_above_max_value"),
    ):
        if bad:  # worded as request.check_int words its integers
            raise api_error(
                400,
                f"Invalid '{name}': decimal {words} value. Expected a value {bound}, but got "
                f"{value} instead.",
                param=name,
                code=code,
            )


# --- reasoning, text.format, tools ----------------------------------------------------------


def _reasoning(reasoning: Any, model: str) -> tuple[str | None, str | None]:
    """reasoning.effort and reasoning.summary (or its old name, generate_summary)."""
    if reasoning is None:
        return None, None
    if not isinstance(reasoning, dict):
        raise invalid_type("reasoning", "an object", reasoning)
    effort = reasoning.get("effort")
    summary = reasoning.get("summary", reasoning.get("generate_summary"))
    _one_of(effort, "reasoning.effort", _EFFORTS)
    _one_of(summary, "reasoning.summary", _SUMMARIES)
    if not model.startswith(REASONING_PREFIXES):
        for name, value in (("effort", effort), ("summary", summary)):
            if value is not None:
                raise _unsupported(f"reasoning.{name}", "with this model")
    return effort, summary


def _text(text: Any, messages: list[dict[str, Any]]) -> tuple[dict[str, Any] | None, Any]:
    """text.format (checked) and text.verbosity."""
    if text is None:
        return None, None
    if not isinstance(text, dict):
        raise invalid_type("text", "an object", text)
    _one_of(text.get("verbosity"), "text.verbosity", ("low", "medium", "high"))
    fmt = text.get("format")
    if fmt is None:
        return None, text.get("verbosity")
    if not isinstance(fmt, dict):
        raise invalid_type("text.format", "an object", fmt)
    kind = fmt.get("type")
    if kind == "json_schema":
        if not isinstance(fmt.get("name"), str):
            raise missing("text.format.name")
        if "schema" not in fmt:
            raise missing("text.format.schema")
        if not isinstance(fmt["schema"], dict):
            raise invalid_type("text.format.schema", "an object", fmt["schema"])
        if fmt.get("strict") is not None and not isinstance(fmt["strict"], bool):
            raise invalid_type("text.format.strict", "a boolean", fmt["strict"])
    elif kind == "json_object":
        if not any("json" in message_text(m).lower() for m in messages):
            raise api_error(
                400,
                "Response input messages must contain the word 'json' in some form to use "
                "'text.format' of type 'json_object'.",
                param="input",
            )
    elif kind != "text":
        raise invalid_value(kind, "text.format.type", ("text", "json_object", "json_schema"))
    return fmt, text.get("verbosity")


def _chat_format(fmt: Mapping[str, Any]) -> dict[str, Any]:
    if fmt["type"] != "json_schema":
        return {"type": fmt["type"]}
    keys = ("name", "description", "schema", "strict")
    return {"type": "json_schema", "json_schema": {k: fmt[k] for k in keys if k in fmt}}


def _echo_format(fmt: Mapping[str, Any] | None) -> dict[str, Any]:
    if fmt is None or fmt["type"] != "json_schema":
        return {"type": fmt["type"] if fmt else "text"}
    return {
        "type": "json_schema",
        "description": fmt.get("description"),
        "name": fmt["name"],
        "schema": fmt["schema"],
        "strict": bool(fmt.get("strict")),
    }


def _tools(tools: Any) -> tuple[list[dict[str, Any]] | None, list[dict[str, Any]]]:
    """The chat equivalent of `tools`, and the tools as the Response object repeats them."""
    if tools is None:
        return None, []
    if not isinstance(tools, list):
        raise invalid_type("tools", "an array", tools)
    chat, echo = [], []
    for i, tool in enumerate(tools):
        if not isinstance(tool, dict):
            raise invalid_type(f"tools[{i}]", "an object", tool)
        if not isinstance(tool.get("type"), str):
            raise missing(f"tools[{i}].type")
        if tool["type"] != "function":  # hosted and custom tools: the mock never calls them
            chat.append(tool)
            echo.append(tool)
            continue
        if not isinstance(tool.get("name"), str):
            raise missing(f"tools[{i}].name")
        params = tool.get("parameters")
        if params is not None and not isinstance(params, dict):
            raise invalid_type(f"tools[{i}].parameters", "an object", params)
        keys = ("name", "description", "parameters", "strict")
        chat.append({"type": "function", "function": {k: tool[k] for k in keys if k in tool}})
        echo.append(
            {
                "type": "function",
                "name": tool["name"],
                "description": tool.get("description"),
                "parameters": params,
                "strict": tool.get("strict", True),  # the Responses API's default
            }
        )
    return chat, echo


def _tool_choice(choice: Any) -> Any:
    """The chat equivalent of `tool_choice`."""
    if choice is None or isinstance(choice, str):
        _one_of(choice, "tool_choice", ("none", "auto", "required"))
        return choice
    if not isinstance(choice, dict):
        raise invalid_type("tool_choice", "a string or an object", choice)
    if choice.get("type") != "function":
        raise api_error(
            400,
            f"Unsupported value: tool_choice type {json.dumps(choice.get('type'))} is not "
            "supported by the mock server; use 'none', 'auto', 'required' or a function.",
            param="tool_choice.type",
            code="unsupported_value",
        )
    if not isinstance(choice.get("name"), str):
        raise missing("tool_choice.name")
    return {"type": "function", "function": {"name": choice["name"]}}
