"""The Responses API's answers: the chat endpoint's own answer to the request's chat equivalent
(`reply.build_answer`), with a reasoning item for reasoning models, rendered as a `response`
object (output items, status, usage in input and output tokens) or as our own typed SSE events
with `sequence_number`s. It knows nothing of HTTP or fault dice: it is told whether to break
the output, or to end a stream with `response.failed` or `error`.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from dataclasses import dataclass
from random import Random
from typing import Any

from runner.errors import HTTPStatusFailure
from runner.mock.reply import Answer, build_answer, dumps, fragments, text_pieces
from runner.mock.request import api_error, digest
from runner.mock.responses_request import ResponsesAsk
from runner.mock.scalars import prose

__all__ = [
    "FAILURE",
    "SUMMARY_TITLE",
    "ResponsesAnswer",
    "build_response",
    "response_body",
    "response_events",
]

FAILURE = "The server had an error while processing your request. Sorry about that!"
SUMMARY_TITLE = "**Planning the answer**\n\n"  # summaries open with a bold title, as OpenAI's do


@dataclass(frozen=True)
class ResponsesAnswer:
    """A Response before rendering: the same for the JSON body and the SSE events."""

    id: str
    answer: Answer  # the chat endpoint's answer, one choice
    summary: str | None  # the reasoning summary; None when none was asked for
    message: bool  # False: reasoning used up max_output_tokens, no message or call follows
    usage: dict[str, Any]

    @property
    def incomplete(self) -> bool:
        return not self.message or self.answer.choices[0].finish_reason == "length"


def build_response(req: ResponsesAsk, seed: int, invalid: bool) -> ResponsesAnswer:
    """The chat answer to the request's chat equivalent, the reasoning summary, and the usage;
    deterministic in (request, seed, invalid)."""
    from runner import tokens

    ask = req.ask
    summary, thought = None, 0
    if req.reasoning_model and req.summary is not None:
        rng = Random(f"{seed}:{ask.content_key}:summary")
        summary = SUMMARY_TITLE + prose(rng, sentences=rng.randint(2, 3))
        thought = tokens.count_text(summary, ask.model)
    budget = None if req.max_output_tokens is None else req.max_output_tokens - thought
    if summary is not None and budget is not None and budget <= 0:
        # max_output_tokens counts reasoning too: the summary alone used it up.
        summary = tokens.truncate(summary, req.max_output_tokens or 0, ask.model)
        thought = tokens.count_text(summary, ask.model)
    try:
        limited = dataclasses.replace(ask, max_tokens=None if budget is None else max(budget, 0))
        answer = build_answer(limited, seed, invalid)
    except HTTPStatusFailure as err:
        if err.param != "response_format":
            raise
        raise api_error(
            err.status, err.message, param="text.format.schema", code=err.code
        ) from None
    message = budget is None or budget > 0
    usage = {
        "input_tokens": answer.usage["prompt_tokens"],
        "input_tokens_details": {"cached_tokens": 0, "cache_write_tokens": 0},
        "output_tokens": thought + (answer.usage["completion_tokens"] if message else 0),
        "output_tokens_details": {"reasoning_tokens": thought},
    }
    usage["total_tokens"] = usage["input_tokens"] + usage["output_tokens"]
    return ResponsesAnswer(f"resp_{digest(ask.key, seed)[:48]}", answer, summary, message, usage)


# --- output items -----------------------------------------------------------------------------


def _reasoning_item(ra: ResponsesAnswer, summary: str | None) -> dict[str, Any]:
    parts = [] if summary is None else [{"type": "summary_text", "text": summary}]
    return {"id": f"rs_{digest(ra.id, 'reasoning')[:48]}", "type": "reasoning", "summary": parts}


def _message_item(
    ra: ResponsesAnswer, content: list[dict[str, Any]], status: str
) -> dict[str, Any]:
    return {
        "id": f"msg_{digest(ra.id, 'message')[:48]}",
        "type": "message",
        "status": status,
        "role": "assistant",
        "content": content,
    }


def _part(ra: ResponsesAnswer, text: str) -> dict[str, Any]:
    if ra.answer.choices[0].refusal is not None:
        return {"type": "refusal", "refusal": text}
    return {"type": "output_text", "text": text, "annotations": [], "logprobs": []}


def _call_item(call: Any, arguments: str, status: str) -> dict[str, Any]:
    return {
        "id": f"fc_{digest(call.id, 'item')[:48]}",
        "type": "function_call",
        "status": status,
        "arguments": arguments,
        "call_id": call.id,
        "name": call.name,
    }


def _output(ra: ResponsesAnswer, req: ResponsesAsk) -> list[dict[str, Any]]:
    """The finished output items."""
    items = [_reasoning_item(ra, ra.summary)] if req.reasoning_model else []
    if not ra.message:
        return items
    choice = ra.answer.choices[0]
    if choice.tool_calls:
        return items + [_call_item(c, c.arguments, "completed") for c in choice.tool_calls]
    text = choice.refusal if choice.refusal is not None else choice.content or ""
    status = "incomplete" if ra.incomplete else "completed"
    return [*items, _message_item(ra, [_part(ra, text)], status)]


def _response(
    ra: ResponsesAnswer,
    req: ResponsesAsk,
    created: int,
    status: str,
    output: list[dict[str, Any]],
    usage: dict[str, Any] | None,
) -> dict[str, Any]:
    """The `response` object, with every field the SDK's Response model reads."""
    echo = req.echo
    return {
        "id": ra.id,
        "object": "response",
        "created_at": created,
        "status": status,
        "background": echo["background"],
        "completed_at": created if status == "completed" else None,
        "error": {"code": "server_error", "message": FAILURE} if status == "failed" else None,
        "incomplete_details": {"reason": "max_output_tokens"} if status == "incomplete" else None,
        "instructions": echo["instructions"],
        "max_output_tokens": echo["max_output_tokens"],
        "max_tool_calls": echo["max_tool_calls"],
        "model": req.ask.model,
        "output": output,
        **{k: echo[k] for k in _ECHOED},
        "usage": usage,
        "user": echo["user"],
        "metadata": echo["metadata"],
    }


