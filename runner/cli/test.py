"""`runner test`: run the specs' `tests:` cases (live, --mock, or replayed from a ledger), print a
line per case and the closing `N passed, N failed`, and write JUnit XML or a Markdown summary
for CI. Exit 0 all passed, 1 a case failed, 2 bad usage, 5 no case selected.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import click

from runner.cli._common import (
    CacheSettings,
    cache_options,
    cache_settings,
    colour,
    open_session,
)
from runner.errors import ConfigError

if TYPE_CHECKING:
    from runner.engine.session import Session
    from runner.testing.suite import CaseResult, Collection

EXIT_NO_TESTS = 5  # as pytest: nothing was selected, so nothing was tested
_FORMATS = ("text", "json", "github", "markdown")


def variant_options(f: Any) -> Any:
    """--model (repeatable), --repeat and --comparison: models side by side, runs per case."""
    f = click.option(
        "--comparison",
        "comparison_path",
        default=None,
        metavar="FILE",
        help="Also write the comparison table (a row per variant) to FILE: .json, .md, .html "
        "or text.",
    )(f)
    f = click.option(
        "--repeat",
        type=click.IntRange(min=1),
        default=1,
        show_default=True,
        help="Run each case N times: a pass rate per case (95% Wilson interval), checked "
        "against its min_pass_rate.",
    )(f)
    return click.option(
        "--model",
        "models",
        multiple=True,
        metavar="MODEL",
        help="Run every case on this model (repeatable: side by side; replaces the specs' "
        "variants). Judges keep theirs.",
    )(f)


@click.command("test")
@click.argument("targets", nargs=-1, metavar="[SPEC_OR_DIR]...")
@click.option(
    "-k",
    "pattern",
    default=None,
    metavar="PATTERN",
    help="Only cases whose spec::case contains PATTERN (or matches it as a glob).",
)
@click.option(
    "--mock/--no-mock",
    default=None,
    help="Answer from the built-in mock server (or RUNNER_MOCK=1).",
)
@click.option(
    "--replay",
    "replay_path",
    default=None,
    metavar="LEDGER",
    help="Answer each call from LEDGER's latest ok line with the same request: no network, no key.",
)
@click.option(
    "--record-missing",
    is_flag=True,
    help="With --replay: send calls LEDGER lacks (live or --mock) and append them to it.",
)
@click.option(
    "--refresh",
    "refresh_path",
    default=None,
    metavar="BASELINE",
    help="Send every case (live, or --mock), append the answers to BASELINE and show what "
    "changed from it.",
)
@click.option(
    "--ledger",
    "ledger_path",
    default=None,
    metavar="PATH",
    help="Ledger for this run (default runs/ledger.jsonl, or RUNNER_LEDGER).",
)
@click.option(
    "--junit", "junit_path", default=None, metavar="FILE", help="Also write JUnit XML to FILE."
)
@click.option(
    "--format",
    "format_",
    type=click.Choice(_FORMATS),
    default="text",
    show_default=True,
    help="How to print the results.",
)
@click.option(
    "--compare",
    "compare_path",
    default=None,
    metavar="BASELINE",
    help="Set each case's output beside BASELINE's latest ok output for the same spec and case.",
)
@click.option(
    "--concurrency",
    type=click.IntRange(1, 256),
    default=None,
    help="Calls in flight at once, per spec (default: each spec's rate.concurrency).",
)
@variant_options
@cache_options
def test_(
    targets: tuple[str, ...],
    pattern: str | None,
    mock: bool | None,
    replay_path: str | None,
    record_missing: bool,
    refresh_path: str | None,
    ledger_path: str | None,
    junit_path: str | None,
    format_: str,
    compare_path: str | None,
    concurrency: int | None,
    models: tuple[str, ...],
    repeat: int,
    comparison_path: str | None,
    **cache_flags: Any,
) -> None:
    """Run the test cases of specs (default: every spec under prompts/ with `tests:`).

    Each call is in the ledger like any other. Exit 0 when every case passed, 1 when one
    failed, 2 on bad usage or a bad spec, 5 when no case was selected.
    """
    from runner.testing.suite import collect

    if record_missing and replay_path is None:
        raise click.UsageError("--record-missing needs --replay LEDGER (the ledger to add to)")
    cache = cache_settings(cache_flags)
    if cache is not None and replay_path is not None:
        raise click.UsageError(
            "--cache answers from a ledger and --replay from another: use one"
            + (" (--record-missing tops up --replay's ledger)" if record_missing else "")
        )
    if cache is not None and refresh_path is not None:
        raise click.UsageError("--refresh sends every case: it takes no --cache")
    if refresh_path is not None and replay_path is not None:
        raise click.UsageError(
            "--refresh sends every case: it takes no --replay (use --replay with "
            "--record-missing to send only the cases the baseline lacks)"
        )
    baseline = refresh_path or (replay_path if record_missing else None)
    _check_outputs(junit_path, baseline, format_)
    if comparison_path is not None:
        check_writable(comparison_path, "--comparison")
    collection = collect(list(targets), pattern)
    for path in collection.without_tests:
        click.echo(f"Note: {path} has no tests: nothing to run there.", err=True)
    if not collection.count:
        why = f"no test case matches -k {pattern!r}" if pattern else "no test cases to run"
        click.echo(f"Note: {why}.", err=True)
        if format_ == "json":
            click.echo("[]")
        click.echo("0 passed, 0 failed", err=format_ == "json")
        raise SystemExit(EXIT_NO_TESTS)
    session, sources = _open(
        replay_path,
        record_missing,
        compare_path,
        mock,
        ledger_path,
        cache=cache,
        refresh_path=refresh_path,
    )
    _warn_unreplayable(session, collection, record_missing or refresh_path is not None)
    if session.settings_for(collection.specs[0].spec).mock:
        click.echo("Note: mock mode: the built-in mock server answers, not a real model.", err=True)
    from runner.interrupts import run_async
    from runner.spec.model import Variant

    sources["variants"] = [Variant.named(m, {}) for m in dict.fromkeys(models)]
    sources["repeat"] = repeat
    results = run_async(_run(session, collection, sources, concurrency, format_))
    _finish(results, format_, junit_path, sources, comparison_path, session)


def _check_outputs(junit_path: str | None, baseline: str | None, format_: str) -> None:
    """Every file the run will write, checked before anything is sent: a path that cannot be
    written is exit 2 now, not a lost report after every call was paid for."""
    from runner.settings import snapshot_environ

    if junit_path is not None:
        check_writable(junit_path, "--junit")
    if baseline is not None:
        check_writable(baseline, "the baseline (the calls sent are added to it)")
    summary = snapshot_environ().get("GITHUB_STEP_SUMMARY") if format_ == "markdown" else None
    if summary:
        check_writable(summary, "GITHUB_STEP_SUMMARY")


def check_writable(path: str, what: str) -> None:
    """Raise ConfigError unless `path` names a regular file that can be opened for writing, or
    a new file in an existing folder. Nothing is left behind: no folder is created, and a file
    created to find out is removed."""
    import os
    import stat

    where = f"{what} {path}"
    folder = os.path.dirname(path) or "."
    if not os.path.isdir(folder):
        why = "not a folder" if os.path.exists(folder) else "no such folder (it is not created)"
        raise ConfigError(f"{where}: cannot write: {os.path.dirname(path)}: {why}")
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
        created = True
    except FileExistsError:
        created = False
        try:
            fd = os.open(path, os.O_WRONLY | os.O_NONBLOCK)
        except OSError as exc:
            raise ConfigError(f"{where}: cannot write: {exc.strerror}") from None
    except OSError as exc:
        raise ConfigError(f"{where}: cannot write: {exc.strerror}") from None
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise ConfigError(f"{where}: cannot write: not a regular file")
    finally:
        os.close(fd)
        if created:
            os.unlink(path)


def _open(
    replay_path: str | None,
    record_missing: bool,
    compare_path: str | None,
    mock: bool | None,
    ledger_path: str | None,
    cache: CacheSettings | None = None,
    refresh_path: str | None = None,
) -> tuple[Session, dict[str, Any]]:
    from runner.ledger.replay import ReplaySource
    from runner.ledger.store import Ledger
    from runner.testing.replay import BaselineRecorder

    sources: dict[str, Any] = {}
    if replay_path is not None:
        sources["replay"] = ReplaySource(replay_path, record_missing=record_missing)
        if record_missing:
            sources["recorder"] = BaselineRecorder(Ledger(replay_path))
    if refresh_path is not None:
        # Nothing is replayed; every answer is appended to the baseline (the latest line of a
        # request or case is the one replay and --compare read), and compared with the
        # baseline as it was before the run (indexed now, before anything is appended).
        sources["recorder"] = BaselineRecorder(Ledger(refresh_path))
        if compare_path is None:
            sources["compare"] = ReplaySource(refresh_path, record_missing=True)
    if compare_path is not None:
        sources["compare"] = ReplaySource(compare_path)
    session = open_session(
        mock=mock,
        ledger=ledger_path,
        replay=sources.get("replay"),
        cache=None if cache is None else cache.source(ledger_path),
    )
    return session, sources


def _warn_unreplayable(session: Session, collection: Collection, record_missing: bool) -> None:
    if not record_missing:
        return
    for spec_cases in collection.specs:
        spec = spec_cases.spec
        if not session.settings_for(spec).ledger_content:
            click.echo(
                f"{colour('Warning:', 'yellow', err=True)} {spec.name} keeps no content in the "
                "ledger (ledger: {content: false}),"
                " so the lines recorded for it cannot be replayed; set RUNNER_LEDGER_CONTENT=1 "
                "to record a replayable baseline",
                err=True,
            )


async def _run(
    session: Session,
    collection: Collection,
    sources: dict[str, Any],
    concurrency: int | None,
    format_: str,
) -> list[CaseResult]:
    from runner.testing.formats import text
    from runner.testing.suite import Suite

    def show(results: list[CaseResult]) -> None:
        if format_ == "text":
            click.echo("\n".join(_coloured(line) for line in text(results).split("\n")))

    suite = Suite(
        session,
        concurrency=concurrency,
        replay=sources.get("replay"),
        compare=sources.get("compare"),
        recorder=sources.get("recorder"),
        variants=sources.get("variants", ()),
        repeat=sources.get("repeat", 1),
    )
    async with session:
        return await suite.run(collection, on_spec=show)


# A case line starts with its verdict (formats.text); only that word is coloured, and only
# on a terminal without NO_COLOR, so logs and pipes get the plain text.
_VERDICT_COLOURS = {"PASS": "green", "FAIL": "red", "SKIP": "yellow"}


def _coloured(line: str) -> str:
    word = line[:4]
    if word in _VERDICT_COLOURS and line[4:6] == "  ":
        return colour(word, _VERDICT_COLOURS[word], bold=word == "FAIL") + line[4:]
    return line


def _finish(
    results: list[CaseResult],
    format_: str,
    junit_path: str | None,
    sources: dict[str, Any],
    comparison_path: str | None = None,
    session: Session | None = None,
) -> None:
    from runner.settings import snapshot_environ
    from runner.testing import formats
    from runner.testing.junit import write_junit

    closing = formats.summary_line(results)
    side_by_side = _side_by_side(results, format_, comparison_path)
    if format_ == "json":
        click.echo(formats.as_json(results))
    elif format_ == "github":
        click.echo(formats.github(results))
    elif format_ == "markdown":
        table = formats.markdown(results) + side_by_side
        click.echo(table)
        summary_file = snapshot_environ().get("GITHUB_STEP_SUMMARY")
        if summary_file:
            try:
                with open(summary_file, "a", encoding="utf-8") as f:
                    f.write(table + "\n\n" + closing + "\n")
            except OSError as exc:
                raise ConfigError(
                    f"GITHUB_STEP_SUMMARY {summary_file}: cannot write: {exc.strerror}"
                ) from exc
    if junit_path is not None:
        write_junit(junit_path, results)
    if format_ in ("text", "github") and side_by_side:
        click.echo(side_by_side)
    if session is not None and session.stats.replayed and sources.get("replay") is None:
        n = session.stats.replayed
        click.echo(
            f"Cache: {n} call{'s' if n != 1 else ''} answered from the ledger, nothing sent "
            f"(${session.stats.saved_usd:.6f} not spent again).",
            err=format_ == "json",
        )
    recorder = sources.get("recorder")
    if recorder is not None and recorder.recorded:
        n = recorder.recorded
        click.echo(
            f"Recorded {n} call{'s' if n != 1 else ''} in {recorder.baseline.path}.", err=True
        )
    failed = any(r.failed for r in results)
    click.echo(
        colour(closing, "red" if failed else "green", err=format_ == "json"), err=format_ == "json"
    )
    if failed:
        raise SystemExit(1)


def _side_by_side(results: list[CaseResult], format_: str, path: str | None) -> str:
    """The comparison table (a row per variant) and the failing and flaky cases, when the run
    had variants or repeats, in the run's format; written to --comparison FILE too."""
    from runner.testing import comparison, formats

    if path is not None:
        try:
            with open(path, "w", encoding="utf-8") as f:
                f.write(comparison.render_comparison(results, path))
        except OSError as exc:
            raise ConfigError(f"--comparison {path}: cannot write: {exc.strerror}") from exc
    if format_ == "json" or not any(r.variant is not None or r.runs > 1 for r in results):
        return ""
    verdicts = formats.verdicts(results)
    if format_ == "markdown":
        listed = [f"- {line.strip()}" if line.startswith(" ") else f"\n{line}" for line in verdicts]
        return "\n".join(["", comparison.comparison_markdown(results), *listed, ""])
    return "\n".join(["", comparison.comparison_text(results), *verdicts])
