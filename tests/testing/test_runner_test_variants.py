"""`runner test` with variants (`--model A --model B`, a spec's `variants:`) and repeats
(`--repeat N`, `min_pass_rate`), against the mock or replayed: no key, no network. Every case
runs on every variant, the judge never varies, a baseline recorded for one model is never
replayed for another, a request recorded N times replays its N answers in order, and the
comparison table has a row per variant."""

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

ROOT = Path(__file__).resolve().parents[2]

CITY_CASES = 2  # prompts/city.yaml: paris, tokyo


def run(*args: str, env: dict[str, str] | None = None) -> Result:
    return CliRunner().invoke(cli, list(args), env=env or {}, catch_exceptions=False)


def lines(path: Path) -> list[dict[str, Any]]:
    return list(read_records(path)) if path.exists() else []


@pytest.fixture
def project(tmp_path: Path) -> Path:
    shutil.copytree(ROOT / "prompts", tmp_path / "prompts")
    shutil.copytree(ROOT / "schemas", tmp_path / "schemas")
    (tmp_path / "pyproject.toml").write_text("", encoding="utf-8")
    return tmp_path


def record(*args: str) -> Result:
    """Record into base.jsonl with --mock (content kept, so that it replays)."""
    return run(
        "test",
        "--mock",
        "--replay",
        "base.jsonl",
        "--record-missing",
        "--ledger",
        "rec.jsonl",
        *args,
        env={"RUNNER_LEDGER_CONTENT": "1"},
    )


# --- variants ------------------------------------------------------------------------------------


def test_every_case_runs_on_every_model(project: Path) -> None:
    result = run(
        "test",
        "-k",
        "city",
        "--mock",
        "--model",
        "gpt-4o-mini",
        "--model",
        "gpt-4.1-mini",
        "--junit",
        "junit.xml",
        "--ledger",
        "l.jsonl",
    )
    found = lines(project / "l.jsonl")
    assert sorted((r["case"], r["model"], r["variant"]) for r in found) == [
        ("paris", "gpt-4.1-mini", "gpt-4.1-mini"),
        ("paris", "gpt-4o-mini", "gpt-4o-mini"),
        ("tokyo", "gpt-4.1-mini", "gpt-4.1-mini"),
        ("tokyo", "gpt-4o-mini", "gpt-4o-mini"),
    ]
    # A line per case and variant, in case order then variant order.
    names = [line.split()[1] for line in result.output.splitlines() if line[:4] in ("PASS", "FAIL")]
    assert names == [
        "city::paris[gpt-4o-mini]",
        "city::paris[gpt-4.1-mini]",
        "city::tokyo[gpt-4o-mini]",
        "city::tokyo[gpt-4.1-mini]",
    ]
    table = result.output[result.output.index("variant ") :].splitlines()
    assert table[0].split()[:4] == ["variant", "pass", "rate", "cases"]
    assert [row.split()[0] for row in table[2:4]] == ["gpt-4o-mini", "gpt-4.1-mini"]
    junit = ET.parse(project / "junit.xml").getroot()
    assert sorted(c.get("name") for c in junit.iter("testcase")) == sorted(
        n.removeprefix("city::") for n in names
    )
    assert result.output.splitlines()[-1] == "3 passed, 1 failed" == result.output.splitlines()[-1]
    assert result.exit_code == 1  # the mock's answer for tokyo on gpt-4.1-mini is wrong


def test_a_specs_variants_merge_their_params_and_name_themselves(project: Path) -> None:
    spec = project / "prompts" / "city.yaml"
    text = spec.read_text("utf-8")
    spec.write_text(
        text.replace(
            "\ntests:",
            "\nvariants:\n  - {model: gpt-4o}\n  - {params: {temperature: 0}}\n"
            "  - {name: careful, model: gpt-4.1-mini, params: {top_p: 0.5}}\ntests:",
        ),
        "utf-8",
    )
    result = run("test", "-k", "city::paris", "--mock", "--ledger", "l.jsonl")
    found = {r["variant"]: r for r in lines(project / "l.jsonl")}
    assert set(found) == {"gpt-4o", "temperature=0", "careful"}
    assert found["temperature=0"]["model"] == "gpt-4o-mini"  # the spec's
    assert found["temperature=0"]["params"]["temperature"] == 0
    assert found["careful"]["params"]["top_p"] == 0.5
    assert found["careful"]["params"]["max_tokens"] == 400  # the spec's, kept
    assert "model" in result.output  # a variant not named after its model: a model column
    # --model replaces the spec's variants for one run.
    run("test", "-k", "city::paris", "--mock", "--model", "gpt-4o", "--ledger", "m.jsonl")
    assert [r["variant"] for r in lines(project / "m.jsonl")] == ["gpt-4o"]


