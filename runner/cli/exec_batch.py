"""`runner exec SPEC --input FILE --batch [--no-wait] [--max-cost USD]`: a data set through the
OpenAI Batch API at the batch price. Reads the rows (with the --var values under them), calls
runner.batch to start the batches (and, unless --no-wait, to wait and collect them), prints
progress and the summary on stderr; exit 0 when every row answered, 1 when a row failed or the
budget refused the batch, 2 on bad input. A batch id the server created is always printed.
"""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from runner.cli._batch_output import say_waiting
from runner.cli._common import open_session
from runner.errors import ConfigError, RunnerError

if TYPE_CHECKING:
    from runner.engine.loop import Item
    from runner.spec.model import PromptSpec

__all__ = ["exec_batch"]


def exec_batch(
    spec: PromptSpec,
    input_path: str | None,
    flags: dict[str, Any],
    *,
    wait: bool,
    quiet: bool,
    dry_run: bool = False,
    max_cost: Decimal | None = None,
    variables: Mapping[str, Any] | None = None,
    lock_wait: bool = False,
) -> None:
    """`runner exec SPEC --input FILE --batch [--no-wait] [--dry-run] [--max-cost USD]`;
    `lock_wait`: wait for another run of the spec that holds the ledger, instead of refusing."""
    if input_path is None:
        raise click.UsageError("--batch needs the data set: --input FILE")
    if dry_run:
        _dry_run(spec, input_path, flags, variables or {})
        return
    from runner.interrupts import run_async

    run_async(
        _exec_batch(
            spec,
            input_path,
            flags,
            variables or {},
            wait=wait,
            quiet=quiet,
            max_cost=max_cost,
            lock_wait=lock_wait,
        )
    )


def _rows(spec: PromptSpec, input_path: str, variables: Mapping[str, Any]) -> list[Item]:
    """The data set's rows, with the --var values under them (a row's own value wins)."""
    from runner.dataset.rows import read_rows
    from runner.engine.loop import Item

    items = read_rows(input_path, spec=spec)
    if not variables:
        return list(items)
    return [Item(i.key, {**variables, **i.vars}, i.line) for i in items]


def _dry_run(
    spec: PromptSpec, input_path: str, flags: dict[str, Any], variables: Mapping[str, Any]
) -> None:
    """Build the input files and say what would be sent; nothing is uploaded."""
    import tempfile

    from runner.batch import build_input
    from runner.batch.build import DEFAULT_LIMITS

    with open_session(**flags) as session, tempfile.TemporaryDirectory() as folder:
        items = _rows(spec, input_path, variables)
        built = build_input(session, spec, items, Path(folder), limits=DEFAULT_LIMITS)
        for item, exc in built.failed[:20]:
            click.echo(f"row {item.key}: would not be sent: {str(exc).splitlines()[0]}", err=True)
        sizes = ", ".join(f"{len(p.rows)} rows / {p.bytes:,} bytes" for p in built.parts)
        worst = "unknown" if built.max_cost_usd is None else f"${built.max_cost_usd:.6f}"
        click.echo(
            f"dry run: {built.rows} rows in {len(built.parts)} batch input "
            f"file{'s' if len(built.parts) != 1 else ''} ({sizes or 'none'}); worst case "
            f"{worst} at the batch price; nothing sent",
            err=True,
        )


async def _exec_batch(
    spec: PromptSpec,
    input_path: str,
    flags: dict[str, Any],
    variables: Mapping[str, Any],
    *,
    wait: bool,
    quiet: bool,
    max_cost: Decimal | None,
    lock_wait: bool,
) -> None:
    from runner.batch import finish_batches, start_batches, vars_by_row

    created: list[str] = []

    def on_created(batch: dict[str, Any], number: int, count: int) -> None:
        created.append(str(batch["id"]))
        if not quiet:
            part = f" (part {number} of {count})" if count > 1 else ""
            click.echo(f"created batch {batch['id']}{part}", err=True)

    async with open_session(**flags) as session:
        settings = session.settings_for(spec)
        if settings.mock and not wait:
            raise ConfigError(
                "--no-wait with --mock: the in-process mock server forgets the batch when runner "
                "exits; run `runner mock-server` and point OPENAI_BASE_URL at it instead"
            )
        items = _rows(spec, input_path, variables)
        try:
            started = await start_batches(
                session,
                spec,
                items,
                input_path=input_path,
                max_cost=max_cost,
                lock_wait=lock_wait,
                on_lock_wait=None if quiet else say_waiting,
                on_created=on_created,
            )
        except RunnerError:
            if created:  # paid for on the server: its id must reach the user whatever failed
                click.echo("\n".join(created))
            raise
        built = started.built
        if started.in_open_batches and not quiet:
            click.echo(
                f"Note: {started.in_open_batches} rows wait in batches not collected yet; they "
                "are not sent again (collect them with `runner batch collect ID`).",
                err=True,
            )
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
            raise SystemExit(1 if built.failed or started.in_open_batches else 0)
        if not wait:
            ident = started.group if len(ids) > 1 else ids[0]
            click.echo(ident)
            if not quiet:
                click.echo(
                    f"not waiting: `runner batch status {ident}`, then "
                    f"`runner batch collect {ident}`",
                    err=True,
                )
            raise SystemExit(1 if built.failed or started.in_open_batches else 0)
        import asyncio

        from runner.cli._batch_output import Progress, report

        progress = Progress(quiet=quiet)
        ident = started.group if len(ids) > 1 else ids[0]
        try:
            summaries = await finish_batches(
                session,
                spec,
                ids,
                rows=vars_by_row(spec, items),
                on_progress=progress,
                lock_wait=True,  # a collect of these batches started meanwhile: let it finish
                on_lock_wait=None if quiet else say_waiting,
            )
        except (KeyboardInterrupt, asyncio.CancelledError):
            # Stopped while waiting (Ctrl-C, SIGTERM): the batch goes on at the server.
            progress.finish()
            if not settings.mock:
                click.echo(
                    f"The batch goes on at the server: `runner batch status {ident}`, then "
                    f"`runner batch collect {ident}`.",
                    err=True,
                )
            raise
        progress.finish()
        failed = report(
            spec,
            summaries,
            str(settings.ledger_path),
            quiet=quiet,
            mock=settings.mock,
            hint=started.group if len(ids) > 1 else ids[0],
        )
        if failed or built.failed or started.in_open_batches:
            raise SystemExit(1)
