"""`runner exec --input`: the data-set form of exec, a thin layer over runner.dataset. It opens
the rows and the output, installs the Ctrl-C/SIGTERM handlers (first: stop taking rows; second:
abort), shows progress and the summary on stderr, and maps the outcome to an exit code.
"""

from __future__ import annotations

import sys
from collections.abc import AsyncIterator, Callable, Iterator, Mapping
from decimal import Decimal, InvalidOperation
from typing import IO, TYPE_CHECKING, Any

import click

from runner.cli._common import EXIT_INTERRUPTED, json_text

if TYPE_CHECKING:
    from runner.dataset import DatasetRun, Item, ItemResult, RowStream
    from runner.dataset.progress import ProgressDisplay
    from runner.engine.session import Session
    from runner.spec.model import PromptSpec

__all__ = ["DatasetOptions", "dataset_flags", "dataset_options", "run_dataset_command"]

# Flags that only make sense with --input.
_DATASET_ONLY = ("concurrency", "resume", "output", "max_cost")


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
            click.option("--progress-interval", type=float, default=5.0, hidden=True),
        ]
    ):
        f = option(f)
    return f


def dataset_flags(
    values: Mapping[str, Any], *, dry_run: bool, json_: bool, quiet: bool
) -> DatasetOptions | None:
    """The data-set options, or None without --input (then the data-set flags are refused)."""
    if values["input_path"] is None:
        given = [name for name in _DATASET_ONLY if values[name] not in (None, False)]
        if given:
            flag = "--" + given[0].replace("_", "-")
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
    ) -> None:
        self.input_path = input_path
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
    """Run the data set; exit 0 when every row is ok, 1 otherwise, 130 when interrupted."""
    from runner.dataset import open_rows

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
    from runner.dataset import DatasetRun, row_line
    from runner.dataset.progress import summary_lines

    settings = session.settings_for(spec)
    in_batches = rows_in_open_batches(settings.ledger_path, spec.sha256)
    if in_batches and not options.quiet:
        click.echo(
            f"Note: {len(in_batches)} rows are in batches not collected yet; they are not run "
            "live (collect them with `runner batch collect ID`).",
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
        exclude=in_batches,
    )
    if settings.mock and not options.quiet:
        click.echo("Note: mock mode: the built-in mock server answers, not a real model.", err=True)
    out = _open_output(options)
    display = None if options.quiet else _display(rows.count, options)
    aborted = False
    try:

        async def drive() -> None:
            async for result in _with_signals(run):
                out.write(json.dumps(row_line(result), ensure_ascii=False, default=str) + "\n")
                out.flush()
                if display is not None:
                    display.update(run.summary)

        try:
            session.run_sync(drive())
        except (asyncio.CancelledError, KeyboardInterrupt):
            aborted = True
        except BrokenPipeError:  # the reader went away (`| head`): the calls in flight are
            _silence_stdout()  # recorded as interrupted; say so, and stop quietly
            click.echo("Error: the output was closed before the run ended", err=True)
            raise SystemExit(1) from None
    finally:
        if display is not None:
            display.close()
        if out is not sys.stdout:
            out.close()
    summary = run.summary
    if not options.quiet or summary.interrupted or aborted:
        for line in summary_lines(summary, ledger=settings.ledger_path):
            click.echo(line, err=True)
    if summary.interrupted or aborted:
        click.echo(
            "Interrupted: the calls in flight were recorded. To continue:\n  " + _resume_command(),
            err=True,
        )
        raise SystemExit(EXIT_INTERRUPTED)
    raise SystemExit(summary.exit_code)


async def _with_signals(run: DatasetRun) -> AsyncIterator[ItemResult]:
    """The run's results, with SIGINT/SIGTERM handled: the first stops the intake, the second
    cancels everything in flight (those calls are recorded as interrupted)."""
    import asyncio
    import signal

    loop = asyncio.get_running_loop()
    task = asyncio.current_task()
    presses = 0

    def on_signal() -> None:
        nonlocal presses
        presses += 1
        if presses == 1:
            click.echo(
                "\nStopping: no new rows; waiting for the calls in flight "
                "(press Ctrl-C again to abort them).",
                err=True,
            )
            run.request_stop()
        elif task is not None:
            task.cancel()

    installed = []
    for sig in (signal.SIGINT, signal.SIGTERM):
        try:
            loop.add_signal_handler(sig, on_signal)
            installed.append(sig)
        except (NotImplementedError, RuntimeError, ValueError):  # not the main thread
            pass
    try:
        async for result in run.results():
            yield result
    finally:
        for sig in installed:
            loop.remove_signal_handler(sig)


def _silence_stdout() -> None:
    """Point stdout at /dev/null so that the interpreter's last flush cannot fail again."""
    import os

    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError):  # not a real file (a test runner's buffer)
        pass


def _open_output(options: DatasetOptions) -> IO[str]:
    if options.output is None:
        return sys.stdout
    import os

    from runner.errors import ConfigError

    if options.input_path != "-" and os.path.exists(options.output):
        try:
            same = os.path.samefile(options.output, options.input_path)
        except OSError:
            same = False
        if same:
            raise ConfigError(f"--output {options.output} is the input file: choose another file")
    try:  # resume adds to the earlier run's lines
        return open(options.output, "a" if options.resume else "w", encoding="utf-8")  # noqa: SIM115
    except OSError as exc:
        raise ConfigError(f"cannot write --output {options.output}: {exc.strerror}") from None


def _display(total: int, options: DatasetOptions) -> ProgressDisplay:
    from runner.dataset.progress import LiveProgress, PlainProgress

    if sys.stderr.isatty():
        return LiveProgress(sys.stderr, total=total)
    return PlainProgress(sys.stderr, interval=options.progress_interval)


def _resume_command() -> str:
    import shlex

    args = sys.argv[1:]
    if "--resume" not in args:
        args = [*args, "--resume"]
    return "runner " + shlex.join(args)


def _dry_run(
    session: Session, spec: PromptSpec, rows: Iterator[Item], count: int, options: DatasetOptions
) -> None:
    """Each row's exact prompt tokens, then the totals and the worst-case bill; nothing sent."""
    from runner.errors import ConfigError, InputsInvalid, TemplateError

    prompt_tokens = 0
    max_output: int | None = 0
    bill: Decimal | None = Decimal(0)
    source = ""
    invalid = 0
    for item in rows:
        try:
            pre = session.preflight(spec, item.vars)
        except (InputsInvalid, TemplateError, ConfigError) as exc:
            if isinstance(exc, ConfigError) and not isinstance(exc, InputsInvalid):
                raise
            invalid += 1
            if not options.json_:
                detail = "; ".join(getattr(exc, "errors", [])) or str(exc).splitlines()[-1]
                click.echo(f"row {item.key}: would fail: {detail.strip()}")
            continue
        n = int(spec.params.get("n") or 1)
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
        click.echo(f"{invalid} rows would fail: their variables do not match the spec", err=True)
        raise SystemExit(1)
