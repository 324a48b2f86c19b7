"""`runner exec --input`: the data-set form of exec, a thin layer over runner.dataset. It checks
the output path before anything is opened, opens the rows, starts the run (which takes the
run lock, waiting with --wait) and only then opens the output, installs the SIGINT, SIGTERM and
SIGHUP handlers (first: stop taking rows; second: abort), shows progress and the summary on
stderr, prints a resume command that holds every effective setting and no secret, and maps the
outcome to an exit code (128 + the signal when interrupted).
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Iterator, Mapping, Sequence
from decimal import Decimal, InvalidOperation
from typing import IO, TYPE_CHECKING, Any

import click

from runner.cli._common import colour, json_text
from runner.cli._dataset_output import (
    check_input_path,
    check_output_path,
    check_stdout,
    open_output,
    protected_paths,
)
from runner.cli._dataset_signals import Caught, signals
from runner.cli._resume_command import resume_command

if TYPE_CHECKING:
    from runner.cli._progress import ProgressDisplay
    from runner.dataset import Item, RowStream
    from runner.engine.session import Session
    from runner.spec.model import PromptSpec

__all__ = ["DatasetOptions", "dataset_flags", "dataset_options", "run_dataset_command"]

# Flags that only make sense with --input.
_DATASET_ONLY = ("concurrency", "resume", "output", "max_cost", "wait", "skip_batched")


def dataset_options(f: Callable[..., Any]) -> Callable[..., Any]:
    """The data-set flags of `runner exec`."""
    for option in reversed(
        [
            click.option(
                "--input",
                "input_path",
                default=None,
                metavar="FILE",
                help="Run once per row of a JSONL or CSV file (- : JSONL on stdin).",
            ),
            click.option(
                "--concurrency",
                type=click.IntRange(min=1),
                default=None,
                help="Most calls in flight (default: the spec's rate.concurrency).",
            ),
            click.option(
                "--resume", is_flag=True, help="Skip rows already ok in the ledger for this spec."
            ),
            click.option(
                "--output", default=None, metavar="FILE", help="Row lines go here, not stdout."
            ),
            click.option(
                "--max-cost",
                default=None,
                metavar="USD",
                help="Start no call that could take the run's cost past this (spec: budget).",
            ),
            click.option(
                "--wait",
                is_flag=True,
                help="If another run of this spec holds the ledger, wait for it to end "
                "(default: refuse, exit 2).",
            ),
            click.option(
                "--skip-batched",
                is_flag=True,
                help="Rows waiting in a batch not collected yet do not fail the run.",
            ),
            # Seconds between two plain progress lines (stderr not a terminal).
            click.option("--progress-interval", type=float, default=5.0, hidden=True),
        ]
    ):
        f = option(f)
    return f


def dataset_flags(
    values: Mapping[str, Any],
    *,
    dry_run: bool,
    json_: bool,
    quiet: bool,
    given: Sequence[tuple[str, str | None]] = (),
    vars_files: Sequence[str] = (),
) -> DatasetOptions | None:
    """The data-set options, or None without --input (then the data-set flags are refused)."""
    if values["input_path"] is None:
        stray = [name for name in _DATASET_ONLY if values[name] not in (None, False)]
        if stray:
            flag = "--" + stray[0].replace("_", "-")
            raise click.UsageError(f"{flag} needs --input FILE")
        return None
    max_cost = None
    if values["max_cost"] is not None:
        try:
            max_cost = Decimal(values["max_cost"].lstrip("$"))
        except InvalidOperation:
            max_cost = None
        if max_cost is None or not max_cost.is_finite() or max_cost <= 0:
            raise click.BadParameter(
                f"{values['max_cost']!r} is not a positive amount of US dollars",
                param_hint="--max-cost",
            )
    return DatasetOptions(
        input_path=values["input_path"],
        concurrency=values["concurrency"],
        resume=values["resume"],
        output=values["output"],
        max_cost=max_cost,
        dry_run=dry_run,
        json_=json_,
        quiet=quiet,
        progress_interval=values["progress_interval"],
        wait=values["wait"],
        skip_batched=values["skip_batched"],
        given=given,
        vars_files=vars_files,
    )


class DatasetOptions:
    """The data-set flags of `runner exec`, as given."""

    def __init__(
        self,
        *,
        input_path: str,
        concurrency: int | None,
        resume: bool,
        output: str | None,
        max_cost: Decimal | None,
        dry_run: bool,
        json_: bool,
        quiet: bool,
        progress_interval: float,
        wait: bool = False,
        skip_batched: bool = False,
        given: Sequence[tuple[str, str | None]] = (),
        vars_files: Sequence[str] = (),
    ) -> None:
        self.input_path = input_path
        self.wait = wait
        self.skip_batched = skip_batched
        self.given = list(given)  # the flags as the user gave them, for the resume command
        self.vars_files = list(vars_files)
        self.concurrency = concurrency
        self.resume = resume
        self.output = output
        self.max_cost = max_cost
        self.dry_run = dry_run
        self.json_ = json_
        self.quiet = quiet
        self.progress_interval = progress_interval


def run_dataset_command(
    session: Session, spec: PromptSpec, variables: Mapping[str, Any], options: DatasetOptions
) -> None:
    """Run the data set; exit 0 when every row is ok, 1 otherwise, 128 + the signal (130 for
    Ctrl-C) when interrupted."""
    from runner.dataset import open_rows

    if not options.dry_run:
        ledger = session.settings_for(spec).ledger_path
        check_input_path(options.input_path, ledger=ledger)
        protected = protected_paths(
            ledger, spec, input_path=options.input_path, vars_files=options.vars_files
        )
        if options.output is not None:
            check_output_path(options.output, protected=protected)
        else:
            check_stdout(protected)
    rows = open_rows(options.input_path, spec=spec)
    try:
        if options.dry_run:
            _dry_run(session, spec, _with_defaults(rows, variables), rows.count, options)
            return
        _run(session, spec, rows, variables, options)
    finally:
        rows.close()


def _with_defaults(rows: Iterator[Item], variables: Mapping[str, Any]) -> Iterator[Item]:
    """Rows with the --var values under them: a row's own value wins."""
    if not variables:
        yield from rows
        return
    from runner.dataset import Item

    for item in rows:
        yield Item(item.key, {**variables, **item.vars}, item.line)


