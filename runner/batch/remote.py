"""Talking to the Batch API for a data set: upload each input part and create its batch (named
in its metadata and in the state file at once, so a crash never loses one), and wait for a group
of batches to end, polling with a growing pause and reporting progress to a callback.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from runner.batch.build import ENDPOINT, BuiltInput
from runner.batch.state import record_created, record_ended
from runner.errors import ConfigError, NotFound

if TYPE_CHECKING:
    from runner.client import BatchAPI

__all__ = ["TERMINAL", "PollPolicy", "no_batch_api", "submit", "wait_for"]

TERMINAL = frozenset({"completed", "failed", "expired", "cancelled"})


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
) -> list[dict[str, Any]]:
    """Upload each part and create its batch; each batch is written to the state file as soon
    as it exists. A server without the Batch API is a ConfigError (nothing was sent)."""
    batches = []
    count = len(built.parts)
    for number, part in enumerate(built.parts, 1):
        where = {"runner_group": group, "runner_part": f"{number}/{count}"}
        try:
            uploaded = await api.upload(part.path)
            batch = await api.create_batch(
                str(uploaded["id"]), endpoint=ENDPOINT, metadata={**metadata, **where}
            )
        except NotFound as exc:
            raise no_batch_api(api, exc) from exc
        record_created(
            ledger_path,
            batch,
            part.rows,
            group=group,
            part=number,
            parts=count,
            row_count=len(part.rows),
            **details,
        )
        batches.append(batch)
    return batches


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
