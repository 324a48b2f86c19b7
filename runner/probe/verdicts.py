"""What each probe's outcome means: a Result or the error the engine raised (its line is
written either way), or a listing's reply, turned into the Finding of its capability. Pure
functions; no I/O.
"""

from __future__ import annotations

import json
from collections.abc import Collection
from typing import Any

from runner.engine.results import Result
from runner.errors import (
    HTTPStatusFailure,
    OutputError,
    OutputFiltered,
    OutputModeUnsupported,
    OutputRefused,
    OutputTruncated,
    Rejected,
    RunnerError,
)
from runner.probe.findings import Finding
from runner.providers.probe import Listing, error_message, error_shape

__all__ = [
    "Outcome",
    "error_shape_finding",
    "listing_finding",
    "n_finding",
    "output_finding",
    "rate_limit_finding",
    "responses_finding",
    "stream_finding",
    "tools_finding",
]

# What a model call of the probe ended with: its Result, or the error its line records.
Outcome = Result | RunnerError


def output_finding(capability: str, outcome: Outcome, sent: str, tokens: int) -> Finding:
    """An output mode: enforced (the reply is the schema's JSON), refused (an error status that
    names the format), ignored (a reply that is not such JSON) — or failed, when the reply
    cannot tell (no text within the token limit, JSON cut by it, an error of another kind)."""
    if isinstance(outcome, Result):
        shown = json.dumps(outcome.value, ensure_ascii=False)
        return Finding(capability, "enforced", f"JSON that fits: {_cut(shown, 60)}", sent)
    if isinstance(outcome, OutputModeUnsupported):
        return Finding(capability, "refused", _status(outcome), sent)
    if isinstance(outcome, OutputError) and not isinstance(outcome, OutputRefused | OutputFiltered):
        text = (outcome.text or "").strip()
        cut = isinstance(outcome, OutputTruncated)
        if not text:
            why = f"no text within {tokens} tokens" if cut else "a reply with no text"
            return Finding(capability, "failed", f"{why}: it cannot tell", sent)
        if cut and text.startswith("{"):
            what = f"JSON cut at the {tokens}-token limit"
            return Finding(capability, "failed", f"{what}: {_quoted(text)}", sent)
        limit = f" (stopped at the {tokens}-token limit)" if cut else ""
        return Finding(
            capability, "ignored", f"not the JSON asked for: {_quoted(text)}{limit}", sent
        )
    return Finding(capability, "failed", _failure(outcome), sent)


def stream_finding(outcome: Outcome, sent: str) -> Finding:
    """Usage at the end of a stream: honoured, or missing (runner counted it locally)."""
    if not isinstance(outcome, Result):
        return Finding("stream_usage", "failed", _failure(outcome), sent)
    usage = outcome.usage
    tokens = f"{usage.prompt} prompt + {usage.completion} completion tokens"
    if usage.estimated:
        detail = f"no usage in the stream: runner counted {tokens} itself"
        return Finding("stream_usage", "missing", detail, sent)
    return Finding("stream_usage", "honoured", f"usage at the end: {tokens}", sent)


def n_finding(outcome: Outcome | None, sent: str) -> Finding:
    """`n` = 2: two choices (honoured), one (ignored), refused; None: the wire has no `n`."""
    if outcome is None:
        return Finding("n", "n/a", "this API has no n: not asked", sent)
    if isinstance(outcome, Result):
        count = max(len(outcome.choices), 1)
        verdict = "honoured" if count >= 2 else "ignored"
        return Finding("n", verdict, f"{count} choice{'s' if count != 1 else ''}", sent)
    if isinstance(outcome, Rejected):
        return Finding("n", "refused", _status(outcome), sent)
    return Finding("n", "failed", _failure(outcome), sent)


