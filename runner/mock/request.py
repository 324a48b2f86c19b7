"""What a chat completion request asks for: validation with OpenAI's 400 messages, the answer
mode (text, JSON, tools, refusal) and the request's content keys, plus the OpenAI error shape
every part of the mock server raises. It builds no answers and imports only runner.errors.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from runner.errors import HTTPStatusFailure

__all__ = [
    "REASONING_PREFIXES",
    "REFUSE_MARKER",
    "Ask",
    "Mode",
    "api_error",
    "check_int",
    "decode_body",
    "digest",
    "error_body",
    "fingerprint",
    "invalid_type",
    "message_text",
    "missing",
    "parse_body",
    "parse_request",
]

REFUSE_MARKER = "[[refuse]]"
REASONING_PREFIXES = ("o1", "o3", "o4", "gpt-5")


# --- errors in OpenAI's shape -----------------------------------------------------------------


def api_error(
    status: int,
    message: str,
    *,
    type: str = "invalid_request_error",
    param: str | None = None,
    code: str | None = None,
    headers: Mapping[str, str] | None = None,
) -> HTTPStatusFailure:
    """The failure a client will see, raised inside a handler and sent as OpenAI's error body."""
    return HTTPStatusFailure(
        message, status=status, type=type, param=param, code=code, headers=headers
    )


def error_body(err: HTTPStatusFailure) -> dict[str, Any]:
    """OpenAI's JSON error body for `err`."""
    return {
        "error": {"message": err.message, "type": err.type, "param": err.param, "code": err.code}
    }


def _json_type(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int):
        return "an integer"
    if isinstance(value, float):
        return "a decimal"
    if isinstance(value, str):
        return "a string"
    return "an array" if isinstance(value, list) else "an object"


def invalid_type(param: str, expected: str, value: Any) -> HTTPStatusFailure:
    """OpenAI's 400 for a parameter of the wrong JSON type."""
    return api_error(
        400,
        f"Invalid type for '{param}': expected {expected}, but got {_json_type(value)} instead.",
        param=param,
        code="invalid_type",
    )


def missing(param: str) -> HTTPStatusFailure:
    """OpenAI's 400 for a required parameter that is absent."""
    return api_error(
        400,
        f"Missing required parameter: '{param}'.",
        param=param,
        code="missing_required_parameter",
    )


# --- the request ------------------------------------------------------------------------------

_ROLES = ("system", "assistant", "user", "function", "tool", "developer")


@dataclass(frozen=True)
class Ask:
    """A validated chat completion request: what the answer depends on."""

    body: Mapping[str, Any]
    key: str  # sha256 of the canonical body without stream/stream_options
    content_key: str  # ... and without the fields that only cut or repeat the answer
    model: str
    messages: list[Mapping[str, Any]]
    n: int
    stream: bool
    include_usage: bool
    max_tokens: int | None
    stop: tuple[str, ...]
    mode: Mode


def parse_request(raw: bytes) -> Ask:
    """Validate a raw request body as OpenAI does; HTTPStatusFailure (400) with its message."""
    return parse_body(decode_body(raw))


def decode_body(raw: bytes) -> dict[str, Any]:
    """The JSON object of a raw request body; OpenAI's 400 when it is not one."""
    try:
        body = json.loads(raw)
    except (ValueError, RecursionError):
        raise api_error(
            400,
            "We could not parse the JSON body of your request. The OpenAI API expects a JSON "
            "payload, but what was sent was not valid JSON.",
        ) from None
    if not isinstance(body, dict):
        raise invalid_type("body", "an object", body)
    return body


def parse_body(body: dict[str, Any]) -> Ask:
    """Validate a decoded request body (a batch row's) as OpenAI does; as parse_request."""
    model = body.get("model")
    if model is None:
        raise missing("model")
    if not isinstance(model, str) or not model:
        raise invalid_type("model", "a non-empty string", model)
    messages = _check_messages(body.get("messages"))
    n = check_int(body, "n", 1, 128)
    max_tokens = _check_max_tokens(body, model)
    stop = _check_stop(body.get("stop"))
    stream = body.get("stream") is True
    options = body.get("stream_options")
    if options is not None and not stream:
        raise api_error(
            400,
            "The 'stream_options' parameter is only allowed when 'stream' is enabled.",
            param="stream_options",
        )
    include_usage = isinstance(options, dict) and options.get("include_usage") is True
    mode = _plan_mode(body, messages)
    return Ask(
        body,
        fingerprint(body, _TRANSPORT_FIELDS),
        fingerprint(body, _TRANSPORT_FIELDS | _CUT_FIELDS),
        model,
        messages,
        n or 1,
        stream,
        include_usage,
        max_tokens,
        stop,
        mode,
    )


