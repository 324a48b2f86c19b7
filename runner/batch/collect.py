"""Collecting an ended batch into the ledger: its files downloaded, each row's reply checked
against the output schema as a live call's is, and one build_line line per row (`batch_id` set,
the batch's usage, the batch price; a row never answered is a BatchRowLost error). Rows already
in the ledger for that batch are skipped, so collecting twice writes nothing twice.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

from runner.client import completion_from_reply, error_from_response
from runner.engine.answer import completion_values
from runner.errors import BatchRowLost, OutputError, RunnerError
from runner.ledger.encoding import canonical_json, request_fingerprint
from runner.ledger.gitref import spec_ref
from runner.ledger.line import build_line
from runner.ledger.store import read_records
from runner.tokens import count_messages
from runner.types import Attempt, Completion, Usage

if TYPE_CHECKING:
    from runner.client import BatchAPI
    from runner.ledger.line import LedgerRecord, SpecRef
    from runner.ledger.store import Ledger
    from runner.pricing import PriceBook
    from runner.settings import Settings
    from runner.spec.model import PromptSpec
    from runner.types import Message

__all__ = ["CollectSummary", "collect", "recorded_rows"]

_STATIC_KEYS = ("response_format", "tools")
_LOST = {
    "completed": (
        "batch_missing",
        "the batch completed but its result files have no line for this row",
    ),
    "expired": ("batch_expired", "the batch expired before this row ran"),
    "cancelled": ("batch_cancelled", "the batch was cancelled before this row ran"),
    "failed": ("batch_failed", "the batch failed before this row ran"),
}


@dataclass
class CollectSummary:
    """What collecting one batch wrote: lines by status, error kinds, cost."""

    batch_id: str
    status: str
    written: int = 0
    skipped: int = 0  # already in the ledger from an earlier collect
    ok: int = 0
    invalid: int = 0
    kinds: Counter[str] = field(default_factory=Counter)  # error kinds of failed rows
    failed_rows: list[str] = field(default_factory=list)  # status error or invalid_output
    cost_usd: Decimal = Decimal(0)
    unpriced: int = 0
    batch_errors: list[str] = field(default_factory=list)  # why a `failed` batch ran nothing


def recorded_rows(ledger_path: Path, batch_ids: set[str]) -> dict[str, set[str]]:
    """The rows each of these batches already has a line for in the ledger."""
    found: dict[str, set[str]] = {b: set() for b in batch_ids}
    if not ledger_path.exists():
        return found
    for line in read_records(ledger_path, warn=lambda _message: None):
        batch_id = line.get("batch_id")
        if batch_id in found and line.get("row") is not None:
            found[batch_id].add(str(line["row"]))
    return found


def _index(path: Path | None) -> dict[str, bytes]:
    """custom_id -> the raw line, for a result file (output or error)."""
    if path is None:
        return {}
    found: dict[str, bytes] = {}
    with path.open("rb") as f:
        for raw in f:
            if not raw.strip():
                continue
            try:
                custom_id = json.loads(raw).get("custom_id")
            except (ValueError, AttributeError):
                continue
            if isinstance(custom_id, str):
                found[custom_id] = raw
    return found


def _ended_at(batch: Mapping[str, Any]) -> float:
    for key in ("completed_at", "expired_at", "cancelled_at", "failed_at", "finalizing_at"):
        if batch.get(key):
            return float(batch[key])
    return datetime.now(UTC).timestamp()


@dataclass
class _Context:
    """What every row of one batch shares."""

    spec: PromptSpec
    settings: Settings
    pricebook: PriceBook
    batch_id: str
    status: str
    url: str
    ts: datetime
    latency_ms: float
    ref: SpecRef  # the spec's git reference, looked up once per batch
    # Canonical JSON of the parts every request of a spec shares (response_format, tools), made
    # once per batch as the Session does: the fingerprint is the same, at a fraction of the cost.
    static: dict[str, tuple[Any, str]] = field(default_factory=dict)

    def fingerprint(self, body: Mapping[str, Any]) -> str:
        known = {}
        for key in _STATIC_KEYS:
            if key not in body:
                continue
            found = self.static.get(key)
            if found is None or found[0] != body[key]:
                found = self.static[key] = (body[key], canonical_json(body[key]))
            known[key] = found[1]
        return request_fingerprint(body, known=known)


def _outcome(
    ctx: _Context, result: bytes | None
) -> tuple[Completion | None, Any, tuple[Any, ...], RunnerError | None, int | None, str | None]:
    """(completion, value, values, error, HTTP status, request id) of one row's result line."""
    if result is None:
        kind, why = _LOST.get(ctx.status, _LOST["completed"])
        return None, None, (), BatchRowLost(f"{why} (batch {ctx.batch_id})", kind=kind), None, None
    line = json.loads(result)
    response = line.get("response") or None
    if response is None:
        error = line.get("error") or {}
        code = str(error.get("code") or "batch_failed")
        kind = code if code.startswith("batch_") else "batch_failed"
        message = f"{error.get('message') or 'no answer'} (batch {ctx.batch_id})"
        return None, None, (), BatchRowLost(message, kind=kind, url=ctx.url), None, None
    status = int(response.get("status_code") or 0)
    request_id = response.get("request_id")
    body = response.get("body")
    if status != 200:
        content = json.dumps(body).encode()
        headers = {"x-request-id": request_id} if request_id else {}
        error = error_from_response(status, headers, content, url=ctx.url)
        return None, None, (), error, status, request_id
    try:
        completion = completion_from_reply(
            body,
            url=ctx.url,
            request_id=request_id,
            model=ctx.settings.model,
            latency_ms=ctx.latency_ms,
            rate_headers={},
        )
    except RunnerError as exc:
        return None, None, (), exc, status, request_id
    try:
        value, values = completion_values(completion, ctx.spec.output, ctx.spec.params)
    except OutputError as exc:
        return completion, None, (), exc, status, request_id
    return completion, value, values, None, status, request_id