def tools_finding(outcome: Outcome, sent: str) -> Finding:
    """A required tool call: a call came back (honoured), text did (ignored), or refused."""
    if isinstance(outcome, Result):
        if isinstance(outcome.value, list) and outcome.value:
            call = outcome.value[0]
            arguments = json.dumps(call.get("arguments"), ensure_ascii=False)
            detail = f"a call of {call.get('name')}({_cut(arguments, 40)})"
            return Finding("tools", "honoured", detail, sent)
        return Finding("tools", "ignored", f"text, no call: {_quoted(outcome.text or '')}", sent)
    if isinstance(outcome, OutputTruncated):  # only a reply with tool calls is cut for it
        return Finding("tools", "honoured", "a call, cut at the token limit", sent)
    if isinstance(outcome, Rejected):
        return Finding("tools", "refused", _status(outcome), sent)
    return Finding("tools", "failed", _failure(outcome), sent)


def responses_finding(outcome: Outcome, sent: str) -> Finding:
    """A minimal Responses API request: works, absent (404/405 that is not about the
    model), refused (another 4xx)."""
    if isinstance(outcome, Result):
        return Finding("responses", "works", f"a response: {_quoted(outcome.text or '')}", sent)
    if isinstance(outcome, OutputError):  # a response came, only its text is wanting
        return Finding("responses", "works", f"a response ({outcome.kind})", sent)
    if (
        isinstance(outcome, HTTPStatusFailure)
        and outcome.status in (404, 405)
        and "model" not in error_message(outcome.body_excerpt).lower()
    ):
        return Finding("responses", "absent", _status(outcome), sent)
    if isinstance(outcome, Rejected):
        return Finding("responses", "refused", _status(outcome), sent)
    return Finding("responses", "failed", _failure(outcome), sent)


def listing_finding(
    capability: str, listing: Listing, sent: str, nouns: str, *, model: str | None = None
) -> Finding:
    """A listing endpoint: present (a 2xx list of `nouns`), absent (404/405), or failed. With
    `model`, whether that model is listed."""
    if listing.ok and listing.ids is not None:
        detail = f"lists {len(listing.ids)} {nouns}"
        if model is not None:
            detail += f"; {model} is {'' if model in listing.ids else 'not '}among them"
        return Finding(capability, "present", detail, sent)
    if listing.ok:
        return Finding(capability, "failed", f"{listing.status}, but not a list", sent)
    said = f"{listing.status}: {_said(listing.body)}"
    return Finding(capability, "absent" if listing.missing else "failed", said, sent)


def error_shape_finding(outcome: Outcome, listing: Listing, sent: str) -> Finding:
    """The body of the model call that must fail (a model that cannot exist): OpenAI's shape
    or another. A server that answers any model name is judged by its reply to GET
    /models/{that name} instead."""
    if isinstance(outcome, HTTPStatusFailure):
        shape = error_shape(outcome.body_excerpt)
        verdict = "openai" if shape.openai else "other"
        return Finding("error_shape", verdict, f"{outcome.status}: {shape.words}", sent)
    first = (
        "the model call was answered"
        if isinstance(outcome, Result | OutputError)
        else f"the model call failed ({outcome.kind})"
    )
    if listing.ok:
        return Finding("error_shape", "unknown", f"{first}, and so was the GET", sent)
    shape = error_shape(listing.body)
    detail = f"{first}; the GET: {listing.status}: {shape.words}"
    return Finding("error_shape", "openai" if shape.openai else "other", detail, sent)


def rate_limit_finding(names: Collection[str], replies: int, sent: str) -> Finding:
    """Whether any reply carried x-ratelimit-* headers."""
    if names:
        return Finding("rate_limit_headers", "present", ", ".join(sorted(names)), sent)
    detail = f"none on any of the {replies} replies"
    return Finding("rate_limit_headers", "absent", detail, sent)


def _status(exc: RunnerError) -> str:
    if isinstance(exc, HTTPStatusFailure):
        return f"{exc.status}: {_said(exc.body_excerpt)}"
    return _failure(exc)


def _failure(exc: RunnerError) -> str:
    if isinstance(exc, HTTPStatusFailure):
        return _status(exc)
    first = (str(exc).splitlines() or [type(exc).__name__])[0]
    return f"{exc.kind}: {_cut(first, 100)}"


def _said(body: str) -> str:
    """What an error body says, in at most 80 characters."""
    return _cut(error_message(body), 80) or "an empty body"


def _cut(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _quoted(text: Any, limit: int = 40) -> str:
    flat = " ".join(str(text).split())
    return json.dumps(_cut(flat, limit), ensure_ascii=False)
