"""The mock server's Batch API, in memory per app: batches created from uploaded input files,
answered row by row with the answers of their endpoint (chat completions or responses) once
their delay has passed, and written to output and error files. Batch faults (delay, expiry part
way, rows missing from the results) come from `create_app` and `X-Mock-Fault`; row faults are
the endpoint's own.
"""

from __future__ import annotations

import json
import math
import time
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

from runner.durations import parse_duration
from runner.errors import HTTPStatusFailure
from runner.mock.batch_input import ENDPOINTS, check_metadata, read_input
from runner.mock.faults import FAULT_HEADER, Faults, decide, fault_error, parse_fault_header
from runner.mock.files import FileStore
from runner.mock.request import api_error, digest, error_body
from runner.mock.wires import WIRES

if TYPE_CHECKING:
    from starlette.requests import Request

__all__ = [
    "BatchFaults",
    "BatchStore",
    "cancel_batch",
    "create_batch",
    "list_batches",
    "parse_batch_faults",
    "retrieve_batch",
]

_TERMINAL = frozenset({"failed", "completed", "expired", "cancelled"})
_EXPIRED = "This request could not be executed before the completion window expired."
_CANCELLED = "This request was not executed because the batch was cancelled."


class _FaultFree(dict[int, Faults]):
    """Faults(seed=n) by seed: a batch with no faults skips the dice (they cannot fire)."""

    def __missing__(self, seed: int) -> Faults:
        found = self[seed] = Faults(seed=seed)
        return found


_NO_FAULTS = _FaultFree()


@dataclass(frozen=True)
class BatchFaults:
    """How a batch misbehaves: `delay` seconds before it ends, `expire` (the share of rows done
    before it expires; None: it completes), `missing` rows left out of both result files."""

    delay: float = 0.0
    expire: float | None = None
    missing: int = 0

    def __post_init__(self) -> None:
        if not self.delay >= 0:
            raise ValueError(f"batch_delay must be 0 or more seconds, not {self.delay}")
        if self.expire is not None and not 0.0 <= self.expire <= 1.0:
            raise ValueError(f"batch_expire must be between 0 and 1, not {self.expire}")
        if self.missing < 0:
            raise ValueError(f"batch_missing must be 0 or more, not {self.missing}")


def parse_batch_faults(
    header: str, faults: Faults, batch: BatchFaults
) -> tuple[Faults, BatchFaults]:
    """Split an `X-Mock-Fault` header into row faults (the chat endpoint's keys) and batch faults
    (`batch_delay=2s`, `batch_expire=0.5`, `batch_missing=3`)."""
    rest: list[str] = []
    changes: dict[str, Any] = {}
    for item in filter(None, (part.strip() for part in header.split(";"))):
        key, _, arg = (s.strip() for s in item.partition("="))
        try:
            if key == "batch_delay":
                changes["delay"] = parse_duration(arg)
            elif key == "batch_expire":
                changes["expire"] = float(arg)
            elif key == "batch_missing":
                changes["missing"] = int(arg)
            else:
                rest.append(item)
        except ValueError as exc:
            raise ValueError(f"invalid {FAULT_HEADER} header: {key}: {exc}") from None
    try:
        batch = replace(batch, **changes)
    except ValueError as exc:
        raise ValueError(f"invalid {FAULT_HEADER} header: {exc}") from None
    if rest:
        faults = parse_fault_header(";".join(rest), faults)
    return faults, batch


@dataclass
class _Batch:
    """One batch: what was asked, its input rows, and what became of it."""

    id: str
    endpoint: str
    input_file_id: str
    metadata: dict[str, str] | None
    created_at: float
    rows: list[dict[str, Any]]
    model: str | None
    faults: Faults
    batch_faults: BatchFaults
    status: str = "validating"
    times: dict[str, int | None] = field(default_factory=dict)
    output_file_id: str | None = None
    error_file_id: str | None = None
    counts: dict[str, int] = field(
        default_factory=lambda: {"total": 0, "completed": 0, "failed": 0}
    )
    usage: dict[str, int] = field(default_factory=lambda: {"input": 0, "output": 0})
    errors: list[dict[str, Any]] = field(default_factory=list)

    def to_object(self) -> dict[str, Any]:
        t = self.times
        return {
            "id": self.id,
            "object": "batch",
            "endpoint": self.endpoint,
            "model": self.model,
            "errors": {"object": "list", "data": self.errors} if self.errors else None,
            "input_file_id": self.input_file_id,
            "completion_window": "24h",
            "status": self.status,
            "output_file_id": self.output_file_id,
            "error_file_id": self.error_file_id,
            "created_at": int(self.created_at),
            "in_progress_at": t.get("in_progress_at"),
            "expires_at": int(self.created_at) + 24 * 3600,
            "finalizing_at": t.get("finalizing_at"),
            "completed_at": t.get("completed_at"),
            "failed_at": t.get("failed_at"),
            "expired_at": t.get("expired_at"),
            "cancelling_at": t.get("cancelling_at"),
            "cancelled_at": t.get("cancelled_at"),
            "request_counts": dict(self.counts),
            "usage": {
                "input_tokens": self.usage["input"],
                "input_tokens_details": {"cached_tokens": 0},
                "output_tokens": self.usage["output"],
                "output_tokens_details": {"reasoning_tokens": 0},
                "total_tokens": self.usage["input"] + self.usage["output"],
            },
            "metadata": self.metadata,
        }


