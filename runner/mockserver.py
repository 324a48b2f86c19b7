"""The built-in OpenAI-compatible server: a Starlette app answering chat completions
deterministically (schema-valid JSON, tool calls, prose; streamed or not) with seeded fault
injection, served in-process for `--mock` or on loopback by uvicorn. It imports only
runner.errors, runner.records and runner.tokens, and writes its own SSE frames.
"""

from __future__ import annotations

import asyncio
import dataclasses
import hashlib
import hmac
import json
import logging
import re
import socket
import threading
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from random import Random
from typing import TYPE_CHECKING, Any

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from .errors import HTTPStatusFailure
from .mockgen import generate_instance, invalid_json, prose

if TYPE_CHECKING:
    from starlette.types import Receive, Scope, Send

__all__ = [
    "DEFAULT_MODELS",
    "FAULT_HEADER",
    "REFUSAL",
    "REFUSE_MARKER",
    "Faults",
    "create_app",
    "generate_instance",
    "parse_duration",
    "parse_fault_header",
    "parse_statuses",
    "serve",
]

DEFAULT_MODELS = ("gpt-4o-mini", "gpt-4o", "gpt-4.1", "gpt-4.1-mini", "gpt-4.1-nano", "o3-mini")
FAULT_HEADER = "x-mock-fault"
REFUSE_MARKER = "[[refuse]]"
REFUSAL = "I'm sorry, I can't help with that."
FINGERPRINT = "fp_runner_mock"
QUOTA = "quota"  # in Faults.statuses: a 429 with code insufficient_quota

_DROP_MESSAGE = "runner mock server dropped the connection (fault injection)"
_CACHE_SIZE = 4096  # answers and attempt counters kept per app, least recently used first out
_REASONING_PREFIXES = ("o1", "o3", "o4", "gpt-5")


# --- faults -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Faults:
    """What goes wrong, and how often. Rolls are seeded by (seed, request, attempt number)."""

    fail_rate: float = 0.0
    statuses: tuple[int | str, ...] = (500,)  # HTTP error statuses, or QUOTA
    retry_after: float | None = None  # seconds, sent as retry-after and retry-after-ms
    latency: float = 0.0  # seconds before answering (asyncio.sleep, never blocking)
    drop_rate: float = 0.0  # connection dropped mid-reply
    truncate_rate: float = 0.0  # stream cut before finish_reason and [DONE]
    malformed_rate: float = 0.0  # a garbage SSE data line
    invalid_output_rate: float = 0.0  # JSON that breaks the requested schema
    fail_first: int = 0  # each distinct request fails its first N tries
    seed: int = 0

    def __post_init__(self) -> None:
        for name in (
            "fail_rate",
            "drop_rate",
            "truncate_rate",
            "malformed_rate",
            "invalid_output_rate",
        ):
            _check_rate(name, getattr(self, name))
        if not self.statuses:
            raise ValueError("statuses must name at least one status")
        for status in self.statuses:
            if status != QUOTA and not (isinstance(status, int) and 400 <= status <= 599):
                raise ValueError(
                    f"status {status!r} is not an HTTP error status (400-599) or quota"
                )
        for name in ("latency", "retry_after"):
            value = getattr(self, name)
            if value is not None and not value >= 0:
                raise ValueError(f"{name} must be 0 or more seconds, not {value}")
        if self.fail_first < 0:
            raise ValueError(f"fail_first must be 0 or more, not {self.fail_first}")


def _check_rate(name: str, rate: float) -> None:
    if not 0.0 <= rate <= 1.0:
        raise ValueError(f"{name} must be between 0 and 1, not {rate}")


_DURATION = re.compile(r"\s*(\d+(?:\.\d*)?|\.\d+)\s*(ms|s|m)?\s*")
_UNIT_SECONDS = {"ms": 0.001, "s": 1.0, "m": 60.0, None: 1.0}


def parse_duration(text: str) -> float:
    """Read "100ms", "2s", "1.5m" or a plain number of seconds; return seconds."""
    m = _DURATION.fullmatch(text)
    if m is None:
        raise ValueError(f"invalid duration {text!r}: use a number with ms, s or m, such as 100ms")
    return float(m.group(1)) * _UNIT_SECONDS[m.group(2)]


def parse_statuses(text: str) -> tuple[int | str, ...]:
    """Read "429,500,503" (and `quota`, a 429 insufficient_quota) into Faults.statuses."""
    out: list[int | str] = []
    for raw in text.split(","):
        item = raw.strip().lower()
        if item == QUOTA:
            out.append(QUOTA)
        elif item.isdigit() and 400 <= int(item) <= 599:
            out.append(int(item))
        else:
            raise ValueError(
                f"invalid status {raw.strip()!r} in {text!r}: use HTTP error statuses "
                "(400-599) or quota, separated by commas"
            )
    return tuple(out)


