"""Preflight: render a call's request exactly as it will be sent, count its prompt tokens, and
bound its cost, without sending anything (`runner render`, `exec --dry-run`, and the first step
of every call). User errors — bad variables, a prompt that cannot fit — stop here, each as an
error of that one call (InputsInvalid, TemplateError, PromptTooLong), never of a whole run.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from runner.engine.answer import max_output_tokens
from runner.engine.results import Preflight
from runner.errors import PromptTooLong
from runner.types import Cost, Usage

if TYPE_CHECKING:
    from runner.pricing import PriceBook
    from runner.settings import Settings
    from runner.spec.model import PromptSpec
    from runner.types import Message

__all__ = ["preflight", "render_request", "worst_cost"]


def render_request(
    spec: PromptSpec, vars: Mapping[str, Any], settings: Settings
) -> tuple[dict[str, Any], list[Message], dict[str, Any]]:
    """The checked variables, the messages and the request body exactly as they will be sent,
    without counting anything (what a request fingerprint needs, and the first step of
    `preflight`)."""
    from runner.client import build_body, with_output_mode

    prepared = spec.prepare_vars(vars)
    messages = spec.render(prepared)
    _check_encodable(spec, messages)
    body = build_body(
        settings.model,
        messages,
        params=spec.params,
        tools=list(spec.tools) or None,
        tool_choice=spec.tool_choice,
        stream=settings.stream,
    )
    if spec.output is not None:
        # json_schema and auto send it as a response_format; json_object and prompt put the
        # schema in the prompt, so the messages sent (and counted, and kept) include it.
        out = spec.output
        body = with_output_mode(body, out.mode, out.schema, name=out.name, strict=out.strict)
        messages = body["messages"]
    return prepared, messages, body


def _check_encodable(spec: PromptSpec, messages: list[Message]) -> None:
    """A rendered message must be sendable: a template that produced a lone surrogate (from an
    escape such as "\\ud800") is this call's TemplateError, not a crash when it is encoded."""
    from runner.errors import Problem, TemplateError
    from runner.spec.values import surrogate_problem

    for index, message in enumerate(messages):
        content = message.get("content")
        problem = surrogate_problem(content) if isinstance(content, str) else None
        if problem is not None:
            pointer = f"/messages/{index}/content"
            line, col = spec.position(pointer)
            text = f"template {pointer}: the rendered text has {problem}"
            raise TemplateError(
                [Problem(str(spec.path), line, col, text, pointer)], template=pointer
            )


def preflight(
    spec: PromptSpec,
    vars: Mapping[str, Any],
    settings: Settings,
    pricebook: PriceBook,
) -> Preflight:
    """Render the request exactly as it will be sent, count it, and bound its cost. A prompt
    that cannot fit the model's context window raises PromptTooLong (this call's problem)."""
    from runner.tokens import count_messages

    prepared, messages, body = render_request(spec, vars, settings)
    prompt_tokens = count_messages(
        messages, settings.model, tools=list(spec.tools) or None, tool_choice=spec.tool_choice
    )
    window = pricebook.context_window(
        settings.model, base_url=None if settings.mock else settings.base_url
    )
    max_out = max_output_tokens(spec.params)
    if window is not None and prompt_tokens + (max_out or 0) > window:
        room = window - prompt_tokens
        hint = (
            f"lower max_tokens to at most {room}"
            if room > 0
            else "shorten the prompt or its variables"
        )
        raise PromptTooLong(
            f"{spec.path}: the prompt needs {prompt_tokens} tokens"
            + (f" + {max_out} output tokens" if max_out else "")
            + f", more than the {window}-token context window of {settings.model}; {hint}"
        )
    max_cost = worst_cost(spec, settings, pricebook, prompt_tokens, window)
    return Preflight(
        settings.model, prepared, messages, body, prompt_tokens, max_out, window, max_cost
    )


def worst_cost(
    spec: PromptSpec,
    settings: Settings,
    pricebook: PriceBook,
    prompt_tokens: int,
    window: int | None,
) -> Cost:
    """The most one attempt with this many prompt tokens can cost: all of `max_tokens` (times
    `n`) spent, or the rest of the context window without max_tokens; unknown without either."""
    max_out = max_output_tokens(spec.params)
    n = spec.choices
    worst_out = max_out if max_out is not None else (window - prompt_tokens if window else None)
    if worst_out is None:
        return Cost(None, "unknown: set max_tokens to bound the cost")
    return pricebook.cost(
        Usage(prompt=prompt_tokens, completion=max(0, worst_out) * n),
        settings.model,
        base_url=None if settings.mock else settings.base_url,
    )
