"""`--cache` on `runner exec`, data sets and `runner test`: a request whose fingerprint has an ok
line in the ledger is answered from that line (no key, no network), the new line says
`replayed: {from, id, reason: cache}`, the summaries and `runner report` count it apart; a mock
answer never answers a real call; --cache-from, --cache-max-age; bad flags are exit 2 with
nothing sent."""

from __future__ import annotations

import json
import shutil
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from _ledger_schema import LINE_VALIDATOR
from click.testing import CliRunner, Result

from runner.cli import cli
from runner.engine.session import Session
from runner.ledger.cache import CacheSource
from runner.ledger.encoding import utc_timestamp
from runner.ledger.reading import read_records
from runner.spec.load import load_spec

ROOT = Path(__file__).resolve().parents[2]


def run(*args: str, env: dict[str, str] | None = None, input: str | None = None) -> Result:
    return CliRunner().invoke(cli, list(args), env=env or {}, input=input, catch_exceptions=False)


def lines(path: Path) -> list[dict[str, Any]]:
    return list(read_records(path)) if path.exists() else []


@pytest.fixture
def project(tmp_path: Path) -> Path:
    shutil.copytree(ROOT / "prompts", tmp_path / "prompts")
    shutil.copytree(ROOT / "schemas", tmp_path / "schemas")
    (tmp_path / "pyproject.toml").write_text("", encoding="utf-8")
    return tmp_path


CITY = ("exec", "prompts/city.yaml", "--var", "city=Paris")


def test_a_second_run_is_answered_from_the_first_runs_line(project: Path) -> None:
    first = run(*CITY, "--mock", "--cache", "--ledger", "l.jsonl")
    assert first.exit_code == 0
    second = run(*CITY, "--mock", "--cache", "--ledger", "l.jsonl", "--json")
    assert second.exit_code == 0
    sent, cached = lines(project / "l.jsonl")
    assert "replayed" not in sent
    assert cached["replayed"] == {"from": "l.jsonl", "id": sent["id"], "reason": "cache"}
    assert cached["output"] == sent["output"]
    assert cached["cost"] == sent["cost"]  # what the recorded call cost: nothing spent now
    assert cached["request_sha256"] == sent["request_sha256"]
    LINE_VALIDATOR.validate(cached)
    assert json.loads(second.stdout)["replayed"]["reason"] == "cache"
    assert "from the cache" in second.stderr and "nothing sent, $0 spent" in second.stderr
    # At temperature 0.3 the one recorded sample is reused: said once.
    assert second.stderr.count("one recorded sample reused") == 1


def _real_line(project: Path, **changes: Any) -> dict[str, Any]:
    """An ok line of a real (not mock) call of city/Paris, as a real run would have written."""
    spec = load_spec(project / "prompts" / "city.yaml")
    with Session(ledger=project / "unused.jsonl") as session:
        fingerprint = session.request_fingerprint(spec, {"city": "Paris"})
    answer = {
        "name": "Paris",
        "country": "France",
        "population": 2100000,
        "landmarks": ["Louvre", "Notre-Dame"],
    }
    line = {
        "v": 1,
        "id": "01JREALCALL0000000000000000",
        "ts": utc_timestamp(datetime.now(UTC)),
        "spec": {
            "path": "prompts/city.yaml",
            "name": "city",
            "sha256": "x",
            "commit": None,
            "dirty": None,
        },  # fmt: skip
        "request_sha256": fingerprint,
        "case": None,
        "row": None,
        "model": "gpt-4o-mini",
        "served_model": "gpt-4o-mini-2024-07-18",
        "params": {},
        "vars": {"city": "Paris"},
        "messages": [],
        "status": "ok",
        "output": {"text": json.dumps(answer), "json": answer, "finish_reason": "stop"},
        "error": None,
        "attempts": [],
        "usage": {"prompt": 60, "completion": 20, "cached": 0, "reasoning": 0, "total": 80},
        "cost": {"usd": 0.000021, "source": "genai-prices", "estimated": False},
        "latency_ms": 900.0,
        "ttft_ms": None,
        "request_id": "req_1",
        "mock": False,
    }
    line.update(changes)
    return line


def test_a_cached_answer_needs_no_key_and_no_network(project: Path) -> None:
    (project / "l.jsonl").write_text(json.dumps(_real_line(project)) + "\n", "utf-8")
    result = run(*CITY, "--cache", "--ledger", "l.jsonl")  # no --mock, no OPENAI_API_KEY
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["landmarks"] == ["Louvre", "Notre-Dame"]
    cached = lines(project / "l.jsonl")[-1]
    assert cached["replayed"]["reason"] == "cache" and cached["mock"] is False


