"""Collecting an ended batch into the ledger. The rows are the local record's (the keys and
request fingerprints this machine sent), never the server's: the server's files only supply
answers, and its input file the request bodies whose fingerprint matches the record. Each
row's reply is checked against the output schema as a live call's is, its usage goes through
the live path's checks (`engine.usage.UsageCheck`), and it gets one build_line line (`batch_id`
set, the batch price). A malformed result fails its own row (kind `batch_malformed`); a row
never answered is a BatchRowLost error. Every disagreement between the server's files and the
local record (a duplicate, an unknown or unreadable line, a missing row, a changed request) is
counted. Rows already in the ledger for that batch are skipped, so collecting twice writes
nothing twice (the caller holds the run lock: check and write are one step).
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING, Any

from runner.batch.remote import check_id
from runner.batch.serverfiles import index_input, index_results, parse_line
from runner.engine.answer import completion_values
from runner.engine.usage import UsageCheck, completion_texts
from runner.errors import BatchRowLost, ConfigError, OutputError, RunnerError
from runner.ledger.fingerprint import Fingerprinter
from runner.ledger.gitref import spec_ref
from runner.ledger.line import Asked, Outcome, Recording, build_line
from runner.ledger.reading import read_records
from runner.providers import WireAPI, error_from_response, wire_api
from runner.types import Attempt, Completion, Usage

if TYPE_CHECKING:
    from runner.batch.state import LocalRow
    from runner.engine.results import Preflight
    from runner.ledger.line import LedgerRecord, SpecRef
    from runner.ledger.store import Ledger
    from runner.pricing import PriceBook
    from runner.providers import BatchAPI
    from runner.settings import Settings
    from runner.spec.model import PromptSpec

__all__ = ["MISMATCHES", "CollectSummary", "collect", "recorded_rows"]

_LOST = {
    "completed": (
        "batch_missing",
        "the batch completed but its result files have no line for this row",
    ),
    "expired": ("batch_expired", "the batch expired before this row ran"),
    "cancelled": ("batch_cancelled", "the batch was cancelled before this row ran"),
    "failed": ("batch_failed", "the batch failed before this row ran"),
}

# Ways the server's files can disagree with the local record, in the order they are reported.
MISMATCHES = ("duplicate", "unknown", "unreadable", "missing", "changed")


@dataclass
class CollectSummary:
    """What collecting one batch wrote: lines by status, error kinds, cost, and every way the
    server's files disagreed with the local record (`mismatches`, keys from MISMATCHES)."""

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
    implausible: int = 0  # rows whose usage was flagged implausible (recorded, not priced)
    batch_errors: list[str] = field(default_factory=list)  # why a `failed` batch ran nothing
    mismatches: Counter[str] = field(default_factory=Counter)
    unknown_ids: list[str] = field(default_factory=list)  # the first few, for the message

    @property
    def disagrees(self) -> bool:
        return any(self.mismatches.values())


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


# --- one row's line ------------------------------------------------------------------------------


def _ended_at(batch: Mapping[str, Any]) -> float:
    for key in ("completed_at", "expired_at", "cancelled_at", "failed_at", "finalizing_at"):
        value = batch.get(key)
        if isinstance(value, int | float) and not isinstance(value, bool) and value > 0:
            return float(value)
    return datetime.now(UTC).timestamp()


def _created_at(batch: Mapping[str, Any]) -> float:
    value = batch.get("created_at")
    if isinstance(value, int | float) and not isinstance(value, bool) and 0 < value < 1e11:
        return float(value)
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
    wire: WireAPI  # the spec's wire API: how its bodies and replies are read
    fingerprint: Fingerprinter
    windows: dict[str, int | None] = field(default_factory=dict)

    @property
    def base_url(self) -> str | None:
        return None if self.settings.mock else self.settings.base_url

    def check(self, body: Mapping[str, Any]) -> UsageCheck:
        """The live path's usage checks for this request."""
        model = str(body.get("model") or self.settings.model)
        if model not in self.windows:
            self.windows[model] = self.pricebook.context_window(model, base_url=self.base_url)
        return UsageCheck.for_request(
            model,
            body,
            api=self.wire.capabilities.name,
            max_output_tokens=self.wire.output_limit(self.spec.params),
            context_window=self.windows[model],
        )


@dataclass
class _Outcome:
    completion: Completion | None = None
    value: Any = None
    values: tuple[Any, ...] = ()
    error: RunnerError | None = None
    status: int | None = None
    request_id: str | None = None
    billed: bool = False  # the server says it answered (status 200): tokens were spent


