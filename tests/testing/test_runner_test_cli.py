"""`runner test` end to end (in-process, --mock or --replay, no key, no network): the line per
case and the closing `N passed, N failed`, exit codes, ledger line counts, JUnit, the formats,
--compare, --record-missing, and every bad input as an exit code without a traceback."""

from __future__ import annotations

import json
import shutil
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result

from runner.cli import cli
from runner.ledger.reading import read_records
from runner.spec.load import load_spec

ROOT = Path(__file__).resolve().parents[2]
# Every test case of the example specs (9 when this was written).
CASES = sum(len(load_spec(p).tests) for p in (ROOT / "prompts").glob("*.yaml"))

ECHO = """\
name: echo
model: gpt-4o-mini
inputs:
  type: object
  properties: {word: {type: string, minLength: 2}}
  required: [word]
messages:
  - {role: user, content: "Say {{ word }}"}
tests:
  - name: hi
    vars: {word: hi}
    expect:
      - {max_tokens: 10000}
  - name: short
    vars: {word: x}
  - name: impossible
    vars: {word: yo}
    expect:
      - {text_contains: "this text is not in any mock answer"}
"""


def run(*args: str, env: dict[str, str] | None = None) -> Result:
    return CliRunner().invoke(cli, list(args), env=env or {}, catch_exceptions=False)


def lines(path: Path) -> list[dict[str, Any]]:
    return list(read_records(path)) if path.exists() else []


def record_city_then_change_its_prompt(project: Path) -> None:
    """Record the city cases into base.jsonl (with --mock), then edit the city prompt."""
    run(
        "test",
        "--mock",
        "-k",
        "city",
        "--replay",
        "base.jsonl",
        "--record-missing",
        "--ledger",
        "a.jsonl",
        env={"RUNNER_LEDGER_CONTENT": "1"},
    )
    city = project / "prompts" / "city.yaml"
    city.write_text(city.read_text("utf-8").replace("Tell me about", "Tell me all about"), "utf-8")


@pytest.fixture
def project(tmp_path: Path) -> Path:
    """A copy of the example prompts and schemas in the current directory (tmp_path)."""
    shutil.copytree(ROOT / "prompts", tmp_path / "prompts")
    shutil.copytree(ROOT / "schemas", tmp_path / "schemas")
    (tmp_path / "pyproject.toml").write_text("", encoding="utf-8")  # the project's root
    return tmp_path


@pytest.fixture
def echo(tmp_path: Path) -> Path:
    path = tmp_path / "echo" / "echo.yaml"
    path.parent.mkdir()
    path.write_text(ECHO, encoding="utf-8")
    return path


def test_mock_run_prints_a_line_per_case_and_the_closing_line(echo: Path, tmp_path: Path) -> None:
    ledger = tmp_path / "run.jsonl"
    result = run("test", str(echo), "--mock", "--ledger", str(ledger))
    assert result.exit_code == 1, result.output
    out = result.stdout.splitlines()
    assert out[-1] == "1 passed, 2 failed"
    assert out[0].startswith("PASS  echo::hi  $") and out[0].endswith(" ms")
    assert out[1] == "FAIL  echo::short  -  -"
    assert out[2] == (
        f"    the call failed: inputs: {echo}: the variables do not match the spec: /word: must "
        "be at least 2 characters long, got 1"
    )
    assert out[3].startswith("FAIL  echo::impossible  $")
    assert 'text_contains: expected text containing "this text is not' in out[4]
    assert "Traceback" not in result.output
    # The case with bad vars sent nothing: two calls, two lines.
    calls = sorted((r["case"], r["status"]) for r in lines(ledger))  # in completion order
    assert calls == [("hi", "ok"), ("impossible", "ok")]


def test_bad_case_vars_are_still_refused_by_validate(echo: Path) -> None:
    result = run("validate", str(echo))
    assert result.exit_code == 2
    assert "test 'short': the vars do not match inputs" in result.output


def test_default_target_is_prompts_and_specs_without_tests_are_said(project: Path) -> None:
    (project / "prompts" / "notests.yaml").write_text(
        "model: gpt-4o-mini\nmessages: [{role: user, content: hi}]\n", encoding="utf-8"
    )
    result = run("test", "--mock", "--ledger", "run.jsonl")
    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines()[-1] == f"{CASES} passed, 0 failed"
    assert "prompts/notests.yaml has no tests" in result.stderr
    assert len(lines(project / "run.jsonl")) == CASES


