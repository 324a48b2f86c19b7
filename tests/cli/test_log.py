"""`runner log`: the latest calls newest first, one block each (figures, the answer's preview or
the error), filtered by spec and status, as JSON, and one call whole by its id; what a ledger
line holds is shown, never obeyed (control characters, secrets)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result

from runner.cli import cli

ROOT = Path(__file__).resolve().parents[2]


def run(*args: str, env: dict[str, str] | None = None) -> Result:
    # COLUMNS unset unless given: a pipe's width (100) whatever the shell running pytest says.
    environ: dict[str, str | None] = {"COLUMNS": None, **(env or {})}
    return CliRunner().invoke(cli, list(args), env=environ, catch_exceptions=False)


@pytest.fixture
def ledger(tmp_path: Path) -> Path:
    """Three real mock calls of the city example (one kept without content, one failed on an
    unknown model's 404) in runs/ledger.jsonl."""
    (tmp_path / "pyproject.toml").write_text("")
    (tmp_path / "schemas").mkdir()
    (tmp_path / "schemas" / "city.json").write_bytes((ROOT / "schemas" / "city.json").read_bytes())
    (tmp_path / "prompts").mkdir()
    city = tmp_path / "prompts" / "city.yaml"
    city.write_bytes((ROOT / "prompts" / "city.yaml").read_bytes())
    for extra in ([], ["--no-content"]):
        assert (
            run("exec", "prompts/city.yaml", "--var", "city=Paris", "--mock", *extra).exit_code == 0
        )
    failing = '  headers: {X-Mock-Fault: "status=404"}\n'
    (tmp_path / "prompts" / "broken.yaml").write_text(
        city.read_text()
        .replace("name: city", "name: broken")
        .replace("  api_key_env: OPENAI_API_KEY\n", "  api_key_env: OPENAI_API_KEY\n" + failing)
    )
    assert run("exec", "prompts/broken.yaml", "--var", "city=Oslo", "--mock").exit_code == 1
    return tmp_path / "runs" / "ledger.jsonl"


def lines(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_the_latest_calls_newest_first_one_block_each(ledger: Path) -> None:
    result = run("log")
    assert result.exit_code == 0, result.stdout
    blocks = result.stdout.strip().split("\n\n")
    ids = [line["id"] for line in lines(ledger)]
    assert [b.split(" · ")[0] for b in blocks] == ids[::-1]
    broken, withheld, paris = blocks
    assert "broken · gpt-4o-mini (mock) · error · 1 attempt" in broken
    assert "\n  error: not_found (HTTP 404): " in broken
    assert "city · gpt-4o-mini (mock) · ok · 1 attempt · 39+" in paris
    assert " est · " in paris and " ms" in paris
    assert '\n  output: {"name":' in paris
    assert "output: not kept (the spec records no content)" in withheld
    assert max(len(line) for line in result.stdout.splitlines()) <= 100  # a pipe: 100 columns


def test_n_spec_status_and_json(ledger: Path) -> None:
    ids = [line["id"] for line in lines(ledger)]
    assert run("log", "-n", "1").stdout.startswith(ids[2])
    assert run("log", "--spec", "city", "-n", "5").stdout.count(" · city · ") == 0  # id line
    city = run("log", "--spec", "city").stdout
    assert city.count("\n  city · ") == 2 and "broken" not in city
    assert run("log", "--spec", "prompts/broken.yaml").stdout.startswith(ids[2])
    failed = run("log", "--status", "failed").stdout
    assert failed.startswith(ids[2]) and ids[0] not in failed
    assert run("log", "--status", "invalid_output").stdout == ""
    assert "No calls that match" in run("log", "--status", "invalid_output").stderr
    listed = json.loads(run("log", "--json", "-n", "2").stdout)
    assert [c["id"] for c in listed] == ids[:0:-1]


def test_one_call_whole(ledger: Path) -> None:
    first = lines(ledger)[0]
    result = run("log", first["id"][:20])
    assert result.exit_code == 0, result.stdout
    text = result.stdout
    assert text.startswith(f"call {first['id']}\n")
    assert "  spec     city (prompts/city.yaml)" in text
    messages = text.split("\nmessages\n")[1].split("\nreply\n")[0]
    assert "  [system]\n    You are a precise geography assistant." in messages
    assert "  [user]\n    Tell me about Paris" in messages
    reply = text.split("\nreply\n")[1].split("\nattempts\n")[0]
    assert json.loads(reply) == first["output"]["json"]
    assert "\nattempts\n  1 · ok · " in text
    assert json.loads(run("log", "--json", first["id"]).stdout) == first


def test_unknown_ids_missing_ledgers_and_bad_usage(ledger: Path, tmp_path: Path) -> None:
    result = run("log", "01ZZZZZZZZZZZZZZZZZZZZZZZZ")
    assert result.exit_code == 2 and "Error: no call 01ZZZZZZZZZZZZZZZZZZZZZZZZ in" in result.stderr
    result = run("log", "--ledger", str(tmp_path / "nope.jsonl"))
    assert result.exit_code == 2 and f"no ledger at {tmp_path / 'nope.jsonl'}" in result.stderr
    result = run("log", "--ledger", str(tmp_path))
    assert result.exit_code == 2 and "it is a directory" in result.stderr
    result = run("log", "x", "--status", "ok")
    assert result.exit_code == 2 and "takes no --spec or --status" in result.stderr
    assert run("log", "-n", "0").exit_code == 2


def test_what_a_line_holds_is_shown_not_obeyed(tmp_path: Path) -> None:
    secret = "sk-proj-" + "A" * 40
    path = tmp_path / "l.jsonl"
    line = {
        "v": 1,
        "id": "01JP9ZMQCNBRX9RWDJTG7R0001",
        "ts": "2025-03-14T09:00:00.000Z",
        "spec": {"name": "evil\x1b[2J", "path": "p.yaml"},
        "model": "m\r\n",
        "status": "ok",
        "usage": "lots",  # edited by hand: shown as unknown, not a crash
        "cost": {"usd": "free"},
        "output": {"text": f"key {secret} \x1b]0;title\x07"},
        "attempts": "many",
    }
    path.write_text(json.dumps(line) + "\n")
    result = run("log", "--ledger", str(path))
    assert result.exit_code == 0, result.stdout
    assert "\x1b" not in result.stdout and "\r" not in result.stdout
    assert "evil\\x1b[2J" in result.stdout and "m\\r\\n" in result.stdout
    assert secret not in result.stdout and "sk-" in result.stdout
    assert "tokens ?" in result.stdout and "cost unknown" in result.stdout
    whole = run("log", "--ledger", str(path), "01JP9ZMQCNBRX9RWDJTG7R0001").stdout
    assert "\x1b" not in whole and secret not in whole


def test_blocks_fit_the_terminal(ledger: Path, in_terminal: Any) -> None:
    import re

    shown, err, status = in_terminal(["log"], columns=60, cwd=ledger.parent.parent)
    assert status == 0, err
    lines = re.sub(r"\x1b\[[0-9;?]*[a-zA-Z]", "", shown).splitlines()
    assert len(lines) > 8 and max(len(line) for line in lines) <= 60
    assert run("log", env={"COLUMNS": "60"}).stdout == run("log").stdout  # a pipe: 100