def _row_line(
    ctx: _Context,
    key: str,
    body: dict[str, Any],
    result: bytes | None,
    vars: Mapping[str, Any] | None,
) -> LedgerRecord:
    completion, value, values, error, status, request_id = _outcome(ctx, result)
    usage = completion.usage if completion is not None else None
    attempt = Attempt(
        number=1,
        outcome="ok" if error is None else error.kind,
        latency_ms=ctx.latency_ms,
        status=status,
        usage=usage,
        request_id=request_id,
        message=None if error is None else error.message,
    )
    settings = ctx.settings
    base_url = None if settings.mock else settings.base_url
    cost = ctx.pricebook.cost_of_attempts(
        [attempt], str(body.get("model")), base_url=base_url, estimated=settings.mock
    )
    messages = cast("list[Message]", body.get("messages") or [])
    try:
        estimated = count_messages(
            messages,
            str(body.get("model")),
            tools=body.get("tools"),
            tool_choice=body.get("tool_choice"),
        )
    except (RunnerError, ValueError, TypeError):
        estimated = None
    return build_line(
        ts=ctx.ts,
        spec=ctx.ref,
        fingerprint=ctx.fingerprint(body),
        case=None,
        row=key,
        model=str(body.get("model")),
        params=ctx.spec.params,
        vars=None if vars is None else dict(vars),
        messages=messages,
        estimated_prompt=estimated,
        attempts=[attempt],
        usage=usage or Usage(),
        cost=cost,
        latency_ms=ctx.latency_ms,
        mock=settings.mock,
        content=settings.ledger_content,
        has_schema=ctx.spec.output is not None,
        completion=completion if error is None else None,
        value=value,
        values=values,
        error=error,
        batch_id=ctx.batch_id,
    )


async def collect(
    api: BatchAPI,
    batch: Mapping[str, Any],
    *,
    spec: PromptSpec,
    settings: Settings,
    pricebook: PriceBook,
    ledger: Ledger,
    workdir: Path,
    already: set[str],
    vars_by_row: Mapping[str, Mapping[str, Any]] | None = None,
) -> CollectSummary:
    """Write one line per row of an ended batch that the ledger does not have yet (`already`:
    rows recorded for this batch before). `vars_by_row` gives the rows' variables when the data
    set is at hand; without it the lines' `vars` are null (the messages are always there)."""
    batch_id = str(batch["id"])
    status = str(batch.get("status"))
    summary = CollectSummary(batch_id, status)
    created = float(batch.get("created_at") or 0)
    ctx = _Context(
        spec=spec,
        settings=settings,
        pricebook=pricebook,
        batch_id=batch_id,
        status=status,
        url=f"{api.base_url}/chat/completions",
        ts=datetime.fromtimestamp(created, UTC),
        latency_ms=max(0.0, _ended_at(batch) - created) * 1000,
        ref=spec_ref(spec.path, sha256=spec.sha256, name=spec.name),
    )
    total = int((batch.get("request_counts") or {}).get("total") or 0)
    if status != "failed" and total and len(already) >= total:
        summary.skipped = len(already)  # collected before: nothing to download
        return summary
    files: dict[str, Path | None] = {}
    for name in ("input_file_id", "output_file_id", "error_file_id"):
        file_id = batch.get(name)
        files[name] = None
        if file_id:
            path = workdir / f"{batch_id}.{name.split('_')[0]}.jsonl"
            await api.download(str(file_id), path)
            files[name] = path
    if status == "failed" or files["input_file_id"] is None:
        # Nothing ran: no row was sent to a model, so no line is written; the rows stay
        # unanswered for a live run (or --resume) to pick up.
        errors = (batch.get("errors") or {}).get("data") or []
        summary.batch_errors = [
            (f"line {e.get('line')}: " if e.get("line") else "") + str(e.get("message"))
            for e in errors
            if isinstance(e, dict)
        ] or [f"the batch ended {status} without running"]
        return summary
    outputs = _index(files["output_file_id"])
    outputs.update(_index(files["error_file_id"]))
    with open(files["input_file_id"], "rb") as f:
        for raw in f:
            if not raw.strip():
                continue
            request = json.loads(raw)
            key = str(request["custom_id"])
            if key in already:
                summary.skipped += 1
                continue
            vars = None if vars_by_row is None else vars_by_row.get(key)
            record = _row_line(ctx, key, request["body"], outputs.pop(key, None), vars)
            ledger.append(record)
            already.add(key)
            _count(summary, key, record)
    return summary


def _count(summary: CollectSummary, key: str, record: LedgerRecord) -> None:
    summary.written += 1
    if record["status"] == "ok":
        summary.ok += 1
    else:
        summary.failed_rows.append(key)
        if record["status"] == "invalid_output":
            summary.invalid += 1
        error = record.get("error")
        summary.kinds[error["kind"] if error else "error"] += 1
    usd = record["cost"].get("usd")
    if usd is None:
        summary.unpriced += 1
    else:
        summary.cost_usd += Decimal(str(usd))