def test_k_selects_cases_and_matching_nothing_exits_5(project: Path) -> None:
    result = run("test", "--mock", "-k", "city::p", "--ledger", "run.jsonl")
    assert result.exit_code == 0
    assert result.stdout.splitlines() == [result.stdout.splitlines()[0], "1 passed, 0 failed"]
    result = run("test", "--mock", "-k", "sentiment::[hf]*", "--ledger", "run.jsonl")
    assert result.stdout.splitlines()[-1] == "2 passed, 0 failed"
    result = run("test", "--mock", "-k", "no-such-case", "--ledger", "run.jsonl")
    assert result.exit_code == 5
    assert result.stdout == "0 passed, 0 failed\n"
    assert "no test case matches -k 'no-such-case'" in result.stderr
    result = run("test", "--mock", "-k", "no-such-case", "--format", "json")
    assert result.exit_code == 5 and json.loads(result.stdout) == []
    assert result.stderr.splitlines()[-1] == "0 passed, 0 failed"
    assert len(lines(project / "run.jsonl")) == 3


def test_record_then_replay_with_no_key_and_no_network(project: Path) -> None:
    env = {"RUNNER_LEDGER_CONTENT": "1"}
    first = run(
        "test",
        "--mock",
        "--replay",
        "base.jsonl",
        "--record-missing",
        "--ledger",
        "a.jsonl",
        env=env,
    )
    assert first.exit_code == 0, first.output
    assert f"Recorded {CASES} calls in base.jsonl." in first.stderr
    assert len(lines(project / "base.jsonl")) == CASES
    # Without --mock and without a key, only a replay can answer.
    second = run("test", "--replay", "base.jsonl", "--ledger", "b.jsonl")
    assert second.exit_code == 0, second.output
    assert second.stdout.splitlines()[-1] == f"{CASES} passed, 0 failed"
    replayed = lines(project / "b.jsonl")
    assert len(replayed) == CASES and all("replayed" in r for r in replayed)
    recorded = {r["id"]: r for r in lines(project / "base.jsonl")}
    for line in replayed:
        origin = recorded[line["replayed"]["id"]]
        assert line["cost"] == origin["cost"] and line["usage"] == origin["usage"]
        assert line["request_sha256"] == origin["request_sha256"]
    # Recording again adds nothing: every request is in the baseline now.
    third = run(
        "test",
        "--mock",
        "--replay",
        "base.jsonl",
        "--record-missing",
        "--ledger",
        "c.jsonl",
        env=env,
    )
    assert third.exit_code == 0 and "Recorded" not in third.stderr
    assert len(lines(project / "base.jsonl")) == CASES


def test_a_changed_prompt_fails_replay_with_the_diff(project: Path) -> None:
    record_city_then_change_its_prompt(project)
    result = run("test", "-k", "city", "--replay", "base.jsonl", "--ledger", "b.jsonl")
    assert result.exit_code == 1
    out = result.stdout
    assert "FAIL  city::paris  -  -" in out
    assert "replay: request changed since it was recorded" in out
    assert "-Tell me about Paris: its country" in out
    assert "+Tell me all about Paris: its country" in out
    assert out.splitlines()[-1] == "0 passed, 2 failed"
    assert not (project / "b.jsonl").exists()  # nothing was sent
    assert "Traceback" not in result.output


def test_a_missing_replay_ledger_is_exit_2(project: Path) -> None:
    result = run("test", "--replay", "nowhere.jsonl", "--ledger", "run.jsonl")
    assert result.exit_code == 2
    assert "Error: no replay ledger at nowhere.jsonl" in result.stderr
    assert "Traceback" not in result.output
    assert not (project / "run.jsonl").exists()


def test_record_missing_needs_replay(project: Path) -> None:
    result = run("test", "--mock", "--record-missing")
    assert result.exit_code == 2 and "--record-missing needs --replay" in result.output