class BatchStore:
    """Every batch of one app, in creation order; answers rows with the app's seed."""

    def __init__(
        self,
        files: FileStore,
        faults: Faults,
        batch_faults: BatchFaults,
        endpoints: tuple[str, ...] = ENDPOINTS,
    ) -> None:
        self.files = files
        self.faults = faults
        self.batch_faults = batch_faults
        self.endpoints = endpoints  # what a batch may name as its endpoint
        self.batches: dict[str, _Batch] = {}

    def get(self, batch_id: str) -> _Batch:
        found = self.batches.get(batch_id)
        if found is None:
            raise api_error(404, f"No batch found with id '{batch_id}'.", param="batch_id")
        advance(self, found, time.time())
        return found


# --- creating and checking --------------------------------------------------------------------


async def create_batch(request: Request) -> dict[str, Any]:
    """POST /v1/batches."""
    store: BatchStore = request.app.state.batches
    try:
        body = json.loads(await request.body())
    except ValueError:
        raise api_error(400, "We could not parse the JSON body of your request.") from None
    if not isinstance(body, dict):
        raise api_error(400, "The body must be an object.")
    for name in ("input_file_id", "endpoint", "completion_window"):
        if not isinstance(body.get(name), str):
            raise api_error(400, f"Missing required parameter: '{name}'.", param=name)
    if body["endpoint"] not in store.endpoints:
        raise api_error(
            400,
            f"The mock server batches only {' and '.join(store.endpoints)}, not "
            f"{body['endpoint']}.",
            param="endpoint",
        )
    if body["completion_window"] != "24h":
        raise api_error(
            400, "Invalid completion_window: only '24h' is supported.", param="completion_window"
        )
    metadata = check_metadata(body.get("metadata"))
    stored = store.files.get(body["input_file_id"])
    if stored.purpose != "batch":
        raise api_error(
            400, "The input file must be uploaded with purpose 'batch'.", param="input_file_id"
        )
    faults, batch_faults = store.faults, store.batch_faults
    header = request.headers.get(FAULT_HEADER)
    if header is not None:
        try:
            faults, batch_faults = parse_batch_faults(header, faults, batch_faults)
        except ValueError as exc:
            raise api_error(400, str(exc), code="invalid_mock_fault") from None
    rows, problems, model = read_input(stored.data, body["endpoint"])
    now = time.time()
    batch = _Batch(
        id=f"batch_{digest('batch', len(store.batches), time.time_ns())[:24]}",
        endpoint=body["endpoint"],
        input_file_id=stored.id,
        metadata=metadata,
        created_at=now,
        rows=rows,
        model=model,
        faults=faults,
        batch_faults=batch_faults,
    )
    batch.counts["total"] = len(rows)
    if problems:
        batch.status, batch.errors = "failed", problems
        batch.times["failed_at"] = int(now)
    store.batches[batch.id] = batch
    return batch.to_object()


# --- running ----------------------------------------------------------------------------------


def advance(store: BatchStore, batch: _Batch, now: float) -> None:
    """Move the batch along its timeline: in progress until its delay has passed, then every
    row answered (or expired) and the result files written."""
    if batch.status in _TERMINAL:
        return
    delay = batch.batch_faults.delay
    if batch.status == "validating":
        batch.status = "in_progress"
        batch.times["in_progress_at"] = int(now)
    elapsed = now - batch.created_at
    if elapsed < delay:
        batch.counts["completed"] = math.floor(len(batch.rows) * elapsed / delay)
        return
    expire = batch.batch_faults.expire
    if expire is None:
        _finish(store, batch, len(batch.rows), "completed", now)
    else:
        _finish(store, batch, math.floor(len(batch.rows) * expire), "expired", now)


