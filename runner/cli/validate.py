"""`runner validate`: check specs, their output schemas and templates, offline."""

from __future__ import annotations

import click

from runner.cli._common import json_text


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
    else:
        for problem in problems:
            click.echo(str(problem))
    if problems:
        files = len({p.file for p in problems})
        noun = "problem" if len(problems) == 1 else "problems"
        click.echo(f"{len(problems)} {noun} in {files} file(s)", err=True)
        raise SystemExit(2)
    click.echo("All specs are valid.", err=True)
