"""The command line: one module per command, each thin (parse flags, call the library, print,
map `RunnerError` to its exit code); `_common` holds what they share. Nothing outside this
package imports it.
"""

from __future__ import annotations

import warnings
from typing import Any

import click

from runner._version import __version__
from runner.cli._common import exit_with_error, interrupt_signals, print_warning
from runner.cli.batch import batch_
from runner.cli.exec_ import exec_
from runner.cli.mock_server import mock_server
from runner.cli.render import render_
from runner.cli.report import report
from runner.cli.test import test_
from runner.cli.validate import validate_
from runner.errors import RunnerError, RunnerWarning

__all__ = ["cli", "main"]


class _RunnerGroup(click.Group):
    """Turns RunnerError into `Error: ...` and its exit code; Ctrl-C into exit 130, SIGTERM
    and SIGHUP into 143 and 129 (the call in flight is recorded first)."""

    def invoke(self, ctx: click.Context) -> Any:
        warnings.showwarning = print_warning
        warnings.simplefilter("default", RunnerWarning)
        with interrupt_signals() as interruption:
            try:
                return super().invoke(ctx)
            except RunnerError as exc:
                exit_with_error(exc, ctx)
            except KeyboardInterrupt:
                click.echo("Interrupted.", err=True)
                raise SystemExit(interruption.exit_code) from None


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


for _command in (exec_, validate_, render_, mock_server, test_, batch_, report):
    cli.add_command(_command)
