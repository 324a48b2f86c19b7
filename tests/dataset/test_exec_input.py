"""`runner exec --input` in-process: row lines on stdout (or --output), diagnostics on stderr,
exit codes 0/1/2, one ledger line per call sent, the budget, the dry run, and hostile input —
each bad case checks the exit code, that no traceback and no secret shows, and the ledger."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result

from runner.cli import cli
from runner.ledger.reading import read_records

FAKE_KEY = "sk-test-RUNNERFAKEKEY0123456789abcdefXYZ"
SPEC = (
    "name: ds\nmodel: gpt-4o-mini\nparams: {max_tokens: 20}\n"
    "inputs:\n  type: object\n  required: [n]\n"
    "  properties: {n: {type: integer}, w: {type: string, default: ''}}\n"
    "messages: [{role: user, content: 'Say {{ n }} {{ w }}.'}]\n"
)


def run(*args: str, input: str | None = None) -> Result:
    env = {"OPENAI_API_KEY": FAKE_KEY}
    return CliRunner().invoke(cli, list(args), env=env, input=input, catch_exceptions=False)


def ledger_lines(path: Path) -> list[dict[str, Any]]:
    return list(read_records(path)) if path.exists() else []


def rows_of(result: Result) -> dict[str, dict[str, Any]]:
    lines = [json.loads(line) for line in result.stdout.splitlines()]
    assert len({line["row"] for line in lines}) == len(lines)
    return {line["row"]: line for line in lines}


@pytest.fixture
def spec(tmp_path: Path) -> Path:
    path = tmp_path / "ds.yaml"
    path.write_text(SPEC, encoding="utf-8")
    return path


def clean(result: Result, ledger: Path) -> str:
    """Everything the user and the ledger can see, for the no-secret check."""
    seen = result.output + (ledger.read_text("utf-8") if ledger.exists() else "")
    assert FAKE_KEY not in seen
    assert "Traceback" not in result.output
    return seen


def test_jsonl_rows_run_once_each(tmp_path: Path, spec: Path) -> None:
    data = tmp_path / "rows.jsonl"
    data.write_text("".join(f'{{"id": "r{i}", "n": {i}}}\n' for i in range(8)), encoding="utf-8")
    led = tmp_path / "l.jsonl"
    result = run("exec", str(spec), "--input", str(data), "--mock", "--ledger", str(led))
    clean(result, led)
    assert result.exit_code == 0, result.output
    rows = rows_of(result)
    assert sorted(rows) == [f"r{i}" for i in range(8)]
    assert all(r["status"] == "ok" and r["error"] is None and r["output"] for r in rows.values())
    lines = ledger_lines(led)
    assert sorted(line["row"] for line in lines) == sorted(rows)
    assert "8 of 8 rows ok" in result.stderr and "(estimated: mock)" in result.stderr


def test_csv_with_var_defaults_and_output_file(tmp_path: Path, spec: Path) -> None:
    data = tmp_path / "rows.csv"
    data.write_text("n,w\n1,a\n2,\n", encoding="utf-8")
    led, out = tmp_path / "l.jsonl", tmp_path / "out.jsonl"
    result = run(
        "exec", str(spec), "--input", str(data), "--mock", "--ledger", str(led),
        "--var", "w=fallback", "--output", str(out),
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert result.stdout == ""
    assert sorted(json.loads(line)["row"] for line in out.read_text().splitlines()) == ["2", "3"]
    by_row = {line["row"]: line for line in ledger_lines(led)}
    assert by_row["2"]["vars"] == {"n": 1, "w": "a"}  # the row wins over --var
    assert by_row["3"]["vars"] == {"n": 2, "w": "fallback"}  # an empty cell is absent


def test_stdin_rows(tmp_path: Path, spec: Path) -> None:
    led = tmp_path / "l.jsonl"
    result = run(
        "exec", str(spec), "--input", "-", "--mock", "--ledger", str(led), input='{"n": 1}\n'
    )
    assert result.exit_code == 0, result.output
    assert list(rows_of(result)) == ["1"] and len(ledger_lines(led)) == 1


def test_a_row_that_breaks_the_inputs_schema_fails_alone(tmp_path: Path, spec: Path) -> None:
    data = tmp_path / "rows.jsonl"
    data.write_text('{"n": 1}\n{"n": "two"}\n{"n": 3}\n', encoding="utf-8")
    led = tmp_path / "l.jsonl"
    result = run("exec", str(spec), "--input", str(data), "--mock", "--ledger", str(led))
    clean(result, led)
    assert result.exit_code == 1
    rows = rows_of(result)
    assert rows["2"]["status"] == "error" and rows["2"]["error"]["kind"] == "inputs"
    assert rows["1"]["status"] == rows["3"]["status"] == "ok"
    assert len(ledger_lines(led)) == 2  # nothing was sent for the bad row
    assert "failed rows (1): 2" in result.stderr


BAD_FILES = {
    "malformed line": ("rows.jsonl", '{"n": 1}\n{"n": \n', "rows.jsonl:2: not valid JSON"),
    "not an object": ("rows.jsonl", '{"n": 1}\n"text"\n', "rows.jsonl:2: a row must be"),
    "NaN": ("rows.jsonl", '{"n": 1}\n{"n": NaN}\n', "rows.jsonl:2: NaN is not a JSON value"),
    "empty": ("rows.jsonl", "", "no rows"),
    "not utf-8": ("rows.jsonl", b'{"n": 1}\n{"w": "caf\xe9"}\n', "rows.jsonl:2: not valid UTF-8"),
    "duplicate keys": ("rows.jsonl", '{"id": 1, "n": 1}\n{"id": "1", "n": 2}\n', "used twice"),
    "missing column": ("rows.csv", "w\nx\n", "rows.csv:1: no column for n"),
    "missing file": ("", "", "no such file"),
}


@pytest.mark.parametrize("case", sorted(BAD_FILES))
def test_bad_files_stop_before_anything_is_sent(tmp_path: Path, spec: Path, case: str) -> None:
    name, data, message = BAD_FILES[case]
    path = tmp_path / (name or "absent.jsonl")
    if name:
        path.write_bytes(data.encode() if isinstance(data, str) else data)
    led = tmp_path / "l.jsonl"
    result = run("exec", str(spec), "--input", str(path), "--mock", "--ledger", str(led))
    clean(result, led)
    assert result.exit_code == 2
    assert message in result.stderr
    assert result.stdout == ""
    assert ledger_lines(led) == []


def test_no_key_stops_the_run_at_the_first_row(tmp_path: Path, spec: Path) -> None:
    data = tmp_path / "rows.jsonl"
    data.write_text('{"n": 1}\n{"n": 2}\n', encoding="utf-8")
    led = tmp_path / "l.jsonl"
    result = CliRunner().invoke(
        cli, ["exec", str(spec), "--input", str(data), "--ledger", str(led)], env={}
    )
    assert result.exit_code == 2
    assert "no API key" in result.stderr and "Traceback" not in result.output
    assert ledger_lines(led) == []


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--resume"], "--resume needs --input"),
        (["--max-cost", "1"], "--max-cost needs --input"),
        (["--input", "x.jsonl", "--max-cost", "lots"], "not a positive amount"),
        (["--input", "x.jsonl", "--max-cost", "-1"], "not a positive amount"),
        (["--input", "x.jsonl", "--concurrency", "0"], "--concurrency"),
        (["--input", "x.jsonl", "--output", "x.jsonl"], "is the input file"),
    ],
)
def test_bad_flags_are_usage_errors(
    tmp_path: Path, spec: Path, args: list[str], message: str
) -> None:
    (tmp_path / "x.jsonl").write_text('{"n": 1}\n', encoding="utf-8")
    led = tmp_path / "l.jsonl"
    result = run("exec", str(spec), "--mock", "--ledger", str(led), *args)
    clean(result, led)
    assert result.exit_code == 2
    assert (tmp_path / "x.jsonl").read_text(encoding="utf-8") == '{"n": 1}\n'
    assert message in result.stderr
    assert ledger_lines(led) == []


def test_the_budget_skips_the_rows_it_cannot_afford(tmp_path: Path, spec: Path) -> None:
    data = tmp_path / "rows.jsonl"
    data.write_text("".join(f'{{"n": {i}}}\n' for i in range(10)), encoding="utf-8")
    led = tmp_path / "l.jsonl"
    dry = run("exec", str(spec), "--input", str(data), "--dry-run", "--json")
    one_row = json.loads(dry.stdout)["max_cost_usd"] / 10
    result = run(
        "exec", str(spec), "--input", str(data), "--mock", "--ledger", str(led),
        "--concurrency", "1", "--max-cost", f"{one_row * 2.5:.10f}",
    )  # fmt: skip
    clean(result, led)
    assert result.exit_code == 1
    rows = rows_of(result)
    skipped = [r for r in rows.values() if r["status"] == "skipped"]
    assert len(rows) == 10 and len(skipped) == 10 - len(ledger_lines(led))
    assert {r["error"]["kind"] for r in skipped} == {"budget"}
    assert "the budget stopped the run" in result.stderr


def test_a_budget_with_an_unknown_worst_case_refuses_to_start(tmp_path: Path) -> None:
    spec = tmp_path / "open.yaml"
    spec.write_text(
        "name: open\nmodel: my-finetune\nmessages: [{role: user, content: 'Say {{ n }}.'}]\n",
        encoding="utf-8",
    )
    data = tmp_path / "rows.jsonl"
    data.write_text('{"n": 1}\n', encoding="utf-8")
    led = tmp_path / "l.jsonl"
    result = run(
        "exec", str(spec), "--input", str(data), "--mock", "--ledger", str(led),
        "--max-cost", "5",
    )  # fmt: skip
    clean(result, led)
    assert result.exit_code == 2
    assert "set params.max_tokens" in result.stderr
    assert ledger_lines(led) == []


def test_dry_run_counts_every_row_and_sends_nothing(tmp_path: Path, spec: Path) -> None:
    data = tmp_path / "rows.jsonl"
    data.write_text('{"id": "a", "n": 1}\n{"id": "b", "n": 22222}\n', encoding="utf-8")
    led = tmp_path / "l.jsonl"
    text = run("exec", str(spec), "--input", str(data), "--dry-run", "--ledger", str(led))
    assert text.exit_code == 0, text.output
    assert text.stdout.startswith("row a: ") and "worst-case bill $" in text.stdout
    out = run("exec", str(spec), "--input", str(data), "--dry-run", "--json", "--ledger", str(led))
    totals = json.loads(out.stdout)
    assert totals["rows"] == 2 and totals["max_output_tokens"] == 40
    per_row = [int(line.split()[2]) for line in text.stdout.splitlines()[:2]]
    assert totals["prompt_tokens"] == sum(per_row) and per_row[0] < per_row[1]
    assert totals["max_cost_usd"] > 0
    assert not led.exists()


def test_plain_progress_lines_on_stderr(tmp_path: Path, spec: Path) -> None:
    data = tmp_path / "rows.jsonl"
    data.write_text('{"n": 1}\n{"n": 2}\n', encoding="utf-8")
    result = run(
        "exec", str(spec), "--input", str(data), "--mock", "--progress-interval", "0",
    )  # fmt: skip
    assert result.exit_code == 0
    progress = [line for line in result.stderr.splitlines() if line.startswith("progress:")]
    assert progress[-1].startswith("progress: 2/2 rows · 2 ok · 0 failed")
    assert all(json.loads(line) for line in result.stdout.splitlines())


def test_resume_appends_to_the_output_file_and_runs_only_the_rest(
    tmp_path: Path, spec: Path
) -> None:
    data = tmp_path / "rows.jsonl"
    data.write_text('{"n": 1}\n{"n": "bad"}\n', encoding="utf-8")
    led, out = tmp_path / "l.jsonl", tmp_path / "out.jsonl"
    args = ["exec", str(spec), "--input", str(data), "--mock", "--ledger", str(led)]
    first = run(*args, "--output", str(out))
    assert first.exit_code == 1
    data.write_text('{"n": 1}\n{"n": 2}\n', encoding="utf-8")  # the bad row fixed
    second = run(*args, "--output", str(out), "--resume")
    assert second.exit_code == 0, second.output
    assert "(1 already ok in the ledger)" in second.stderr
    lines = [json.loads(line) for line in out.read_text().splitlines()]
    pairs = [(line["row"], line["status"]) for line in lines]
    assert sorted(pairs[:2]) == [("1", "ok"), ("2", "error")]  # the first run's lines, kept
    assert pairs[2:] == [("2", "ok")]  # then only the row that was not ok
    assert len(lines) == 3
    assert [line["row"] for line in ledger_lines(led)] == ["1", "2"]


@pytest.mark.parametrize(
    ("budget", "valid"),
    [("{max_cost_usd: 2.5}", True), ("{max_cost_usd: 0}", False), ("{max_usd: 1}", False)],
)
def test_the_spec_budget_is_checked_by_validate(tmp_path: Path, budget: str, valid: bool) -> None:
    path = tmp_path / "b.yaml"
    path.write_text(SPEC + f"budget: {budget}\n", encoding="utf-8")
    result = run("validate", str(path))
    assert result.exit_code == (0 if valid else 2), result.output
    assert "Traceback" not in result.output
    if not valid:
        assert "b.yaml:9:" in result.stdout and "budget" in result.stdout
