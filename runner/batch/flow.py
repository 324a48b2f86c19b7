"""A data set through the Batch API, end to end, for the CLI and Python callers: start (render,
split, upload, create, remember), finish (wait, collect each batch once into the ledger), and
rerun live the rows a batch could not answer. It never prints: progress goes to a callback.
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import runner.batch.build as build
from runner.batch.collect import CollectSummary, collect, recorded_rows
from runner.batch.remote import TERMINAL, PollPolicy, no_batch_api, submit, wait_for
from runner.batch.state import read_state, record_collected, record_ended
from runner.dataset.loop import ItemResult, run_items
from runner.errors import ConfigError, InputsInvalid, NotFound, TemplateError
from runner.ledger.encoding import new_id
from runner.ledger.gitref import spec_ref

if TYPE_CHECKING:
    from runner.client import BatchAPI
    from runner.dataset.loop import Item
    from runner.engine.session import Session
    from runner.spec.model import PromptSpec

__all__ = [
    "Started",
    "batch_api",
    "finish_batches",
    "resolve_ids",
    "retry_live",
    "rows_to_retry",
    "start_batches",
    "vars_by_row",
]


@dataclass
class Started:
    """The batches one data set was split into (one group), and what was built."""

    group: str
    batches: list[dict[str, Any]]
    built: build.BuiltInput

    @property
    def batch_ids(self) -> list[str]:
        return [str(b["id"]) for b in self.batches]


def batch_api(session: Session, spec: PromptSpec) -> BatchAPI:
    """The Files and Batches endpoints of the server this spec's calls go to (the in-process
    mock with --mock), with the same key and headers."""
    settings = session.settings_for(spec)
    return session.client(settings, spec).batch_api()


def vars_by_row(spec: PromptSpec, items: Iterable[Item]) -> dict[str, dict[str, Any]]:
    """Each row's variables as a live call records them (defaults applied); bad rows left out."""
    found = {}
    for item in items:
        try:
            found[item.key] = spec.prepare_vars(item.vars)
        except (InputsInvalid, TemplateError):
            continue
    return found


async def start_batches(
    session: Session,
    spec: PromptSpec,
    items: Iterable[Item],
    *,
    input_path: str | None,
    limits: build.BatchLimits | None = None,
) -> Started:
    """Render every row, split the input into parts within `limits`, upload each part and create
    its batch (all of one group, remembered in the state file next to the ledger)."""
    settings = session.settings_for(spec)
    api = batch_api(session, spec)
    group = f"group_{new_id().lower()}"
    ref = spec_ref(spec.path, sha256=spec.sha256, name=spec.name)
    with tempfile.TemporaryDirectory(prefix="runner-batch-") as folder:
        built = build.build_input(
            session, spec, items, Path(folder), limits=limits or build.DEFAULT_LIMITS
        )
        if not built.parts:
            return Started(group, [], built)
        settings.ledger_path.parent.mkdir(parents=True, exist_ok=True)
        batches = await submit(
            api,
            built,
            ledger_path=settings.ledger_path,
            metadata={
                "runner_spec": spec.name,
                "runner_spec_path": ref["path"][-500:],
                "runner_spec_sha256": spec.sha256,
            },
            details={
                "spec": {
                    "path": str(spec.path),
                    "git_path": ref["path"],
                    "name": spec.name,
                    "sha256": spec.sha256,
                },
                "input": None
                if input_path in (None, "-")
                else str(Path(str(input_path)).resolve()),
                "model": built.model,
                "base_url": None if settings.mock else settings.base_url,
                "mock": settings.mock,
            },
            group=group,
        )
    return Started(group, batches, built)


