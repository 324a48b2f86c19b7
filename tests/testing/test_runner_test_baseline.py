"""The committed baseline (tests/baseline.jsonl, recorded with --mock) replays the example
specs with no key and no network and passes; a changed prompt makes the replay fail with the
diff. This is the regression run docs/ci.md puts in CI."""

from __future__ import annotations

import shutil
import socket
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from runner.cli import cli
from runner.ledger.reading import read_records

ROOT = Path(__file__).resolve().parents[2]
BASELINE = ROOT / "tests" / "baseline.jsonl"


@pytest.fixture
def no_network(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(*args: Any, **kwargs: Any) -> None:
        raise AssertionError("a replay must not open a connection")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)


def test_the_baseline_replays_every_example(no_network: None, tmp_path: Path) -> None:
    ledger = tmp_path / "run.jsonl"
    args = ["test", str(ROOT / "prompts"), "--replay", str(BASELINE), "--ledger", str(ledger)]
    result = CliRunner().invoke(cli, args, env={}, catch_exceptions=False)
    assert result.exit_code == 0, result.output
    examples = sum(1 for _ in (ROOT / "prompts").glob("*.yaml"))
    out = result.stdout.splitlines()
    assert len(out) >= examples + 1
    assert all(line.startswith("PASS  ") and line.endswith("  replayed") for line in out[:-1])
    records = list(read_records(ledger))
    assert len(records) == len(out) - 1
    assert all(r["replayed"]["from"] == str(BASELINE) for r in records)


def test_a_changed_prompt_fails_against_the_baseline(no_network: None, tmp_path: Path) -> None:
    shutil.copytree(ROOT / "prompts", tmp_path / "prompts")
    shutil.copytree(ROOT / "schemas", tmp_path / "schemas")
    (tmp_path / "pyproject.toml").write_text("", encoding="utf-8")  # the project's root
    haiku = tmp_path / "prompts" / "haiku.yaml"
    haiku.write_text(
        haiku.read_text("utf-8").replace("temperature: 0.9", "temperature: 0.7"), "utf-8"
    )
    args = ["test", "prompts", "-k", "haiku", "--replay", str(BASELINE), "--ledger", "run.jsonl"]
    result = CliRunner().invoke(cli, args, env={}, catch_exceptions=False)
    assert result.exit_code == 1
    assert "replay: request changed since it was recorded" in result.stdout
    assert "-temperature: 0.9" in result.stdout and "+temperature: 0.7" in result.stdout
    assert result.stdout.splitlines()[-1] == "0 passed, 2 failed"
    assert not (tmp_path / "run.jsonl").exists()


# --- --refresh: every case sent, appended to the baseline, compared with it -------------------


def _project(tmp_path: Path) -> None:
    shutil.copytree(ROOT / "prompts", tmp_path / "prompts")
    shutil.copytree(ROOT / "schemas", tmp_path / "schemas")
    (tmp_path / "pyproject.toml").write_text("", encoding="utf-8")
    shutil.copy(BASELINE, tmp_path / "baseline.jsonl")


def _test(*args: str) -> Any:
    return CliRunner().invoke(cli, ["test", *args], env={}, catch_exceptions=False)


def test_refresh_sends_every_case_appends_the_answers_and_shows_what_changed(
    tmp_path: Path,
) -> None:
    _project(tmp_path)
    before = (tmp_path / "baseline.jsonl").read_bytes()
    result = _test("prompts", "-k", "city", "--mock", "--refresh", "baseline.jsonl")
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    # Sent (not replayed), and each set beside the baseline as it was before the run.
    assert all(" replayed" not in line and line.endswith("unchanged") for line in lines[:-1])
    assert "Recorded 2 calls in baseline.jsonl." in result.stderr
    after = (tmp_path / "baseline.jsonl").read_bytes()
    assert after.startswith(before)  # appended: a ledger is never rewritten
    new = [r for r in read_records(tmp_path / "baseline.jsonl")][-2:]
    # The cases run concurrently: their lines land in the order the answers came back.
    assert sorted(r["case"] for r in new) == ["paris", "tokyo"] and all(r["mock"] for r in new)
    assert all("replayed" not in r for r in new)

    # A changed prompt: the mock answers differently, and the refresh says so.
    city = tmp_path / "prompts" / "city.yaml"
    city.write_text(city.read_text("utf-8").replace("Tell me about", "Tell me all about"), "utf-8")
    result = _test("prompts", "-k", "paris", "--mock", "--refresh", "baseline.jsonl")
    assert "changed" in result.stdout.splitlines()[0]
    # The new answer is the baseline's from now on: replay finds it, compare calls it the same.
    result = _test(
        "prompts", "-k", "paris", "--replay", "baseline.jsonl", "--compare", "baseline.jsonl"
    )
    assert result.exit_code in (0, 1) and "request changed" not in result.stdout
    assert result.stdout.splitlines()[0].endswith("replayed  unchanged")


def test_refresh_without_a_key_sends_nothing_and_with_replay_is_refused(tmp_path: Path) -> None:
    _project(tmp_path)
    before = (tmp_path / "baseline.jsonl").read_bytes()
    result = _test("prompts", "-k", "city", "--refresh", "baseline.jsonl")
    assert result.exit_code == 2 and "no API key" in result.stderr
    result = _test("prompts", "--refresh", "baseline.jsonl", "--replay", "baseline.jsonl")
    assert result.exit_code == 2 and "--refresh sends every case" in result.stderr
    result = _test("prompts", "--mock", "--refresh", "no/such/folder/base.jsonl")
    assert result.exit_code == 2 and "no such folder" in result.stderr
    assert (tmp_path / "baseline.jsonl").read_bytes() == before


def test_refresh_starts_a_baseline_that_does_not_exist(tmp_path: Path) -> None:
    _project(tmp_path)
    result = _test("prompts", "-k", "sentiment", "--mock", "--refresh", "new.jsonl")
    assert result.exit_code == 0, result.output
    assert all(line.endswith("  new") for line in result.stdout.splitlines()[:-1])
    assert len(list(read_records(tmp_path / "new.jsonl"))) == 3