def _run(
    session: Session,
    spec: PromptSpec,
    rows: RowStream,
    variables: Mapping[str, Any],
    options: DatasetOptions,
) -> None:
    import asyncio
    import json

    from runner.batch import rows_in_open_batches
    from runner.cli._progress import summary_lines
    from runner.dataset import DatasetRun, row_line

    settings = session.settings_for(spec)

    def say_waiting(holder: Mapping[str, Any]) -> None:
        from runner.ledger.lock import describe_holder

        click.echo(
            f"Waiting for {describe_holder(dict(holder))} to end: it is writing this spec's "
            f"rows to the ledger {settings.ledger_path}.",
            err=True,
        )

    run = DatasetRun(
        session,
        spec,
        _with_defaults(rows, variables),
        concurrency=options.concurrency,
        resume=options.resume,
        max_cost=options.max_cost,
        total=rows.count,
        batched=lambda: rows_in_open_batches(settings.ledger_path, spec.sha256),
        skip_batched=options.skip_batched,
        wait=options.wait,
        on_wait=say_waiting,
    )
    if settings.mock and not options.quiet:
        click.echo("Note: mock mode: the built-in mock server answers, not a real model.", err=True)
    display = None if options.quiet else _display(rows.count, options)
    caught = Caught()
    out: IO[str] | None = None
    lost: OSError | None = None  # the output could not take a line
    try:

        async def drive() -> None:
            nonlocal out, lost
            async with signals(run, caught):
                await run.start()
                if not run.locked:
                    return  # stopped while waiting for the lock: nothing ran
                out = open_output(options.output, append=options.resume)  # only now: a
                # run refused by the lock truncates nothing
                async for result in run.results():
                    if lost is None:
                        try:
                            out.write(
                                json.dumps(row_line(result), ensure_ascii=False, default=str) + "\n"
                            )
                            out.flush()
                        except BrokenPipeError:
                            raise
                        except OSError as exc:  # a full disk, /dev/full: stop the intake, let
                            lost = exc  # the calls in flight finish and be recorded
                            run.request_stop(interrupted=False)
                    if display is not None:
                        display.update(run.summary)

        try:
            session.run_sync(drive())
        except (asyncio.CancelledError, KeyboardInterrupt):
            caught.aborted = True
        except BrokenPipeError:  # the reader went away (`| head`): the calls in flight are
            _silence_stdout()  # recorded as interrupted; say so, and stop quietly
            click.echo(
                f"{colour('Error:', 'red', err=True, bold=True)} the output was closed before "
                "the run ended",
                err=True,
            )
            raise SystemExit(1) from None
    finally:
        if display is not None:
            display.close()
        if out is not None and out is not sys.stdout:
            try:
                out.close()
            except OSError as exc:
                lost = lost or exc
        elif out is sys.stdout and lost is not None:
            _silence_stdout()
    summary = run.summary
    interrupted = summary.interrupted or caught.aborted
    if not options.quiet or interrupted or lost is not None:
        for line in summary_lines(summary, ledger=settings.ledger_path):
            click.echo(line, err=True)
    if summary.waiting and not options.skip_batched:
        click.echo(
            "The rows waiting in a batch were not run: collect the batch with `runner batch "
            "collect ID`, or pass --skip-batched to leave them to it and not fail the run.",
            err=True,
        )
    if lost is not None:
        where = options.output or "stdout"
        click.echo(
            f"{colour('Error:', 'red', err=True, bold=True)} cannot write the row lines to "
            f"{where}: "
            f"{lost.strerror or type(lost).__name__}; the run stopped (every call sent is in "
            f"the ledger {settings.ledger_path})",
            err=True,
        )
        raise SystemExit(1)
    if interrupted:
        command, notes = resume_command(
            spec_path=str(spec.path),
            given=options.given,
            ledger=settings.ledger_path,
            mock=settings.mock,
            base_url=settings.base_url,
            model=settings.model,
        )
        click.echo(
            "Interrupted: the calls in flight were recorded. To continue:\n  " + command,
            err=True,
        )
        for note in notes:
            click.echo(note, err=True)
        raise SystemExit(caught.exit_code)
    raise SystemExit(summary.exit_code)


