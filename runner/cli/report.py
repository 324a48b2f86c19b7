"""`runner report`: figures per group of calls from the ledgers, or a SQL query over them.

A thin command over runner.report; only click is imported at module level so `runner --help`
stays fast (DuckDB loads when the command runs).
"""

from __future__ import annotations

import re
import sys
from collections.abc import Mapping
from typing import TYPE_CHECKING

import click

from runner.cli._common import colour
from runner.redact import redact

if TYPE_CHECKING:
    from datetime import datetime

    from runner.pricing import PriceBook
    from runner.report import Report, SqlResult

FORMATS = ["table", "json", "csv", "markdown"]


@click.command("report")
@click.option(
    "--ledger",
    "ledgers",
    multiple=True,
    metavar="PATH_OR_GLOB",
    help="A ledger file or a glob such as 'runs/*.jsonl' (repeatable; default "
    "runs/ledger.jsonl, or RUNNER_LEDGER).",
)
@click.option(
    "--by",
    "by",
    multiple=True,
    metavar="FIELDS",
    help="Group by these, comma-separated: spec, model, day, status, case, provider, api, "
    "commit (default spec,model).",
)
@click.option(
    "--since", default=None, metavar="WHEN", help="Calls from then on: 7d, 12h, 2025-03-14."
)
@click.option(
    "--until", default=None, metavar="WHEN", help="Calls before then (a date includes it)."
)
@click.option(
    "--format",
    "format_",
    type=click.Choice(FORMATS),
    default="table",
    show_default=True,
    help="How to print the groups (or the --sql rows).",
)
@click.option(
    "--html",
    "html_path",
    default=None,
    metavar="FILE",
    help="Also write a self-contained HTML page with charts to FILE.",
)
@click.option(
    "--calls",
    "calls",
    type=click.IntRange(min=0),
    default=100,
    show_default=True,
    metavar="N",
    help="With --html: list the latest N calls, filterable, each opening on its messages and "
    "reply (0: no such section).",
)
@click.option(
    "--sql",
    default=None,
    metavar="QUERY",
    help="Print the rows of this SQL query over the `ledger` view instead (see docs/report.md).",
)
@click.option(
    "--price-as",
    "price_as",
    multiple=True,
    metavar="MODEL[,MODEL]",
    help="Also price every group's recorded traffic on these models (comma-separated or "
    "repeated), beside what it cost.",
)
def report(
    ledgers: tuple[str, ...],
    by: tuple[str, ...],
    since: str | None,
    until: str | None,
    format_: str,
    html_path: str | None,
    calls: int,
    sql: str | None,
    price_as: tuple[str, ...] = (),
) -> None:
    """Sum up the ledger: calls, errors, tokens, cost and latency per spec, model, day, ...

    Reads one or more JSONL ledgers (CI shards each keep their own). Unreadable lines are
    skipped and counted in one warning; lines from a newer runner are counted, not read;
    replayed calls are shown apart, never as calls or spend. --sql reads the ledgers and
    nothing else, and writes nothing. Exit 0 on success, 2 on bad input (an unknown --by
    field, a --since that does not parse, a ledger that does not exist or is not a regular
    file, an --html path that cannot be written, an SQL error), 130 on Ctrl-C.
    """
    from runner.errors import ConfigError
    from runner.report import (
        build_report,
        check_output,
        expand_ledgers,
        parse_by,
        parse_when,
        run_sql,
    )
    from runner.settings import ledger_path, snapshot_environ

    environ = snapshot_environ()
    _remember_secrets(environ)
    patterns = list(ledgers) or [str(ledger_path(None, environ))]
    if sql is not None and (by or html_path is not None or price_as):
        raise click.UsageError(
            "--sql prints the query's rows: it takes no --by, --html or --price-as"
        )
    models = [m.strip() for value in price_as for m in value.split(",") if m.strip()]
    if price_as and not models:
        raise click.UsageError("--price-as needs a model name")
    prices = _price_targets(models) if models else None
    fields = parse_by(by or ["spec,model"])
    start = parse_when(since, what="--since") if since else None
    end = parse_when(until, what="--until") if until else None
    files = expand_ledgers(patterns)
    if sys.stdout is None:  # started with descriptor 1 closed (`>&-`)
        raise ConfigError("cannot write the report: standard output is closed")
    if html_path is not None:  # before the query: a report never fails after the work
        check_output(html_path, files)
    if sql is not None:
        _emit(run_sql(files, sql, since=start, until=end), format_)
        return
    data = build_report(
        files,
        by=fields,
        since=start,
        until=end,
        breakdowns=html_path is not None,
        price_as=models,
        prices=prices,
    )
    _emit(data, format_)
    if html_path is not None:
        _write_html(data, html_path, calls=calls, since=start, until=end)


def _price_targets(models: list[str]) -> PriceBook:
    """The prices --price-as uses (runner.yaml's overrides, then genai-prices), checked before
    any ledger is read: a model without a price is exit 2."""
    from runner.cli._common import project_prices
    from runner.pricing import PriceBook
    from runner.report.reprice import targets

    overrides, source = project_prices()
    book = PriceBook(overrides, overrides_source=source)
    targets(models, book)  # ConfigError names the first unknown model
    return book