def test_runner_model_does_not_replace_a_variants_model(project: Path) -> None:
    run(
        "test",
        "-k",
        "city::paris",
        "--mock",
        "--model",
        "gpt-4.1-mini",
        "--ledger",
        "l.jsonl",
        env={"RUNNER_MODEL": "gpt-4o"},
    )
    assert [r["model"] for r in lines(project / "l.jsonl")] == ["gpt-4.1-mini"]


JUDGED = """\
name: judged
model: gpt-4o-mini
inputs: {type: object, properties: {topic: {type: string}}, required: [topic]}
messages:
  - {role: user, content: "Write one line about {{ topic }}."}
tests:
  - name: sea
    vars: {topic: the sea}
    expect:
      - {judge: judge.yaml}
"""


def test_the_judge_stays_fixed_while_the_judged_model_varies(project: Path) -> None:
    (project / "prompts" / "judged.yaml").write_text(JUDGED, "utf-8")
    run(
        "test",
        "prompts/judged.yaml",
        "--mock",
        "--model",
        "gpt-4.1-mini",
        "--model",
        "gpt-4o",
        "--ledger",
        "l.jsonl",
    )
    found = [(r["spec"]["name"], r["case"], r["model"]) for r in lines(project / "l.jsonl")]
    assert sorted(found) == [
        ("judge", "judged/sea[gpt-4.1-mini]", "gpt-4o-mini"),
        ("judge", "judged/sea[gpt-4o]", "gpt-4o-mini"),
        ("judged", "sea", "gpt-4.1-mini"),
        ("judged", "sea", "gpt-4o"),
    ]


def test_a_variant_matrix_replays_without_key_or_network(project: Path) -> None:
    models = ["--model", "gpt-4o-mini", "--model", "gpt-4.1-mini"]
    assert record("-k", "city", *models).exit_code in (0, 1)
    assert len(lines(project / "base.jsonl")) == 2 * CITY_CASES
    # No --mock and no key: every call is answered from the baseline, or fails unsent.
    result = run("test", "-k", "city", "--replay", "base.jsonl", "--ledger", "l.jsonl", *models)
    replayed = lines(project / "l.jsonl")
    assert len(replayed) == 2 * CITY_CASES
    assert all(r["replayed"]["from"] == "base.jsonl" for r in replayed)
    recorded = {r["id"]: r for r in lines(project / "base.jsonl")}
    # Each replayed answer is the one recorded for the same model.
    assert all(recorded[r["replayed"]["id"]]["model"] == r["model"] for r in replayed)
    assert result.output.count("replayed") == 2 * CITY_CASES


def test_a_baseline_recorded_for_one_model_is_never_replayed_for_another(project: Path) -> None:
    record("-k", "city", "--model", "gpt-4o-mini")
    result = run(
        "test",
        "-k",
        "city",
        "--replay",
        "base.jsonl",
        "--ledger",
        "l.jsonl",
        "--model",
        "gpt-4o-mini",
        "--model",
        "gpt-4o",
    )
    assert result.exit_code == 1
    assert [r["model"] for r in lines(project / "l.jsonl")] == ["gpt-4o-mini"] * CITY_CASES
    assert "FAIL  city::paris[gpt-4o]" in result.output
    assert "request changed since it was recorded" in result.output
    assert "(the baseline has no line for city case paris variant gpt-4o" in result.output
    # The request fingerprint holds the model: the same case on two models, two fingerprints.
    base = lines(project / "base.jsonl")
    assert len({r["request_sha256"] for r in base}) == CITY_CASES


# --- repeats -------------------------------------------------------------------------------------


def test_repeat_runs_each_case_n_times(project: Path) -> None:
    result = run("test", "-k", "city", "--mock", "--repeat", "3", "--ledger", "l.jsonl")
    assert result.exit_code == 0
    found = lines(project / "l.jsonl")
    assert sorted(r["case"] for r in found) == ["paris"] * 3 + ["tokyo"] * 3
    assert "PASS  city::paris  3/3 runs passed (95% CI 0.44-1.00)" in result.output
    assert result.output.splitlines()[-1] == "2 passed, 0 failed"


def test_repeat_0_is_refused_before_anything_is_sent(project: Path) -> None:
    result = run("test", "-k", "city", "--mock", "--repeat", "0", "--ledger", "l.jsonl")
    assert result.exit_code == 2
    assert "--repeat" in result.output and "Traceback" not in result.output
    assert not (project / "l.jsonl").exists()


@pytest.mark.parametrize("rate", ["1.5", "-0.1"])
def test_a_min_pass_rate_outside_0_to_1_is_a_spec_error(project: Path, rate: str) -> None:
    spec = project / "prompts" / "city.yaml"
    text = spec.read_text("utf-8").replace(
        "  - name: paris\n", f"  - name: paris\n    min_pass_rate: {rate}\n"
    )
    spec.write_text(text, "utf-8")
    result = run("test", "-k", "city", "--mock", "--ledger", "l.jsonl")
    assert result.exit_code == 2
    assert "min_pass_rate" in result.output and "city.yaml:" in result.output
    assert not (project / "l.jsonl").exists()