def _silence_stdout() -> None:
    """Point stdout at /dev/null so that the interpreter's last flush cannot fail again."""

    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError):  # not a real file (a test runner's buffer)
        pass


def _display(total: int, options: DatasetOptions) -> ProgressDisplay:
    from runner.cli._progress import LiveProgress, PlainProgress

    if sys.stderr.isatty():
        return LiveProgress(sys.stderr, total=total)
    return PlainProgress(sys.stderr, interval=options.progress_interval)


def _dry_run(
    session: Session, spec: PromptSpec, rows: Iterator[Item], count: int, options: DatasetOptions
) -> None:
    """Each row's exact prompt tokens, then the totals and the worst-case bill; nothing sent."""
    from runner.engine.loop import ITEM_ERRORS

    prompt_tokens = 0
    max_output: int | None = 0
    bill: Decimal | None = Decimal(0)
    source = ""
    invalid = 0
    for item in rows:
        try:
            pre = session.preflight(spec, item.vars)
        except ITEM_ERRORS as exc:
            invalid += 1
            if not options.json_:
                detail = "; ".join(getattr(exc, "errors", [])) or str(exc).splitlines()[-1]
                click.echo(f"row {item.key}: would fail: {detail.strip()}")
            continue
        n = pre.choices
        prompt_tokens += pre.prompt_tokens
        if max_output is not None:
            out = pre.max_output_tokens
            max_output = None if out is None else max_output + out * n
        bill = None if bill is None or pre.max_cost.usd is None else bill + pre.max_cost.usd
        source = pre.max_cost.source
        if not options.json_:
            worst = "unknown" if pre.max_cost.usd is None else f"${pre.max_cost.usd:.6f}"
            click.echo(f"row {item.key}: {pre.prompt_tokens} prompt tokens, worst case {worst}")
    if options.json_:
        click.echo(
            json_text(
                {
                    "rows": count,
                    "prompt_tokens": prompt_tokens,
                    "max_output_tokens": max_output,
                    "max_cost_usd": None if bill is None else float(bill),
                }
            )
        )
    else:
        worst = "unknown" if bill is None else f"${bill:.6f}"
        click.echo(
            f"{count} rows · {prompt_tokens:,} prompt tokens · max output "
            f"{'unknown' if max_output is None else f'{max_output:,}'} tokens · "
            f"worst-case bill {worst}" + (f" ({source})" if source else "")
        )
    if not options.quiet:
        click.echo("dry run: nothing sent", err=True)
    if invalid:
        click.echo(
            f"{invalid} rows would fail: their variables do not match the spec, or their "
            "prompt does not fit the model",
            err=True,
        )
        raise SystemExit(1)
