"""The mock server's answers: choices made from the request's mode (schema-valid JSON through
mockgen, tool calls, prose, refusals), cut at stop/max_tokens, usage counted with runner.tokens,
and rendered as a completion body or as our own SSE frames. It knows nothing of HTTP, routes or
fault dice: it is only told whether to break the output on purpose.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from random import Random
from typing import Any

from runner.mock.generate import generate_instance, invalid_json
from runner.mock.request import Ask, api_error, digest, message_text
from runner.mock.scalars import prose

__all__ = [
    "FINGERPRINT",
    "REFUSAL",
    "Answer",
    "build_answer",
    "completion_body",
    "dumps",
    "fragments",
    "stream_frames",
    "text_pieces",
]

REFUSAL = "I'm sorry, I can't help with that."
FINGERPRINT = "fp_runner_mock"


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
class Answer:
    """A reply before rendering: the same for the JSON body and the SSE frames."""

    id: str
    choices: tuple[_Choice, ...]
    usage: dict[str, Any]


def build_answer(ask: Ask, seed: int, invalid: bool) -> Answer:
    """Build the reply's choices and usage; deterministic in (request, seed, invalid)."""
    from runner import tokens

    body = ask.body
    choices = []
    for index in range(ask.n):
        rng = Random(f"{seed}:{ask.content_key}:{index}")
        choices.append(_make_choice(ask, rng, digest(ask.content_key, seed, index), invalid))
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
    return Answer(f"chatcmpl-{digest(ask.key, seed)[:29]}", tuple(choices), usage)


def _choice_tokens(choice: _Choice, model: str) -> int:
    from runner import tokens

    texts = [choice.content or "", choice.refusal or ""]
    for call in (*choice.tool_calls, *([choice.function_call] if choice.function_call else [])):
        texts += [call.name, call.arguments]
    return sum(tokens.count_text(t, model) for t in texts if t)


def _make_choice(ask: Ask, rng: Random, call_id: str, invalid: bool) -> _Choice:
    mode = ask.mode
    if mode.kind == "refusal":
        return _Choice(content=None, refusal=REFUSAL, finish_reason="stop")
    if mode.kind in ("tools", "function_call"):
        calls = []
        for k, fn in enumerate(mode.functions):
            params = fn.get("parameters") or {}
            arguments = _generate(params, rng, invalid, what="function", name=fn["name"])
            calls.append(_Call(f"call_{digest(call_id, k)[:24]}", fn["name"], arguments))
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
        topic = message_text(users[-1]) if users else ""
        text = prose(rng, sentences=rng.randint(3, 6), topic=topic)
    return _limit(text, ask)


def _generate(
    schema: Mapping[str, Any], rng: Random, invalid: bool, *, what: str, name: str
) -> str:
    try:
        value = generate_instance(schema, rng, hint=name)
        if invalid:
            return invalid_json(schema, value, rng)
    except (ValueError, TypeError, AttributeError, OverflowError, RecursionError) as exc:
        # TypeError/AttributeError: a malformed schema ("properties": []), which the real API
        # rejects with a 400 too; OverflowError: bounds of Infinity; RecursionError: a const
        # nested too deeply to copy.
        raise api_error(
            400,
            f"Invalid schema for {what} '{name}': the mock server cannot generate a value for "
            f"it: {exc}.",
            param="response_format" if what == "response_format" else "tools",
            code="invalid_json_schema",
        ) from None
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


def _limit(text: str, ask: Ask) -> _Choice:
    """Cut `text` at the first stop sequence, then at max_tokens, as a model would stop."""
    from runner import tokens

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


def completion_body(answer: Answer, model: str, created: int) -> bytes:
    """The JSON body of a non-streamed reply."""
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
    return dumps(body)


def dumps(obj: Any) -> bytes:
    """Compact UTF-8 JSON, as OpenAI sends it."""
    return json.dumps(obj, separators=(",", ":"), ensure_ascii=False).encode()


def text_pieces(text: str, rng: Random) -> list[str]:
    """Split text into stream deltas of one to three words (whitespace kept)."""
    words = re.findall(r"\s*\S+|\s+", text)
    out = []
    while words:
        size = rng.randint(1, 3)
        out.append("".join(words[:size]))
        del words[:size]
    return out


def fragments(text: str, rng: Random) -> list[str]:
    """Split text (tool call arguments) into stream deltas of 4 to 16 characters."""
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
                for frag in fragments(call.arguments, rng)
            ]
    elif choice.function_call:
        fc = choice.function_call
        opening = {"name": fc.name, "arguments": ""}
        deltas.append({"role": "assistant", "content": None, "function_call": opening})
        deltas += [{"function_call": {"arguments": f}} for f in fragments(fc.arguments, rng)]
    elif choice.refusal is not None:
        deltas.append({"role": "assistant", "content": None, "refusal": ""})
        deltas += [{"refusal": piece} for piece in text_pieces(choice.refusal, rng)]
    else:
        deltas.append({"role": "assistant", "content": "", "refusal": None})
        deltas += [{"content": piece} for piece in text_pieces(choice.content or "", rng)]
    return deltas


def stream_frames(answer: Answer, ask: Ask, created: int, seed: int) -> tuple[list[bytes], int]:
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
        return b"data: " + dumps(chunk) + b"\n\n"

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