def _finish(store: BatchStore, batch: _Batch, done: int, status: str, now: float) -> None:
    """Answer the first `done` rows, give the others `status`'s error, and write the files."""
    out: list[bytes] = []
    failed: list[bytes] = []
    counts = {"total": len(batch.rows), "completed": 0, "failed": 0}
    created = int(now)
    keep = len(batch.rows) - batch.batch_faults.missing
    for index, row in enumerate(batch.rows):
        if index >= keep:
            continue  # a server bug: the row is in neither file
        if index >= done:
            code = "batch_expired" if status == "expired" else "batch_cancelled"
            line = {
                "id": f"batch_req_{digest(batch.id, index)[:24]}",
                "custom_id": row["custom_id"],
                "response": None,
                "error": {
                    "code": code,
                    "message": _EXPIRED if code == "batch_expired" else _CANCELLED,
                },
            }
            failed.append(json.dumps(line, ensure_ascii=False).encode())
            continue
        ok, line = _answer_row(batch, index, row, created)
        if ok:
            counts["completed"] += 1
            tokens_in, tokens_out = line.pop("usage")
            batch.usage["input"] += tokens_in
            batch.usage["output"] += tokens_out
            # The reply's bytes spliced in as the endpoint sends them (no re-encoding).
            reply: bytes = line.pop("reply")
            head, _, tail = json.dumps(line, ensure_ascii=False).partition('"body": null')
            out.append(head.encode() + b'"body": ' + reply + tail.encode())
        else:
            counts["failed"] += 1
            failed.append(json.dumps(line, ensure_ascii=False).encode())
    if out:
        name = f"{batch.id}_output.jsonl"
        batch.output_file_id = store.files.add(name, "batch_output", b"\n".join(out) + b"\n").id
    if failed:
        name = f"{batch.id}_error.jsonl"
        batch.error_file_id = store.files.add(name, "batch_output", b"\n".join(failed) + b"\n").id
    batch.counts = counts
    batch.status = status
    batch.times["finalizing_at"] = int(now)
    batch.times[f"{status}_at"] = int(now)


def _answer_row(
    batch: _Batch, index: int, row: dict[str, Any], created: int
) -> tuple[bool, dict[str, Any]]:
    """One row answered as its endpoint answers it, or its error reply."""
    wire = WIRES[batch.endpoint]
    body = row["body"]
    request_id = f"req_{digest(batch.id, row['custom_id'])[:32]}"
    line: dict[str, Any] = {
        "id": f"batch_req_{digest(batch.id, index)[:24]}",
        "custom_id": row["custom_id"],
        "response": None,
        "error": None,
    }
    faults = batch.faults
    try:
        if body.get("stream"):
            raise api_error(400, "Streaming is not supported in the Batch API.", param="stream")
        asked = wire.parse_body(body)
        ask = wire.ask(asked)
        decision = None
        if faults != _NO_FAULTS.get(faults.seed):
            decision = decide(faults, ask.key, 1)
            if decision.status is not None:
                raise fault_error(decision.status, faults, ask.model)
        invalid = decision is not None and decision.invalid_output
        answer = wire.build(asked, faults.seed, invalid)
    except HTTPStatusFailure as err:
        line["response"] = {
            "status_code": err.status,
            "request_id": request_id,
            "body": error_body(err),
        }
        return False, line
    line["response"] = {"status_code": 200, "request_id": request_id, "body": None}
    line["usage"] = wire.tokens(answer)  # for the batch's totals; not written
    line["reply"] = wire.body(answer, asked, created, decision)
    return True, line


# --- the other endpoints ----------------------------------------------------------------------


async def retrieve_batch(request: Request) -> dict[str, Any]:
    """GET /v1/batches/{batch_id}."""
    store: BatchStore = request.app.state.batches
    return store.get(request.path_params["batch_id"]).to_object()


async def cancel_batch(request: Request) -> dict[str, Any]:
    """POST /v1/batches/{batch_id}/cancel: the rows done so far are kept, the others cancelled.
    The reply says `cancelling`, as OpenAI's does; the next read says `cancelled`."""
    store: BatchStore = request.app.state.batches
    batch = store.get(request.path_params["batch_id"])
    if batch.status in _TERMINAL:
        raise api_error(400, f"Cannot cancel a batch with status '{batch.status}'.")
    now = time.time()
    delay = batch.batch_faults.delay
    done = (
        len(batch.rows)
        if delay <= 0
        else math.floor(len(batch.rows) * min(1.0, (now - batch.created_at) / delay))
    )
    batch.times["cancelling_at"] = int(now)
    _finish(store, batch, done, "cancelled", now)
    return {**batch.to_object(), "status": "cancelling", "cancelled_at": None}


async def list_batches(request: Request) -> dict[str, Any]:
    """GET /v1/batches?limit=&after=, newest first."""
    store: BatchStore = request.app.state.batches
    try:
        limit = int(request.query_params.get("limit", "20"))
    except ValueError:
        raise api_error(400, "limit must be an integer.", param="limit") from None
    if not 1 <= limit <= 100:
        raise api_error(400, "limit must be between 1 and 100.", param="limit")
    ordered = list(reversed(store.batches.values()))
    after = request.query_params.get("after")
    if after:
        ids = [b.id for b in ordered]
        ordered = ordered[ids.index(after) + 1 :] if after in ids else []
    now = time.time()
    page = ordered[:limit]
    for batch in page:
        advance(store, batch, now)
    data = [b.to_object() for b in page]
    return {
        "object": "list",
        "data": data,
        "first_id": data[0]["id"] if data else None,
        "last_id": data[-1]["id"] if data else None,
        "has_more": len(ordered) > limit,
    }
