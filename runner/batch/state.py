"""Which batches this machine started, kept next to the ledger: `batches.jsonl` (append-only,
one line per event: created, ended, collected) and `batches/<batch_id>.rows` (the row keys a
batch carries, one JSON string per line). `rows_in_open_batches` tells a data set's `--resume`
which rows are in flight in a batch, so that no row runs both in a batch and live.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from runner.ledger.encoding import utc_timestamp
from runner.ledger.store import Ledger, read_records

__all__ = [
    "BatchState",
    "read_state",
    "record_collected",
    "record_created",
    "record_ended",
    "rows_file",
    "rows_in_open_batches",
    "state_path",
]

STATE_VERSION = 1


def state_path(ledger_path: Path) -> Path:
    """The state file of the batches whose lines go to this ledger."""
    return ledger_path.parent / "batches.jsonl"


def rows_file(ledger_path: Path, batch_id: str) -> Path:
    return ledger_path.parent / "batches" / f"{batch_id}.rows"


@dataclass
class BatchState:
    """What the state file says about one batch: its creation line, then the latest status."""

    batch_id: str
    created: dict[str, Any]
    status: str = "validating"
    collected: bool = False
    events: list[dict[str, Any]] = field(default_factory=list)

    @property
    def group(self) -> str:
        return str(self.created.get("group") or self.batch_id)

    @property
    def spec_sha256(self) -> str:
        return str(self.created.get("spec", {}).get("sha256", ""))


def _append(ledger_path: Path, event: Mapping[str, Any]) -> None:
    line = {"v": STATE_VERSION, "ts": utc_timestamp(), **event, "ledger": str(ledger_path)}
    with Ledger(state_path(ledger_path)) as store:
        store.append(line)


def record_created(
    ledger_path: Path, batch: Mapping[str, Any], keys: Iterable[str], **details: Any
) -> None:
    """A batch was created: its id, the details to find it again (spec, input, group, server),
    and its rows in batches/<id>.rows."""
    path = rows_file(ledger_path, str(batch["id"]))
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", encoding="utf-8") as f:
        f.writelines(json.dumps(key, ensure_ascii=False) + "\n" for key in keys)
    _append(
        ledger_path,
        {
            "event": "created",
            "batch_id": batch["id"],
            "status": batch.get("status"),
            "input_file_id": batch.get("input_file_id"),
            **details,
        },
    )


def record_ended(ledger_path: Path, batch: Mapping[str, Any]) -> None:
    _append(
        ledger_path,
        {
            "event": "ended",
            "batch_id": batch["id"],
            "status": batch.get("status"),
            "request_counts": batch.get("request_counts"),
        },
    )


def record_collected(ledger_path: Path, batch_id: str, *, written: int, skipped: int) -> None:
    _append(
        ledger_path,
        {"event": "collected", "batch_id": batch_id, "written": written, "skipped": skipped},
    )


def read_state(ledger_path: Path) -> dict[str, BatchState]:
    """Every batch of this ledger that the state file knows, in creation order."""
    path = state_path(ledger_path)
    if not path.exists():
        return {}
    found: dict[str, BatchState] = {}
    for line in read_records(path, warn=lambda _message: None):
        if line.get("ledger") not in (None, str(ledger_path)):
            continue
        batch_id = str(line.get("batch_id") or "")
        event = line.get("event")
        if event == "created":
            found[batch_id] = BatchState(batch_id, line, status=str(line.get("status")))
        state = found.get(batch_id)
        if state is None:
            continue
        state.events.append(line)
        if event == "ended":
            state.status = str(line.get("status"))
        elif event == "collected":
            state.collected = True
    return found


def rows_in_open_batches(ledger_path: str | Path, spec_sha256: str) -> set[str]:
    """The rows of this spec (by sha256) that sit in a batch not yet collected into this
    ledger. A data set's `--resume` must skip them: their answers will come from the batch."""
    ledger = Path(ledger_path)
    rows: set[str] = set()
    for state in read_state(ledger).values():
        if state.collected or state.spec_sha256 != spec_sha256:
            continue
        path = rows_file(ledger, state.batch_id)
        if path.exists():
            with path.open(encoding="utf-8") as f:
                rows.update(json.loads(line) for line in f if line.strip())
    return rows
