"""Talking to the Batch API for a data set: upload each input part and create its batch (named
in its metadata, handed to `on_created` and written to the state file at once, so a crash never
loses one; a batch that cannot be recorded stops the upload with a LedgerError that names it),
and wait for a group of batches to end, polling with a growing pause and reporting progress to
a callback. Batch and file ids are checked before they go into a URL.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from runner.batch.build import BuiltInput
from runner.batch.state import record_created, record_ended, state_path
from runner.errors import ConfigError, LedgerError, NotFound, StreamBroken

if TYPE_CHECKING:
    from runner.providers import BatchAPI

__all__ = [
    "TERMINAL",
    "PollPolicy",
    "check_id",
    "no_batch_api",
    "submit",
    "unrecorded_message",
    "wait_for",
]

TERMINAL = frozenset({"completed", "failed", "expired", "cancelled"})

# What a batch or file id may look like before it is put into a URL path: OpenAI's are
# `batch_...` and `file-...`; a slash, a dot-dot, a `?` or a space would address something else.
_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_\-]{0,127}")


def check_id(value: object, what: str, *, given_by_server: bool = False) -> str:
    """`value` when it can be a batch or file id; else a ConfigError (an id the user typed) or
    StreamBroken (an id the server sent), so that no request goes to another path."""
    if isinstance(value, str) and _ID.fullmatch(value):
        return value
    shown = repr(value)[:80]
    if given_by_server:
        raise StreamBroken(f"the server's {what} {shown} is not a file id; nothing was downloaded")
    raise ConfigError(f"{shown} is not a {what} (letters, digits, `_` and `-` only)")


# Called with each batch as soon as the server created it, before it is recorded.
OnCreated = Callable[[dict[str, Any], int, int], None]


@dataclass(frozen=True)
class PollPolicy:
    """The pause between polls: `initial` seconds, times `factor` each round, at most `maximum`."""

    initial: float = 2.0
    factor: float = 1.5
    maximum: float = 60.0

    def pauses(self) -> Any:
        pause = self.initial
        while True:
            yield pause
            pause = min(self.maximum, pause * self.factor)


def no_batch_api(api: BatchAPI, exc: NotFound) -> ConfigError:
    """A 404 from the Files or Batches endpoints: this server has no Batch API."""
    return ConfigError(
        f"the server at {api.base_url} has no Batch API ({exc.status} on {exc.url}); "
        "run without --batch to send the rows live"
    )


async def submit(
    api: BatchAPI,
    built: BuiltInput,
    *,
    ledger_path: Path,
    metadata: Mapping[str, str],
    details: Mapping[str, Any],
    group: str,
    on_created: OnCreated | None = None,
    unrecorded: Callable[[list[str], LedgerError | OSError], str] | None = None,
) -> list[dict[str, Any]]:
    """Upload each part and create its batch; each batch goes to `on_created` and to the state
    file as soon as it exists. A server without the Batch API is a ConfigError (nothing was
    sent). A batch that cannot be recorded stops here: LedgerError with `unrecorded(ids,
    why)`'s message (how to collect or cancel them), and no further part is uploaded."""
    batches: list[dict[str, Any]] = []
    count = len(built.parts)
    for number, part in enumerate(built.parts, 1):
        where = {"runner_group": group, "runner_part": f"{number}/{count}"}
        try:
            uploaded = await api.upload(part.path)
            file_id = check_id(uploaded.get("id"), "file id", given_by_server=True)
            batch = await api.create_batch(
                file_id, endpoint=built.endpoint, metadata={**metadata, **where}
            )
            check_id(batch.get("id"), "batch id", given_by_server=True)
        except NotFound as exc:
            raise no_batch_api(api, exc) from exc
        batches.append(batch)
        if on_created is not None:
            on_created(batch, number, count)
        try:
            record_created(
                ledger_path,
                batch,
                part.local_rows(),
                group=group,
                part=number,
                parts=count,
                row_count=len(part.rows),
                **details,
            )
        except (LedgerError, OSError) as exc:
            ids = [str(b["id"]) for b in batches]
            message = (
                unrecorded(ids, exc)
                if unrecorded is not None
                else f"batches {', '.join(ids)} were created but not recorded: {exc}"
            )
            raise LedgerError(message) from exc
    return batches


def unrecorded_message(
    ids: list[str],
    why: LedgerError | OSError,
    *,
    spec_path: str | Path,
    input_path: str | None,
    ledger: Path,
    server: str | None,
) -> str:
    """What to say of batches created on the server but missing from the state file: their
    ids, and the commands that collect or cancel them without it."""
    reason = why.message if isinstance(why, LedgerError) else (why.strerror or str(why))
    where = f" --base-url {server}" if server else " --mock"
    data = f" --input {input_path}" if input_path not in (None, "-") else ""
    common = f"--spec {spec_path} --ledger {ledger}{where}"
    lines = [
        f"batch{'es' if len(ids) > 1 else ''} {', '.join(ids)} "
        f"{'were' if len(ids) > 1 else 'was'} created on the server but could not be recorded "
        f"in {state_path(ledger)} ({reason}); no further part was uploaded."
    ]
    for batch_id in ids:
        lines.append(f"  collect it later: `runner batch collect {batch_id} {common}{data}`")
        lines.append(f"  or cancel it: `runner batch cancel {batch_id} {common}`")
    return "\n".join(lines)


async def wait_for(
    api: BatchAPI,
    batch_ids: Sequence[str],
    *,
    ledger_path: Path,
    policy: PollPolicy = PollPolicy(),
    on_progress: Callable[[list[dict[str, Any]]], None] | None = None,
    sleep: Callable[[float], Awaitable[Any]] = asyncio.sleep,
) -> list[dict[str, Any]]:
    """Poll the batches until every one has ended; each end goes to the state file once."""
    latest: dict[str, dict[str, Any]] = {}
    ended: set[str] = set()
    pauses = policy.pauses()
    while True:
        for batch_id in batch_ids:
            if batch_id in ended:
                continue
            batch = await api.get_batch(batch_id)
            latest[batch_id] = batch
            if batch.get("status") in TERMINAL:
                ended.add(batch_id)
                record_ended(ledger_path, batch)
        current = [latest[b] for b in batch_ids]
        if on_progress is not None:
            on_progress(current)
        if len(ended) == len(batch_ids):
            return current
        await sleep(next(pauses))
