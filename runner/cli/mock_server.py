"""`runner mock-server`: the built-in OpenAI-compatible mock server on a port, with faults."""

from __future__ import annotations

import click


@click.command("mock-server")
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option(
    "--port",
    default=8008,
    show_default=True,
    type=click.IntRange(0, 65535),
    help="0 picks a free port.",
)
@click.option("--fail-rate", default=0.0, type=float, help="Share of requests that fail (0-1).")
@click.option(
    "--status",
    "statuses",
    default="500",
    show_default=True,
    help="Statuses a failing request gets, e.g. 429,500,503 (quota: 429 insufficient_quota).",
)
@click.option("--retry-after", default=None, help="Retry-After on 429/503 replies, e.g. 2s.")
@click.option("--latency", default="0ms", show_default=True, help="Delay before each reply.")
@click.option("--drop-rate", default=0.0, type=float, help="Share of connections dropped.")
@click.option("--truncate-rate", default=0.0, type=float, help="Share of streams cut short.")
@click.option("--malformed-rate", default=0.0, type=float, help="Share of streams with bad SSE.")
@click.option(
    "--invalid-output-rate", default=0.0, type=float, help="Share of schema-breaking JSON replies."
)
@click.option("--fail-first", default=0, type=int, help="Each distinct request fails N times.")
@click.option("--seed", default=0, type=int, show_default=True, help="Seed for faults and answers.")
@click.option(
    "--no-json-schema",
    is_flag=True,
    help="Act as a server without structured outputs: refuse response_format json_schema (400).",
)
@click.option(
    "--ignore-json-schema",
    is_flag=True,
    help="Act as a server that takes a structured-output format and ignores it (as "
    "mlx_lm.server does): the answer is plain text.",
)
@click.option(
    "--api-key-env",
    default=None,
    metavar="VAR",
    help="Require the key held in this environment variable (401 otherwise).",
)
@click.option(
    "--batch-delay",
    default="0s",
    show_default=True,
    help="How long a batch takes from creation to its end, e.g. 30s.",
)
@click.option("--no-batch-api", is_flag=True, help="Answer 404 on the Files and Batches endpoints.")
@click.option("--no-responses", is_flag=True, help="Answer 404 on POST /v1/responses.")
def mock_server(
    host: str,
    port: int,
    fail_rate: float,
    statuses: str,
    retry_after: str | None,
    latency: str,
    drop_rate: float,
    truncate_rate: float,
    malformed_rate: float,
    invalid_output_rate: float,
    fail_first: int,
    seed: int,
    no_json_schema: bool,
    ignore_json_schema: bool,
    api_key_env: str | None,
    batch_delay: str,
    no_batch_api: bool,
    no_responses: bool,
) -> None:
    """Serve the built-in OpenAI-compatible mock server, with fault injection."""
    from runner.durations import parse_duration
    from runner.mock import Faults, parse_statuses, serve

    for name, rate in (
        ("--fail-rate", fail_rate),
        ("--drop-rate", drop_rate),
        ("--truncate-rate", truncate_rate),
        ("--malformed-rate", malformed_rate),
        ("--invalid-output-rate", invalid_output_rate),
    ):
        if not 0.0 <= rate <= 1.0:
            raise click.BadParameter(f"{rate} is not between 0 and 1", param_hint=name)
    # An empty value is a mistake, never "the default": an empty host would listen on every
    # interface, an empty variable name would silently require no key.
    for name, text in (
        ("--host", host),
        ("--retry-after", retry_after),
        ("--api-key-env", api_key_env),
    ):
        if text is not None and not text.strip():
            raise click.BadParameter("must not be empty", param_hint=f"'{name}'")
    try:
        faults = Faults(
            fail_rate=fail_rate,
            statuses=parse_statuses(statuses),
            retry_after=parse_duration(retry_after) if retry_after is not None else None,
            latency=parse_duration(latency),
            drop_rate=drop_rate,
            truncate_rate=truncate_rate,
            malformed_rate=malformed_rate,
            invalid_output_rate=invalid_output_rate,
            fail_first=fail_first,
            seed=seed,
            no_json_schema=no_json_schema,
            ignore_json_schema=ignore_json_schema,
        )
        delay = parse_duration(batch_delay)
    except ValueError as exc:
        raise click.UsageError(str(exc)) from None
    from runner.settings import snapshot_environ

    api_key = snapshot_environ().get(api_key_env) if api_key_env else None
    if api_key_env and not api_key:
        raise click.UsageError(f"--api-key-env {api_key_env}: that variable is not set")

    def ready(actual_port: int) -> None:
        click.echo(
            f"runner mock server on http://{host}:{actual_port}/v1 (Ctrl-C to stop)", err=True
        )

    try:
        serve(
            host=host,
            port=port,
            faults=faults,
            api_key=api_key,
            ready=ready,
            batch_delay=delay,
            batch_api=not no_batch_api,
            responses=not no_responses,
        )
    except OSError as exc:  # the address is in use, or not this machine's
        raise click.UsageError(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from None
