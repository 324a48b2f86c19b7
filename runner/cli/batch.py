"""`runner batch list|status|collect|cancel`: the batches `runner exec --batch` started. Each
command asks the server the batch was created on (recorded in the state file; --base-url or
RUNNER_BASE_URL override it, and say so); collect holds the spec's run lock on the ledger.
Prints on stderr; exit 0 when every row answered, 1 when a row failed or the server's files
disagree with the local record, 2 on bad input.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from runner.cli._batch_output import say_waiting
from runner.cli._common import check_base_url, json_text, load_spec_file, open_session
from runner.errors import ConfigError

if TYPE_CHECKING:
    from runner.batch.state import BatchState
    from runner.engine.loop import Item
    from runner.engine.session import Session
    from runner.spec.model import PromptSpec

__all__ = ["batch_"]


# --- runner batch ... --------------------------------------------------------------------------


@click.group("batch")
def batch_() -> None:
    """Batches started by `runner exec --input FILE --batch`: list, status, collect, cancel.

    ID is a batch id, or the group id of a data set split into several batches. Each command
    asks the server the batch was created on (recorded in the state file); --base-url or
    RUNNER_BASE_URL asks another one, and says so.
    """


_ledger_option = click.option(
    "--ledger",
    "ledger_path",
    default=None,
    metavar="PATH",
    help="Ledger file (default runs/ledger.jsonl, or RUNNER_LEDGER); the batch state file "
    "is batches/state.jsonl next to it.",
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
_base_url_option = click.option(
    "--base-url",
    default=None,
    metavar="URL",
    callback=lambda ctx, param, value: check_base_url(value),
    help="Ask this server, not the one the batch was created on (or RUNNER_BASE_URL).",
)


def _ledger(given: str | None) -> Path:
    from runner.settings import ledger_path, snapshot_environ

    return ledger_path(given, snapshot_environ())


def _spec_for(ledger: Path, ids: Sequence[str], spec_path: str | None) -> PromptSpec:
    from runner.batch import read_state
    from runner.batch.state import state_path

    if spec_path is None:
        state = read_state(ledger)
        recorded = next((state[i].created.get("spec") for i in ids if i in state), None)
        if not recorded:
            raise ConfigError(f"{ids[0]} is not in {state_path(ledger)}: name its spec with --spec")
        spec_path = str(recorded["path"])
        resolved = recorded.get("resolved")
        if not Path(spec_path).exists() and resolved:  # collected from another directory
            spec_path = str(resolved)
    return load_spec_file(spec_path)


@batch_.command("list")
@_ledger_option
@click.option("--json", "json_", is_flag=True, help="Print the state as JSON.")
def batch_list(ledger_path: str | None, json_: bool) -> None:
    """List the batches started from this machine (the state file next to the ledger)."""
    from runner.batch import read_state
    from runner.batch.state import state_path

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
        click.echo(f"no batches in {state_path(_ledger(ledger_path))}", err=True)
        return
    for s in states:
        spec = s.created.get("spec", {}).get("name", "?")
        collected = "collected" if s.collected else "not collected"
        click.echo(
            f"{s.batch_id}  {s.created.get('ts', '')}  {spec}  {s.created.get('row_count', '?')} "
            f"rows  part {s.created.get('part', 1)}/{s.created.get('parts', 1)} of {s.group}  "
            f"{s.status}, {collected}"
        )


# What a batch command does, once its spec, ids and Session are known.
Action = Callable[
    ["Session", "PromptSpec", list[str], Path, dict[str, "BatchState"]], Awaitable[Any]
]


def _run_on_batches(
    ident: str,
    spec_path: str | None,
    ledger_path: str | None,
    mock: bool | None,
    base_url: str | None,
    action: Action,
) -> Any:
    """Resolve the ids, the spec and the server the batch was created on; run `action`."""
    from runner.batch import read_state, resolve_ids
    from runner.batch.state import endpoint_for
    from runner.settings import snapshot_environ

    ledger = _ledger(ledger_path)
    ids = resolve_ids(ledger, ident)
    states = read_state(ledger)
    spec = _spec_for(ledger, ids, spec_path)
    given_by = "--base-url"
    if base_url is None:
        base_url = (snapshot_environ().get("RUNNER_BASE_URL") or "").strip() or None
        given_by = "RUNNER_BASE_URL"
    where = endpoint_for(
        ids[0], states.get(ids[0]), base_url=base_url, given_by=given_by, mock=mock
    )
    if where.note:
        click.echo(f"Note: {where.note}", err=True)

    async def main() -> Any:
        async with open_session(
            ledger=ledger_path, mock=where.mock, base_url=where.base_url
        ) as session:
            return await action(session, spec, ids, ledger, states)

    from runner.interrupts import run_async

    return run_async(main())


@batch_.command("status")
@click.argument("ident", metavar="ID")
@_spec_option
@_ledger_option
@_base_url_option
@_mock_option
def batch_status(
    ident: str,
    spec_path: str | None,
    ledger_path: str | None,
    base_url: str | None,
    mock: bool | None,
) -> None:
    """Show a batch's status and request counts, as the server reports them now."""
    from runner.batch.flow import batch_api, current_batches

    async def action(
        session: Session, spec: PromptSpec, ids: list[str], ledger: Path, states: Any
    ) -> None:
        for b in await current_batches(batch_api(session, spec), ids, ledger, wait=False):
            counts = b.get("request_counts") or {}
            click.echo(
                f"{b['id']}  {b.get('status')}  {counts.get('completed', 0)} done, "
                f"{counts.get('failed', 0)} failed of {counts.get('total', 0)}"
            )

    _run_on_batches(ident, spec_path, ledger_path, mock, base_url, action)


