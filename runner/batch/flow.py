"""A data set through the Batch API, end to end, for the CLI and Python callers: start (check
that everything a batch writes can be written, render, split, reserve the worst case against
the budget, upload, create, remember), finish (wait, collect each batch once into the ledger)
and rerun live, within the budget, the rows a batch could not answer. Uploads and collects hold
the spec's run lock on the ledger (the one a live data-set run of that spec takes), so two of
them never write the same rows. It never prints: progress goes to callbacks.
"""

from __future__ import annotations

import contextlib
import tempfile
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING, Any

import runner.batch.build as build
from runner.batch.collect import CollectSummary, collect, recorded_rows
from runner.batch.remote import (
    TERMINAL,
    OnCreated,
    PollPolicy,
    check_id,
    no_batch_api,
    submit,
    unrecorded_message,
    wait_for,
)
from runner.batch.rerun import budget_of
from runner.batch.state import (
    LocalRow,
    check_writable,
    read_rows_file,
    read_state,
    record_collected,
    record_ended,
    rows_in_open_batches,
    state_path,
)
from runner.errors import (
    ConfigError,
    InputsInvalid,
    NotFound,
    RunnerError,
    StreamBroken,
    TemplateError,
)
from runner.ledger.encoding import new_id
from runner.ledger.gitref import spec_ref
from runner.ledger.lock import RunLock, spec_scope

if TYPE_CHECKING:
    from runner.engine.loop import Item
    from runner.engine.session import Session
    from runner.providers import BatchAPI
    from runner.spec.model import PromptSpec

__all__ = [
    "Started",
    "batch_api",
    "batch_lock",
    "current_batches",
    "finish_batches",
    "get_batches",
    "resolve_ids",
    "start_batches",
    "vars_by_row",
]

# Called once when a lock is held by another process and this one starts waiting for it.
OnLockWait = Callable[[dict[str, Any]], None]


@dataclass
class Started:
    """The batches one data set was split into (one group), and what was built."""

    group: str
    batches: list[dict[str, Any]]
    built: build.BuiltInput
    in_open_batches: int = 0  # rows left out: they wait in a batch not collected yet

    @property
    def batch_ids(self) -> list[str]:
        return [str(b["id"]) for b in self.batches]


def batch_api(session: Session, spec: PromptSpec) -> BatchAPI:
    """The Files and Batches endpoints of the server this spec's calls go to (the in-process
    mock with --mock), with the same key and headers."""
    settings = session.settings_for(spec)
    return session.client(settings, spec).batch_api()


def batch_lock(
    ledger_path: Path,
    spec_path: str | Path,
    *,
    what: str,
    wait: bool | float = False,
    on_wait: OnLockWait | None = None,
) -> RunLock:
    """The run lock of a spec on a ledger (not yet acquired): the one a live data-set run of
    that spec takes too, so an upload, a collect and a live run of it exclude each other."""
    return RunLock(ledger_path, spec_scope(spec_path), what=what, wait=wait, on_wait=on_wait)