def test_a_torn_replay_ledger_warns_once_and_goes_on(project: Path) -> None:
    env = {"RUNNER_LEDGER_CONTENT": "1"}
    run(
        "test",
        "--mock",
        "-k",
        "city",
        "--replay",
        "base.jsonl",
        "--record-missing",
        "--ledger",
        "a.jsonl",
        env=env,
    )
    base = project / "base.jsonl"
    base.write_bytes(b"garbage\n" + base.read_bytes() + b'{"v":1,"id":"torn')
    result = run("test", "-k", "city", "--replay", "base.jsonl", "--ledger", "b.jsonl")
    assert result.exit_code == 0, result.output
    assert result.stderr.count("Warning:") == 1
    assert "2 torn or unreadable lines skipped (line 1, 4)" in result.stderr
    assert len(lines(project / "b.jsonl")) == 2


def test_a_judge_without_a_verdict_is_refused_at_validate(echo: Path) -> None:
    judge = echo.parent / "bad-judge.yaml"
    judge.write_text(
        "model: gpt-4o-mini\n"
        "messages: [{role: user, content: '{{ output }}{{ text }}{{ vars }}'}]\n"
        "output:\n  schema: {type: object, properties: {ok: {type: boolean}}, required: [ok],"
        " additionalProperties: false}\n",
        encoding="utf-8",
    )
    echo.write_text(ECHO.replace("{max_tokens: 10000}", "{judge: bad-judge.yaml}"), "utf-8")
    for command in (("validate", str(echo)), ("test", str(echo), "--mock", "--ledger", "x.jsonl")):
        result = run(*command)
        assert result.exit_code == 2
        assert "judge bad-judge.yaml: its output schema must have a required boolean 'pass'" in (
            result.output
        )
        assert "Traceback" not in result.output
    assert not (echo.parent.parent / "x.jsonl").exists()


@pytest.mark.parametrize("verdict", [True, False])
def test_a_judge_decides_and_its_cost_counts(project: Path, echo: Path, verdict: bool) -> None:
    judge = (project / "prompts" / "judge.yaml").read_text("utf-8")
    # The mock answers by the schema: an enum of one value fixes the verdict.
    judge = judge.replace(
        "{type: boolean, description:",
        f"{{type: boolean, enum: [{str(verdict).lower()}], description:",
    )
    (echo.parent / "judge.yaml").write_text(judge, encoding="utf-8")
    echo.write_text(ECHO.replace("{max_tokens: 10000}", "{judge: judge.yaml}"), "utf-8")
    result = run(
        "test", str(echo), "-k", "hi", "--mock", "--ledger", "run.jsonl", "--format", "json"
    )
    [case] = json.loads(result.stdout)
    assert case["status"] == ("passed" if verdict else "failed")
    records = lines(project / "run.jsonl")
    assert [(r["spec"]["name"], r["case"]) for r in records] == [
        ("echo", "hi"),
        ("judge", "echo/hi"),
    ]
    total = sum(r["cost"]["usd"] for r in records)
    assert case["cost_usd"] == pytest.approx(total)
    assert case["ledger_ids"] == [r["id"] for r in records]
    if not verdict:
        assert case["failures"][0]["what"] == "judge judge.yaml"
        assert case["failures"][0]["actual"].startswith("pass: false (")


def test_junit_is_well_formed_with_failures_and_costs(echo: Path, tmp_path: Path) -> None:
    (tmp_path / "out").mkdir()  # the folder must exist: runner creates none
    result = run("test", str(echo), "--mock", "--ledger", "run.jsonl", "--junit", "out/junit.xml")
    assert result.exit_code == 1
    root = ET.parse(tmp_path / "out" / "junit.xml").getroot()
    assert root.tag == "testsuites" and root.get("tests") == "3" and root.get("failures") == "2"
    cases = root.findall("./testsuite/testcase")
    assert [(c.get("classname"), c.get("name")) for c in cases] == [
        ("echo", "hi"),
        ("echo", "short"),
        ("echo", "impossible"),
    ]
    assert cases[0].find("failure") is None
    cost = cases[0].find("./properties/property[@name='cost_usd']")
    assert cost is not None and float(cost.get("value") or "nan") > 0
    failure = cases[2].find("failure")
    assert failure is not None and "expected: text containing" in (failure.text or "")
    assert float(cases[2].get("time") or "nan") >= 0