_ECHOED = (
    "parallel_tool_calls",
    "previous_response_id",
    "prompt_cache_key",
    "reasoning",
    "safety_identifier",
    "service_tier",
    "store",
    "temperature",
    "text",
    "tool_choice",
    "tools",
    "top_logprobs",
    "top_p",
    "truncation",
)


def response_body(ra: ResponsesAnswer, req: ResponsesAsk, created: int, failed: bool) -> bytes:
    """The JSON body of a non-streamed reply; `failed`: a Response whose status is failed."""
    if failed:
        return dumps(_response(ra, req, created, "failed", [], None))
    status = "incomplete" if ra.incomplete else "completed"
    return dumps(_response(ra, req, created, status, _output(ra, req), ra.usage))


# --- the stream -------------------------------------------------------------------------------


def response_events(
    ra: ResponsesAnswer, req: ResponsesAsk, created: int, seed: int, end: str | None, rng: Random
) -> tuple[list[bytes], int]:
    """The SSE frames of a streamed reply, and how many come before its last event.

    `end`: None for a whole stream; "failed" or "error" to stop at a point drawn from `rng`
    (after `response.in_progress`, before the last event) with `response.failed` or `error`.
    """
    events = list(_events(ra, req, created, Random(f"{seed}:{req.ask.content_key}:stream")))
    last = len(events) - 1
    if end is not None:
        cut = rng.randint(2, last)
        events = events[:cut]
        if end == "failed":
            failed = _response(ra, req, created, "failed", [], None)
            events.append(("response.failed", {"response": failed}))
        else:
            fault = {"code": "server_error", "message": FAILURE, "param": None}
            events.append(("error", fault))
        last = cut
    frames = [
        b"event: "
        + kind.encode()
        + b"\ndata: "
        + dumps({"type": kind, **fields, "sequence_number": n})
        + b"\n\n"
        for n, (kind, fields) in enumerate(events)
    ]
    return frames, last


_Event = tuple[str, dict[str, Any]]


def _events(ra: ResponsesAnswer, req: ResponsesAsk, created: int, rng: Random) -> Iterator[_Event]:
    opening = _response(ra, req, created, "in_progress", [], None)
    yield "response.created", {"response": opening}
    yield "response.in_progress", {"response": opening}
    output = _output(ra, req)
    for index, item in enumerate(output):
        at = {"item_id": item["id"], "output_index": index}
        if item["type"] == "reasoning":
            yield (
                "response.output_item.added",
                {"output_index": index, "item": _reasoning_item(ra, None)},
            )
            yield from _summary_events(item, at, rng)
        elif item["type"] == "function_call":
            call = next(c for c in ra.answer.choices[0].tool_calls if c.id == item["call_id"])
            yield (
                "response.output_item.added",
                {"output_index": index, "item": _call_item(call, "", "in_progress")},
            )
            for piece in fragments(item["arguments"], rng):
                yield "response.function_call_arguments.delta", {**at, "delta": piece}
            yield "response.function_call_arguments.done", {**at, "arguments": item["arguments"]}
        else:
            added = _message_item(ra, [], "in_progress")
            yield "response.output_item.added", {"output_index": index, "item": added}
            yield from _content_events(ra, item["content"][0], {**at, "content_index": 0}, rng)
        yield "response.output_item.done", {"output_index": index, "item": item}
    final = _response(
        ra, req, created, "incomplete" if ra.incomplete else "completed", output, ra.usage
    )
    yield ("response.incomplete" if ra.incomplete else "response.completed"), {"response": final}


def _summary_events(item: dict[str, Any], at: dict[str, Any], rng: Random) -> Iterator[_Event]:
    for k, part in enumerate(item["summary"]):
        where = {**at, "summary_index": k}
        yield "response.reasoning_summary_part.added", {**where, "part": {**part, "text": ""}}
        for piece in text_pieces(part["text"], rng):
            yield "response.reasoning_summary_text.delta", {**where, "delta": piece}
        yield "response.reasoning_summary_text.done", {**where, "text": part["text"]}
        yield "response.reasoning_summary_part.done", {**where, "part": part}


def _content_events(
    ra: ResponsesAnswer, part: dict[str, Any], at: dict[str, Any], rng: Random
) -> Iterator[_Event]:
    refusal = part["type"] == "refusal"
    text = part["refusal"] if refusal else part["text"]
    yield "response.content_part.added", {**at, "part": _part(ra, "")}
    for piece in text_pieces(text, rng):
        if refusal:
            yield "response.refusal.delta", {**at, "delta": piece}
        else:
            yield "response.output_text.delta", {**at, "delta": piece, "logprobs": []}
    if refusal:
        yield "response.refusal.done", {**at, "refusal": text}
    else:
        yield "response.output_text.done", {**at, "text": text, "logprobs": []}
    yield "response.content_part.done", {**at, "part": part}
