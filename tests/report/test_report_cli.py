"""`runner report` from the command line: defaults, several ledgers, every kind of bad input
(exit 2, one clear message, no traceback) and every kind of bad line (exit 0, one warning)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from _report_lines import record, sample_records, write_lines
from click.testing import CliRunner, Result

from runner.cli import cli
from runner.report import FIGURES, GROUP_FIELDS, build_report


def run(*args: str, env: dict[str, str] | None = None) -> Result:
    return CliRunner().invoke(cli, ["report", *args], env=env or {}, catch_exceptions=False)


@pytest.fixture
def ledger(tmp_path: Path) -> Path:
    (tmp_path / "runs").mkdir()
    return write_lines(tmp_path / "runs" / "ledger.jsonl", list(sample_records()))


def test_the_default_ledger_and_the_default_grouping(ledger: Path) -> None:
    result = run("--format", "json")
    assert result.exit_code == 0, result.output
    groups = json.loads(result.stdout)
    assert [list(g)[:2] for g in groups] == [["spec", "model"]] * 5
    assert result.stderr == ""


def test_runner_ledger_names_the_default(tmp_path: Path) -> None:
    path = write_lines(tmp_path / "elsewhere.jsonl", [record(1)])
    result = run("--format", "csv", "--by", "model", env={"RUNNER_LEDGER": str(path)})
    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines()[1].startswith("gpt-4o-mini,1,1,0,0,")


def test_several_ledgers_and_globs(tmp_path: Path) -> None:
    shards = tmp_path / "shards"
    shards.mkdir()
    for n in range(3):
        write_lines(shards / f"shard-{n}.jsonl", [record(n, model=f"m{n}")])
    extra = write_lines(tmp_path / "extra.jsonl", [record(9, model="m9")])
    result = run(
        "--ledger", "shards/*.jsonl", "--ledger", str(extra), "--by", "model", "--format", "json"
    )
    assert result.exit_code == 0, result.output
    assert [g["model"] for g in json.loads(result.stdout)] == ["m0", "m1", "m2", "m9"]


def test_the_table_on_a_pipe_is_plain_text(ledger: Path) -> None:
    result = run("--by", "spec")
    assert result.exit_code == 0
    lines = result.stdout.splitlines()
    assert lines[0].split()[:3] == ["spec", "calls", "errors"]
    assert lines[-1].startswith("12 calls · 2025-03-12 08:00 to 2025-03-14 23:59 UTC")
    assert "\x1b[" not in result.stdout


def test_the_table_on_a_terminal_is_rich(ledger: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from runner.cli.report import _print_rich

    _print_rich(build_report([str(ledger)], by=["spec"]))
    out = capsys.readouterr().out
    assert "sentiment" in out and "total" in out and "p95 ms" in out


def test_markdown_and_since(ledger: Path) -> None:
    result = run(
        "--format", "markdown", "--by", "day", "--since", "2025-03-13", "--until", "2025-03-13"
    )
    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines()[2].startswith("| 2025-03-13 | 4 |")
    assert "range 2025-03-13 00:00 to 2025-03-14 00:00" in result.stdout


def test_an_unknown_by_field(ledger: Path) -> None:
    result = run("--by", "spec,colour")
    assert result.exit_code == 2
    assert result.stdout == ""
    assert result.stderr == (
        f"Error: --by colour: unknown field; the known ones are {', '.join(GROUP_FIELDS)}\n"
    )


def test_a_since_that_does_not_parse(ledger: Path) -> None:
    result = run("--since", "last tuesday")
    assert result.exit_code == 2
    assert result.stderr.startswith("Error: --since 'last tuesday': not a duration (7d, 12h, 30m)")
    assert "Traceback" not in result.output


def test_a_glob_that_matches_nothing(ledger: Path) -> None:
    result = run("--ledger", "runs/*.json")
    assert result.exit_code == 2
    assert result.stderr == "Error: --ledger runs/*.json: the pattern matches no file\n"


def test_no_ledger_at_the_default_path(tmp_path: Path) -> None:
    result = run()
    assert result.exit_code == 2
    assert result.stderr == "Error: no ledger at runs/ledger.jsonl\n"


def test_an_sql_syntax_error_is_the_engines_message(ledger: Path) -> None:
    result = run("--sql", "SELEC count(*) FROM ledger")
    assert result.exit_code == 2
    assert result.stderr.startswith('Error: --sql: Parser Error: syntax error at or near "SELEC"')
    assert "Traceback" not in result.output and result.stdout == ""


def test_sql_prints_rows_in_the_chosen_format(ledger: Path) -> None:
    query = "SELECT status, count(*) AS n FROM ledger GROUP BY status ORDER BY status"
    result = run("--sql", query, "--format", "csv")
    assert result.exit_code == 0, result.output
    assert result.stdout == "status,n\nerror,2\ninvalid_output,1\nok,9\n"


def test_sql_takes_no_by(ledger: Path) -> None:
    result = run("--sql", "SELECT 1", "--by", "spec")
    assert result.exit_code == 2
    assert "--sql prints the query's rows: it takes no --by, --html or --price-as" in result.stderr


def test_a_line_with_a_wrong_type_is_counted_not_fatal(tmp_path: Path) -> None:
    bad = record(2)
    bad["usage"]["prompt"] = "lots"
    path = write_lines(tmp_path / "l.jsonl", [record(1), bad, record(3)])
    result = run("--ledger", str(path), "--format", "json", "--by", "")
    assert result.exit_code == 0
    assert json.loads(result.stdout)[0]["calls"] == 2
    assert result.stderr == (
        "Warning: 1 ledger line skipped: not JSON, or a field missing or wrong\n"
    )


def test_a_torn_last_line_gets_one_warning(tmp_path: Path) -> None:
    torn = json.dumps(record(3))[:80].encode()
    path = write_lines(tmp_path / "l.jsonl", [record(1), "{oops", record(2), torn])
    result = run("--ledger", str(path), "--format", "json")
    assert result.exit_code == 0
    assert result.stderr == (
        "Warning: 2 ledger lines skipped: not JSON, or a field missing or wrong; the last line "
        f"of {path} is incomplete (a write was interrupted?)\n"
    )


def test_newer_lines_are_reported(tmp_path: Path) -> None:
    path = write_lines(tmp_path / "l.jsonl", [record(1), record(2) | {"v": 2}])
    result = run("--ledger", str(path), "--format", "json", "--by", "")
    assert result.exit_code == 0
    assert json.loads(result.stdout)[0]["calls"] == 1
    assert result.stderr == (
        "Warning: 1 ledger line written by a newer runner (ledger format v2; this runner reads "
        "v1) not counted: upgrade runner to include them\n"
    )


def test_an_empty_ledger_is_said_plainly(tmp_path: Path) -> None:
    (tmp_path / "runs").mkdir()
    (tmp_path / "runs" / "ledger.jsonl").write_bytes(b"")
    result = run("--format", "json")
    assert result.exit_code == 0
    assert result.stdout == "[]\n"
    assert result.stderr == ("Note: the ledger is empty (runs/ledger.jsonl): no calls to report\n")
    table = run()
    assert table.stdout == "No calls to report.\n"


def test_html_is_written_besides_the_table(ledger: Path, tmp_path: Path) -> None:
    result = run("--html", "out/report.html", "--format", "csv")
    assert result.exit_code == 2  # the folder does not exist: found before the report is made
    assert result.stderr == (
        "Error: --html out/report.html: no such directory out (create it first)\n"
    )
    assert result.stdout == ""
    result = run("--html", "report.html", "--format", "csv")
    assert result.exit_code == 0, result.output
    assert result.stdout.startswith("spec,model," + ",".join(FIGURES[:2]))
    assert result.stderr == "Wrote report.html\n"
    page = (tmp_path / "report.html").read_text(encoding="utf-8")
    assert page.count("<svg") == 4


def test_by_variant_sets_runner_tests_variants_side_by_side(tmp_path: Path) -> None:
    """`runner test --model A --model B` marks each line with its variant: the report (and its
    HTML page) sets them side by side; lines outside a variant group under none."""
    lines = [
        record(1, variant="gpt-4o-mini", usage={"prompt": 100, "completion": 10}),
        record(2, variant="gpt-4o", model="gpt-4o", usage={"prompt": 100, "completion": 30}),
        record(3, variant="gpt-4o", model="gpt-4o"),
        record(4),
    ]
    path = write_lines(tmp_path / "l.jsonl", lines)
    result = run("--ledger", str(path), "--by", "variant", "--format", "json", "--html", "r.html")
    assert result.exit_code == 0, result.output
    groups = json.loads(result.stdout)
    assert [(g["variant"], g["calls"]) for g in groups] == [
        ("gpt-4o", 2),
        ("gpt-4o-mini", 1),
        (None, 1),
    ]
    page = (tmp_path / "r.html").read_text("utf-8")
    assert "gpt-4o-mini" in page and ">variant<" in page


# --- a table that fits the terminal -------------------------------------------------------------


def _plain(text: str) -> list[str]:
    import re

    return re.sub(r"\x1b\[[0-9;?]*[a-zA-Z]", "", text).splitlines()


def test_columns_80_fits_by_dropping_columns_in_the_documented_order(
    ledger: Path, in_terminal: Any
) -> None:
    from runner.report import DROP_ORDER

    wide = run(env={"COLUMNS": "80"})  # a pipe keeps every column, whatever COLUMNS says
    assert max(len(line) for line in wide.stdout.splitlines()) > 80 and wide.stderr == ""
    shown, err, status = in_terminal(["report"], columns=80)
    assert status == 0, err
    lines = _plain(shown)
    assert "─" in shown and max(len(line) for line in lines) <= 80  # rich's table, fitted
    headers = [h.strip() for h in wide.stdout.splitlines()[0].split("  ") if h.strip()]
    kept = [h.strip() for h in lines[0].split("  ") if h.strip()]
    dropped = [h for h in DROP_ORDER if h in headers and h not in kept]
    # The first of the documented order that the table has, in that order.
    assert dropped and dropped == [h for h in DROP_ORDER if h in headers][: len(dropped)]
    assert kept[:3] == ["spec", "model", "calls"] and "cost" in kept and "p50 ms" in kept
    assert err == (
        f"Note: to fit 80 columns, the table left out {', '.join(dropped)} (a wider terminal, "
        "--format csv or --format json shows everything)\n"
    )
    shown, _, _ = in_terminal(["report", "--format", "csv"], columns=80)
    assert _plain(shown)[0].split(",")[:3] == ["spec", "model", "calls"]
    assert len(_plain(shown)[0].split(",")) == 2 + len(FIGURES)  # other formats: everything


def test_a_very_narrow_table_cuts_names_not_figures(tmp_path: Path, in_terminal: Any) -> None:
    name = "a-spec-with-a-really-long-name-indeed"
    (tmp_path / "runs").mkdir()
    write_lines(tmp_path / "runs" / "ledger.jsonl", [record(1, spec={"name": name})])
    shown, err, _ = in_terminal(["report", "--by", "spec"], columns=50)
    lines = _plain(shown)
    assert max(len(line) for line in lines) <= 50
    row = next(line for line in lines if line.startswith("a-spec-"))
    assert "…" in row and name not in row
    assert row.rstrip().endswith("800")  # p50 ms: a figure is never cut
    assert "cut long names short" in err
