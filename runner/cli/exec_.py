"""`runner exec`: run a spec once and print its validated output."""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, Any

import click

from runner.cli._common import (
    cache_options,
    cache_settings,
    collect_vars,
    colour,
    endpoint_options,
    exit_with_error,
    json_text,
    load_spec_file,
    open_session,
    var_options,
)
from runner.cli.exec_dataset import dataset_flags, dataset_options, run_dataset_command
from runner.errors import RunnerError
from runner.redact import redact

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping
    from decimal import Decimal

    from runner.engine.results import Preflight, Result
    from runner.ledger.line import LedgerRecord
    from runner.spec.model import PromptSpec
    from runner.types import Attempt, StreamDelta


@click.command("exec")
@click.argument("spec_path", metavar="SPEC")
@var_options
@endpoint_options("Send to this OpenAI-compatible server (wins over RUNNER_BASE_URL and the spec).")
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
@click.option(
    "--batch", is_flag=True, help="Send the data set through the Batch API (half price, ≤24 h)."
)
@click.option("--no-wait", is_flag=True, help="With --batch: start the batch and exit.")
@dataset_options
@cache_options
def exec_(
    spec_path: str,
    var_args: tuple[str, ...],
    vars_files: tuple[str, ...],
    model: str | None,
    base_url: str | None,
    mock: bool | None,
    stream: bool | None,
    ledger_path: str | None,
    no_content: bool,
    json_: bool,
    dry_run: bool,
    quiet: bool,
    batch: bool,
    no_wait: bool,
    cache: bool,
    cache_from: str | None,
    cache_max_age: str | None,
    **dataset: Any,
) -> None:
    """Run the prompt once and print its output.

    Stdout gets the parsed JSON when the spec has an output schema, else the text (--json: the
    whole result; on failure a JSON error object). The call is appended to the ledger whether it
    succeeds or not. Exit 0 on success, 1 when the call failed, 2 on bad input.

    With --input FILE (JSONL, CSV, or - for JSONL on stdin): once per row, one JSON line per
    row on stdout in completion order; exit 0 when every row is ok, 1 otherwise.
    """
    given = _given_flags(
        dataset, var_args, vars_files, stream=stream, no_content=no_content, quiet=quiet
    )
    options = dataset_flags(
        dataset, dry_run=dry_run, json_=json_, quiet=quiet, given=given, vars_files=vars_files
    )
    ctx = click.get_current_context()
    records: list[LedgerRecord] = []
    note = ""
    cached = cache_settings(
        {"cache": cache, "cache_from": cache_from, "cache_max_age": cache_max_age}
    )
    if cached is not None and (batch or no_wait):
        raise click.UsageError("--cache is for live calls, not with --batch")
    try:
        spec = load_spec_file(spec_path)
        variables = collect_vars(var_args, vars_files)
        flags: dict[str, Any] = {
            "model": model,
            "base_url": base_url,
            "mock": mock,
            "stream": stream,
            "ledger": ledger_path,
            "ledger_content": False if no_content else None,
        }
        if batch or no_wait:
            _exec_batch(
                spec,
                flags,
                dataset,
                batch=batch,
                no_wait=no_wait,
                quiet=quiet,
                dry_run=dry_run,
                max_cost=None if options is None else options.max_cost,
                variables=variables,
            )
            return
        if cached is not None and not dry_run:
            flags["cache"] = cached.source(ledger_path)
        with open_session(**flags) as session:
            if options is not None:
                run_dataset_command(session, spec, variables, options)
                return
            settings = session.settings_for(spec)
            if dry_run:
                pre = session.preflight(spec, variables)
                click.echo(json_text(pre.body))
                if not quiet:
                    click.echo(_preflight_line(pre), err=True)
                return
            if settings.mock and not quiet:
                click.echo(
                    "Note: mock mode: the built-in mock server answers, not a real model.",
                    err=True,
                )
            printer = _StreamPrinter(live=settings.stream and sys.stdout.isatty() and not json_)
            try:
                result = session.run(
                    spec,
                    variables,
                    on_delta=printer if printer.live else None,
                    on_retry=None if quiet else _say_retry(spec.retry.attempts),
                    on_record=records.append,
                )
            finally:
                printer.finish()
    except RunnerError as exc:
        if json_:  # a script gets an object to read, whatever went wrong
            click.echo(json_text(error_object(exc, records[-1] if records else None)))
        if not quiet and records:
            note = _ledger_note(exc, settings.ledger_path)
        exit_with_error(exc, ctx, after=note)
    _print_result(result, json_=json_, streamed=printer.shown)
    if result.finish_reason == "length":
        from runner.providers import wire_api

        wire = wire_api(spec.provider.api)
        limit = wire.output_limit(spec.params)
        click.echo(
            f"{colour('Warning:', 'yellow', err=True)} the reply stopped at the output token limit "
            f"({wire.capabilities.output_limit} {limit}); it may be cut short",
            err=True,
        )
    if not quiet:
        # The served model's name comes from the server: it may echo anything.
        click.echo(redact(_summary(spec.name, result, str(settings.ledger_path))), err=True)


