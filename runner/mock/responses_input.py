"""The Responses API's `instructions` and `input` (a string, or message, function call and
function call output items) checked as OpenAI checks them and translated into the equivalent
Chat Completions messages, which the chat answer and its token count are made from.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from runner.errors import HTTPStatusFailure
from runner.mock.request import api_error, invalid_type, missing

__all__ = ["input_messages", "invalid_value"]

_ROLES = ("user", "assistant", "system", "developer")
_INPUT_PARTS = ("input_text", "input_image", "input_file", "input_audio")
_OUTPUT_PARTS = ("output_text", "refusal")
_ITEMS = ("message", "function_call", "function_call_output", "reasoning")


def invalid_value(value: Any, param: str, allowed: tuple[str, ...]) -> HTTPStatusFailure:
    """OpenAI's 400 for a value outside `allowed`."""
    listed = ", ".join(f"'{v}'" for v in allowed[:-1])
    listed += " and" if len(allowed) == 2 else ", and"
    return api_error(
        400,
        f"Invalid value: {json.dumps(value)}. Supported values are: {listed} '{allowed[-1]}'.",
        param=param,
        code="invalid_value",
    )


def input_messages(body: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The chat messages equivalent to `instructions` and `input`."""
    instructions = body.get("instructions")
    if instructions is not None and not isinstance(instructions, str):
        raise invalid_type("instructions", "a string", instructions)
    messages: list[dict[str, Any]] = []
    if instructions:
        messages.append({"role": "system", "content": instructions})
    given = body.get("input")
    if given is None:
        raise missing("input")
    if isinstance(given, str):
        return [*messages, {"role": "user", "content": given}]
    if not isinstance(given, list):
        raise invalid_type("input", "a string or an array", given)
    if not given:
        raise api_error(
            400,
            "Invalid 'input': empty array. Expected an array with minimum length 1, but got an "
            "empty array instead.",
            param="input",
            code="empty_array",
        )
    for i, item in enumerate(given):
        _add_item(messages, item, f"input[{i}]")
    return messages


def _add_item(messages: list[dict[str, Any]], item: Any, at: str) -> None:
    if not isinstance(item, dict):
        raise invalid_type(at, "an object", item)
    kind = item.get("type", "message")
    if kind == "message":
        role = item.get("role")
        if role is None:
            raise missing(f"{at}.role")
        if role not in _ROLES:
            raise invalid_value(role, f"{at}.role", _ROLES)
        if "content" not in item:
            raise missing(f"{at}.content")
        allowed = _OUTPUT_PARTS if role == "assistant" else _INPUT_PARTS
        messages.append({"role": role, "content": _content(item["content"], allowed, at)})
    elif kind == "function_call":
        for name in ("call_id", "name", "arguments"):
            if not isinstance(item.get(name), str):
                raise missing(f"{at}.{name}")
        call = {
            "id": item["call_id"],
            "type": "function",
            "function": {"name": item["name"], "arguments": item["arguments"]},
        }
        last = messages[-1] if messages else None
        if last is not None and last["role"] == "assistant":
            # Parallel calls, and the text the assistant wrote before them: one assistant
            # message, as chat holds that turn.
            last.setdefault("tool_calls", []).append(call)
        else:
            messages.append({"role": "assistant", "content": None, "tool_calls": [call]})
    elif kind == "function_call_output":
        if not isinstance(item.get("call_id"), str):
            raise missing(f"{at}.call_id")
        if "output" not in item:
            raise missing(f"{at}.output")
        output = _content(item["output"], _INPUT_PARTS, f"{at}.output")
        messages.append({"role": "tool", "tool_call_id": item["call_id"], "content": output})
    elif kind != "reasoning":  # a reasoning item carries nothing the mock reads
        raise invalid_value(kind, f"{at}.type", _ITEMS)


def _content(content: Any, allowed: tuple[str, ...], at: str) -> Any:
    if isinstance(content, str):
        return content
    if not isinstance(content, list):
        raise invalid_type(f"{at}.content", "a string or an array", content)
    parts = []
    for j, part in enumerate(content):
        where = f"{at}.content[{j}]"
        if not isinstance(part, dict):
            raise invalid_type(where, "an object", part)
        kind = part.get("type")
        if kind is None:
            raise missing(f"{where}.type")
        if kind not in allowed:
            raise invalid_value(kind, f"{where}.type", allowed)
        parts.append(_chat_part(part, kind, where))
    return parts


def _chat_part(part: Mapping[str, Any], kind: str, where: str) -> dict[str, Any]:
    if kind in ("input_text", "output_text"):
        if not isinstance(part.get("text"), str):
            raise missing(f"{where}.text")
        return {"type": "text", "text": part["text"]}
    if kind == "refusal":
        if not isinstance(part.get("refusal"), str):
            raise missing(f"{where}.refusal")
        return {"type": "refusal", "refusal": part["refusal"]}
    if kind == "input_image":
        image = {"url": part.get("image_url") or f"file:{part.get('file_id', '')}"}
        if part.get("detail") is not None:
            image["detail"] = part["detail"]
        return {"type": "image_url", "image_url": image}
    if kind == "input_file":
        keys = ("file_id", "file_data", "filename", "file_url")
        return {"type": "file", "file": {k: part[k] for k in keys if k in part}}
    return {"type": "input_audio", "input_audio": part.get("input_audio")}