def _flaky_baseline(project: Path) -> None:
    """Record paris three times, then make the second recorded answer wrong."""
    record("-k", "city::paris", "--repeat", "3")
    path = project / "base.jsonl"
    records = [json.loads(line) for line in path.read_text("utf-8").splitlines()]
    assert [r["case"] for r in records] == ["paris"] * 3
    records[1]["output"]["json"]["country"] = "Spain"
    records[1]["output"]["text"] = json.dumps(records[1]["output"]["json"])
    path.write_text("".join(json.dumps(r) + "\n" for r in records), "utf-8")


def test_n_recorded_answers_replay_in_order_and_a_flaky_case_is_listed_apart(
    project: Path,
) -> None:
    _flaky_baseline(project)
    replay = ("--replay", "base.jsonl", "--repeat", "3", "--ledger", "l.jsonl")
    result = run("test", "-k", "city::paris", *replay)
    base = [r["id"] for r in lines(project / "base.jsonl")]
    # The k-th run of the request got the k-th recorded answer.
    assert [r["replayed"]["id"] for r in lines(project / "l.jsonl")] == base
    assert result.exit_code == 1  # min_pass_rate 1 by default: 2/3 fails
    assert "FAIL  city::paris  2/3 runs passed (95% CI 0.21-0.94)" in result.output
    assert "Flaky (1, some runs failed):" in result.output
    assert "Failing (" not in result.output  # not a case that always fails


def test_min_pass_rate_decides(project: Path) -> None:
    _flaky_baseline(project)
    spec = project / "prompts" / "city.yaml"
    spec.write_text(
        spec.read_text("utf-8").replace(
            "  - name: paris\n", "  - name: paris\n    min_pass_rate: 0.6\n"
        ),
        "utf-8",
    )
    result = run(
        "test", "-k", "city::paris", "--replay", "base.jsonl", "--repeat", "3", "--format", "json"
    )
    assert result.exit_code == 0
    (case,) = json.loads(result.stdout)
    assert case["status"] == "passed" and case["flaky"] is True
    assert (case["runs"], case["passes"], case["min_pass_rate"]) == (3, 2, 0.6)
    assert case["interval"] == [0.2077, 0.9385]
    assert case["pass_all"] is False


def test_fewer_answers_than_repeats_is_not_recorded_with_the_count_then_topped_up(
    project: Path,
) -> None:
    record("-k", "city::paris", "--repeat", "2")
    assert len(lines(project / "base.jsonl")) == 2
    result = run("test", "-k", "city::paris", "--replay", "base.jsonl", "--repeat", "3")
    assert result.exit_code == 1
    assert "the request is recorded twice in base.jsonl, and this is its call number 3" in (
        result.output
    )
    assert len(lines(project / "runs" / "ledger.jsonl")) == 2  # the third was not sent
    topped = record("-k", "city::paris", "--repeat", "3")
    assert topped.exit_code == 0
    assert "Recorded 1 call in base.jsonl." in topped.output
    assert len(lines(project / "base.jsonl")) == 3
    again = run("test", "-k", "city::paris", "--replay", "base.jsonl", "--repeat", "3")
    assert again.exit_code == 0


def test_the_comparison_file_takes_its_format_from_its_name(project: Path) -> None:
    models = ["--model", "gpt-4o-mini", "--model", "gpt-4.1-mini"]
    for name in ("c.json", "c.md", "c.html", "c.txt"):
        run("test", "-k", "city", "--mock", *models, "--repeat", "2", "--comparison", name)
    rows = json.loads((project / "c.json").read_text("utf-8"))
    assert [r["variant"] for r in rows] == ["gpt-4o-mini", "gpt-4.1-mini"]
    first = rows[0]
    assert (first["cases"], first["runs"], first["runs_passed"], first["pass_all"]) == (2, 4, 4, 2)
    assert rows[1]["failing"] == ["city::tokyo"]
    assert set(first) >= {
        "pass_rate",
        "cost_usd",
        "cost_per_case_usd",
        "tokens",
        "latency_ms_p50",
        "latency_ms_p95",
    }
    assert (project / "c.md").read_text("utf-8").startswith("| variant | pass rate |")
    page = (project / "c.html").read_text("utf-8")
    assert "<table><caption>Variants side by side</caption>" in page and "<script" not in page
    assert (project / "c.txt").read_text("utf-8").startswith("variant ")


def test_markdown_shows_the_comparison_and_the_variant_column(project: Path) -> None:
    models = ["--model", "gpt-4o-mini", "--model", "gpt-4o"]
    result = run("test", "-k", "city", "--mock", *models, "--format", "markdown")
    assert "|  | spec | case | variant | cost | latency |" in result.output
    assert "| variant | pass rate | cases passed |" in result.output
