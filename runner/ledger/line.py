"""The ledger line: its typed shape (`LedgerRecord`, documented field by field in docs/ledger.md)
and the one function that builds it from what a call did, handed as three values: what was
asked (`Asked`), what happened (`Outcome`) and how to record it (`Recording`). It never writes
(runner.ledger.store does) and knows nothing of sessions or settings: every value is handed to
it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal, TypedDict

from runner.errors import OutputError, OutputInvalid, RunnerError
from runner.ledger.encoding import encode_line, new_id, utc_timestamp, without_content
from runner.types import Attempt, Completion, Cost, Message, Usage

__all__ = [
    "LEDGER_VERSION",
    "Asked",
    "ErrorInfo",
    "LedgerRecord",
    "Outcome",
    "Recording",
    "SpecRef",
    "Status",
    "build_line",
    "minimal_line",
]

LEDGER_VERSION = 1

Status = Literal["ok", "error", "invalid_output"]


class SpecRef(TypedDict):
    path: str  # relative to the git work tree root when in one, else as given
    name: str
    sha256: str
    commit: str | None
    dirty: bool | None  # None outside git


class ErrorInfo(TypedDict, total=False):
    kind: str
    type: str  # the exception class name
    status: int
    message: str
    errors: list[str]  # validation errors for invalid_output


class LedgerRecord(TypedDict, total=False):
    """One call: one line of runs/ledger.jsonl."""

    v: int
    id: str  # time-sortable unique id
    ts: str  # UTC, ISO 8601 with milliseconds and Z
    spec: SpecRef
    request_sha256: str
    case: str | None
    row: str | None
    model: str  # asked for
    served_model: str | None
    api: str  # the wire API: "chat" (Chat Completions) or "responses"; absent before it existed
    params: dict[str, Any]
    vars: dict[str, Any] | None
    messages: list[Message] | None
    status: Status
    output: dict[str, Any] | None  # {"text": ..., "json": ...}
    error: ErrorInfo | None
    attempts: list[dict[str, Any]]
    usage: dict[str, Any]  # server-reported sums over attempts, plus "estimated_prompt"
    cost: dict[str, Any]
    latency_ms: float
    ttft_ms: float | None
    request_id: str | None
    mock: bool
    # How the output schema was sent by the attempt that answered (or the last one tried):
    # json_schema, json_object or prompt; None without an output schema.
    output_mode: str | None
    # Present when the output mode fell back from the spec's first one: {from, to, why, learned}.
    output_fallback: dict[str, Any]
    content: bool  # absent or true; false when `ledger: {content: false}` withheld the content
    # Present when answered from a recorded line instead of being sent: {from, id}, and
    # reason "cache" when --cache answered it (runner test --replay leaves reason out).
    replayed: dict[str, str]
    variant: str  # present when `runner test` ran the call under a variant: its name
    batch_id: str  # only on calls sent through the Batch API: the batch that carried the row


# Asked, Outcome and Recording are built on every call: plain dataclasses, because a frozen
# one's __init__ costs about seven times as much (object.__setattr__ per field).
@dataclass
class Asked:
    """What was asked: the spec, the exact request (its fingerprint, model, params, variables,
    messages, output mode and locally counted prompt tokens) and the test case or data-set row
    it was for."""

    spec: SpecRef
    fingerprint: str
    model: str
    params: Mapping[str, Any]
    vars: dict[str, Any] | None
    messages: list[Message] | None
    estimated_prompt: int | None
    output_mode: str | None = None  # None without an output schema
    # How the output mode came to differ from the spec's first: {from, to, why, learned}.
    output_fallback: Mapping[str, Any] | None = None
    case: str | None = None
    row: str | None = None
    api: str = "chat"  # the wire API the request was sent on
    variant: str | None = None  # the variant of `runner test` the call ran under, if any


@dataclass
class Outcome:
    """What happened: when the call started, its attempts, usage, cost and latency, and how it
    ended — an answer (`completion` and its value or values), a failure (`error`) or, with
    neither, an interruption (with the text streamed before it stopped, if any). `replayed`
    ({from, id}) when the answer came from a replay ledger; `batch_id` when a batch carried
    it."""

    ts: datetime
    attempts: Sequence[Attempt]
    usage: Usage
    cost: Cost
    latency_ms: float
    completion: Completion | None = None
    value: Any = None
    values: Sequence[Any] = ()
    error: RunnerError | None = None
    interrupted: BaseException | None = None
    partial_text: str | None = None
    replayed: Mapping[str, str] | None = None
    batch_id: str | None = None


@dataclass
class Recording:
    """How to record it: with the content or without (`ledger: {content: false}`), whether the
    answer is the mock's, and whether the spec has an output schema (the output's `json`)."""

    content: bool
    mock: bool
    has_schema: bool


def build_line(*, asked: Asked, outcome: Outcome, recording: Recording) -> LedgerRecord:
    """One call's line. With `recording.content` off, no prompt or reply text is kept in any
    field."""
    completion, value, values = outcome.completion, outcome.value, outcome.values
    error, interrupted, attempts = outcome.error, outcome.interrupted, outcome.attempts
    status: Status = "ok"
    output: dict[str, Any] | None = None
    info: ErrorInfo | None = None
    served = request_id = None
    ttft = None
    if completion is not None:
        served, request_id, ttft = completion.model, completion.request_id, completion.ttft_ms
        output = {"text": completion.text, "json": value if recording.has_schema else None}
        first = completion.choices[0] if completion.choices else None
        if first is not None:
            output["finish_reason"] = first.finish_reason
            if first.tool_calls:
                output["tool_calls"] = value
        if len(values) > 1:
            output["choices"] = list(values)
    elif error is not None:
        status = "invalid_output" if isinstance(error, OutputInvalid) else "error"
        info = _error_info(error)
        if isinstance(error, OutputError):
            output = {"text": error.text, "json": None}
            request_id = error.request_id
        else:
            request_id = getattr(error, "request_id", None)
    else:
        status = "error"
        info = {
            "kind": "interrupted",
            "type": type(interrupted).__name__,
            "message": "the call was interrupted before it finished",
        }
        if outcome.partial_text:
            output = {"text": outcome.partial_text, "json": None}
    if request_id is None:
        request_id = next((a.request_id for a in reversed(attempts) if a.request_id), None)
    record: LedgerRecord = {
        "v": LEDGER_VERSION,
        "id": new_id(),
        "ts": utc_timestamp(outcome.ts),
        "spec": asked.spec,
        "request_sha256": asked.fingerprint,
        "case": asked.case,
        "row": asked.row,
        "model": asked.model,
        "served_model": served,
        "api": asked.api,
        "params": dict(asked.params),
        "vars": asked.vars,
        "messages": asked.messages,
        "status": status,
        "output": output,
        "error": info,
        "attempts": [a.to_dict() for a in attempts],
        "usage": {**outcome.usage.to_dict(), "estimated_prompt": asked.estimated_prompt},
        "cost": outcome.cost.to_dict(),
        "latency_ms": round(outcome.latency_ms, 1),
        "ttft_ms": None if ttft is None else round(ttft, 1),
        "request_id": request_id,
        "mock": recording.mock,
        "output_mode": asked.output_mode,
    }
    if asked.output_fallback is not None:
        record["output_fallback"] = dict(asked.output_fallback)
    if outcome.replayed is not None:
        record["replayed"] = dict(outcome.replayed)
    if outcome.batch_id is not None:
        record["batch_id"] = outcome.batch_id
    if asked.variant is not None:
        record["variant"] = asked.variant
    if not recording.content:
        record = without_content(record)  # type: ignore[assignment]
        if isinstance(error, OutputInvalid) and record["error"] is not None:
            # Its message quotes the reply.
            record["error"]["message"] = (
                f"the reply does not match the output schema ({len(error.errors)} errors)"
            )
    return record


def minimal_line(
    *,
    ts: datetime,
    spec: Any,
    fingerprint: str,
    case: str | None,
    row: str | None,
    model: str,
    attempts: Sequence[Attempt],
    usage: Usage,
    cost: Cost,
    latency_ms: float,
    mock: bool,
    message: str,
    api: str = "chat",
) -> LedgerRecord:
    """The line written when the full one cannot be built or encoded (a bug): only values
    known to be plain, status `error`, kind `internal`, and `message` saying how the call
    ended. Attempts, usage and cost are kept when they can be written, else left empty."""
    return {
        "v": LEDGER_VERSION,
        "id": new_id(),
        "ts": utc_timestamp(ts),
        "spec": {
            "path": str(getattr(spec, "path", "?")) or "?",
            "name": str(getattr(spec, "name", "")),
            "sha256": str(getattr(spec, "sha256", "")),
            "commit": None,
            "dirty": None,
        },
        "request_sha256": fingerprint,
        "case": case,
        "row": row,
        "model": model,
        "served_model": None,
        "api": api,
        "params": {},
        "vars": None,
        "messages": None,
        "status": "error",
        "output": None,
        "error": {"kind": "internal", "type": "InternalError", "message": message},
        "attempts": _plain(lambda: [a.to_dict() for a in attempts], []),
        "usage": _plain(usage.to_dict, Usage().to_dict()),
        "cost": _plain(cost.to_dict, {"usd": None, "source": "unknown", "estimated": False}),
        "latency_ms": round(latency_ms, 1),
        "ttft_ms": None,
        "request_id": next((a.request_id for a in reversed(attempts) if a.request_id), None),
        "mock": mock,
    }


def _plain(make: Any, fallback: Any) -> Any:
    """`make()` when it gives something JSON can write, else `fallback`."""
    try:
        value = make()
        encode_line({"value": value})
    except Exception:  # the values that broke the full line: leave them out
        return fallback
    return value


def _error_info(error: RunnerError) -> ErrorInfo:
    info: ErrorInfo = {"kind": error.kind, "type": type(error).__name__, "message": error.message}
    http_status = getattr(error, "status", None)
    if http_status is not None:
        info["status"] = http_status
    if isinstance(error, OutputInvalid):
        info["errors"] = error.errors
    return info