_TRANSPORT_FIELDS = frozenset({"stream", "stream_options"})
# A model with a fixed seed writes the same answer whatever these say; they only cut it short
# or ask for more choices. Leaving them out of the content seed keeps that true here.
_CUT_FIELDS = frozenset({"max_tokens", "max_completion_tokens", "stop", "n"})


def fingerprint(body: Mapping[str, Any], leave_out: frozenset[str]) -> str:
    """sha256 of the canonical JSON of `body` without the fields in `leave_out`."""
    content = {k: v for k, v in body.items() if k not in leave_out}
    canonical = json.dumps(content, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(canonical.encode()).hexdigest()


def _check_messages(messages: Any) -> list[Mapping[str, Any]]:
    if messages is None:
        raise missing("messages")
    if not isinstance(messages, list):
        raise invalid_type("messages", "an array", messages)
    if not messages:
        raise api_error(
            400,
            "Invalid 'messages': empty array. Expected an array with minimum length 1, but got "
            "an empty array instead.",
            param="messages",
            code="empty_array",
        )
    for i, message in enumerate(messages):
        if not isinstance(message, dict):
            raise invalid_type(f"messages[{i}]", "an object", message)
        role = message.get("role")
        if role is None:
            raise missing(f"messages[{i}].role")
        if role not in _ROLES:
            supported = ", ".join(f"'{r}'" for r in _ROLES[:-1])
            raise api_error(
                400,
                f"Invalid value: {json.dumps(role)}. Supported values are: {supported}, and "
                f"'{_ROLES[-1]}'.",
                param=f"messages[{i}].role",
                code="invalid_value",
            )
    return messages


def check_int(body: Mapping[str, Any], name: str, low: int, high: int | None) -> int | None:
    """`body[name]` as an integer in [low, high], None when absent; OpenAI's 400s otherwise."""
    value = body.get(name)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise invalid_type(name, "an integer", value)
    if value < low:
        raise api_error(
            400,
            f"Invalid '{name}': integer below minimum value. Expected a value >= {low}, but got "
            f"{value} instead.",
            param=name,
            code="integer_below_min_value",
        )
    if high is not None and value > high:
        raise api_error(
            400,
            f"Invalid '{name}': integer above maximum value. Expected a value <= {high}, but got "
            f"{value} instead.",
            param=name,
            code="integer_above_max_value",
        )
    return value


def _check_max_tokens(body: Mapping[str, Any], model: str) -> int | None:
    legacy = check_int(body, "max_tokens", 1, None)
    modern = check_int(body, "max_completion_tokens", 1, None)
    if legacy is not None and model.startswith(REASONING_PREFIXES):
        raise api_error(
            400,
            "Unsupported parameter: 'max_tokens' is not supported with this model. Use "
            "'max_completion_tokens' instead.",
            param="max_tokens",
            code="unsupported_parameter",
        )
    limits = [v for v in (legacy, modern) if v is not None]
    return min(limits) if limits else None


def _check_stop(stop: Any) -> tuple[str, ...]:
    if stop is None:
        return ()
    if isinstance(stop, str):
        return (stop,) if stop else ()
    if not isinstance(stop, list) or not all(isinstance(s, str) for s in stop):
        raise invalid_type("stop", "a string or an array of strings", stop)
    if len(stop) > 4:
        raise api_error(
            400,
            "Invalid 'stop': array too long. Expected an array with maximum length 4, but got an "
            f"array with length {len(stop)} instead.",
            param="stop",
            code="array_above_max_length",
        )
    return tuple(s for s in stop if s)


# --- the answer mode --------------------------------------------------------------------------


@dataclass(frozen=True)
class Mode:
    kind: str  # "refusal", "tools", "function_call", "json_schema", "json_object", "text"
    schema: Mapping[str, Any] | None = None
    name: str = ""  # of the json_schema
    functions: tuple[Mapping[str, Any], ...] = ()  # for tools: the functions to call


def _plan_mode(body: Mapping[str, Any], messages: Sequence[Mapping[str, Any]]) -> Mode:
    """What kind of answer the request asks for; HTTPStatusFailure for bad formats or tools."""
    tool_mode = _tool_mode(body, messages[-1].get("role"))
    format_mode = _format_mode(body, messages)
    users = [m for m in messages if m.get("role") == "user"]
    if users and REFUSE_MARKER in message_text(users[-1]):
        return Mode("refusal")
    return tool_mode or format_mode


# What runner's output.mode json_object and prompt add to the prompt, before the schema's JSON
# (runner.providers' SCHEMA_INSTRUCTION; the mock may not import the providers). A mock model that
# finds it follows it, as an instruction-following model would.
SCHEMA_INSTRUCTION_END = "It must conform to this JSON Schema:\n"


def _schema_in_prompt(messages: Sequence[Mapping[str, Any]]) -> Mode | None:
    for message in messages:
        text = message_text(message)
        at = text.rfind(SCHEMA_INSTRUCTION_END)
        if at < 0:
            continue
        try:
            schema = json.loads(text[at + len(SCHEMA_INSTRUCTION_END) :])
        except ValueError:
            continue
        if isinstance(schema, dict):
            return Mode("json_schema", schema=schema, name="output")
    return None


def _format_mode(body: Mapping[str, Any], messages: Sequence[Mapping[str, Any]]) -> Mode:
    fmt = body.get("response_format")
    if fmt is None or (isinstance(fmt, dict) and fmt.get("type") in ("json_object", "text")):
        in_prompt = _schema_in_prompt(messages)
        if in_prompt is not None:  # (it says "JSON": json_object's own check would pass)
            return in_prompt
    if fmt is None:
        return Mode("text")
    if not isinstance(fmt, dict):
        raise invalid_type("response_format", "an object", fmt)
    kind = fmt.get("type")
    if kind == "json_schema":
        spec = fmt.get("json_schema")
        if not isinstance(spec, dict):
            raise missing("response_format.json_schema")
        if not isinstance(spec.get("name"), str):
            raise missing("response_format.json_schema.name")
        schema = spec.get("schema", {})
        if not isinstance(schema, dict):
            raise invalid_type("response_format.json_schema.schema", "an object", schema)
        return Mode("json_schema", schema=schema, name=spec["name"])
    if kind == "json_object":
        if not any("json" in message_text(m).lower() for m in messages):
            raise api_error(
                400,
                "'messages' must contain the word 'json' in some form, to use 'response_format' "
                "of type 'json_object'.",
                param="messages",
            )
        return Mode("json_object")
    if kind == "text":
        return Mode("text")
    raise api_error(
        400,
        f"Invalid value: {json.dumps(kind)}. Supported values are: 'text', 'json_object', and "
        "'json_schema'.",
        param="response_format.type",
        code="invalid_value",
    )


def _tool_mode(body: Mapping[str, Any], last_role: Any) -> Mode | None:
    tools = body.get("tools")
    choice = body.get("tool_choice")
    if tools is None:
        if choice is not None:
            raise api_error(
                400,
                "Invalid value for 'tool_choice': 'tool_choice' is only allowed when 'tools' "
                "are specified.",
                param="tool_choice",
            )
        return _legacy_function_mode(body, last_role)
    if not isinstance(tools, list):
        raise invalid_type("tools", "an array", tools)
    functions = []
    for i, tool in enumerate(tools):
        if not isinstance(tool, dict):
            raise invalid_type(f"tools[{i}]", "an object", tool)
        if tool.get("type") != "function":
            continue  # custom tools: the mock never calls them
        fn = tool.get("function")
        if not isinstance(fn, dict) or not isinstance(fn.get("name"), str):
            raise missing(f"tools[{i}].function.name")
        functions.append(fn)
    if choice == "none" or last_role in ("tool", "function") or not functions:
        return None
    if isinstance(choice, dict):
        wanted = (choice.get("function") or {}).get("name")
        named = [fn for fn in functions if fn["name"] == wanted]
        if not named:
            raise api_error(
                400,
                f"Invalid value for 'tool_choice': function {json.dumps(wanted)} is not among "
                "the function 'tools'.",
                param="tool_choice",
            )
        return Mode("tools", functions=tuple(named))
    if body.get("parallel_tool_calls") is True and len(functions) > 1:
        return Mode("tools", functions=tuple(functions[:3]))
    return Mode("tools", functions=(functions[0],))


def _legacy_function_mode(body: Mapping[str, Any], last_role: Any) -> Mode | None:
    functions = body.get("functions")
    choice = body.get("function_call")
    if functions is None:
        return None
    if not isinstance(functions, list):
        raise invalid_type("functions", "an array", functions)
    for i, fn in enumerate(functions):
        if not isinstance(fn, dict) or not isinstance(fn.get("name"), str):
            raise missing(f"functions[{i}].name")
    if not functions or choice == "none":
        return None
    if last_role in ("tool", "function"):
        return None
    if isinstance(choice, dict):
        functions = [f for f in functions if f.get("name") == choice.get("name")] or functions
    return Mode("function_call", functions=(functions[0],))


# --- shared with mockreply --------------------------------------------------------------------


def message_text(message: Mapping[str, Any]) -> str:
    """The text of a message: its string content, or its text parts joined."""
    content = message.get("content")
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return " ".join(
            str(part.get("text", "")) for part in content if isinstance(part, dict)
        ).strip()
    return ""


def digest(*parts: object) -> str:
    """Hex sha256 of the parts joined by colons: the seed of ids and request ids."""
    return hashlib.sha256(":".join(map(str, parts)).encode()).hexdigest()