@contextlib.contextmanager
def _locked(
    lock: RunLock | None,
    ledger_path: Path,
    spec_path: str | Path,
    *,
    what: str,
    wait: bool | float = False,
    on_wait: OnLockWait | None = None,
    batch_ids: Sequence[str] = (),
) -> Iterator[None]:
    """Hold the spec's run lock (unless the caller already holds `lock`) and, for a collect,
    each batch's own lock too: two collects of one batch exclude each other even when they
    name the spec by two different paths."""
    with contextlib.ExitStack() as stack:
        if lock is None or not lock.held:
            stack.enter_context(
                batch_lock(ledger_path, spec_path, what=what, wait=wait, on_wait=on_wait)
            )
        for batch_id in sorted(set(batch_ids)):
            stack.enter_context(
                RunLock(ledger_path, f"batch:{batch_id}", what=what, wait=wait, on_wait=on_wait)
            )
        yield


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
    max_cost: Decimal | float | str | None = None,
    lock: RunLock | None = None,
    lock_wait: bool | float = False,
    on_lock_wait: OnLockWait | None = None,
    on_created: OnCreated | None = None,
) -> Started:
    """Render every row, split the input into parts within `limits`, upload each part and create
    its batch (all of one group, remembered in the state file next to the ledger).

    Before anything is uploaded: the ledger, the state file and the rows folder must be
    writable (else LedgerUnavailable), the spec's run lock is taken (else RunLocked, or a
    wait with `lock_wait`; `lock`, when the caller already holds it), and the worst case of
    every row at the batch price must fit the budget (`max_cost`, else the spec's; else
    BudgetExceeded). A batch that is created but cannot be recorded is handed to `on_created`
    first, then a LedgerError says how to collect or cancel it."""
    settings = session.settings_for(spec)
    ledger_path = settings.ledger_path
    check_writable(ledger_path)
    limit = budget_of(spec, max_cost)
    with _locked(
        lock,
        ledger_path,
        spec.path,
        what="a batch upload (runner exec --batch)",
        wait=lock_wait,
        on_wait=on_lock_wait,
    ):
        api = batch_api(session, spec)
        group = f"group_{new_id().lower()}"
        ref = spec_ref(spec.path, sha256=spec.sha256, name=spec.name)
        # Rows already waiting in a batch of this spec are not sent again (as a live run
        # leaves them to that batch): decided under the lock, so two uploads cannot both send.
        waiting = rows_in_open_batches(ledger_path, spec.sha256)
        left_out = 0

        def fresh(rows: Iterable[Item]) -> Iterator[Item]:
            nonlocal left_out
            for item in rows:
                if item.key in waiting:
                    left_out += 1
                else:
                    yield item

        with tempfile.TemporaryDirectory(prefix="runner-batch-") as folder:
            built = build.build_input(
                session, spec, fresh(items), Path(folder), limits=limits or build.DEFAULT_LIMITS
            )
            if not built.parts:
                return Started(group, [], built, left_out)
            built.check_budget(limit)
            server = None if settings.mock else settings.base_url
            batches = await submit(
                api,
                built,
                ledger_path=ledger_path,
                metadata={
                    "runner_spec": spec.name,
                    "runner_spec_path": ref["path"][-500:],
                    "runner_spec_sha256": spec.sha256,
                },
                details={
                    "spec": {
                        "path": str(spec.path),
                        "resolved": str(Path(spec.path).resolve()),  # its run lock's scope
                        "git_path": ref["path"],
                        "name": spec.name,
                        "sha256": spec.sha256,
                    },
                    "input": None
                    if input_path in (None, "-")
                    else str(Path(str(input_path)).resolve()),
                    "model": built.model,
                    "base_url": server,
                    "mock": settings.mock,
                },
                group=group,
                on_created=on_created,
                unrecorded=lambda ids, why: unrecorded_message(
                    ids,
                    why,
                    spec_path=spec.path,
                    input_path=input_path,
                    ledger=ledger_path,
                    server=server,
                ),
            )
    return Started(group, batches, built, left_out)


def resolve_ids(ledger_path: Path, ident: str) -> list[str]:
    """A batch id, or a group id from the state file (every batch of that data set)."""
    members = [s.batch_id for s in read_state(ledger_path).values() if s.group == ident]
    return members or [check_id(ident, "batch id")]


def _not_found(api: BatchAPI, exc: NotFound) -> ConfigError:
    if "/batches/" in exc.url:
        return ConfigError(f"no such batch on {api.base_url}: {exc.message.split(': ', 1)[-1]}")
    return no_batch_api(api, exc)


async def get_batches(api: BatchAPI, batch_ids: Sequence[str]) -> list[dict[str, Any]]:
    """The batches as the server reports them now; an unknown id is a ConfigError."""
    found = []
    for batch_id in batch_ids:
        try:
            found.append(await api.get_batch(check_id(batch_id, "batch id")))
        except NotFound as exc:
            raise _not_found(api, exc) from exc
    return found