def _malformed(ctx: _Context, why: str, **kw: Any) -> _Outcome:
    error = BatchRowLost(
        f"the batch's result for this row is malformed: {why} (batch {ctx.batch_id})",
        kind="batch_malformed",
        url=ctx.url,
    )
    return _Outcome(error=error, **kw)


def _kind_name(value: Any) -> str:
    return "null" if value is None else type(value).__name__


def _outcome(ctx: _Context, line: dict[str, Any] | None, pre: Preflight) -> _Outcome:
    """What one row's result line says, whatever shape it has: an answer, the row's error, or
    `batch_malformed`. Never raises for a bad line."""
    if line is None:
        kind, why = _LOST.get(ctx.status, _LOST["completed"])
        return _Outcome(error=BatchRowLost(f"{why} (batch {ctx.batch_id})", kind=kind))
    response = line.get("response")
    if response is None:
        error = line.get("error")
        if not isinstance(error, dict):
            return _malformed(ctx, f"no response, and `error` is {_kind_name(error)}")
        code = str(error.get("code") or "batch_failed")[:80]
        kind = code if code.startswith("batch_") and code.isidentifier() else "batch_failed"
        message = f"{str(error.get('message') or 'no answer')[:500]} (batch {ctx.batch_id})"
        return _Outcome(error=BatchRowLost(message, kind=kind, url=ctx.url))
    if not isinstance(response, dict):
        return _malformed(ctx, f"`response` is {_kind_name(response)}, not an object")
    status = response.get("status_code")
    if not isinstance(status, int) or isinstance(status, bool) or not 100 <= status <= 599:
        return _malformed(ctx, f"`status_code` {str(status)[:40]!r} is not an HTTP status")
    request_id = response.get("request_id")
    request_id = request_id if isinstance(request_id, str) and len(request_id) <= 200 else None
    body = response.get("body")
    if status != 200:
        content = json.dumps(body).encode()
        headers = {"x-request-id": request_id} if request_id else {}
        error = error_from_response(status, headers, content, url=ctx.url, wire=ctx.wire)
        return _Outcome(error=error, status=status, request_id=request_id)
    try:
        completion = ctx.wire.completion(
            body,
            url=ctx.url,
            request_id=request_id,
            model=ctx.settings.model,
            latency_ms=ctx.latency_ms,
            rate_headers={},
        )
    except RunnerError as exc:
        return _Outcome(error=exc, status=status, request_id=request_id, billed=True)
    except (TypeError, ValueError, AttributeError, KeyError) as exc:
        return _malformed(
            ctx,
            f"its body cannot be read ({exc})",
            status=status,
            request_id=request_id,
            billed=True,
        )
    outcome = _Outcome(completion, status=status, request_id=request_id, billed=True)
    try:
        outcome.value, outcome.values = completion_values(completion, ctx.spec.output, pre)
    except OutputError as exc:
        outcome.error = exc
    return outcome


def _row_line(
    ctx: _Context,
    key: str,
    body: dict[str, Any] | None,
    result: dict[str, Any] | None,
    vars: Mapping[str, Any] | None,
    *,
    sent: str | None,
    changed: str | None,
) -> LedgerRecord:
    """One row's line. Without `body` (the server's input has no request for the row, or
    another one), the row is a `batch_mismatch` error; what its result used is still counted."""
    request = body if body is not None else {"model": ctx.settings.model}
    check = ctx.check(request)
    outcome = _outcome(ctx, result, check.pre)
    usage: Usage | None = None
    if outcome.completion is not None:
        usage = check.recorded(
            outcome.completion.usage, request, completion_texts(outcome.completion)
        )
        outcome.completion = _with_usage(outcome.completion, usage)
    elif outcome.billed:
        usage = check.recorded(None, request, [])
    error = outcome.error
    if body is None:
        why = (
            "the server's input file holds another request for this row "
            f"(sha256 {str(changed)[:12]}…, sent {str(sent)[:12]}…)"
            if changed
            else "the server's input file has no request for this row"
        )
        error = BatchRowLost(
            f"{why}; its answer is not used (batch {ctx.batch_id})",
            kind="batch_mismatch",
            url=ctx.url,
        )
    attempt = Attempt(
        number=1,
        outcome="ok" if error is None else error.kind,
        latency_ms=ctx.latency_ms,
        status=outcome.status,
        usage=usage,
        request_id=outcome.request_id,
        message=None if error is None else error.message,
    )
    model = str(request.get("model") or ctx.settings.model)
    cost = ctx.pricebook.cost_of_attempts(
        [attempt], model, base_url=ctx.base_url, estimated=ctx.settings.mock
    )
    messages = ctx.wire.messages_of(body) if body is not None else None
    return build_line(
        asked=Asked(
            spec=ctx.ref,
            fingerprint=ctx.fingerprint(body) if body is not None else str(sent or ""),
            model=model,
            params=ctx.spec.params,
            vars=None if vars is None else dict(vars),
            messages=messages,
            estimated_prompt=check.pre.prompt_tokens if body is not None else None,
            row=key,
            api=ctx.wire.capabilities.name,
        ),
        outcome=Outcome(
            ts=ctx.ts,
            attempts=[attempt],
            usage=usage or Usage(),
            cost=cost,
            latency_ms=ctx.latency_ms,
            completion=outcome.completion if error is None else None,
            value=outcome.value,
            values=outcome.values,
            error=error,
            batch_id=ctx.batch_id,
        ),
        recording=Recording(
            content=ctx.settings.ledger_content,
            mock=ctx.settings.mock,
            has_schema=ctx.spec.output is not None,
        ),
    )


