"""Request bodies for Chat Completions as OpenAI's API reference defines them: parameter rules for
reasoning models, response_format checks. Pure functions on plain data; it must not do I/O or
import httpx2.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Mapping, Sequence
from typing import Any

from runner.errors import ConfigError
from runner.providers.wire import OutputFormat, WireRequest
from runner.types import Message

__all__ = [
    "accepts_effort_none",
    "body_for",
    "build_body",
    "is_reasoning_model",
    "response_format_for",
]

# Sampling parameters that OpenAI's reasoning models reject unless left at their defaults.
_REASONING_DEFAULTS: dict[str, Any] = {
    "temperature": 1,
    "top_p": 1,
    "presence_penalty": 0,
    "frequency_penalty": 0,
    "logprobs": False,
    "top_logprobs": None,
}
# GPT-5.1 and later accept these again when reasoning_effort is "none" (OpenAI's GPT-5 guide).
_EFFORT_NONE_ALLOWS = frozenset({"temperature", "top_p", "logprobs", "top_logprobs"})
_OWN_ARGUMENTS = ("model", "messages", "stream", "response_format", "tools", "tool_choice")
_REASONING = re.compile(r"o\d+(?:-|$)|gpt-5(?:[.-]|$)")
_REJECTS_STOP = re.compile(r"o3(?:-(?!mini)|$)|o4|gpt-5")
_SCHEMA_NAME_BAD = re.compile(r"[^A-Za-z0-9_-]")


def _bare_model(model: str) -> str:
    """`ft:o4-mini:org::id` and `openai/o3` name the same family as `o4-mini` and `o3`."""
    name = model.rsplit("/", 1)[-1].lower()
    return name[3:] if name.startswith("ft:") else name


@functools.lru_cache(maxsize=256)  # asked on every call, of the few models a run names
def is_reasoning_model(model: str) -> bool:
    """Tell whether `model` is an OpenAI reasoning model (o-series, gpt-5 except chat variants)."""
    name = _bare_model(model)
    return bool(_REASONING.match(name)) and "-chat" not in name


def accepts_effort_none(model: str) -> bool:
    """Whether `model` takes sampling parameters again when its reasoning effort is "none"
    (gpt-5.1 and later)."""
    found = re.match(r"gpt-5\.(\d+)", _bare_model(model))
    return found is not None and int(found.group(1)) >= 1


def response_format_for(schema: Mapping[str, Any], *, name: str, strict: bool) -> dict[str, Any]:
    """Make a `json_schema` response_format; `name` is cut to the API's 64 [A-Za-z0-9_-] chars."""
    clean = _schema_name(name)
    return {
        "type": "json_schema",
        "json_schema": {"name": clean, "schema": dict(schema), "strict": strict},
    }


@functools.lru_cache(maxsize=256)  # one name per spec, on every call
def _schema_name(name: str) -> str:
    return _SCHEMA_NAME_BAD.sub("_", name)[:64] or "output"


@functools.lru_cache(maxsize=256)
def _valid_schema_name(name: str) -> bool:
    return bool(name) and not _SCHEMA_NAME_BAD.search(name) and len(name) <= 64


def body_for(request: WireRequest) -> dict[str, Any]:
    """The Chat Completions body of a neutral request."""
    return build_body(
        request.model,
        request.messages,
        params=request.params,
        response_format=_response_format(request.output),
        tools=request.tools,
        tool_choice=request.tool_choice,
        stream=request.stream,
    )


def _response_format(output: OutputFormat | None) -> dict[str, Any] | None:
    if output is None:
        return None
    if output.kind == "json_object":
        return {"type": "json_object"}
    return response_format_for(output.schema or {}, name=output.name, strict=output.strict)


def build_body(
    model: str,
    messages: Sequence[Message],
    *,
    params: Mapping[str, Any] | None = None,
    response_format: Mapping[str, Any] | None = None,
    tools: Sequence[Mapping[str, Any]] | None = None,
    tool_choice: Any = None,
    stream: bool = False,
) -> dict[str, Any]:
    """Build a Chat Completions request body as OpenAI's API reference defines it.

    None values are left out. For reasoning models `max_tokens` becomes `max_completion_tokens`
    and sampling parameters they reject raise ConfigError instead of a 400 from the server.
    """
    if not model:
        raise ValueError("model must be a non-empty string")
    if not messages:
        raise ValueError("messages must not be empty")
    for message in messages:
        mapping = type(message) is dict or isinstance(message, Mapping)  # dict: no ABC check
        if not mapping or not isinstance(message.get("role"), str):
            raise ValueError(f"each message needs a string `role`, got {message!r:.80}")
    body: dict[str, Any] = {"model": model, "messages": [dict(m) for m in messages]}
    given = {k: v for k, v in (params or {}).items() if v is not None}
    for key in _OWN_ARGUMENTS:
        if key in given:
            raise ConfigError(f"`{key}` cannot be given in params; it has its own setting")
    if "max_tokens" in given and "max_completion_tokens" in given:
        raise ConfigError(
            f"model {model} got both max_tokens and max_completion_tokens; keep one of them"
        )
    if is_reasoning_model(model):
        given = _reasoning_params(model, given)
    if not tools and ("parallel_tool_calls" in given or tool_choice is not None):
        name = "tool_choice" if tool_choice is not None else "parallel_tool_calls"
        raise ConfigError(f"`{name}` is only allowed when tools are given")
    options = given.pop("stream_options", None)
    if options is not None and not stream:
        raise ConfigError("`stream_options` is only allowed when streaming")
    body.update(given)
    if response_format is not None:
        body["response_format"] = _checked_response_format(response_format)
    if tools:
        body["tools"] = [dict(t) for t in tools]
    if tool_choice is not None:
        body["tool_choice"] = tool_choice
    if stream:
        body["stream"] = True
        body["stream_options"] = {"include_usage": True, **(options or {})}
    return body


def _reasoning_params(model: str, given: dict[str, Any]) -> dict[str, Any]:
    name = _bare_model(model)
    effort_none = given.get("reasoning_effort") == "none" and accepts_effort_none(name)
    out = dict(given)
    for key, default in _REASONING_DEFAULTS.items():
        if key not in out or (effort_none and key in _EFFORT_NONE_ALLOWS):
            continue
        if out[key] == default and default is not None:
            del out[key]  # the default is what the model uses anyway; some reject it even so
            continue
        unless = ' unless reasoning_effort is "none"' if key in _EFFORT_NONE_ALLOWS else ""
        if unless and not accepts_effort_none(name):
            unless = ""
        raise ConfigError(
            f"model {model} does not accept {key}={out[key]!r}{unless}; remove `{key}` from params"
        )
    if "stop" in out and _REJECTS_STOP.match(name):
        raise ConfigError(f"model {model} does not accept stop; remove `stop` from params")
    if "max_tokens" in out:
        out["max_completion_tokens"] = out.pop("max_tokens")
    return out


def _checked_response_format(fmt: Mapping[str, Any]) -> dict[str, Any]:
    kind = fmt.get("type")
    if kind not in ("text", "json_object", "json_schema"):
        raise ConfigError(
            f"response_format type {kind!r} is not one of 'text', 'json_object', 'json_schema'"
        )
    if kind == "json_schema":
        inner = fmt.get("json_schema")
        name = inner.get("name") if type(inner) is dict or isinstance(inner, Mapping) else None
        if not isinstance(name, str) or not _valid_schema_name(name):
            raise ConfigError(
                "response_format json_schema needs a `name` of 1-64 letters, digits, _ or -"
            )
    return dict(fmt)
