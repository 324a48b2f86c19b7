"""`runner log`: the latest calls of the ledger, newest first, one block each; `runner log ID`
shows one call whole. Thin: runner.ledger.recent reads the ledger from its end; what a block
looks like is `_log_output`'s.
"""

from __future__ import annotations

import click

from runner.cli._common import json_text

_STATUSES = ("ok", "error", "invalid_output", "failed")  # runner.ledger.recent.STATUSES


@click.command("log")
@click.argument("call_id", required=False, metavar="[ID]")
@click.option(
    "-n",
    "count",
    type=click.IntRange(1, 100_000),
    default=20,
    show_default=True,
    help="How many calls to show, newest first.",
)
@click.option(
    "--spec", default=None, metavar="SPEC", help="Only this spec's calls (its name or path)."
)
@click.option(
    "--status",
    type=click.Choice(_STATUSES),
    default=None,
    help="Only calls with this status (failed: error or invalid_output).",
)
@click.option(
    "--ledger",
    "ledger_path",
    default=None,
    metavar="PATH",
    help="The ledger to read (default runs/ledger.jsonl, or RUNNER_LEDGER).",
)
@click.option("--json", "json_", is_flag=True, help="Print the calls as a JSON list (or object).")
def log_(
    call_id: str | None,
    count: int,
    spec: str | None,
    status: str | None,
    ledger_path: str | None,
    json_: bool,
) -> None:
    """Show the latest calls of the ledger, newest first, or one call whole.

    Each call is a block: spec, model, status, tokens, cost and latency, what it answered (when
    the ledger kept content) and why it failed. `runner log ID` (or the start of an id) shows
    every message, the reply and each attempt. The ledger is read from its end, so a big one
    costs no more than the calls shown. Exit 0, or 2 when the ledger or the call is not found.
    """
    from runner.cli import _log_output as show
    from runner.errors import ConfigError, LedgerError
    from runner.ledger.recent import CallFilter, find_call, latest_calls
    from runner.settings import ledger_path as default_ledger
    from runner.settings import snapshot_environ

    path = str(default_ledger(ledger_path, snapshot_environ()))
    if call_id is not None and (spec is not None or status is not None):
        raise click.UsageError("an ID shows that one call: it takes no --spec or --status")
    try:
        if call_id is not None:
            record = find_call([path], call_id)
        else:
            calls = latest_calls([path], limit=count, where=CallFilter(spec=spec, status=status))
    except LedgerError as exc:  # no ledger, or not a file: the user's input, as in report
        raise ConfigError(exc.message) from None
    if call_id is not None:
        if record is None:
            raise ConfigError(f"no call {call_id} in {path}")
        click.echo(json_text(record) if json_ else show.whole(record, width=show.width()))
        return
    if json_:
        click.echo(json_text(calls))
        return
    if not calls:
        which = " that match" if spec is not None or status is not None else ""
        click.echo(f"No calls{which} in {path}.", err=True)
        return
    width = show.width()
    click.echo("\n\n".join(show.block(record, width=width) for record in calls))