def rows_to_retry(ledger_path: Path, batch_ids: Iterable[str], spec_sha256: str) -> set[str]:
    """Rows that failed in these batches and have not been rerun live since (a later line of the
    same spec and row without a batch_id)."""
    from runner.ledger.store import read_records

    ids = set(batch_ids)
    failed: dict[str, str] = {}
    rerun: dict[str, str] = {}
    if not ledger_path.exists():
        return set()
    for line in read_records(ledger_path, warn=lambda _message: None):
        row = line.get("row")
        if row is None or line.get("spec", {}).get("sha256") != spec_sha256:
            continue
        if line.get("batch_id") in ids:
            if line.get("status") != "ok":
                failed[str(row)] = str(line["id"])
        elif "batch_id" not in line:
            rerun[str(row)] = max(rerun.get(str(row), ""), str(line["id"]))
    return {row for row, made in failed.items() if rerun.get(row, "") <= made}


def resolve_ids(ledger_path: Path, ident: str) -> list[str]:
    """A batch id, or a group id from the state file (every batch of that data set)."""
    members = [s.batch_id for s in read_state(ledger_path).values() if s.group == ident]
    return members or [ident]


async def finish_batches(
    session: Session,
    spec: PromptSpec,
    batch_ids: Sequence[str],
    *,
    rows: Mapping[str, Mapping[str, Any]] | None = None,
    wait: bool = True,
    policy: PollPolicy | None = None,
    on_progress: Callable[[list[dict[str, Any]]], None] | None = None,
) -> list[CollectSummary]:
    """Wait for the batches (or, with wait=False, take them as they are: one still running is a
    ConfigError), then collect each into the ledger once. `rows` maps row keys to variables."""
    settings = session.settings_for(spec)
    api = batch_api(session, spec)
    try:
        if wait:
            batches = await wait_for(
                api,
                batch_ids,
                ledger_path=settings.ledger_path,
                policy=policy or PollPolicy(),
                on_progress=on_progress,
            )
        else:
            batches = [await api.get_batch(b) for b in batch_ids]
            known = read_state(settings.ledger_path)
            for b in batches:
                state = known.get(str(b["id"]))
                if b.get("status") in TERMINAL and (state is None or state.status not in TERMINAL):
                    record_ended(settings.ledger_path, b)
    except NotFound as exc:
        if "/batches/" in exc.url:
            raise ConfigError(
                f"no such batch on {api.base_url}: {exc.message.split(': ', 1)[-1]}"
            ) from exc
        raise no_batch_api(api, exc) from exc
    running = [b for b in batches if b.get("status") not in TERMINAL]
    if running:
        b = running[0]
        counts = b.get("request_counts") or {}
        raise ConfigError(
            f"batch {b['id']} is still {b.get('status')} ({counts.get('completed', 0)} of "
            f"{counts.get('total', '?')} rows done); collect it once it has ended "
            f"(`runner batch status {b['id']}`), or cancel it"
        )
    for b in batches:
        made_with = (b.get("metadata") or {}).get("runner_spec_sha256")
        if made_with and made_with != spec.sha256:
            raise ConfigError(
                f"batch {b['id']} was made from another version of {spec.path} (sha256 "
                f"{made_with[:12]}…, now {spec.sha256[:12]}…): check out the spec it was made "
                "with to collect it"
            )
    already = recorded_rows(settings.ledger_path, {str(b["id"]) for b in batches})
    book = session.pricebook.for_batch()
    ledger = session.ledger(settings.ledger_path)
    summaries = []
    with tempfile.TemporaryDirectory(prefix="runner-batch-") as folder:
        for b in batches:
            summary = await collect(
                api,
                b,
                spec=spec,
                settings=settings,
                pricebook=book,
                ledger=ledger,
                workdir=Path(folder),
                already=already[str(b["id"])],
                vars_by_row=rows,
            )
            record_collected(
                settings.ledger_path,
                summary.batch_id,
                written=summary.written,
                skipped=summary.skipped,
            )
            summaries.append(summary)
    return summaries


async def retry_live(
    session: Session,
    spec: PromptSpec,
    keys: Iterable[str],
    rows: Iterable[Item],
    *,
    concurrency: int = 8,
) -> list[ItemResult]:
    """Run these rows live through the normal Session (their lines carry no batch_id; the
    batch's own lines stay). Rows the data set no longer has are left out."""
    wanted = set(keys)
    items = [item for item in rows if item.key in wanted]
    return [r async for r in run_items(session, spec, items, concurrency=concurrency)]
