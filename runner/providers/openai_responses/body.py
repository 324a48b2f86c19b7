"""Request bodies for OpenAI's Responses API (`POST /responses`) from runner's neutral request:
the first system (or developer) message becomes `instructions`, the rest of the conversation
`input` items (messages, function calls and their outputs), the output format `text.format`,
tools in the Responses shape, and `store: false` unless the spec asks to store. Also the way
back (a built body's conversation as runner's messages), for counting and the ledger. Pure
functions on plain data; no I/O.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any

from runner.errors import ConfigError
from runner.providers.openai_chat.body import accepts_effort_none, is_reasoning_model
from runner.providers.wire import OutputFormat, WireRequest
from runner.types import Message

__all__ = ["body_for", "messages_of", "text_format"]

# The params a spec may give for this API (the spec schema lists them too). Everything else
# has a field of its own in a spec or is Chat Completions' (`runner validate` says which).
PARAMS = frozenset(
    {
        "max_output_tokens",
        "max_tool_calls",
        "metadata",
        "parallel_tool_calls",
        "prompt_cache_key",
        "prompt_cache_retention",
        "reasoning",
        "safety_identifier",
        "service_tier",
        "store",
        "temperature",
        "top_logprobs",
        "top_p",
        "truncation",
        "user",
    }
)
# Sampling parameters OpenAI's reasoning models refuse unless left at their defaults (gpt-5.1
# and later take them again with reasoning effort none, as on chat).
_SAMPLING_DEFAULTS = {"temperature": 1, "top_p": 1}
_SCHEMA_NAME_BAD = re.compile(r"[^A-Za-z0-9_-]")


def text_format(output: OutputFormat) -> dict[str, Any]:
    """The `text.format` of a structured output."""
    if output.kind == "json_object":
        return {"type": "json_object"}
    name = _SCHEMA_NAME_BAD.sub("_", output.name)[:64] or "output"
    return {
        "type": "json_schema",
        "name": name,
        "schema": dict(output.schema or {}),
        "strict": output.strict,
    }


def body_for(request: WireRequest) -> dict[str, Any]:
    """The Responses API body of a neutral request. ConfigError for a parameter it does not
    take (n, max_tokens...) or one a reasoning model refuses."""
    if not request.model:
        raise ValueError("model must be a non-empty string")
    if not request.messages:
        raise ValueError("messages must not be empty")
    params = {k: v for k, v in request.params.items() if v is not None}
    unknown = sorted(set(params) - PARAMS)
    if unknown:
        raise ConfigError(
            f"the Responses API takes no `{unknown[0]}`; remove it from params (or use "
            "provider.api: chat)"
        )
    reasoning = params.get("reasoning")
    effort = reasoning.get("effort") if isinstance(reasoning, Mapping) else None
    if is_reasoning_model(request.model) and not (
        effort == "none" and accepts_effort_none(request.model)
    ):
        for key, default in _SAMPLING_DEFAULTS.items():
            if key in params and params[key] != default:
                raise ConfigError(
                    f"model {request.model} does not accept {key}={params[key]!r}; remove "
                    f"`{key}` from params"
                )
            params.pop(key, None)
    if not request.tools and ("parallel_tool_calls" in params or request.tool_choice is not None):
        name = "tool_choice" if request.tool_choice is not None else "parallel_tool_calls"
        raise ConfigError(f"`{name}` is only allowed when tools are given")
    instructions, items = _split(request.messages)
    body: dict[str, Any] = {"model": request.model}
    if instructions is not None:
        body["instructions"] = instructions
    body["input"] = items
    body.update(params)
    body.setdefault("store", False)  # runner keeps its own record: see docs/spec.md
    if request.output is not None:
        body["text"] = {"format": text_format(request.output)}
    if request.tools:
        body["tools"] = [_tool(t) for t in request.tools]
    if request.tool_choice is not None:
        body["tool_choice"] = _tool_choice(request.tool_choice)
    if request.stream:
        body["stream"] = True
    return body


def _split(messages: Sequence[Message]) -> tuple[str | None, list[dict[str, Any]]]:
    """`instructions` (the first message, when it is a system or developer message with text)
    and the `input` items of the rest."""
    first = messages[0]
    instructions = None
    rest = list(messages)
    if first.get("role") in ("system", "developer") and isinstance(first.get("content"), str):
        instructions, rest = first["content"], rest[1:]
    items: list[dict[str, Any]] = []
    for message in rest:
        items.extend(_items(message))
    return instructions, items


def _items(message: Message) -> list[dict[str, Any]]:
    role = message.get("role")
    lost = next((k for k in ("name", "function_call", "refusal") if k in message), None)
    if role == "function" or lost is not None:
        what = "a function message" if role == "function" else f"a message's `{lost}`"
        raise ConfigError(
            f"the Responses API has no place for {what}; use tool_calls and tool messages, "
            "refusal content parts (or provider.api: chat)"
        )
    if role == "tool":
        return [
            {
                "type": "function_call_output",
                "call_id": message.get("tool_call_id"),
                "output": _text_of(message.get("content")),
            }
        ]
    items: list[dict[str, Any]] = []
    content = message.get("content")
    if (content is not None and content != "") or not message.get("tool_calls"):
        items.append({"role": role, "content": _content(role, content)})
    for call in message.get("tool_calls") or ():
        function = call.get("function") or {}
        items.append(
            {
                "type": "function_call",
                "call_id": call.get("id"),
                "name": function.get("name"),
                "arguments": function.get("arguments") or "",
            }
        )
    return items


def _content(role: Any, content: Any) -> Any:
    """A message's content: text as it is, parts in the Responses shape."""
    if not isinstance(content, list):
        return content if content is not None else ""
    out: list[dict[str, Any]] = []
    for part in content:
        kind = part.get("type") if isinstance(part, Mapping) else None
        if kind == "text":
            out.append(
                {
                    "type": "output_text" if role == "assistant" else "input_text",
                    "text": part["text"],
                }
            )
        elif kind == "image_url":
            image = part.get("image_url") or {}
            url = image.get("url") if isinstance(image, Mapping) else image
            entry: dict[str, Any] = {"type": "input_image", "image_url": url}
            if isinstance(image, Mapping) and image.get("detail"):
                entry["detail"] = image["detail"]
            out.append(entry)
        elif kind == "file" and isinstance(part.get("file"), Mapping):
            # Chat's {type: file, file: {file_id | file_data, filename}} is input_file here.
            out.append({"type": "input_file", **part["file"]})
        else:  # input_audio and refusal parts have the same shape on both APIs
            out.append(dict(part) if isinstance(part, Mapping) else {"type": "input_text"})
    return out