def test_a_mock_answer_never_answers_a_real_call(project: Path) -> None:
    run(*CITY, "--mock", "--ledger", "l.jsonl")
    result = run(*CITY, "--cache", "--ledger", "l.jsonl")  # real: a miss, and no key
    assert result.exit_code == 2
    assert "no API key" in result.output
    assert len(lines(project / "l.jsonl")) == 1


def test_max_age_leaves_older_answers_out(project: Path) -> None:
    old = utc_timestamp(datetime.now(UTC) - timedelta(days=8))
    (project / "l.jsonl").write_text(json.dumps(_real_line(project, ts=old)) + "\n", "utf-8")
    assert len(CacheSource(project / "l.jsonl")) == 1
    assert len(CacheSource(project / "l.jsonl", max_age=7 * 86400)) == 0
    result = run(*CITY, "--cache", "--cache-max-age", "7d", "--ledger", "l.jsonl")
    assert result.exit_code == 2  # too old: it would be sent, and there is no key
    assert run(*CITY, "--cache", "--cache-max-age", "9d", "--ledger", "l.jsonl").exit_code == 0


def test_cache_from_reads_another_ledger(project: Path) -> None:
    (project / "shared.jsonl").write_text(json.dumps(_real_line(project)) + "\n", "utf-8")
    result = run(*CITY, "--cache", "--cache-from", "shared.jsonl", "--ledger", "l.jsonl")
    assert result.exit_code == 0
    (cached,) = lines(project / "l.jsonl")
    assert cached["replayed"] == {
        "from": "shared.jsonl",
        "id": "01JREALCALL0000000000000000",
        "reason": "cache",
    }


def test_lines_that_were_themselves_cached_or_failed_answer_nothing(project: Path) -> None:
    real = _real_line(project)
    path = project / "l.jsonl"
    path.write_text(
        json.dumps(_real_line(project, id="A", status="error", output=None))
        + "\n"
        + json.dumps({**real, "id": "B", "replayed": {"from": "x", "id": "Z"}})
        + "\n",
        "utf-8",
    )
    assert len(CacheSource(path)) == 0


def test_a_data_set_counts_cached_rows_apart_and_so_does_the_report(project: Path) -> None:
    rows = '{"city": "Paris"}\n{"city": "Lima"}\n'
    run("exec", "prompts/city.yaml", "--var", "city=Paris", "--mock", "--ledger", "l.jsonl")
    result = run(
        "exec",
        "prompts/city.yaml",
        "--input",
        "-",
        "--mock",
        "--cache",
        "--ledger",
        "l.jsonl",
        input=rows,
    )
    assert result.exit_code == 0
    assert "1 row answered from the cache: nothing sent" in result.stderr
    assert "2 of 2 rows ok" in result.stderr
    found = lines(project / "l.jsonl")
    assert [("replayed" in r) for r in found] == [False, False, True] or [
        ("replayed" in r) for r in found
    ] == [False, True, False]
    report = run("report", "--ledger", "l.jsonl", "--by", "", "--format", "json")
    (total,) = json.loads(report.stdout)
    assert (total["calls"], total["replayed"]) == (2, 1)
    assert "1 replayed call (runner test --replay, --cache) not counted" in report.stderr


def test_runner_test_with_cache(project: Path) -> None:
    first = run("test", "-k", "city", "--mock", "--cache", "--ledger", "l.jsonl")
    assert first.exit_code == 0 and "Cache:" not in first.output
    second = run("test", "-k", "city", "--mock", "--cache", "--ledger", "l.jsonl")
    assert second.exit_code == 0
    assert "Cache: 2 calls answered from the ledger, nothing sent" in second.output
    assert [r.get("replayed", {}).get("reason") for r in lines(project / "l.jsonl")] == [
        None,
        None,
        "cache",
        "cache",
    ]


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (
            ("test", "-k", "city", "--mock", "--cache", "--replay", "b.jsonl", "--record-missing"),
            "--cache answers from a ledger and --replay from another",
        ),
        (("test", "-k", "city", "--mock", "--cache-from", "b.jsonl"), "--cache-from needs --cache"),
        ((*CITY, "--mock", "--cache", "--cache-max-age", "soon"), "is not an age"),
        ((*CITY, "--mock", "--cache-max-age", "7d"), "--cache-max-age needs --cache"),
    ],
)
def test_bad_cache_flags_are_exit_2_and_send_nothing(
    project: Path, args: tuple[str, ...], says: str
) -> None:
    result = run(*args, "--ledger", "l.jsonl")
    assert result.exit_code == 2
    assert says in result.output and "Traceback" not in result.output
    assert not (project / "l.jsonl").exists() and not (project / "b.jsonl").exists()