# --max-cost and --wait work with --batch too (the batch reserves its worst case; the upload
# holds the spec's run lock).
_NOT_WITH_BATCH = ("resume", "concurrency", "output", "skip_batched")


def _given_flags(
    dataset: dict[str, Any],
    var_args: tuple[str, ...],
    vars_files: tuple[str, ...],
    *,
    stream: bool | None,
    no_content: bool,
    quiet: bool,
) -> list[tuple[str, str | None]]:
    """The flags of a data-set run as given, for the command that resumes it (the ledger, mock,
    base URL and model are added from the effective settings instead)."""
    given: list[tuple[str, str | None]] = [("--input", dataset.get("input_path"))]
    given += [("--vars-file", path) for path in vars_files]
    given += [("--var", arg) for arg in var_args]
    if stream is not None:
        given.append(("--stream" if stream else "--no-stream", None))
    if no_content:
        given.append(("--no-content", None))
    for name in ("concurrency", "output", "max_cost"):
        if dataset.get(name) is not None:
            given.append(("--" + name.replace("_", "-"), str(dataset[name])))
    if dataset.get("skip_batched"):
        given.append(("--skip-batched", None))
    if quiet:
        given.append(("-q", None))
    return given


def _exec_batch(
    spec: PromptSpec,
    flags: dict[str, Any],
    dataset: dict[str, Any],
    *,
    batch: bool,
    no_wait: bool,
    quiet: bool,
    dry_run: bool,
    max_cost: Decimal | None,
    variables: Mapping[str, Any],
) -> None:
    """`exec --input FILE --batch [--no-wait] [--max-cost USD]`: the data set through the
    Batch API, with the --var values under every row."""
    from runner.cli.exec_batch import exec_batch

    if not batch:
        raise click.UsageError("--no-wait needs --batch")
    given = [name for name in _NOT_WITH_BATCH if dataset.get(name) not in (None, False)]
    if given:
        flag = "--" + given[0].replace("_", "-")
        raise click.UsageError(f"{flag} is for live data-set runs, not with --batch")
    exec_batch(
        spec,
        dataset["input_path"],
        flags,
        wait=not no_wait,
        quiet=quiet,
        dry_run=dry_run,
        max_cost=max_cost,
        variables=variables,
        lock_wait=bool(dataset.get("wait")),  # exec's --wait, where the data-set flags have it
    )


def error_object(exc: RunnerError, record: LedgerRecord | None) -> dict[str, Any]:
    """What `exec --json` prints on stdout when it fails: the status (the ledger line's, or
    `error`), the error's kind, message and HTTP status, the ledger line's id (null when no
    call was made) and the exit code."""
    error: dict[str, Any] = {"kind": exc.kind, "message": exc.message}
    status = getattr(exc, "status", None)
    if isinstance(status, int):
        error["status"] = status
    return {
        "status": record["status"] if record is not None else "error",
        "error": error,
        "ledger_id": record["id"] if record is not None else None,
        "exit_code": exc.exit_code,
    }


def _say_retry(attempts: int) -> Callable[[Attempt, BaseException, float], None]:
    """Tell the user, on stderr, what a retry waits for and why (waits of a second or more)."""

    def say(failed: Attempt, error: BaseException, wait: float) -> None:
        if wait < 1.0:
            return
        total = max(attempts, failed.number + 1)
        click.echo(
            f"Waiting {wait:.1f} s before attempt {failed.number + 1} of {total}: "
            f"{retry_reason(failed, error)}.",
            err=True,
        )

    return say


def retry_reason(failed: Attempt, error: BaseException) -> str:
    """Why an attempt is being retried, in words."""
    after = getattr(error, "retry_after", None)
    if failed.status is not None:
        reason = f"the server answered {failed.status}"
        if isinstance(after, int | float) and after > 0:
            reason += f" (Retry-After {after:g} s)"
        return reason
    reasons = {
        "timeout": f"attempt {failed.number} timed out",
        "connection": f"attempt {failed.number} lost its connection",
        "invalid_output": f"the reply to attempt {failed.number} was not valid output",
    }
    return reasons.get(failed.outcome, f"attempt {failed.number} failed ({failed.outcome})")


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
        click.echo(redact(result.value))
    elif result.value is None:
        click.echo(redact(result.text or ""))
    else:
        click.echo(json_text(result.value))


def _summary(name: str, result: Result, ledger: str) -> str:
    usage = result.usage
    tries = len(result.attempts)
    cost = "cost unknown" if result.cost.usd is None else f"${result.cost.usd:.6f}"
    if result.mock and result.cost.usd is not None:
        cost += " if real"
    if result.replayed is not None:  # --cache: nothing was sent
        line = result.replayed["id"]
        return (
            f"{name} · {result.served_model or result.model}{' (mock)' if result.mock else ''}"
            f" · from the cache (line {line} of {result.replayed['from']}): nothing sent, $0 "
            f"spent ({cost} when recorded) · {usage.prompt}+{usage.completion} tokens "
            f"recorded · ledger {ledger}"
        )
    if usage.estimated:
        cost += " (tokens estimated locally: the server reported no usable usage)"
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
