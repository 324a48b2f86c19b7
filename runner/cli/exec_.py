"""`runner exec`: run a spec once and print its validated output."""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, Any

import click

from runner.cli._common import (
    collect_vars,
    exit_with_error,
    json_text,
    load_spec_file,
    open_session,
    var_options,
)
from runner.errors import RunnerError

if TYPE_CHECKING:
    from runner.engine.results import Preflight, Result
    from runner.types import StreamDelta


@click.command("exec")
@click.argument("spec_path", metavar="SPEC")
@var_options
@click.option("--model", default=None, help="Use this model instead of the spec's.")
@click.option(
    "--mock/--no-mock",
    default=None,
    help="Answer from the built-in mock server (or RUNNER_MOCK=1). No API key needed.",
)
@click.option(
    "--stream/--no-stream", default=None, help="Stream the reply (default: the spec's `stream`)."
)
@click.option(
    "--ledger",
    "ledger_path",
    default=None,
    metavar="PATH",
    help="Ledger file (default runs/ledger.jsonl, or RUNNER_LEDGER).",
)
@click.option(
    "--no-content",
    is_flag=True,
    help="Keep messages, variables and outputs out of the ledger (hashes and figures stay).",
)
@click.option("--json", "json_", is_flag=True, help="Print the whole result as JSON.")
@click.option("--dry-run", is_flag=True, help="Render the request and stop; nothing is sent.")
@click.option("-q", "--quiet", is_flag=True, help="No summary line on stderr.")
@click.option("--input", "input_path", default=None, metavar="FILE", help="A JSONL data set.")
@click.option(
    "--batch", is_flag=True, help="Send the data set through the Batch API (half price, ≤24 h)."
)
@click.option("--no-wait", is_flag=True, help="With --batch: start the batch and exit.")
def exec_(
    spec_path: str,
    var_args: tuple[str, ...],
    vars_files: tuple[str, ...],
    model: str | None,
    mock: bool | None,
    stream: bool | None,
    ledger_path: str | None,
    no_content: bool,
    json_: bool,
    dry_run: bool,
    quiet: bool,
    input_path: str | None,
    batch: bool,
    no_wait: bool,
) -> None:
    """Run the prompt once and print its output.

    Stdout gets the parsed JSON when the spec has an output schema, else the text (--json: the
    whole result). The call is appended to the ledger whether it succeeds or not. Exit 0 on
    success, 1 when the call failed, 2 on bad input.
    """
    spec = load_spec_file(spec_path)
    variables = collect_vars(var_args, vars_files)
    flags = {
        "model": model,
        "mock": mock,
        "stream": stream,
        "ledger": ledger_path,
        "ledger_content": False if no_content else None,
    }
    if batch or no_wait or input_path is not None:
        if not batch:
            raise click.UsageError("--input and --no-wait need --batch in this build")
        from runner.cli.batch import exec_batch

        exec_batch(spec, input_path, flags, wait=not no_wait, quiet=quiet, dry_run=dry_run)
        return
    with open_session(**flags) as session:
        settings = session.settings_for(spec)
        if dry_run:
            pre = session.preflight(spec, variables)
            click.echo(json_text(pre.body))
            if not quiet:
                click.echo(_preflight_line(pre), err=True)
            return
        if settings.mock and not quiet:
            click.echo(
                "Note: mock mode: the built-in mock server answers, not a real model.", err=True
            )
        printer = _StreamPrinter(live=settings.stream and sys.stdout.isatty() and not json_)
        try:
            result = session.run(spec, variables, on_delta=printer if printer.live else None)
        except RunnerError as exc:
            printer.finish()
            note = "" if quiet else _ledger_note(exc, settings.ledger_path)
            exit_with_error(exc, click.get_current_context(), after=note)
        printer.finish()
        _print_result(result, json_=json_, streamed=printer.shown)
        if result.finish_reason == "length":
            limit = spec.params.get("max_completion_tokens") or spec.params.get("max_tokens")
            click.echo(
                f"Warning: the reply stopped at the output token limit ({limit}); "
                "it may be cut short",
                err=True,
            )
        if not quiet:
            click.echo(_summary(spec.name, result, str(settings.ledger_path)), err=True)


class _StreamPrinter:
    """Writes streamed text to a terminal as it arrives (choice 0 only)."""

    def __init__(self, *, live: bool) -> None:
        self.live = live
        self.shown = False

    def __call__(self, delta: StreamDelta) -> None:
        if delta.restart:
            click.echo("\n[the connection broke; retrying, the answer starts over]", err=True)
            return
        if delta.choice == 0 and delta.text:
            sys.stdout.write(delta.text)
            sys.stdout.flush()
            self.shown = True

    def finish(self) -> None:
        if self.shown:
            sys.stdout.write("\n")
            sys.stdout.flush()


def _print_result(result: Result, *, json_: bool, streamed: bool) -> None:
    if json_:
        click.echo(json_text(result.to_dict()))
    elif streamed:
        return
    elif isinstance(result.value, str):
        click.echo(result.value)
    elif result.value is None:
        click.echo(result.text or "")
    else:
        click.echo(json_text(result.value))


def _summary(name: str, result: Result, ledger: str) -> str:
    usage = result.usage
    tries = len(result.attempts)
    cost = "cost unknown" if result.cost.usd is None else f"${result.cost.usd:.6f}"
    if result.mock and result.cost.usd is not None:
        cost += " if real"
    model = result.served_model or result.model
    return (
        f"{name} · {model}{' (mock)' if result.mock else ''} · "
        f"{tries} attempt{'s' if tries != 1 else ''} · "
        f"{usage.prompt}+{usage.completion} tokens · {cost} · "
        f"{result.latency_ms:.0f} ms · ledger {ledger}"
    )


def _preflight_line(pre: Preflight) -> str:
    worst = "unknown" if pre.max_cost.usd is None else f"${pre.max_cost.usd:.6f}"
    return f"dry run: {pre.prompt_tokens} prompt tokens, worst-case cost {worst}; nothing sent"


def _ledger_note(exc: RunnerError, ledger: Any) -> str:
    if not exc.attempts:
        return ""
    n = len(exc.attempts)
    return f"(after {n} attempt{'s' if n != 1 else ''}; the call is recorded in {ledger})"