# Environment variables whose values are credentials: what a query result or an error message
# must never show, though the report itself sends nothing.
_SECRET_NAME = re.compile(r"(?i)(^|_)(API_?KEY|KEY|TOKEN|SECRET|PASSWORD|PASSWD|CREDENTIALS?)(_|$)")


def _remember_secrets(environ: Mapping[str, str]) -> None:
    from runner import redact

    redact.remember(value for name, value in environ.items() if _SECRET_NAME.search(name))


def _emit(data: Report | SqlResult, format_: str) -> None:
    for line in data.warnings():
        click.echo(f"{colour('Warning:', 'yellow', err=True)} {redact(line)}", err=True)
    for line in data.notes():
        click.echo(redact(f"Note: {line}"), err=True)
    _print(data, format_)


def _print(data: Report | SqlResult, format_: str) -> None:
    from runner.errors import ConfigError
    from runner.report import render_csv, render_json, render_markdown, render_text

    try:
        if format_ == "table" and sys.stdout.isatty():
            _print_rich(data)
            return
        if format_ == "table":
            width = _width()
            click.echo(redact(render_text(data, width=width)), nl=False)
            _note_fitted(data, width, gap=2)
            return
        render = {
            "json": render_json,
            "csv": render_csv,
            "markdown": render_markdown,
        }[format_]
        click.echo(redact(render(data)), nl=False)  # values are masked already: a second net
    except OSError as exc:  # stdout is a full disk, /dev/full, a closed descriptor...
        _drop_stdout()
        reason = exc.strerror or type(exc).__name__
        raise ConfigError(f"cannot write the report to standard output: {reason}") from None


def _drop_stdout() -> None:
    """Send what is still buffered for stdout nowhere, so that the exit's flush cannot fail
    a second time on the same descriptor."""
    import os

    try:
        null = os.open(os.devnull, os.O_WRONLY)
        os.dup2(null, sys.stdout.fileno())
        os.close(null)
    except (OSError, ValueError):
        pass


def _width() -> int | None:
    """The columns a table must fit: the terminal's (COLUMNS wins, as everywhere); through a
    pipe, none (a CI log or a file keeps every column)."""
    import shutil

    return shutil.get_terminal_size().columns if sys.stdout.isatty() else None


def _note_fitted(data: Report | SqlResult, width: int | None, *, gap: int) -> None:
    from runner.report import Report, fit_table, human_table

    if width is not None and not (isinstance(data, Report) and not data.groups):
        note = fit_table(human_table(data), width, gap=gap).note(width)
        if note is not None:
            click.echo(f"Note: {note}", err=True)


def _print_rich(data: Report | SqlResult) -> None:
    from rich import box
    from rich.console import Console
    from rich.table import Table
    from rich.text import Text

    from runner.report import EMPTY, Report, describe_range, fit_table, human_table

    if isinstance(data, Report) and not data.groups:
        Console().print(EMPTY)
        return
    # Fitted to the terminal: columns dropped in a documented order, then long names cut
    # (never a figure's digits); a table that still cannot fit is as wide as it needs.
    width = _width()
    fitted = fit_table(human_table(data), width, gap=3)
    cells = fitted.table
    rows = [cells.headers, *cells.rows, *([cells.total] if cells.total else [])]
    needed = sum(max(len(r[i]) for r in rows) for i in range(len(cells.headers)))
    needed += 3 * (len(cells.headers) - 1)
    console = Console(width=max(width or needed, needed))
    table = Table(
        box=box.SIMPLE_HEAD,
        show_footer=cells.total is not None,
        header_style="bold",
        show_edge=False,
        pad_edge=False,
    )
    # Text, not str: a name such as "[/bold]" is shown, not read as rich markup.
    for i, header in enumerate(cells.headers):
        table.add_column(
            Text(redact(header)),
            justify="right" if cells.numeric[i] else "left",
            footer=Text(cells.total[i] if cells.total else ""),
            no_wrap=True,
        )
    for row in cells.rows:
        table.add_row(*(Text(redact(cell)) for cell in row))
    console.print(table)
    if isinstance(data, Report):
        console.print(Text(redact(describe_range(data))), style="dim", highlight=False)
    note = fitted.note(width) if width is not None else None
    if note is not None:
        click.echo(f"Note: {note}", err=True)


def _write_html(
    data: Report, path: str, *, calls: int, since: datetime | None, until: datetime | None
) -> None:
    from runner.errors import ConfigError
    from runner.ledger.recent import CallFilter, latest_calls
    from runner.report import render_html

    # The latest calls in the report's time range; a bad line was counted by the report already.
    where = CallFilter(since=since, until=until)
    latest = latest_calls(data.files, limit=calls, where=where, warn=lambda _message: None)
    try:
        with open(path, "w", encoding="utf-8") as f:
            f.write(render_html(data, calls=latest, calls_limit=calls))
    except OSError as exc:
        raise ConfigError(f"--html {path}: cannot write it: {exc.strerror}") from None
    click.echo(f"Wrote {path}", err=True)
