"""`runner init [DIR]`: a specs repository to start from (runner.scaffold writes its files, never
over one), then the example's test baseline, answered by the mock, so that the CI workflow it
writes passes before anything else is done.
"""

from __future__ import annotations

import os
from pathlib import Path

import click

_TEXT = "I love this phone; the battery lasts for days."  # the example's first case: positive


@click.command("init")
@click.argument("folder", default=".", metavar="[DIR]", type=click.Path(path_type=Path))
def init_(folder: Path) -> None:
    """Start a specs repository in DIR (default: here): an example spec, its schema and tests.

    Writes prompts/sentiment.yaml, schemas/sentiment.json, runner.yaml, requirements.txt (this
    runner, pinned), .gitignore, .github/workflows/prompts.yml (replay on pull requests,
    refresh on Mondays), a README, and tests/baseline.jsonl: the example's test cases answered
    by the mock, which CI replays. It never overwrites a file: if one of them exists, nothing
    is written and the exit status is 2.
    """
    from runner import scaffold

    written = scaffold.write_project(folder)
    passed, total = _record_baseline(folder)
    where = "here" if folder.resolve() == Path.cwd().resolve() else str(folder)
    click.echo(f"Created a specs repository {'in ' if where != 'here' else ''}{where}:")
    about = {w.path: w.about for w in written}
    about[scaffold.BASELINE] = f"the example's {total} cases as the mock answers ({passed} pass)"
    width = max(len(path) for path in about)
    for path in scaffold.planned(folder):
        click.echo(f"  {path:<{width}}  {about[path]}")
    click.echo("Next:")
    if where != "here":
        click.echo(f"  cd {folder}")
    click.echo(f'  runner exec {scaffold.EXAMPLE} --var text="{_TEXT}" --mock')
    click.echo("  runner test --replay tests/baseline.jsonl")
    click.echo('  git init && git add . && git commit -m "Prompts, tested by runner"')


def _record_baseline(folder: Path) -> tuple[int, int]:
    """Run the example's cases on the in-process mock, every line into the baseline (content
    kept, whatever the environment says, so that it can be replayed). Returns (passed, all)."""
    from runner import scaffold
    from runner.engine.session import Session
    from runner.interrupts import run_async
    from runner.settings import snapshot_environ
    from runner.testing.suite import Suite, collect

    # Only the tokenizer's cache folder is taken from the environment: RUNNER_MODEL and the
    # like must not change what the example records.
    environ = {k: v for k, v in snapshot_environ().items() if k == "RUNNER_CACHE_DIR"}
    here = Path.cwd()
    os.chdir(folder)  # the baseline's lines name the spec as the repository does: prompts/...
    try:
        collection = collect([scaffold.EXAMPLE])
        session = Session(mock=True, ledger=scaffold.BASELINE, ledger_content=True, environ=environ)

        async def run() -> list[bool]:
            async with session:
                return [r.passed for r in await Suite(session).run(collection)]

        results = run_async(run())
    finally:
        os.chdir(here)
    return sum(results), len(results)
