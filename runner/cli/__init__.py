"""The command line: one module per command, each thin (parse flags, call the library, print,
map `RunnerError` to its exit code); `_common` holds what they share. Nothing outside this
package imports it.
"""

from __future__ import annotations

import functools
import warnings
from collections.abc import Callable
from typing import Any

import click

from runner._version import __version__

__all__ = ["COMMANDS", "cli", "main"]

# Each command: its module, its function, and its one-line help as `runner --help` shows it.
# Commands load when they are run (or asked for their own help), so `runner --help` does not
# build seven commands' options; a test holds these lines to the commands' own docstrings.
COMMANDS = {
    "batch": (
        "runner.cli.batch",
        "batch_",
        "Batches started by `runner exec --input FILE --batch`: list, status, collect, cancel.",
    ),
    "exec": ("runner.cli.exec_", "exec_", "Run the prompt once and print its output."),
    "init": (
        "runner.cli.init",
        "init_",
        "Start a specs repository in DIR (default: here): an example spec, its schema and tests.",
    ),
    "log": (
        "runner.cli.log",
        "log_",
        "Show the latest calls of the ledger, newest first, or one call whole.",
    ),
    "mock-server": (
        "runner.cli.mock_server",
        "mock_server",
        "Serve the built-in OpenAI-compatible mock server, with fault injection.",
    ),
    "probe": (
        "runner.cli.probe",
        "probe_",
        "Ask a server, with a handful of tiny requests, what it really does, and which spec "
        "settings fit it.",
    ),
    "render": (
        "runner.cli.render",
        "render_",
        "Show the messages exactly as they will be sent, their exact token count, the context "
        "window check and the worst-case cost.",
    ),
    "report": (
        "runner.cli.report",
        "report",
        "Sum up the ledger: calls, errors, tokens, cost and latency per spec, model, day, ...",
    ),
    "test": (
        "runner.cli.test",
        "test_",
        "Run the test cases of specs (default: every spec under prompts/ with `tests:`).",
    ),
    "validate": (
        "runner.cli.validate",
        "validate_",
        "Check specs, their output schemas and templates.",
    ),
}


class _RunnerGroup(click.Group):
    """Turns RunnerError into `Error: ...` and its exit code; Ctrl-C into exit 130, SIGTERM
    and SIGHUP into 143 and 129 (the call in flight is recorded first). Loads each command
    when it is asked for."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*self.commands, *COMMANDS})

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name not in self.commands and cmd_name in COMMANDS:
            import importlib

            module, name, _ = COMMANDS[cmd_name]
            command = getattr(importlib.import_module(module), name)
            command.invoke = functools.partial(_invoke_handling_signals, command.invoke)
            _accept_debug(command)
            self.add_command(command, cmd_name)
        return super().get_command(ctx, cmd_name)

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        """The command list from the one-line helps above, without loading the commands."""
        names = self.list_commands(ctx)
        limit = formatter.width - 6 - max(len(name) for name in names)
        rows = [(name, _shortened(COMMANDS[name][2], limit)) for name in names if name in COMMANDS]
        with formatter.section("Commands"):
            formatter.write_dl(rows)

    def invoke(self, ctx: click.Context) -> Any:
        # Imported here, not at the top: `runner --help` never gets this far.
        from runner.cli._common import exit_with_error, print_warning
        from runner.errors import RunnerError, RunnerWarning

        warnings.showwarning = print_warning
        warnings.simplefilter("default", RunnerWarning)
        try:
            return super().invoke(ctx)
        except RunnerError as exc:
            exit_with_error(exc, ctx)


def _accept_debug(command: click.Command) -> None:
    """`--debug` after the command's name too (`runner exec spec.yaml --debug`), as before it:
    a hidden flag on every command and subcommand that sets the group's own."""
    if not any("--debug" in param.opts for param in command.params):
        command.params.append(
            click.Option(
                ["--debug"],
                is_flag=True,
                expose_value=False,
                hidden=True,
                callback=_set_debug,
                help="Show tracebacks for errors (as `runner --debug`).",
            )
        )
    if isinstance(command, click.Group):
        for sub in command.commands.values():
            _accept_debug(sub)


def _set_debug(ctx: click.Context, param: click.Parameter, value: bool) -> None:
    if value:
        ctx.find_root().params["debug"] = True


def _invoke_handling_signals(invoke: Callable[[click.Context], Any], ctx: click.Context) -> Any:
    """Run a command (its module is imported and its flags are parsed by now) with SIGINT,
    SIGTERM and SIGHUP stopping it in good order: 130, 143 or 129, the call in flight recorded."""
    from runner.cli import _heap
    from runner.cli._common import interrupt_signals

    _end_start_up()
    if ctx.command.name not in _SETTLES_ITSELF:
        _heap.settle()
    with interrupt_signals() as interruption:
        try:
            return invoke(ctx)
        except KeyboardInterrupt:
            click.echo("Interrupted.", err=True)
            raise SystemExit(interruption.exit_code) from None
        except Exception as exc:
            # A signal that lands while a class is being built (a lazy import) reaches us
            # as the RuntimeError that wraps it: still the interruption, not a crash.
            if not _caused_by_interrupt(exc):
                raise
            click.echo("Interrupted.", err=True)
            raise SystemExit(interruption.exit_code) from None


# Commands whose work begins when they open their session (`_common.open_session` turns the
# garbage collector back on then, runner.cli._heap), not as they begin: `exec` loads its spec
# first. Every exec path opens one; one that stops before that exits.
_SETTLES_ITSELF = frozenset({"exec"})


def _caused_by_interrupt(exc: BaseException) -> bool:
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        if isinstance(current, KeyboardInterrupt):
            return True
        seen.add(id(current))
        current = current.__cause__ or current.__context__
    return False


# --- start-up ---------------------------------------------------------------------------------
# From the process's start until a command begins, nothing has been sent and nothing needs to
# be recorded: a signal then ends the process at once, with 128 + its number, rather than
# raising KeyboardInterrupt in the middle of an import (where it can surface as another error).
_START_UP_SIGNALS = ("SIGINT", "SIGTERM", "SIGHUP")


def _exit_now(signum: int, frame: Any) -> None:
    import os

    os.write(2, b"Interrupted.\n")
    os._exit(128 + signum)


def _start_up() -> None:
    import signal

    from runner.cli import _heap

    _heap.start_up()
    for name in _START_UP_SIGNALS:
        number = getattr(signal, name, None)
        if number is None or signal.getsignal(number) == signal.SIG_IGN:
            continue  # an ignored SIGINT (a background job) stays ignored
        signal.signal(number, _exit_now)


def _end_start_up() -> None:
    """Hand the signals back to Python's defaults, which the command's own handling builds on
    (`interrupt_signals`, asyncio's Ctrl-C)."""
    import signal
    import threading

    if threading.current_thread() is not threading.main_thread():
        return
    for name in _START_UP_SIGNALS:
        number = getattr(signal, name, None)
        if number is not None and signal.getsignal(number) is _exit_now:
            default = signal.default_int_handler if name == "SIGINT" else signal.SIG_DFL
            signal.signal(number, default)


def _shortened(text: str, limit: int) -> str:
    """`text` cut at a word to fit `limit` characters, with "..." when cut (as click does)."""
    if len(text) <= limit:
        return text
    words, kept = text.split(), ""
    for word in words:
        if len(f"{kept} {word}".strip()) + 3 > limit:
            break
        kept = f"{kept} {word}".strip()
    return kept + "..."


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
    _start_up()
    cli(prog_name="runner")
