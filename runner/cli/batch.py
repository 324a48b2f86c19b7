"""`runner exec --batch` and `runner batch list|status|collect|cancel`: a data set through the
OpenAI Batch API at the batch price. Parses flags, calls runner.batch, prints progress and the
summary on stderr; exit 0 when every row answered, 1 when a row failed, 2 on bad input.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from runner.cli._common import json_text, load_spec_file, open_session
from runner.errors import ConfigError

if TYPE_CHECKING:
    from runner.dataset.loop import Item
    from runner.engine.session import Session
    from runner.spec.model import PromptSpec

__all__ = ["batch_", "exec_batch"]


# --- runner exec --batch ------------------------------------------------------------------------


def exec_batch(
    spec: PromptSpec,
    input_path: str | None,
    flags: dict[str, Any],
    *,
    wait: bool,
    quiet: bool,
    dry_run: bool = False,
) -> None:
    """`runner exec SPEC --input FILE --batch [--no-wait] [--dry-run]`."""
    if input_path is None:
        raise click.UsageError("--batch needs the data set: --input FILE")
    if dry_run:
        _dry_run(spec, input_path, flags)
        return
    import asyncio

    asyncio.run(_exec_batch(spec, input_path, flags, wait=wait, quiet=quiet))


def _dry_run(spec: PromptSpec, input_path: str, flags: dict[str, Any]) -> None:
    """Build the input files and say what would be sent; nothing is uploaded."""
    import tempfile

    from runner.batch import build_input
    from runner.batch.build import DEFAULT_LIMITS
    from runner.dataset.rows import read_rows

    with open_session(**flags) as session, tempfile.TemporaryDirectory() as folder:
        items = read_rows(input_path, spec=spec)
        built = build_input(session, spec, items, Path(folder), limits=DEFAULT_LIMITS)
        for item, exc in built.failed[:20]:
            click.echo(f"row {item.key}: would not be sent: {str(exc).splitlines()[0]}", err=True)
        sizes = ", ".join(f"{len(p.rows)} rows / {p.bytes:,} bytes" for p in built.parts)
        click.echo(
            f"dry run: {built.rows} rows in {len(built.parts)} batch input "
            f"file{'s' if len(built.parts) != 1 else ''} ({sizes or 'none'}); nothing sent",
            err=True,
        )


async def _exec_batch(
    spec: PromptSpec, input_path: str, flags: dict[str, Any], *, wait: bool, quiet: bool
) -> None:
    from runner.batch import finish_batches, start_batches, vars_by_row
    from runner.dataset.rows import read_rows

    async with open_session(**flags) as session:
        settings = session.settings_for(spec)
        if settings.mock and not wait:
            raise ConfigError(
                "--no-wait with --mock: the in-process mock server forgets the batch when runner "
                "exits; run `runner mock-server` and point OPENAI_BASE_URL at it instead"
            )
        items = list(read_rows(input_path, spec=spec))
        started = await start_batches(session, spec, items, input_path=input_path)
        built = started.built
        for item, exc in built.failed[:20]:
            click.echo(f"row {item.key}: not sent: {str(exc).splitlines()[0]}", err=True)
        ids = started.batch_ids
        if not quiet:
            mock = " (mock)" if settings.mock else ""
            click.echo(
                f"{spec.name} · {built.model}{mock} · {built.rows} rows in {len(ids)} "
                f"batch{'es' if len(ids) != 1 else ''}: {', '.join(ids) or 'none'}"
                + (f" (group {started.group})" if len(ids) > 1 else ""),
                err=True,
            )
        if not ids:
            raise SystemExit(1 if built.failed else 0)
        if not wait:
            ident = started.group if len(ids) > 1 else ids[0]
            click.echo(ident)
            if not quiet:
                click.echo(
                    f"not waiting: `runner batch status {ident}`, then "
                    f"`runner batch collect {ident}`",
                    err=True,
                )
            raise SystemExit(1 if built.failed else 0)
        from runner.cli._batch_output import Progress, report

        progress = Progress(quiet=quiet)
        summaries = await finish_batches(
            session,
            spec,
            ids,
            rows=vars_by_row(spec, items),
            on_progress=progress,
        )
        progress.finish()
        failed = report(
            spec,
            summaries,
            str(settings.ledger_path),
            quiet=quiet,
            mock=settings.mock,
            hint=started.group if len(ids) > 1 else ids[0],
        )
        if failed or built.failed:
            raise SystemExit(1)


# --- runner batch ... --------------------------------------------------------------------------


@click.group("batch")
def batch_() -> None:
    """Batches started by `runner exec --input FILE --batch`: list, status, collect, cancel.

    ID is a batch id, or the group id of a data set split into several batches.
    """


_ledger_option = click.option(
    "--ledger",
    "ledger_path",
    default=None,
    metavar="PATH",
    help="Ledger file (default runs/ledger.jsonl, or RUNNER_LEDGER); the batch state file "
    "batches.jsonl sits next to it.",
)
_mock_option = click.option(
    "--mock/--no-mock",
    default=None,
    help="Ask a fresh in-process mock server (it knows no batch from an earlier run).",
)
_spec_option = click.option(
    "--spec",
    "spec_path",
    default=None,
    metavar="SPEC",
    help="The spec the batch was made from (default: as recorded in the state file).",
)


def _ledger(ledger_path: str | None) -> Path:
    from runner.settings import DEFAULT_LEDGER, snapshot_environ

    return Path(ledger_path or snapshot_environ().get("RUNNER_LEDGER") or DEFAULT_LEDGER)


def _spec_for(ledger: Path, ids: Sequence[str], spec_path: str | None) -> PromptSpec:
    from runner.batch import read_state

    if spec_path is None:
        state = read_state(ledger)
        recorded = next((state[i].created.get("spec") for i in ids if i in state), None)
        if not recorded:
            raise ConfigError(
                f"{ids[0]} is not in {ledger.parent / 'batches.jsonl'}: name its spec with --spec"
            )
        spec_path = str(recorded["path"])
    return load_spec_file(spec_path)


@batch_.command("list")
@_ledger_option
@click.option("--json", "json_", is_flag=True, help="Print the state as JSON.")
def batch_list(ledger_path: str | None, json_: bool) -> None:
    """List the batches started from this machine (the state file next to the ledger)."""
    from runner.batch import read_state

    states = list(read_state(_ledger(ledger_path)).values())
    if json_:
        click.echo(
            json_text(
                [
                    {
                        "batch_id": s.batch_id,
                        "group": s.group,
                        "status": s.status,
                        "collected": s.collected,
                        **s.created,
                    }
                    for s in states
                ]
            )
        )
        return
    if not states:
        click.echo(f"no batches in {_ledger(ledger_path).parent / 'batches.jsonl'}", err=True)
        return
    for s in states:
        spec = s.created.get("spec", {}).get("name", "?")
        collected = "collected" if s.collected else "not collected"
        click.echo(
            f"{s.batch_id}  {s.created.get('ts', '')}  {spec}  {s.created.get('row_count', '?')} "
            f"rows  part {s.created.get('part', 1)}/{s.created.get('parts', 1)} of {s.group}  "
            f"{s.status}, {collected}"
        )


def _run_on_batches(
    ident: str, spec_path: str | None, ledger_path: str | None, mock: bool | None, action: Any
) -> Any:
    from runner.batch import resolve_ids

    ledger = _ledger(ledger_path)
    ids = resolve_ids(ledger, ident)
    spec = _spec_for(ledger, ids, spec_path)

    async def main() -> Any:
        async with open_session(ledger=ledger_path, mock=mock) as session:
            return await action(session, spec, ids, ledger)

    import asyncio

    return asyncio.run(main())


@batch_.command("status")
@click.argument("ident", metavar="ID")
@_spec_option
@_ledger_option
@_mock_option
def batch_status(
    ident: str, spec_path: str | None, ledger_path: str | None, mock: bool | None
) -> None:
    """Show a batch's status and request counts, as the server reports them now."""
    from runner.batch.flow import batch_api

    async def action(session: Session, spec: PromptSpec, ids: list[str], ledger: Path) -> None:
        api = batch_api(session, spec)
        for batch_id in ids:
            b = await api.get_batch(batch_id)
            counts = b.get("request_counts") or {}
            click.echo(
                f"{b['id']}  {b.get('status')}  {counts.get('completed', 0)} done, "
                f"{counts.get('failed', 0)} failed of {counts.get('total', 0)}"
            )

    _run_on_batches(ident, spec_path, ledger_path, mock, action)