def test_json_format_is_a_list_and_the_closing_line_goes_to_stderr(echo: Path) -> None:
    result = run("test", str(echo), "--mock", "--ledger", "run.jsonl", "--format", "json")
    cases = json.loads(result.stdout)
    assert [c["case"] for c in cases] == ["hi", "short", "impossible"]
    assert [c["status"] for c in cases] == ["passed", "failed", "failed"]
    assert result.stderr.splitlines()[-1] == "1 passed, 2 failed"


def test_github_format_annotates_the_failing_line(echo: Path) -> None:
    result = run("test", str(echo), "--mock", "--ledger", "run.jsonl", "--format", "github")
    annotations = [line for line in result.stdout.splitlines() if line.startswith("::error ")]
    assert len(annotations) == 2
    assert annotations[0].startswith(f"::error file={echo},line=14,title=echo%3A%3Ashort::")
    assert annotations[1].startswith(f"::error file={echo},line=19,title=echo%3A%3Aimpossible::")
    assert result.stdout.splitlines()[-1] == "1 passed, 2 failed"


def test_markdown_compare_and_the_job_summary(project: Path) -> None:
    record_city_then_change_its_prompt(project)
    summary = project / "summary.md"
    result = run(
        "test",
        "-k",
        "city",
        "--mock",
        "--compare",
        "base.jsonl",
        "--format",
        "markdown",
        "--ledger",
        "b.jsonl",
        env={"GITHUB_STEP_SUMMARY": str(summary)},
    )
    out = result.stdout
    assert out.startswith("### runner test: ")
    assert "| ✅ | city | paris |" in out or "| ❌ | city | paris |" in out
    assert "| output | Δ cost | Δ latency |" in out
    rows = [line for line in out.splitlines() if line.startswith("| ") and "city" in line]
    assert len(rows) == 2 and all(" changed " in r or " unchanged " in r for r in rows)
    assert out.splitlines()[-1] == result.stdout.splitlines()[-1]
    assert summary.read_text("utf-8").startswith("### runner test: ")
    new = run(
        "test", "-k", "sentiment::flat", "--mock", "--compare", "base.jsonl", "--ledger", "b.jsonl"
    )
    assert "  new" in new.stdout.splitlines()[0]


def test_a_skipped_case_is_said_counted_and_not_sent(echo: Path, tmp_path: Path) -> None:
    echo.write_text(
        ECHO.replace("  - name: impossible\n", "  - name: impossible\n    skip: flaky upstream\n"),
        "utf-8",
    )
    result = run(
        "test", str(echo), "--mock", "-k", "i", "--ledger", "run.jsonl", "--junit", "j.xml"
    )
    assert result.exit_code == 0, result.output
    out = result.stdout.splitlines()
    assert out[1] == "SKIP  echo::impossible  (flaky upstream)"
    assert out[-1] == "1 passed, 0 failed, 1 skipped"
    assert [r["case"] for r in lines(tmp_path / "run.jsonl")] == ["hi"]
    root = ET.parse(tmp_path / "j.xml").getroot()
    assert root.get("skipped") == "1"
    skipped = root.find("./testsuite/testcase[@name='impossible']/skipped")
    assert skipped is not None and skipped.get("message") == "flaky upstream"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("test", "nowhere.yaml"), "Error: nowhere.yaml: no such file or directory"),
        (("test",), "Error: no prompts/ folder here: name the specs or folders to test"),
        (("test", "bad.yaml"), "Error: bad.yaml:2:1: invalid YAML"),
        (("test", "--concurrency", "0"), "Invalid value for '--concurrency'"),
        (("test", "--format", "xml"), "Invalid value for '--format'"),
    ],
)
def test_bad_usage_is_exit_2_without_a_traceback(
    tmp_path: Path, args: tuple[str, ...], message: str
) -> None:
    (tmp_path / "bad.yaml").write_text("name: [\n", encoding="utf-8")
    result = run(*args, "--mock", "--ledger", "run.jsonl")
    assert result.exit_code == 2
    assert message in result.output
    assert "Traceback" not in result.output
    assert not (tmp_path / "run.jsonl").exists()