def _text_of(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "".join(p.get("text", "") for p in content if isinstance(p, Mapping) and "text" in p)
    return "" if content is None else str(content)


def _tool(tool: Mapping[str, Any]) -> dict[str, Any]:
    """A spec's tool (Chat Completions' shape) in the Responses shape."""
    if tool.get("type") != "function" or not isinstance(tool.get("function"), Mapping):
        return dict(tool)
    function = tool["function"]
    out: dict[str, Any] = {"type": "function", "name": function.get("name")}
    for key in ("description", "parameters", "strict"):
        if key in function:
            out[key] = function[key]
    return out


def _tool_choice(choice: Any) -> Any:
    if isinstance(choice, Mapping) and isinstance(choice.get("function"), Mapping):
        return {"type": "function", "name": choice["function"].get("name")}
    return choice


def messages_of(body: Mapping[str, Any]) -> list[Message]:
    """A built body's conversation as runner's messages (the way back of body_for)."""
    messages: list[Message] = []
    instructions = body.get("instructions")
    if isinstance(instructions, str):
        messages.append({"role": "system", "content": instructions})
    given = body.get("input")
    if isinstance(given, str):
        return [*messages, {"role": "user", "content": given}]
    for item in given if isinstance(given, list) else ():
        if not isinstance(item, Mapping):
            continue
        kind = item.get("type", "message")
        if kind == "message" and "role" in item:
            messages.append({"role": item["role"], "content": _plain(item.get("content"))})
        elif kind == "function_call":
            call = {
                "id": item.get("call_id"),
                "type": "function",
                "function": {"name": item.get("name"), "arguments": item.get("arguments")},
            }
            last = messages[-1] if messages else None
            if last is not None and last.get("role") == "assistant":
                # Consecutive calls, and the text an assistant message had before its calls
                # (body_for writes the text, then the calls): one message, as it was.
                last.setdefault("tool_calls", []).append(call)
            else:
                messages.append({"role": "assistant", "content": None, "tool_calls": [call]})
        elif kind == "function_call_output":
            messages.append(
                {"role": "tool", "tool_call_id": item.get("call_id"), "content": item.get("output")}
            )
    return messages


def _plain(content: Any) -> Any:
    """Content parts back as runner's: text parts as text, images as image_url parts, files
    as file parts; refusal and audio parts as they are."""
    if not isinstance(content, list):
        return content
    out: list[dict[str, Any]] = []
    for part in content:
        if not isinstance(part, Mapping):
            continue
        if part.get("type") in ("input_text", "output_text"):
            out.append({"type": "text", "text": part.get("text")})
        elif part.get("type") == "input_image":
            image = {"url": part.get("image_url")}
            if part.get("detail") is not None:
                image["detail"] = part["detail"]
            out.append({"type": "image_url", "image_url": image})
        elif part.get("type") == "input_file":
            out.append({"type": "file", "file": {k: v for k, v in part.items() if k != "type"}})
        elif part.get("type") in ("refusal", "input_audio"):
            out.append(dict(part))
    return out
