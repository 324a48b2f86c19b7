"""Preflight: render a call's request exactly as it will be sent, count its prompt tokens, and
bound its cost, without sending anything (`runner render`, `exec --dry-run`, and the first step
of every call). User errors — bad variables, a prompt that cannot fit — stop here, each as an
error of that one call (InputsInvalid, TemplateError, PromptTooLong), never of a whole run.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from runner.engine.results import Preflight
from runner.errors import Problem, PromptTooLong, TemplateError
from runner.providers import WireRequest, format_for_mode, messages_for_mode, wire_api
from runner.spec.values import surrogate_problem
from runner.types import Cost, Usage

if TYPE_CHECKING:
    from runner.pricing import PriceBook
    from runner.providers import WireAPI
    from runner.settings import Settings
    from runner.spec.model import PromptSpec
    from runner.types import Message

__all__ = ["preflight", "render_request", "request_in_mode", "worst_cost"]


def request_in_mode(
    spec: PromptSpec, settings: Settings, messages: list[Message], mode: str | None
) -> WireRequest:
    """The neutral request of these rendered messages with the spec's output sent as `mode`
    says: json_schema (and auto, which starts there) as a structured-output format; json_object
    and prompt with the schema in the prompt, so the messages sent (and counted, and kept)
    include it."""
    out = spec.output
    output = None
    if out is not None and mode is not None:
        messages = messages_for_mode(messages, mode, out.schema)
        output = format_for_mode(mode, out.schema, name=out.name, strict=out.strict)
    return WireRequest(
        model=settings.model,
        messages=messages,
        params=spec.params,
        output=output,
        tools=list(spec.tools) or None,
        tool_choice=spec.tool_choice,
        stream=settings.stream,
    )


def render_request(
    spec: PromptSpec, vars: Mapping[str, Any], settings: Settings
) -> tuple[dict[str, Any], WireRequest, dict[str, Any]]:
    """The checked variables, the neutral request and the body exactly as it will be sent,
    without counting anything (what a request fingerprint needs, and the first step of
    `preflight`)."""
    wire = wire_api(spec.provider.api)
    prepared = spec.prepare_vars(vars)
    messages = spec.render(prepared)
    _check_encodable(spec, messages)
    request = request_in_mode(spec, settings, messages, _first_mode(spec))
    return prepared, request, wire.build_body(request)


def _first_mode(spec: PromptSpec) -> str | None:
    """The output mode a call starts in (`auto` starts as json_schema)."""
    return None if spec.output is None else spec.output.mode.replace("auto", "json_schema")


def _check_encodable(spec: PromptSpec, messages: list[Message]) -> None:
    """A rendered message must be sendable: a template that produced a lone surrogate (from an
    escape such as "\\ud800") is this call's TemplateError, not a crash when it is encoded."""
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
    wire = wire_api(spec.provider.api)
    prepared, request, body = render_request(spec, vars, settings)
    prompt_tokens = wire.count_prompt(request)
    window = pricebook.context_window(
        settings.model, base_url=None if settings.mock else settings.base_url
    )
    max_out = wire.output_limit(spec.params)
    if window is not None and prompt_tokens + (max_out or 0) > window:
        room = window - prompt_tokens
        hint = (
            f"lower {wire.capabilities.output_limit} to at most {room}"
            if room > 0
            else "shorten the prompt or its variables"
        )
        raise PromptTooLong(
            f"{spec.path}: the prompt needs {prompt_tokens} tokens"
            + (f" + {max_out} output tokens" if max_out else "")
            + f", more than the {window}-token context window of {settings.model}; {hint}"
        )
    max_cost = functools.partial(
        worst_cost, spec, settings, pricebook, prompt_tokens, window, wire=wire
    )
    return Preflight(
        settings.model,
        prepared,
        list(request.messages),
        body,
        prompt_tokens,
        max_out,
        window,
        max_cost,
        request=request,
        api=wire.capabilities.name,
        choices=spec.choices,
        output_limit_name=wire.capabilities.output_limit,
    )


def worst_cost(
    spec: PromptSpec,
    settings: Settings,
    pricebook: PriceBook,
    prompt_tokens: int,
    window: int | None,
    *,
    wire: WireAPI | None = None,
) -> Cost:
    """The most one attempt with this many prompt tokens can cost: all of its output limit
    (times the choices asked for) spent, or the rest of the context window without a limit;
    unknown without either."""
    wire = wire or wire_api(spec.provider.api)
    max_out = wire.output_limit(spec.params)
    n = spec.choices
    worst_out = max_out if max_out is not None else (window - prompt_tokens if window else None)
    if worst_out is None:
        return Cost(None, f"unknown: set {wire.capabilities.output_limit} to bound the cost")
    return pricebook.cost(
        Usage(prompt=prompt_tokens, completion=max(0, worst_out) * n),
        settings.model,
        base_url=None if settings.mock else settings.base_url,
    )
