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
from runner.ledger.store import read_records

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