@batch_.command("cancel")
@click.argument("ident", metavar="ID")
@_spec_option
@_ledger_option
@_mock_option
def batch_cancel(
    ident: str, spec_path: str | None, ledger_path: str | None, mock: bool | None
) -> None:
    """Cancel a batch; what it finished can still be collected."""
    from runner.batch.flow import batch_api

    async def action(session: Session, spec: PromptSpec, ids: list[str], ledger: Path) -> None:
        api = batch_api(session, spec)
        for batch_id in ids:
            b = await api.cancel_batch(batch_id)
            click.echo(f"{b['id']}  {b.get('status')}")

    _run_on_batches(ident, spec_path, ledger_path, mock, action)


@batch_.command("collect")
@click.argument("ident", metavar="ID")
@_spec_option
@click.option(
    "--input",
    "input_path",
    default=None,
    metavar="FILE",
    help="The data set, for the rows' variables (default: as recorded).",
)
@_ledger_option
@click.option(
    "--retry-live",
    is_flag=True,
    help="Rerun live the rows the batch could not answer (needs the data set).",
)
@_mock_option
@click.option("-q", "--quiet", is_flag=True, help="No summary on stderr.")
def batch_collect(
    ident: str,
    spec_path: str | None,
    input_path: str | None,
    ledger_path: str | None,
    retry_live: bool,
    mock: bool | None,
    quiet: bool,
) -> None:
    """Write an ended batch's rows to the ledger; rows already there are not written again."""
    from runner.batch import finish_batches, read_state, vars_by_row
    from runner.batch import retry_live as rerun
    from runner.batch.flow import rows_to_retry
    from runner.dataset.rows import read_rows

    async def action(session: Session, spec: PromptSpec, ids: list[str], ledger: Path) -> int:
        source = input_path
        if source is None:
            state = read_state(ledger)
            source = next((state[i].created.get("input") for i in ids if i in state), None)
        items: list[Item] | None = None
        if source is not None and Path(source).exists():
            items = list(read_rows(source, spec=spec))
        summaries = await finish_batches(
            session,
            spec,
            ids,
            rows=None if items is None else vars_by_row(spec, items),
            wait=False,
        )
        from runner.cli._batch_output import report

        report(spec, summaries, str(ledger), quiet=quiet)
        if any(s.batch_errors for s in summaries):
            return 1
        pending = rows_to_retry(ledger, ids, spec.sha256)
        if not retry_live:
            if pending and not quiet:
                click.echo(
                    f"{len(pending)} rows of this batch have no answer yet: rerun them live "
                    f"with `runner batch collect {ident} --retry-live`",
                    err=True,
                )
            return 1 if pending else 0
        if items is None:
            raise ConfigError(
                "--retry-live needs the data set the batch was made from: --input FILE"
            )
        results = await rerun(session, spec, pending, items)
        still = sum(1 for r in results if r.status != "ok")
        if not quiet:
            click.echo(
                f"retried live: {len(results)} rows, {len(results) - still} ok, "
                f"{still} failed (lines without batch_id)",
                err=True,
            )
        return 1 if still else 0

    code = _run_on_batches(ident, spec_path, ledger_path, mock, action)
    if code:
        raise SystemExit(code)
