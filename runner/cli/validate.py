"""`runner validate`: check specs, their output schemas and templates, offline."""

from __future__ import annotations

import click

from runner.cli._common import json_text
from runner.errors import listed


@click.command("validate")
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
    from runner.spec.load import check_paths

    problems = check_paths(list(paths))
    if format_ == "json":
        click.echo(json_text([p.to_dict() for p in problems]))
    else:  # each file's first problems, the rest counted (--format json lists them all)
        by_file: dict[str, list[str]] = {}
        for problem in problems:
            by_file.setdefault(problem.file, []).append(str(problem))
        for file, lines in by_file.items():
            for line in listed(lines):
                click.echo(line if not line.startswith("... and ") else f"{file}: {line}")
    if problems:
        files = len({p.file for p in problems})
        noun = "problem" if len(problems) == 1 else "problems"
        click.echo(f"{len(problems)} {noun} in {files} file(s)", err=True)
        raise SystemExit(2)
    click.echo("All specs are valid.", err=True)