def _with_usage(completion: Completion, usage: Usage) -> Completion:
    from dataclasses import replace

    return replace(completion, usage=usage)


# --- one batch -----------------------------------------------------------------------------------


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
    local: Sequence[LocalRow] | None,
    vars_by_row: Mapping[str, Mapping[str, Any]] | None = None,
) -> CollectSummary:
    """Write one line per row of the local record (`local`: key and request fingerprint, in
    order) that the ledger does not have yet (`already`). `vars_by_row` gives the rows'
    variables when the data set is at hand; without it the lines' `vars` are null."""
    batch_id = str(batch["id"])
    status = str(batch.get("status"))
    summary = CollectSummary(batch_id, status)
    if status == "failed" or not batch.get("input_file_id"):
        # Nothing ran: no row was sent to a model, so no line is written; the rows stay
        # unanswered for a live run (or --resume) to pick up.
        data = batch.get("errors")
        errors = data.get("data") if isinstance(data, dict) else None
        summary.batch_errors = [
            (f"line {e.get('line')}: " if e.get("line") else "") + str(e.get("message"))[:500]
            for e in (errors if isinstance(errors, list) else [])
            if isinstance(e, dict)
        ] or [f"the batch ended {status} without running"]
        return summary
    if local is None:
        raise ConfigError(
            f"there is no local record of the rows of batch {batch_id} (no "
            f"batches/{batch_id}.rows next to the ledger): give the data set it was made "
            "from with --input, so that only its rows are written"
        )
    keys = dict(local)
    todo = [(key, sent) for key, sent in local if key not in already]
    summary.skipped = len(keys) - len(todo)
    if not todo:
        return summary  # collected before: nothing to download
    created = _created_at(batch)
    wire = wire_api(spec.provider.api)
    ctx = _Context(
        spec=spec,
        settings=settings,
        pricebook=pricebook,
        batch_id=batch_id,
        status=status,
        url=f"{api.base_url}{wire.capabilities.path}",
        wire=wire,
        fingerprint=Fingerprinter(wire.static_keys),
        ts=datetime.fromtimestamp(created, UTC),
        latency_ms=max(0.0, _ended_at(batch) - created) * 1000,
        ref=spec_ref(spec.path, sha256=spec.sha256, name=spec.name),
    )
    files: dict[str, Path | None] = {}
    for name in ("input_file_id", "output_file_id", "error_file_id"):
        file_id = batch.get(name)
        files[name] = None
        if file_id:
            check_id(file_id, name.replace("_", " "), given_by_server=True)
            path = workdir / f"{batch_id}.{name.split('_')[0]}.jsonl"
            await api.download(str(file_id), path)
            files[name] = path
    results = index_results(
        [p for p in (files["output_file_id"], files["error_file_id"]) if p is not None],
        keys,
        summary,
    )
    at, changed, source = index_input(files["input_file_id"], keys, summary, ctx.fingerprint)
    try:
        for key, sent in todo:
            body = None
            if source is not None and key in at:
                source.seek(at[key])
                request = parse_line(source.readline())
                body = None if request is None else request.get("body")
            else:  # another request, or none, under this key in the server's input file
                summary.mismatches["changed"] += 1
            result = results.read(key)
            if result is None:
                summary.mismatches["missing"] += 1
            vars = None if vars_by_row is None else vars_by_row.get(key)
            record = _row_line(ctx, key, body, result, vars, sent=sent, changed=changed.get(key))
            ledger.append(record)
            already.add(key)
            _count(summary, key, record)
    finally:
        for f in results.files:
            f.close()
        if source is not None:
            source.close()
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
    if record["usage"].get("implausible"):
        summary.implausible += 1
    usd = record["cost"].get("usd")
    if usd is None:
        summary.unpriced += 1
    else:
        summary.cost_usd += Decimal(str(usd))
