"""The `runner` command line: parse flags, call one library function, print, map errors to exit
codes (0 ok, 1 a call or test failed, 2 bad usage or spec, 130 interrupted).

Results go to stdout, diagnostics to stderr. Only click is imported at module level so that
`runner --help` stays fast; each command imports what it needs.
"""

from __future__ import annotations

import sys
import warnings
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, NoReturn

import click

from ._version import __version__
from .cli_report import report
from .errors import RunnerError, RunnerWarning

if TYPE_CHECKING:
    from .engine import Preflight, Result
    from .records import StreamDelta
    from .spec import PromptSpec

EXIT_INTERRUPTED = 130


# --- error and warning reporting --------------------------------------------------------------


def _debug_enabled(ctx: click.Context | None) -> bool:
    from .settings import env_flag, snapshot_environ

    root = ctx.find_root() if ctx is not None else None
    if root is not None and root.params.get("debug"):
        return True
    try:
        return bool(env_flag(snapshot_environ(), "RUNNER_DEBUG"))
    except RunnerError:
        return False


def _fail(exc: RunnerError, ctx: click.Context | None, *, after: str = "") -> NoReturn:
    if _debug_enabled(ctx):
        import traceback

        traceback.print_exception(exc, file=sys.stderr)
    lines = str(exc).splitlines() or [type(exc).__name__]
    click.echo(f"Error: {lines[0]}", err=True)
    for line in lines[1:]:
        click.echo(f"  {line}", err=True)
    for extra in getattr(exc, "errors", [])[:20]:
        click.echo(f"  {extra}", err=True)
    if after:
        click.echo(after, err=True)
    raise SystemExit(exc.exit_code)


def _show_warning(
    message: Warning | str,
    category: type[Warning],
    filename: str,
    lineno: int,
    file: Any = None,
    line: str | None = None,
) -> None:
    if issubclass(category, RunnerWarning):
        click.echo(f"Warning: {message}", err=True)
    else:  # not ours: the default format, so nothing is hidden
        sys.stderr.write(warnings.formatwarning(message, category, filename, lineno, line))


class _RunnerGroup(click.Group):
    """Turns RunnerError into `Error: ...` and its exit code; Ctrl-C into exit 130."""

    def invoke(self, ctx: click.Context) -> Any:
        warnings.showwarning = _show_warning
        warnings.simplefilter("default", RunnerWarning)
        try:
            return super().invoke(ctx)
        except RunnerError as exc:
            _fail(exc, ctx)
        except KeyboardInterrupt:
            click.echo("Interrupted.", err=True)
            raise SystemExit(EXIT_INTERRUPTED) from None


@click.group(cls=_RunnerGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="runner")
@click.option("--debug", is_flag=True, help="Show tracebacks for errors (or RUNNER_DEBUG=1).")
def cli(debug: bool) -> None:
    """Run prompts kept as YAML specs: validated, schema-enforced, every call in a ledger.

    \b
    Quick start (no API key needed in mock mode):
      runner exec prompts/city.yaml --var city=Paris --mock
    """


def main() -> None:
    cli(prog_name="runner")


# --- shared options ---------------------------------------------------------------------------


def _var_options(f: Callable[..., Any]) -> Callable[..., Any]:
    f = click.option(
        "--vars-file",
        "vars_files",
        multiple=True,
        metavar="FILE",
        help="A YAML or JSON mapping of variables (repeatable; --var wins over files).",
    )(f)
    f = click.option(
        "--var",
        "var_args",
        multiple=True,
        metavar="K=V|K:=JSON",
        help="A variable: k=v gives a string, k:=JSON a typed value (repeatable; later wins).",
    )(f)
    return f


def _collect_vars(var_args: Sequence[str], vars_files: Sequence[str]) -> dict[str, Any]:
    from .spec import load_vars_file, parse_var_args

    merged: dict[str, Any] = {}
    for path in vars_files:
        merged.update(load_vars_file(path))
    merged.update(parse_var_args(var_args))
    return merged


def _load(path: str) -> PromptSpec:
    from .spec import load_spec

    return load_spec(path)


def _session(**kw: Any) -> Any:
    from .engine import Session
    from .settings import snapshot_environ

    flags = {k: v for k, v in kw.items() if v is not None}
    config = _project_config()
    return Session(environ=snapshot_environ(), prices=config[0], prices_source=config[1], **flags)


def _project_config() -> tuple[dict[str, Any] | None, str]:
    """Price overrides from runner.yaml (RUNNER_CONFIG, else ./runner.yaml if present)."""
    from pathlib import Path

    from .settings import project_config_path, snapshot_environ

    path = project_config_path(snapshot_environ(), Path.cwd())
    if path is None:
        return None, "runner.yaml"
    from .spec import load_project_config

    config = load_project_config(path)
    return dict(config.prices), str(path)


def _dump(value: Any) -> str:
    import json

    return json.dumps(value, indent=2, ensure_ascii=False, default=str)


# --- validate ---------------------------------------------------------------------------------


