"""The command line: one module per command, each thin (parse flags, call the library, print,
map `RunnerError` to its exit code). Nothing else imports this package."""

from runner.cli.commands import main

__all__ = ["main"]