@batch_.command("cancel")
@click.argument("ident", metavar="ID")
@_spec_option
@_ledger_option
@_base_url_option
@_mock_option
def batch_cancel(
    ident: str,
    spec_path: str | None,
    ledger_path: str | None,
    base_url: str | None,
    mock: bool | None,
) -> None:
    """Cancel a batch; what it finished can still be collected."""
    from runner.batch.flow import batch_api, get_batches
    from runner.batch.remote import TERMINAL

    async def action(
        session: Session, spec: PromptSpec, ids: list[str], ledger: Path, states: Any
    ) -> None:
        for batch_id in ids:
            state = states.get(batch_id)
            if state is not None and (state.collected or state.status in TERMINAL):
                collected = " and was collected" if state.collected else ""
                raise ConfigError(
                    f"batch {batch_id} has already ended ({state.status}){collected}: there is "
                    "nothing to cancel"
                )
        api = batch_api(session, spec)
        await get_batches(api, ids)  # an unknown id is said as such, before anything is cancelled
        for batch_id in ids:
            b = await api.cancel_batch(batch_id)
            click.echo(f"{b.get('id')}  {b.get('status')}")

    _run_on_batches(ident, spec_path, ledger_path, mock, base_url, action)


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
@click.option(
    "--max-cost",
    default=None,
    metavar="USD",
    help="With --retry-live: the budget of the batch and its live reruns together "
    "(default: the spec's budget).",
)
@click.option(
    "--wait",
    is_flag=True,
    help="If a run or collect of this spec holds the ledger, wait for it instead of refusing.",
)
@_base_url_option
@_mock_option
@click.option("-q", "--quiet", is_flag=True, help="No summary on stderr.")
def batch_collect(
    ident: str,
    spec_path: str | None,
    input_path: str | None,
    ledger_path: str | None,
    retry_live: bool,
    max_cost: str | None,
    wait: bool,
    base_url: str | None,
    mock: bool | None,
    quiet: bool,
) -> None:
    """Write an ended batch's rows to the ledger; rows already there are not written again."""
    from runner.batch import finish_batches, vars_by_row
    from runner.batch.flow import batch_lock
    from runner.batch.rerun import budget_of, rows_to_retry, spent_by
    from runner.dataset.rows import read_rows

    cap = _usd(max_cost)

    async def action(
        session: Session,
        spec: PromptSpec,
        ids: list[str],
        ledger: Path,
        states: dict[str, BatchState],
    ) -> int:
        recorded = next((states[i].created for i in ids if i in states), {})
        source = input_path if input_path is not None else recorded.get("input")
        items: list[Item] | None = None
        if source is not None and (input_path is not None or Path(source).exists()):
            items = list(read_rows(source, spec=spec))
        made = recorded.get("spec") or {}
        made_from = made.get("resolved") or made.get("path") or spec.path
        lock = batch_lock(
            ledger,
            made_from,
            what="a batch collect (runner batch collect)",
            wait=wait,
            on_wait=None if quiet else say_waiting,
        )
        with lock:
            summaries = await finish_batches(
                session,
                spec,
                ids,
                rows=None if items is None else vars_by_row(spec, items),
                wait=False,
                lock=lock,
                lock_wait=wait,
            )
            from runner.cli._batch_output import report

            report(spec, summaries, str(ledger), quiet=quiet)
            code = 1 if any(s.disagrees for s in summaries) else 0
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
                return 1 if pending else code
            if items is None:
                raise ConfigError(
                    "--retry-live needs the data set the batch was made from: --input FILE"
                )
            limit = budget_of(spec, cap)
            spent = spent_by(ledger, ids) if limit is not None else Decimal(0)
            from runner.batch import retry_live as rerun

            results = await rerun(session, spec, pending, items, max_cost=cap, spent=spent)
        skipped = sum(1 for r in results if r.status == "skipped")
        still = sum(1 for r in results if r.status != "ok") - skipped
        if not quiet:
            click.echo(
                f"retried live: {len(results) - skipped} rows, {len(results) - skipped - still} "
                f"ok, {still} failed (lines without batch_id)",
                err=True,
            )
            if skipped:
                click.echo(
                    f"{skipped} rows not rerun: the budget of ${limit} would be passed (the "
                    f"batch spent ${spent:.6f}); raise it with --max-cost",
                    err=True,
                )
        return 1 if still or skipped else code

    code = _run_on_batches(ident, spec_path, ledger_path, mock, base_url, action)
    if code:
        raise SystemExit(code)


def _usd(value: str | None) -> Decimal | None:
    """--max-cost as a positive number of US dollars."""
    if value is None:
        return None
    from decimal import InvalidOperation

    try:
        amount = Decimal(value.lstrip("$"))
    except InvalidOperation:
        amount = Decimal(0)
    if not amount.is_finite() or amount <= 0:
        raise click.BadParameter(
            f"{value!r} is not a positive amount of US dollars", param_hint="--max-cost"
        )
    return amount
