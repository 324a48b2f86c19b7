"""The ledger line: its typed shape (`LedgerRecord`, documented field by field in docs/ledger.md)
and the one function that builds it from what a call did. It never writes (runner.ledger.store
does) and knows nothing of sessions or settings: every value is handed to it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any, Literal, TypedDict

from runner.errors import OutputError, OutputInvalid, RunnerError
from runner.ledger.encoding import new_id, utc_timestamp, without_content
from runner.types import Attempt, Completion, Cost, Message, Usage

__all__ = ["LEDGER_VERSION", "ErrorInfo", "LedgerRecord", "SpecRef", "Status", "build_line"]

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
    content: bool  # absent or true; false when `ledger: {content: false}` withheld the content
    batch_id: str  # only on calls sent through the Batch API: the batch that carried the row


def build_line(
    *,
    ts: datetime,
    spec: SpecRef,
    fingerprint: str,
    case: str | None,
    row: str | None,
    model: str,
    params: Mapping[str, Any],
    vars: dict[str, Any] | None,
    messages: list[Message] | None,
    estimated_prompt: int | None,
    attempts: Sequence[Attempt],
    usage: Usage,
    cost: Cost,
    latency_ms: float,
    mock: bool,
    content: bool,
    has_schema: bool,
    completion: Completion | None = None,
    value: Any = None,
    values: Sequence[Any] = (),
    error: RunnerError | None = None,
    interrupted: BaseException | None = None,
    batch_id: str | None = None,
) -> LedgerRecord:
    """One call's line: an answer (`completion`), a failure (`error`) or, with neither, an
    interrupted call. With `content` off, no prompt or reply text is kept in any field."""
    status: Status = "ok"
    output: dict[str, Any] | None = None
    info: ErrorInfo | None = None
    served = request_id = None
    ttft = None
    if completion is not None:
        served, request_id, ttft = completion.model, completion.request_id, completion.ttft_ms
        output = {"text": completion.text, "json": value if has_schema else None}
        first = completion.choices[0] if completion.choices else None
        if first is not None:
            output["finish_reason"] = first.finish_reason
            if first.tool_calls or first.function_call:
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
    if request_id is None:
        request_id = next((a.request_id for a in reversed(attempts) if a.request_id), None)
    record: LedgerRecord = {
        "v": LEDGER_VERSION,
        "id": new_id(),
        "ts": utc_timestamp(ts),
        "spec": spec,
        "request_sha256": fingerprint,
        "case": case,
        "row": row,
        "model": model,
        "served_model": served,
        "params": dict(params),
        "vars": vars,
        "messages": messages,
        "status": status,
        "output": output,
        "error": info,
        "attempts": [a.to_dict() for a in attempts],
        "usage": {**usage.to_dict(), "estimated_prompt": estimated_prompt},
        "cost": cost.to_dict(),
        "latency_ms": round(latency_ms, 1),
        "ttft_ms": None if ttft is None else round(ttft, 1),
        "request_id": request_id,
        "mock": mock,
    }
    if batch_id is not None:
        record["batch_id"] = batch_id
    if not content:
        record = without_content(record)  # type: ignore[assignment]
        if isinstance(error, OutputInvalid) and record["error"] is not None:
            # Its message quotes the reply.
            record["error"]["message"] = (
                f"the reply does not match the output schema ({len(error.errors)} errors)"
            )
    return record


def _error_info(error: RunnerError) -> ErrorInfo:
    info: ErrorInfo = {"kind": error.kind, "type": type(error).__name__, "message": error.message}
    http_status = getattr(error, "status", None)
    if http_status is not None:
        info["status"] = http_status
    if isinstance(error, OutputInvalid):
        info["errors"] = error.errors
    return info