_FLAG_FAULTS = {
    "drop": "drop_rate",
    "truncate": "truncate_rate",
    "malformed": "malformed_rate",
    "invalid_output": "invalid_output_rate",
}
_HEADER_KEYS = ("status", "fail_first", "retry_after", "latency", *_FLAG_FAULTS)


def parse_fault_header(value: str, base: Faults) -> Faults:
    """Apply an `X-Mock-Fault` header ("status=503;retry_after=2s", "drop", "fail_first=2") to
    `base`. A named fault happens on every try: `status` fails every try, or only the first N
    with `fail_first=N`; `drop`, `truncate`, `malformed` and `invalid_output` always happen."""
    changes: dict[str, Any] = {}
    for item in filter(None, (part.strip() for part in value.split(";"))):
        key, _, arg = (s.strip() for s in item.partition("="))
        key = key.lower()
        try:
            if key in _FLAG_FAULTS:
                changes[_FLAG_FAULTS[key]] = 1.0
            elif key == "status":
                changes["statuses"] = parse_statuses(arg)
                changes.setdefault("fail_rate", 1.0)
            elif key == "fail_first":
                if not arg.lstrip("-").isdigit():
                    raise ValueError(f"fail_first must be a whole number, not {arg!r}")
                changes["fail_first"] = int(arg)
            elif key in ("retry_after", "latency"):
                changes[key] = parse_duration(arg)
            else:
                raise ValueError(f"unknown fault {key!r}; use {', '.join(_HEADER_KEYS)}")
        except ValueError as exc:
            raise ValueError(f"invalid {FAULT_HEADER} header: {exc}") from None
    if "fail_first" in changes:
        changes["fail_rate"] = 0.0  # only the first N tries fail: the rest must succeed
    try:
        return dataclasses.replace(base, **changes)
    except ValueError as exc:
        raise ValueError(f"invalid {FAULT_HEADER} header: {exc}") from None


@dataclass(frozen=True)
class _Decision:
    status: int | str | None
    drop: bool
    truncate: bool
    malformed: bool
    invalid_output: bool
    rng: Random  # for where to cut or inject


def _decide(faults: Faults, key: str, attempt: int) -> _Decision:
    rng = Random(f"{faults.seed}:{key}:{attempt}")
    # Every roll is drawn whatever the rates, so one rate never shifts another fault's dice.
    rolls = [rng.random() for _ in range(5)]
    status = rng.choice(faults.statuses)
    failed = attempt <= faults.fail_first or rolls[0] < faults.fail_rate
    return _Decision(
        status=status if failed else None,
        drop=rolls[1] < faults.drop_rate,
        truncate=rolls[2] < faults.truncate_rate,
        malformed=rolls[3] < faults.malformed_rate,
        invalid_output=rolls[4] < faults.invalid_output_rate,
        rng=rng,
    )


# --- errors in OpenAI's shape -----------------------------------------------------------------