async def current_batches(
    api: BatchAPI, batch_ids: Sequence[str], ledger_path: Path, *, wait: bool, **poll: Any
) -> list[dict[str, Any]]:
    """The batches as the server reports them now (after waiting for them to end, with
    `wait`); each end goes to the state file once. A batch the state file saw end that the
    server now reports running again is refused: its results cannot be trusted yet."""
    known = read_state(ledger_path)
    if wait:
        try:
            batches = await wait_for(api, batch_ids, ledger_path=ledger_path, **poll)
        except NotFound as exc:
            raise _not_found(api, exc) from exc
    else:
        batches = await get_batches(api, batch_ids)
        for b in batches:
            state = known.get(str(b.get("id")))
            if b.get("status") in TERMINAL and (state is None or state.status not in TERMINAL):
                record_ended(ledger_path, b)
    for asked, b in zip(batch_ids, batches, strict=True):
        if b.get("id") != asked:
            raise StreamBroken(
                f"asked {api.base_url} for batch {asked}, it answered with "
                f"{str(b.get('id'))[:80]!r}; nothing was collected",
                url=api.base_url,
            )
        state = known.get(asked)
        if state is not None and state.status in TERMINAL and b.get("status") not in TERMINAL:
            raise StreamBroken(
                f"the server now says batch {asked} is {str(b.get('status'))[:40]}, though it "
                f"said {state.status} before ({state_path(ledger_path)}); nothing "
                "was collected: ask again later",
                url=api.base_url,
            )
    return batches


async def finish_batches(
    session: Session,
    spec: PromptSpec,
    batch_ids: Sequence[str],
    *,
    rows: Mapping[str, Mapping[str, Any]] | None = None,
    wait: bool = True,
    policy: PollPolicy | None = None,
    on_progress: Callable[[list[dict[str, Any]]], None] | None = None,
    lock: RunLock | None = None,
    lock_spec: str | Path | None = None,
    lock_wait: bool | float = False,
    on_lock_wait: OnLockWait | None = None,
) -> list[CollectSummary]:
    """Wait for the batches (or, with wait=False, take them as they are: one still running is a
    ConfigError), then collect each into the ledger once. `rows` maps row keys to variables.

    Collecting holds the spec's run lock (`lock_spec`: the spec path the batch was made from,
    by default `spec.path`; `lock` when the caller holds it already), so that checking which
    rows are written and writing the others is one step: a second collect waits (`lock_wait`)
    or is refused (RunLocked). Rows come from the local record (batches/<id>.rows, else the
    fingerprints of `rows` rendered now); the server's files only supply answers."""
    settings = session.settings_for(spec)
    api = batch_api(session, spec)
    for batch_id in batch_ids:
        check_id(batch_id, "batch id")
    batches = await current_batches(
        api,
        batch_ids,
        settings.ledger_path,
        wait=wait,
        policy=policy or PollPolicy(),
        on_progress=on_progress,
    )
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
                f"{str(made_with)[:12]}…, now {spec.sha256[:12]}…): check out the spec it was "
                "made with to collect it"
            )
    locals_ = {b: _local_rows(session, spec, settings.ledger_path, b, rows) for b in batch_ids}
    book = session.pricebook.for_batch()
    ledger = session.ledger(settings.ledger_path)
    summaries = []
    with (
        _locked(
            lock,
            settings.ledger_path,
            lock_spec or spec.path,
            what="a batch collect (runner batch collect)",
            wait=lock_wait,
            on_wait=on_lock_wait,
            batch_ids=batch_ids,
        ),
        tempfile.TemporaryDirectory(prefix="runner-batch-") as folder,
    ):
        ledger.check_writable()
        already = recorded_rows(settings.ledger_path, {str(b["id"]) for b in batches})
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
                local=locals_[str(b["id"])],
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


def _local_rows(
    session: Session,
    spec: PromptSpec,
    ledger_path: Path,
    batch_id: str,
    rows: Mapping[str, Mapping[str, Any]] | None,
) -> list[LocalRow] | None:
    """The rows this machine sent in a batch: its rows file, else (a batch made elsewhere, or
    whose record was lost) the data set's rows with the fingerprint of the request each would
    send now; None without either (then only a batch that ran nothing can be collected)."""
    recorded = read_rows_file(ledger_path, batch_id)
    if recorded is not None or rows is None:
        return recorded
    local: list[LocalRow] = []
    for key, values in rows.items():
        try:
            local.append((key, session.request_fingerprint(spec, values)))
        except RunnerError:
            continue
    return local
