"""`runner probe`: ask a server what it really does, and print the table and the settings that
fit it (or, with --dry-run, the requests it would send)."""

from __future__ import annotations

import click

from runner.cli._common import check_base_url, json_text, open_session
from runner.redact import redact


@click.command("probe")
@click.option(
    "--base-url",
    default=None,
    metavar="URL",
    callback=lambda ctx, param, value: check_base_url(value),
    help="The server to probe (default: RUNNER_BASE_URL, OPENAI_BASE_URL, else OpenAI's API).",
)
@click.option(
    "--model",
    default=None,
    help="The model to ask (default: RUNNER_MODEL, else the first one the server lists; "
    "gpt-4o-mini on OpenAI's API).",
)
@click.option(
    "--api",
    type=click.Choice(["chat", "responses"]),
    default="chat",
    show_default=True,
    help="The wire API of the model calls (provider.api).",
)
@click.option(
    "--mock/--no-mock",
    default=None,
    help="Probe the built-in mock server (or RUNNER_MOCK=1). No API key needed.",
)
@click.option(
    "--ledger",
    "ledger_path",
    default=None,
    metavar="PATH",
    help="Ledger file (default runs/ledger.jsonl, or RUNNER_LEDGER).",
)
@click.option("--json", "json_", is_flag=True, help="Print the findings as one JSON object.")
@click.option("--dry-run", is_flag=True, help="List the requests it would send; send nothing.")
def probe_(
    base_url: str | None,
    model: str | None,
    api: str,
    mock: bool | None,
    ledger_path: str | None,
    json_: bool,
    dry_run: bool,
) -> None:
    """Ask a server, with a handful of tiny requests, what it really does, and which spec
    settings fit it.

    One row per capability: json_schema and json_object (enforced, ignored or refused), usage
    in streams, n, tools, the Responses, Files, Batches and Models endpoints, the shape of its
    errors, rate-limit headers. Each model call is recorded in the ledger with its cost (the
    GETs are not). Exit 0 when the probe ran, whatever it found; 1 when the server could not be
    reached; 2 on bad usage (no API key for OpenAI's API).
    """
    from runner.probe import (
        CAPABILITIES,
        plan_text,
        planned_requests,
        probe_environ,
        report_text,
        run_probe,
        wanted_model,
    )
    from runner.settings import snapshot_environ

    if mock and base_url:
        raise click.UsageError("give --mock or --base-url, not both")
    environ = snapshot_environ()
    wanted = wanted_model(model, environ)

    def say(capability: str, what: str) -> None:
        click.echo(redact(f"probe: {CAPABILITIES[capability]}: {what}"), err=True)

    with open_session(
        environ=probe_environ(environ), ledger=ledger_path, mock=mock, base_url=base_url
    ) as session:
        if dry_run:
            requests = planned_requests(session, model=wanted, api=api)
            if json_:
                click.echo(json_text({"requests": [r.to_dict() for r in requests]}))
            else:
                click.echo(redact(plan_text(requests)), nl=False)
            return
        report = session.run_sync(run_probe(session, model=wanted, api=api, on_step=say))
    if json_:
        click.echo(json_text(report.to_dict()))
    else:
        click.echo(redact(report_text(report)), nl=False)