def _api_error(
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


def _error_body(err: HTTPStatusFailure) -> dict[str, Any]:
    return {
        "error": {"message": err.message, "type": err.type, "param": err.param, "code": err.code}
    }


def _fault_error(status: int | str, faults: Faults, model: str) -> HTTPStatusFailure:
    headers: dict[str, str] = {}
    if faults.retry_after is not None:
        headers["retry-after"] = f"{faults.retry_after:g}"
        headers["retry-after-ms"] = str(round(faults.retry_after * 1000))
    if status == QUOTA:
        return _api_error(
            429,
            "You exceeded your current quota, please check your plan and billing details.",
            type="insufficient_quota",
            code="insufficient_quota",
            headers=headers,
        )
    assert isinstance(status, int)
    if status == 429:
        return _api_error(
            429,
            f"Rate limit reached for {model} on requests per min (RPM): Limit 500, Used 500, "
            "Requested 1. (mock fault)",
            type="requests",
            code="rate_limit_exceeded",
            headers=headers,
        )
    if status >= 500:
        message = {
            500: "The server had an error while processing your request. Sorry about that!",
            503: "The engine is currently overloaded, please try again later.",
        }.get(status, f"The server returned status {status}. (mock fault)")
        return _api_error(status, message, type="server_error", headers=headers)
    return _api_error(status, f"Mock fault: status {status}.", headers=headers)


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


def _invalid_type(param: str, expected: str, value: Any) -> HTTPStatusFailure:
    return _api_error(
        400,
        f"Invalid type for '{param}': expected {expected}, but got {_json_type(value)} instead.",
        param=param,
        code="invalid_type",
    )


def _missing(param: str) -> HTTPStatusFailure:
    return _api_error(
        400,
        f"Missing required parameter: '{param}'.",
        param=param,
        code="missing_required_parameter",
    )


# --- the request ------------------------------------------------------------------------------

_ROLES = ("system", "assistant", "user", "function", "tool", "developer")


@dataclass(frozen=True)
class _Ask:
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
    mode: _Mode


def _parse_request(raw: bytes) -> _Ask:
    try:
        body = json.loads(raw)
    except (ValueError, RecursionError):
        raise _api_error(
            400,
            "We could not parse the JSON body of your request. The OpenAI API expects a JSON "
            "payload, but what was sent was not valid JSON.",
        ) from None
    if not isinstance(body, dict):
        raise _invalid_type("body", "an object", body)
    model = body.get("model")
    if model is None:
        raise _missing("model")
    if not isinstance(model, str) or not model:
        raise _invalid_type("model", "a non-empty string", model)
    messages = _check_messages(body.get("messages"))
    n = _check_int(body, "n", 1, 128)
    max_tokens = _check_max_tokens(body, model)
    stop = _check_stop(body.get("stop"))
    stream = body.get("stream") is True
    options = body.get("stream_options")
    if options is not None and not stream:
        raise _api_error(
            400,
            "The 'stream_options' parameter is only allowed when 'stream' is enabled.",
            param="stream_options",
        )
    include_usage = isinstance(options, dict) and options.get("include_usage") is True
    mode = _plan_mode(body, messages)
    return _Ask(
        body,
        _fingerprint(body, _TRANSPORT_FIELDS),
        _fingerprint(body, _TRANSPORT_FIELDS | _CUT_FIELDS),
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


def _fingerprint(body: Mapping[str, Any], leave_out: frozenset[str]) -> str:
    content = {k: v for k, v in body.items() if k not in leave_out}
    canonical = json.dumps(content, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(canonical.encode()).hexdigest()


def _check_messages(messages: Any) -> list[Mapping[str, Any]]:
    if messages is None:
        raise _missing("messages")
    if not isinstance(messages, list):
        raise _invalid_type("messages", "an array", messages)
    if not messages:
        raise _api_error(
            400,
            "Invalid 'messages': empty array. Expected an array with minimum length 1, but got "
            "an empty array instead.",
            param="messages",
            code="empty_array",
        )
    for i, message in enumerate(messages):
        if not isinstance(message, dict):
            raise _invalid_type(f"messages[{i}]", "an object", message)
        role = message.get("role")
        if role is None:
            raise _missing(f"messages[{i}].role")
        if role not in _ROLES:
            supported = ", ".join(f"'{r}'" for r in _ROLES[:-1])
            raise _api_error(
                400,
                f"Invalid value: {json.dumps(role)}. Supported values are: {supported}, and "
                f"'{_ROLES[-1]}'.",
                param=f"messages[{i}].role",
                code="invalid_value",
            )
    return messages


def _check_int(body: Mapping[str, Any], name: str, low: int, high: int | None) -> int | None:
    value = body.get(name)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise _invalid_type(name, "an integer", value)
    if value < low:
        raise _api_error(
            400,
            f"Invalid '{name}': integer below minimum value. Expected a value >= {low}, but got "
            f"{value} instead.",
            param=name,
            code="integer_below_min_value",
        )
    if high is not None and value > high:
        raise _api_error(
            400,
            f"Invalid '{name}': integer above maximum value. Expected a value <= {high}, but got "
            f"{value} instead.",
            param=name,
            code="integer_above_max_value",
        )
    return value


def _check_max_tokens(body: Mapping[str, Any], model: str) -> int | None:
    legacy = _check_int(body, "max_tokens", 1, None)
    modern = _check_int(body, "max_completion_tokens", 1, None)
    if legacy is not None and model.startswith(_REASONING_PREFIXES):
        raise _api_error(
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
        raise _invalid_type("stop", "a string or an array of strings", stop)
    if len(stop) > 4:
        raise _api_error(
            400,
            "Invalid 'stop': array too long. Expected an array with maximum length 4, but got an "
            f"array with length {len(stop)} instead.",
            param="stop",
            code="array_above_max_length",
        )
    return tuple(s for s in stop if s)


# --- the answer -------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Call:
    id: str
    name: str
    arguments: str


@dataclass(frozen=True)
class _Choice:
    content: str | None
    finish_reason: str
    refusal: str | None = None
    tool_calls: tuple[_Call, ...] = ()
    function_call: _Call | None = None  # the legacy `functions` API


@dataclass(frozen=True)
class _Answer:
    id: str
    choices: tuple[_Choice, ...]
    usage: dict[str, Any]


def _message_text(message: Mapping[str, Any]) -> str:
    content = message.get("content")
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return " ".join(
            str(part.get("text", "")) for part in content if isinstance(part, dict)
        ).strip()
    return ""


def _answer(ask: _Ask, seed: int, invalid: bool) -> _Answer:
    """Build the reply's choices and usage; deterministic in (request, seed, invalid)."""
    from . import tokens

    body = ask.body
    choices = []
    for index in range(ask.n):
        rng = Random(f"{seed}:{ask.content_key}:{index}")
        choices.append(_make_choice(ask, rng, _digest(ask.content_key, seed, index), invalid))
    functions = body.get("tools") or body.get("functions")
    prompt = tokens.count_messages(
        ask.messages, ask.model, tools=functions, tool_choice=body.get("tool_choice")
    )
    completion = sum(_choice_tokens(c, ask.model) for c in choices)
    usage = {
        "prompt_tokens": prompt,
        "completion_tokens": completion,
        "total_tokens": prompt + completion,
        "prompt_tokens_details": {"cached_tokens": 0, "audio_tokens": 0},
        "completion_tokens_details": {
            "reasoning_tokens": 0,
            "audio_tokens": 0,
            "accepted_prediction_tokens": 0,
            "rejected_prediction_tokens": 0,
        },
    }
    return _Answer(f"chatcmpl-{_digest(ask.key, seed)[:29]}", tuple(choices), usage)


def _digest(*parts: object) -> str:
    return hashlib.sha256(":".join(map(str, parts)).encode()).hexdigest()


def _choice_tokens(choice: _Choice, model: str) -> int:
    from . import tokens

    texts = [choice.content or "", choice.refusal or ""]
    for call in (*choice.tool_calls, *([choice.function_call] if choice.function_call else [])):
        texts += [call.name, call.arguments]
    return sum(tokens.count_text(t, model) for t in texts if t)


@dataclass(frozen=True)
class _Mode:
    kind: str  # "refusal", "tools", "function_call", "json_schema", "json_object", "text"
    schema: Mapping[str, Any] | None = None
    name: str = ""  # of the json_schema
    functions: tuple[Mapping[str, Any], ...] = ()  # for tools: the functions to call


def _plan_mode(body: Mapping[str, Any], messages: Sequence[Mapping[str, Any]]) -> _Mode:
    """What kind of answer the request asks for; HTTPStatusFailure for bad formats or tools."""
    tool_mode = _tool_mode(body, messages[-1].get("role"))
    format_mode = _format_mode(body, messages)
    users = [m for m in messages if m.get("role") == "user"]
    if users and REFUSE_MARKER in _message_text(users[-1]):
        return _Mode("refusal")
    return tool_mode or format_mode


def _format_mode(body: Mapping[str, Any], messages: Sequence[Mapping[str, Any]]) -> _Mode:
    fmt = body.get("response_format")
    if fmt is None:
        return _Mode("text")
    if not isinstance(fmt, dict):
        raise _invalid_type("response_format", "an object", fmt)
    kind = fmt.get("type")
    if kind == "json_schema":
        spec = fmt.get("json_schema")
        if not isinstance(spec, dict):
            raise _missing("response_format.json_schema")
        if not isinstance(spec.get("name"), str):
            raise _missing("response_format.json_schema.name")
        schema = spec.get("schema", {})
        if not isinstance(schema, dict):
            raise _invalid_type("response_format.json_schema.schema", "an object", schema)
        return _Mode("json_schema", schema=schema, name=spec["name"])
    if kind == "json_object":
        if not any("json" in _message_text(m).lower() for m in messages):
            raise _api_error(
                400,
                "'messages' must contain the word 'json' in some form, to use 'response_format' "
                "of type 'json_object'.",
                param="messages",
            )
        return _Mode("json_object")
    if kind == "text":
        return _Mode("text")
    raise _api_error(
        400,
        f"Invalid value: {json.dumps(kind)}. Supported values are: 'text', 'json_object', and "
        "'json_schema'.",
        param="response_format.type",
        code="invalid_value",
    )


def _tool_mode(body: Mapping[str, Any], last_role: Any) -> _Mode | None:
    tools = body.get("tools")
    choice = body.get("tool_choice")
    if tools is None:
        if choice is not None:
            raise _api_error(
                400,
                "Invalid value for 'tool_choice': 'tool_choice' is only allowed when 'tools' "
                "are specified.",
                param="tool_choice",
            )
        return _legacy_function_mode(body, last_role)
    if not isinstance(tools, list):
        raise _invalid_type("tools", "an array", tools)
    functions = []
    for i, tool in enumerate(tools):
        if not isinstance(tool, dict):
            raise _invalid_type(f"tools[{i}]", "an object", tool)
        if tool.get("type") != "function":
            continue  # custom tools: the mock never calls them
        fn = tool.get("function")
        if not isinstance(fn, dict) or not isinstance(fn.get("name"), str):
            raise _missing(f"tools[{i}].function.name")
        functions.append(fn)
    if choice == "none" or last_role in ("tool", "function") or not functions:
        return None
    if isinstance(choice, dict):
        wanted = (choice.get("function") or {}).get("name")
        named = [fn for fn in functions if fn["name"] == wanted]
        if not named:
            raise _api_error(
                400,
                f"Invalid value for 'tool_choice': function {json.dumps(wanted)} is not among "
                "the function 'tools'.",
                param="tool_choice",
            )
        return _Mode("tools", functions=tuple(named))
    if body.get("parallel_tool_calls") is True and len(functions) > 1:
        return _Mode("tools", functions=tuple(functions[:3]))
    return _Mode("tools", functions=(functions[0],))


def _legacy_function_mode(body: Mapping[str, Any], last_role: Any) -> _Mode | None:
    functions = body.get("functions")
    choice = body.get("function_call")
    if functions is None:
        return None
    if not isinstance(functions, list):
        raise _invalid_type("functions", "an array", functions)
    for i, fn in enumerate(functions):
        if not isinstance(fn, dict) or not isinstance(fn.get("name"), str):
            raise _missing(f"functions[{i}].name")
    if not functions or choice == "none":
        return None
    if last_role in ("tool", "function"):
        return None
    if isinstance(choice, dict):
        functions = [f for f in functions if f.get("name") == choice.get("name")] or functions
    return _Mode("function_call", functions=(functions[0],))


def _make_choice(ask: _Ask, rng: Random, call_id: str, invalid: bool) -> _Choice:
    mode = ask.mode
    if mode.kind == "refusal":
        return _Choice(content=None, refusal=REFUSAL, finish_reason="stop")
    if mode.kind in ("tools", "function_call"):
        calls = []
        for k, fn in enumerate(mode.functions):
            params = fn.get("parameters") or {}
            arguments = _generate(params, rng, invalid, what="function", name=fn["name"])
            calls.append(_Call(f"call_{_digest(call_id, k)[:24]}", fn["name"], arguments))
        if mode.kind == "function_call":
            return _Choice(content=None, function_call=calls[0], finish_reason="function_call")
        return _Choice(content=None, tool_calls=tuple(calls), finish_reason="tool_calls")
    if mode.kind == "json_schema":
        assert mode.schema is not None
        text = _generate(mode.schema, rng, invalid, what="response_format", name=mode.name)
    elif mode.kind == "json_object":
        text = (
            'Sure! Here is the JSON: {"answer": '
            if invalid
            else json.dumps(
                {"answer": prose(rng, sentences=1), "confidence": round(rng.random(), 2)},
                separators=(",", ":"),
            )
        )
    else:
        users = [m for m in ask.messages if m.get("role") == "user"]
        topic = _message_text(users[-1]) if users else ""
        text = prose(rng, sentences=rng.randint(3, 6), topic=topic)
    return _limit(text, ask)


def _generate(
    schema: Mapping[str, Any], rng: Random, invalid: bool, *, what: str, name: str
) -> str:
    try:
        value = generate_instance(schema, rng, hint=name)
        if invalid:
            return invalid_json(schema, value, rng)
    except (ValueError, TypeError, AttributeError) as exc:
        # TypeError/AttributeError: a malformed schema ("properties": []), which the real API
        # rejects with a 400 too.
        raise _api_error(
            400,
            f"Invalid schema for {what} '{name}': the mock server cannot generate a value for "
            f"it: {exc}.",
            param="response_format" if what == "response_format" else "tools",
            code="invalid_json_schema",
        ) from None
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


def _limit(text: str, ask: _Ask) -> _Choice:
    """Cut `text` at the first stop sequence, then at max_tokens, as a model would stop."""
    from . import tokens

    cut = min((i for i in (text.find(s) for s in ask.stop) if i >= 0), default=-1)
    if cut >= 0:
        text = text[:cut]
    if ask.max_tokens is not None and tokens.count_text(text, ask.model) > ask.max_tokens:
        return _Choice(tokens.truncate(text, ask.max_tokens, ask.model), finish_reason="length")
    return _Choice(text, finish_reason="stop")


# --- rendering: JSON body and SSE frames ------------------------------------------------------


def _message(choice: _Choice) -> dict[str, Any]:
    msg: dict[str, Any] = {
        "role": "assistant",
        "content": choice.content,
        "refusal": choice.refusal,
        "annotations": [],
    }
    if choice.tool_calls:
        msg["tool_calls"] = [
            {
                "id": c.id,
                "type": "function",
                "function": {"name": c.name, "arguments": c.arguments},
            }
            for c in choice.tool_calls
        ]
    if choice.function_call:
        fc = choice.function_call
        msg["function_call"] = {"name": fc.name, "arguments": fc.arguments}
    return msg


def _completion_body(answer: _Answer, model: str, created: int) -> bytes:
    body = {
        "id": answer.id,
        "object": "chat.completion",
        "created": created,
        "model": model,
        "choices": [
            {"index": i, "message": _message(c), "logprobs": None, "finish_reason": c.finish_reason}
            for i, c in enumerate(answer.choices)
        ],
        "usage": answer.usage,
        "service_tier": "default",
        "system_fingerprint": FINGERPRINT,
    }
    return _dumps(body)


def _dumps(obj: Any) -> bytes:
    return json.dumps(obj, separators=(",", ":"), ensure_ascii=False).encode()


def _pieces(text: str, rng: Random) -> list[str]:
    """Split text into stream deltas of one to three words (whitespace kept)."""
    words = re.findall(r"\s*\S+|\s+", text)
    out = []
    while words:
        size = rng.randint(1, 3)
        out.append("".join(words[:size]))
        del words[:size]
    return out


def _fragments(text: str, rng: Random) -> list[str]:
    out = []
    while text:
        size = rng.randint(4, 16)
        out.append(text[:size])
        text = text[size:]
    return out


def _choice_deltas(choice: _Choice, rng: Random) -> list[dict[str, Any]]:
    """The deltas of one choice, opening delta first, finish_reason last."""
    deltas: list[dict[str, Any]] = []
    if choice.tool_calls:
        for k, call in enumerate(choice.tool_calls):
            head: dict[str, Any] = {
                "index": k,
                "id": call.id,
                "type": "function",
                "function": {"name": call.name, "arguments": ""},
            }
            if k == 0:
                deltas.append({"role": "assistant", "content": None, "tool_calls": [head]})
            else:
                deltas.append({"tool_calls": [head]})
            deltas += [
                {"tool_calls": [{"index": k, "function": {"arguments": frag}}]}
                for frag in _fragments(call.arguments, rng)
            ]
    elif choice.function_call:
        fc = choice.function_call
        opening = {"name": fc.name, "arguments": ""}
        deltas.append({"role": "assistant", "content": None, "function_call": opening})
        deltas += [{"function_call": {"arguments": f}} for f in _fragments(fc.arguments, rng)]
    elif choice.refusal is not None:
        deltas.append({"role": "assistant", "content": None, "refusal": ""})
        deltas += [{"refusal": piece} for piece in _pieces(choice.refusal, rng)]
    else:
        deltas.append({"role": "assistant", "content": "", "refusal": None})
        deltas += [{"content": piece} for piece in _pieces(choice.content or "", rng)]
    return deltas


def _stream_frames(answer: _Answer, ask: _Ask, created: int, seed: int) -> tuple[list[bytes], int]:
    """The SSE frames of a streamed reply, and how many come before the first finish_reason."""
    base = {
        "id": answer.id,
        "object": "chat.completion.chunk",
        "created": created,
        "model": ask.model,
        "service_tier": "default",
        "system_fingerprint": FINGERPRINT,
    }

    def frame(choices: list[dict[str, Any]], usage: Any = None) -> bytes:
        chunk = {**base, "choices": choices}
        if ask.include_usage:
            chunk["usage"] = usage
        return b"data: " + _dumps(chunk) + b"\n\n"

    rng = Random(f"{seed}:{ask.content_key}:stream")
    per_choice = [_choice_deltas(c, rng) for c in answer.choices]
    frames = []
    for step in range(max(map(len, per_choice))):
        for index, deltas in enumerate(per_choice):
            if step < len(deltas):
                entry = {"index": index, "delta": deltas[step], "logprobs": None}
                frames.append(frame([{**entry, "finish_reason": None}]))
    body_frames = len(frames)
    for index, choice in enumerate(answer.choices):
        done = {"index": index, "delta": {}, "logprobs": None}
        frames.append(frame([{**done, "finish_reason": choice.finish_reason}]))
    if ask.include_usage:
        frames.append(frame([], answer.usage))
    frames.append(b"data: [DONE]\n\n")
    return frames, body_frames


class _Reply(Response):
    """A reply sent as prepared parts; `abort` raises after them, which drops the connection
    under uvicorn (and surfaces as ConnectionResetError through an in-process ASGI transport)."""

    def __init__(
        self, status: int, parts: list[bytes], headers: dict[str, str], *, abort: bool = False
    ) -> None:
        self.status_code = status
        self.parts = parts
        self.abort = abort
        self.background = None
        self.raw_headers = [(k.encode(), v.encode()) for k, v in headers.items()]

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await send(
            {"type": "http.response.start", "status": self.status_code, "headers": self.raw_headers}
        )
        for part in self.parts:
            await send({"type": "http.response.body", "body": part, "more_body": True})
        if self.abort:
            raise ConnectionResetError(_DROP_MESSAGE)
        await send({"type": "http.response.body", "body": b"", "more_body": False})


# --- the app ----------------------------------------------------------------------------------


class _State:
    """Per-app memory: attempt counters (for fail_first and fault dice) and cached answers."""

    def __init__(
        self,
        faults: Faults,
        api_key: str | None,
        models: Sequence[str],
        sleep: Callable[[float], Awaitable[Any]],
    ) -> None:
        self.faults = faults
        self.sleep = sleep
        self.api_key = api_key
        self.models = tuple(models)
        self.attempts: OrderedDict[str, int] = OrderedDict()
        self.answers: OrderedDict[tuple[str, int, bool], _Answer] = OrderedDict()

    def next_attempt(self, key: str) -> int:
        count = self.attempts.pop(key, 0) + 1
        self.attempts[key] = count
        if len(self.attempts) > _CACHE_SIZE:
            self.attempts.popitem(last=False)
        return count

    def answer(self, ask: _Ask, seed: int, invalid: bool) -> _Answer:
        # Safe to cache: the answer is a pure function of the request, the seed and the flag.
        key = (ask.key, seed, invalid)
        found = self.answers.pop(key, None)
        if found is None:
            found = _answer(ask, seed, invalid)
        self.answers[key] = found
        if len(self.answers) > _CACHE_SIZE:
            self.answers.popitem(last=False)
        return found


def _authorize(state: _State, request: Request) -> None:
    if state.api_key is None:
        return
    header = request.headers.get("authorization", "")
    if not header:
        raise _api_error(
            401,
            "You didn't provide an API key. You need to provide your API key in an "
            "Authorization header using Bearer auth (i.e. Authorization: Bearer YOUR_KEY).",
        )
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not hmac.compare_digest(
        token.strip().encode(), state.api_key.encode()
    ):
        # Never echo the key that was sent: it may be a real one sent to the wrong server.
        raise _api_error(
            401,
            "Incorrect API key provided. You can find your API key at "
            "https://platform.openai.com/account/api-keys.",
            code="invalid_api_key",
        )


def _headers(request_id: str, content_type: str, started: float) -> dict[str, str]:
    return {
        "content-type": content_type,
        "x-request-id": request_id,
        "openai-version": "2020-10-01",
        "openai-processing-ms": str(round((time.perf_counter() - started) * 1000)),
    }


def _error_reply(err: HTTPStatusFailure, request_id: str, started: float) -> _Reply:
    body = _dumps(_error_body(err))
    headers = _headers(request_id, "application/json", started)
    headers.update((k.lower(), v) for k, v in err.headers.items())
    headers["content-length"] = str(len(body))
    return _Reply(err.status, [body], headers)


async def _chat(request: Request) -> Response:
    started = time.perf_counter()
    state: _State = request.app.state.mock
    raw = await request.body()
    request_id = f"req_{hashlib.sha256(raw).hexdigest()[:32]}"
    try:
        _authorize(state, request)
        ask = _parse_request(raw)
        faults = state.faults
        header = request.headers.get(FAULT_HEADER)
        if header is not None:
            try:
                faults = parse_fault_header(header, faults)
            except ValueError as exc:
                raise _api_error(400, str(exc), code="invalid_mock_fault") from None
        attempt = state.next_attempt(f"{ask.key}:{header or ''}")
        request_id = f"req_{_digest(ask.key, header, faults.seed, attempt)[:32]}"
        decision = _decide(faults, ask.key, attempt)
        if faults.latency:
            await state.sleep(faults.latency)
        if decision.status is not None:
            raise _fault_error(decision.status, faults, ask.model)
        answer = state.answer(ask, faults.seed, decision.invalid_output)
    except HTTPStatusFailure as err:
        return _error_reply(err, request_id, started)
    created = int(time.time())
    if ask.stream:
        return _stream_reply(answer, ask, decision, created, faults.seed, request_id, started)
    body = _completion_body(answer, ask.model, created)
    headers = _headers(request_id, "application/json", started)
    headers["content-length"] = str(len(body))
    if decision.drop:  # announce the whole body, send half of it
        return _Reply(200, [body[: len(body) // 2]], headers, abort=True)
    if decision.truncate:  # a clean HTTP reply whose JSON stops half way
        body = body[: len(body) // 2]
    elif decision.malformed:
        body = b"{not json"
    headers["content-length"] = str(len(body))
    return _Reply(200, [body], headers)


def _stream_reply(
    answer: _Answer,
    ask: _Ask,
    decision: _Decision,
    created: int,
    seed: int,
    request_id: str,
    started: float,
) -> _Reply:
    frames, before_finish = _stream_frames(answer, ask, created, seed)
    rng = decision.rng
    if decision.drop or decision.truncate:
        # Keep at least the opening frame and never reach a finish_reason.
        before_finish = rng.randint(1, before_finish)
        frames = frames[:before_finish]
    if decision.malformed:
        frames.insert(rng.randint(1, before_finish), b"data: {not json\n\n")
    headers = _headers(request_id, "text/event-stream; charset=utf-8", started)
    headers["cache-control"] = "no-cache"
    return _Reply(200, frames, headers, abort=decision.drop)


def _model_object(model: str) -> dict[str, Any]:
    return {"id": model, "object": "model", "created": 1_700_000_000, "owned_by": "runner-mock"}


async def _models(request: Request) -> Response:
    started = time.perf_counter()
    state: _State = request.app.state.mock
    request_id = f"req_{_digest('models', time.time_ns())[:32]}"
    try:
        _authorize(state, request)
        model = request.path_params.get("model")
        if model is None:
            payload: Any = {"object": "list", "data": [_model_object(m) for m in state.models]}
        elif model in state.models:
            payload = _model_object(model)
        else:
            raise _api_error(
                404,
                f"The model '{model}' does not exist or you do not have access to it.",
                param="model",
                code="model_not_found",
            )
    except HTTPStatusFailure as err:
        return _error_reply(err, request_id, started)
    body = _dumps(payload)
    headers = _headers(request_id, "application/json", started)
    headers["content-length"] = str(len(body))
    return _Reply(200, [body], headers)


async def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    where = f"({request.method} {request.url.path})"
    if exc.status_code == 405:
        err = _api_error(405, f"Invalid method for URL {where}", headers=exc.headers)
    else:
        err = _api_error(exc.status_code, f"Invalid URL {where}")
    return _error_reply(err, f"req_{_digest(where, time.time_ns())[:32]}", time.perf_counter())


async def _crash(request: Request, exc: Exception) -> Response:
    err = _api_error(
        500,
        "The server had an error while processing your request. Sorry about that!",
        type="server_error",
    )
    return _error_reply(err, f"req_{_digest('crash', time.time_ns())[:32]}", time.perf_counter())


def create_app(
    faults: Faults | None = None,
    *,
    api_key: str | None = None,
    models: Sequence[str] = DEFAULT_MODELS,
    sleep: Callable[[float], Awaitable[Any]] = asyncio.sleep,
) -> Starlette:
    """Return the mock server's ASGI app. With `api_key`, requests must carry that bearer key;
    `models` is what GET /v1/models lists; `sleep` waits out Faults.latency (tests inject one)."""
    app = Starlette(
        routes=[
            Route("/v1/chat/completions", _chat, methods=["POST"]),
            Route("/v1/models", _models, methods=["GET"]),
            Route("/v1/models/{model:path}", _models, methods=["GET"]),
        ],
        exception_handlers={HTTPException: _http_error, Exception: _crash},
    )
    app.state.mock = _State(faults or Faults(), api_key, models, sleep)
    return app


# --- serving on a port ------------------------------------------------------------------------


class _QuietDrops(logging.Filter):
    """Keeps uvicorn from logging a traceback for each connection dropped on purpose."""

    def filter(self, record: logging.LogRecord) -> bool:
        exc = record.exc_info[1] if record.exc_info else None
        return not (isinstance(exc, ConnectionResetError) and str(exc) == _DROP_MESSAGE)


_QUIET_DROPS = _QuietDrops()


def _bind(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    # IPPROTO_TCP explicitly: asyncio sets TCP_NODELAY only on sockets that say so, and without
    # it Nagle's algorithm and delayed ACKs add 40 ms to every reply on a kept-alive connection.
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
        sock.listen(2048)
    except OSError:
        sock.close()
        raise
    return sock


def serve(
    *,
    host: str = "127.0.0.1",
    port: int = 0,
    faults: Faults | None = None,
    api_key: str | None = None,
    log_level: str = "warning",
    ready: Callable[[int], None] | None = None,
    stop: threading.Event | None = None,
) -> None:
    """Serve the mock app with uvicorn until Ctrl-C (or until `stop` is set); blocking.

    `port=0` picks a free port. `ready(port)` is called once the socket is listening, before
    the first request is accepted. OSError when the address cannot be bound.
    """
    import uvicorn

    from . import tokens

    tokens.encoding_for(DEFAULT_MODELS[0])  # load the tokenizer now, not on the first request
    sock = _bind(host, port)
    try:
        config = uvicorn.Config(
            create_app(faults, api_key=api_key),
            log_level=log_level,
            lifespan="off",
            http="h11",
            ws="none",
        )
        server = uvicorn.Server(config)
        logging.getLogger("uvicorn.error").addFilter(_QUIET_DROPS)
        if stop is not None:
            threading.Thread(target=_stop_when_set, args=(stop, server), daemon=True).start()
        if ready is not None:
            ready(sock.getsockname()[1])
        server.run(sockets=[sock])
    finally:
        sock.close()


def _stop_when_set(stop: threading.Event, server: Any) -> None:
    stop.wait()
    server.should_exit = True
