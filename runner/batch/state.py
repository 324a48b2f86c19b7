"""Which batches this machine started, kept in the folder `batches/` next to the ledger:
`state.jsonl` (append-only, one line per event: created, ended, collected) and
`<batch_id>.rows` (the local record of a batch's rows: one JSON `[key, request_sha256]` per
line; files written before fingerprints were kept hold a bare JSON string). The state file sits
in the folder so that a ledger glob (`runs/*.jsonl`) never reads it; runner once kept it beside
the ledger as `batches.jsonl`, which is still read (first), never written, so that a batch
started before an upgrade is collected after it. Collect trusts this record, not the server's files.
`rows_in_open_batches` tells a data set's `--resume` which rows are in flight in a batch, so
that no row runs both in a batch and live. `check_writable` finds, before anything is uploaded,
a state file, rows folder or ledger that could not take what a batch must write.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from runner.errors import ConfigError, LedgerError, LedgerUnavailable
from runner.ledger.encoding import utc_timestamp
from runner.ledger.reading import iter_lines, open_for_reading, read_records
from runner.ledger.store import Ledger

__all__ = [
    "BatchState",
    "Endpoint",
    "LocalRow",
    "check_writable",
    "endpoint_for",
    "read_rows_file",
    "read_state",
    "record_collected",
    "record_created",
    "record_ended",
    "rows_file",
    "rows_in_open_batches",
    "state_path",
    "state_paths",
]

STATE_VERSION = 1


def state_path(ledger_path: Path) -> Path:
    """The state file of the batches whose lines go to this ledger: where events are written."""
    return ledger_path.parent / "batches" / "state.jsonl"


def state_paths(ledger_path: Path) -> tuple[Path, Path]:
    """Every state file read for this ledger, oldest first: where runner kept it before (read,
    never written) and `state_path`."""
    return ledger_path.parent / "batches.jsonl", state_path(ledger_path)


def rows_file(ledger_path: Path, batch_id: str) -> Path:
    return ledger_path.parent / "batches" / f"{batch_id}.rows"


# A row of a batch as this machine sent it: its key and its request's fingerprint (None in rows
# files written before fingerprints were kept).
LocalRow = tuple[str, str | None]


def check_writable(ledger_path: Path) -> None:
    """Raise LedgerUnavailable unless the ledger, the state file and the rows folder can all
    take what a batch writes: called before anything is uploaded, so that no batch is created
    that could not be recorded."""
    for path in (ledger_path, state_path(ledger_path)):
        with Ledger(path) as store:
            try:
                store.check_writable()
            except LedgerUnavailable as exc:
                raise LedgerUnavailable(
                    exc.message.removesuffix("; nothing was sent") + "; nothing was uploaded"
                ) from None
    folder = ledger_path.parent / "batches"
    try:
        folder.mkdir(parents=True, exist_ok=True)
        probe = folder / f".probe-{os.getpid()}"
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as exc:
        raise LedgerUnavailable(
            f"cannot write the batch rows folder {folder}: {exc.strerror or type(exc).__name__} "
            "(choose another ledger with --ledger or RUNNER_LEDGER); nothing was uploaded"
        ) from None


def read_rows_file(ledger_path: Path, batch_id: str) -> list[LocalRow] | None:
    """The local record of a batch's rows, in order; None when this machine has none."""
    try:
        f = open_for_reading(
            rows_file(ledger_path, batch_id), what="batch rows file", missing_ok=True
        )
    except LedgerError:
        return None
    if f is None:
        return None
    rows: list[LocalRow] = []
    with f:
        for _, raw in iter_lines(f):
            try:
                value = json.loads(raw)
            except ValueError:
                continue
            if isinstance(value, str):
                rows.append((value, None))
            elif (
                isinstance(value, list)
                and len(value) == 2
                and isinstance(value[0], str)
                and isinstance(value[1], str)
            ):
                rows.append((value[0], value[1]))
    return rows


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
    ledger_path: Path, batch: Mapping[str, Any], rows: Iterable[LocalRow], **details: Any
) -> None:
    """A batch was created: its id, the details to find it again (spec, input, group, server),
    and its rows (key, request fingerprint) in batches/<id>.rows."""
    path = rows_file(ledger_path, str(batch["id"]))
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", encoding="utf-8") as f:
        f.writelines(json.dumps(list(row), ensure_ascii=False) + "\n" for row in rows)
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
    """Every batch of this ledger that the state files know, in creation order."""
    found: dict[str, BatchState] = {}
    for line in _state_lines(ledger_path):
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


def rows_in_open_batches(ledger_path: str | Path, spec_sha256: str) -> dict[str, str]:
    """The rows of this spec (by sha256) that sit in a batch not yet collected into this
    ledger, each with that batch's id. A data-set run must not run them live: their answers
    will come from the batch."""
    ledger = Path(ledger_path)
    rows: dict[str, str] = {}
    for state in read_state(ledger).values():
        if state.collected or state.spec_sha256 != spec_sha256:
            continue
        for key, _ in read_rows_file(ledger, state.batch_id) or ():
            rows.setdefault(key, state.batch_id)
    return rows


@dataclass(frozen=True)
class Endpoint:
    """Where to ask the server about a batch: the Session's `mock` and `base_url` flags (None:
    resolve them as for any call), and a note to show when an explicit choice overrides the
    server the batch was created on."""

    mock: bool | None
    base_url: str | None
    note: str | None = None


def endpoint_for(
    batch_id: str,
    state: BatchState | None,
    *,
    base_url: str | None = None,
    given_by: str = "--base-url",
    mock: bool | None = None,
) -> Endpoint:
    """The server the batch was created on, as the state file recorded it; only an explicit
    `base_url` (from `given_by`: the flag or RUNNER_BASE_URL) or `mock` overrides it. The key
    therefore goes where it went when the batch was made, not to a default. A batch of the
    in-process mock cannot be asked again (that server forgot it when its runner exited)."""
    if state is None:  # not made here: the spec and the flags say where, as for any call
        return Endpoint(mock=mock, base_url=base_url)
    made_mock = bool(state.created.get("mock"))
    made_on = state.created.get("base_url")
    made_on = made_on if isinstance(made_on, str) and made_on else None
    if base_url is not None:
        was = "the in-process mock server" if made_mock else made_on
        note = (
            None
            if was == base_url.rstrip("/")
            else f"batch {batch_id} was created on {was or 'an unrecorded server'}; asking "
            f"{base_url} as {given_by} says"
        )
        return Endpoint(mock=False if mock is None else mock, base_url=base_url, note=note)
    if made_mock:
        collected = ", and its rows are in the ledger" if state.collected else ""
        raise ConfigError(
            f"batch {batch_id} ran on the in-process mock server (--mock), which forgot it when "
            f"that runner exited{collected}: there is nothing to ask. To ask another server, "
            "name it with --base-url"
        )
    if mock:
        return Endpoint(
            mock=True,
            base_url=None,
            note=f"batch {batch_id} was created on "
            f"{made_on or 'an unrecorded server'}; asking the in-process mock as --mock says",
        )
    if made_on is None:  # a state file from before servers were recorded
        return Endpoint(mock=mock, base_url=None)
    return Endpoint(mock=False, base_url=made_on)


def _state_lines(ledger_path: Path) -> Iterator[dict[str, Any]]:
    for path in state_paths(ledger_path):
        if path.is_file():
            yield from read_records(path, warn=lambda _message: None)
