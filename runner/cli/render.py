"""`runner render`: the messages exactly as they would be sent, their exact token count and the
worst-case cost; offline."""

from __future__ import annotations

from typing import TYPE_CHECKING

import click

from runner.cli._common import (
    collect_vars,
    endpoint_options,
    json_text,
    load_spec_file,
    open_session,
    var_options,
)

if TYPE_CHECKING:
    from runner.engine.results import Preflight


@click.command("render")
@click.argument("spec_path", metavar="SPEC")
@var_options
@endpoint_options("Price and size the call for this server, as `exec --base-url` would send it.")
@click.option(
    "--json", "json_", is_flag=True, help="Print {model, api, messages, prompt_tokens, ..., body}."
)
@click.option(
    "--body", is_flag=True, help="Print the exact request body the spec's API is sent (JSON)."
)
def render_(
    spec_path: str,
    var_args: tuple[str, ...],
    vars_files: tuple[str, ...],
    model: str | None,
    base_url: str | None,
    json_: bool,
    body: bool,
) -> None:
    """Show the messages exactly as they will be sent, their exact token count, the context
    window check and the worst-case cost. No network."""
    spec = load_spec_file(spec_path)
    variables = collect_vars(var_args, vars_files)
    with open_session(model=model, base_url=base_url) as session:
        pre = session.preflight(spec, variables)
    if json_:
        click.echo(json_text(pre.to_dict()))
        return
    if body:
        click.echo(json_text(pre.body))
        return
    click.echo(_format_preflight(pre))


def _format_preflight(pre: Preflight) -> str:
    from runner.tokens import encoding_name_for

    parts = []
    for message in pre.messages:
        head = message["role"] + (f" ({message['name']})" if message.get("name") else "")
        content = message.get("content")
        if not isinstance(content, str):
            content = json_text(content)
        parts.append(f"--- {head} ---\n{content}")
    window = f"{pre.context_window:,}" if pre.context_window else "unknown"
    max_out = pre.max_output_tokens if pre.max_output_tokens is not None else "not set"
    cost = pre.max_cost
    worst = "unknown" if cost.usd is None else f"${cost.usd:.6f}"
    parts.append(
        f"\nmodel {pre.model} ({encoding_name_for(pre.model)}) · api {pre.api} · "
        f"{pre.prompt_tokens} prompt tokens"
        f" · max output {max_out} · context window {window}\n"
        f"worst-case cost {worst} ({cost.source})"
    )
    return "\n".join(parts)