@cli.command("validate")
@click.argument("paths", nargs=-1, required=True, metavar="SPEC_OR_DIR...")
@click.option(
    "--format",
    "format_",
    type=click.Choice(["text", "json"]),
    default="text",
    show_default=True,
    help="json prints a list of {file, line, col, message} for editors and CI annotations.",
)
def validate_(paths: tuple[str, ...], format_: str) -> None:
    """Check specs, their output schemas and templates. No network.

    Exit 0 when every spec is valid, 2 otherwise; each problem is printed as
    file:line:col: message.
    """
    from .spec import check_paths

    problems = check_paths(list(paths))
    if format_ == "json":
        click.echo(_dump([p.to_dict() for p in problems]))
    else:
        for problem in problems:
            click.echo(str(problem))
    if problems:
        files = len({p.file for p in problems})
        noun = "problem" if len(problems) == 1 else "problems"
        click.echo(f"{len(problems)} {noun} in {files} file(s)", err=True)
        raise SystemExit(2)
    click.echo("All specs are valid.", err=True)


# --- render -----------------------------------------------------------------------------------


@cli.command("render")
@click.argument("spec_path", metavar="SPEC")
@_var_options
@click.option("--model", default=None, help="Use this model instead of the spec's.")
@click.option("--json", "json_", is_flag=True, help="Print {model, messages, prompt_tokens, ...}.")
def render_(
    spec_path: str,
    var_args: tuple[str, ...],
    vars_files: tuple[str, ...],
    model: str | None,
    json_: bool,
) -> None:
    """Show the messages exactly as they will be sent, their exact token count, the context
    window check and the worst-case cost. No network."""
    spec = _load(spec_path)
    variables = _collect_vars(var_args, vars_files)
    with _session(model=model) as session:
        pre = session.preflight(spec, variables)
    if json_:
        click.echo(_dump(pre.to_dict()))
        return
    click.echo(_format_preflight(pre))


def _format_preflight(pre: Preflight) -> str:
    from .tokens import encoding_name_for

    parts = []
    for message in pre.messages:
        head = message["role"] + (f" ({message['name']})" if message.get("name") else "")
        content = message.get("content")
        if not isinstance(content, str):
            content = _dump(content)
        parts.append(f"--- {head} ---\n{content}")
    window = f"{pre.context_window:,}" if pre.context_window else "unknown"
    max_out = pre.max_output_tokens if pre.max_output_tokens is not None else "not set"
    cost = pre.max_cost
    worst = "unknown" if cost.usd is None else f"${cost.usd:.6f}"
    parts.append(
        f"\nmodel {pre.model} ({encoding_name_for(pre.model)}) · {pre.prompt_tokens} prompt tokens"
        f" · max output {max_out} · context window {window}\n"
        f"worst-case cost {worst} ({cost.source})"
    )
    return "\n".join(parts)


# --- exec -------------------------------------------------------------------------------------


@cli.command("exec")
@click.argument("spec_path", metavar="SPEC")
@_var_options
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
) -> None:
    """Run the prompt once and print its output.

    Stdout gets the parsed JSON when the spec has an output schema, else the text (--json: the
    whole result). The call is appended to the ledger whether it succeeds or not. Exit 0 on
    success, 1 when the call failed, 2 on bad input.
    """
    spec = _load(spec_path)
    variables = _collect_vars(var_args, vars_files)
    flags = {
        "model": model,
        "mock": mock,
        "stream": stream,
        "ledger": ledger_path,
        "ledger_content": False if no_content else None,
    }
    with _session(**flags) as session:
        settings = session.settings_for(spec)
        if dry_run:
            pre = session.preflight(spec, variables)
            click.echo(_dump(pre.body))
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
            _fail(exc, click.get_current_context(), after=note)
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
        click.echo(_dump(result.to_dict()))
    elif streamed:
        return
    elif isinstance(result.value, str):
        click.echo(result.value)
    elif result.value is None:
        click.echo(result.text or "")
    else:
        click.echo(_dump(result.value))


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


# --- mock-server ------------------------------------------------------------------------------


@cli.command("mock-server")
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=8008, show_default=True, type=int, help="0 picks a free port.")
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
    "--api-key-env",
    default=None,
    metavar="VAR",
    help="Require the key held in this environment variable (401 otherwise).",
)
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
    api_key_env: str | None,
) -> None:
    """Serve the built-in OpenAI-compatible mock server, with fault injection."""
    from .mockserver import Faults, parse_duration, parse_statuses, serve

    for name, rate in (
        ("--fail-rate", fail_rate),
        ("--drop-rate", drop_rate),
        ("--truncate-rate", truncate_rate),
        ("--malformed-rate", malformed_rate),
        ("--invalid-output-rate", invalid_output_rate),
    ):
        if not 0.0 <= rate <= 1.0:
            raise click.BadParameter(f"{rate} is not between 0 and 1", param_hint=name)
    try:
        faults = Faults(
            fail_rate=fail_rate,
            statuses=parse_statuses(statuses),
            retry_after=parse_duration(retry_after) if retry_after else None,
            latency=parse_duration(latency),
            drop_rate=drop_rate,
            truncate_rate=truncate_rate,
            malformed_rate=malformed_rate,
            invalid_output_rate=invalid_output_rate,
            fail_first=fail_first,
            seed=seed,
        )
    except ValueError as exc:
        raise click.UsageError(str(exc)) from None
    from .settings import snapshot_environ

    api_key = snapshot_environ().get(api_key_env) if api_key_env else None
    if api_key_env and not api_key:
        raise click.UsageError(f"--api-key-env {api_key_env}: that variable is not set")

    def ready(actual_port: int) -> None:
        click.echo(
            f"runner mock server on http://{host}:{actual_port}/v1 (Ctrl-C to stop)", err=True
        )

    serve(host=host, port=port, faults=faults, api_key=api_key, ready=ready)


cli.add_command(report)
