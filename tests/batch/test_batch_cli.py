"""`runner exec --batch` and `runner batch ...` from the command line: the happy path, and each
bad input with its exit code, its message, no traceback and the exact number of ledger lines."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from _batch_helpers import ledger_lines, loopback, write_rows, write_spec
from click.testing import CliRunner

from runner.batch import build
from runner.cli import cli

LEDGER = Path("runs/ledger.jsonl")


def invoke(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(cli, list(args))
    assert "Traceback" not in result.output + result.stderr, result.stderr
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise result.exception
    return result.exit_code, result.stdout, result.stderr


STATE = Path("runs/batches/state.jsonl")
LEGACY_STATE = Path("runs/batches.jsonl")  # where runner kept it before: read, never written


def _batches_recorded() -> bool:
    state = STATE
    return state.exists() and state.read_text() != ""


def test_exec_batch_in_mock_mode(tmp_path: Path) -> None:
    spec, rows = write_spec(tmp_path), write_rows(tmp_path, 20)
    code, out, err = invoke("exec", str(spec), "--input", str(rows), "--batch", "--mock")
    assert code == 0, err
    assert "20 rows in 1 batch" in err and "20 rows written (20 ok)" in err
    assert "at the batch price" in err
    lines = ledger_lines(LEDGER)
    assert len(lines) == 20 and {line["status"] for line in lines} == {"ok"}
    assert sorted(line["row"] for line in lines) == sorted(f"r{i}" for i in range(20))
    assert lines[0]["vars"] == {"n": int(lines[0]["row"][1:])}
    code, out, err = invoke("batch", "list")
    assert code == 0 and "completed, collected" in out


def test_batch_without_input_or_with_no_wait_in_mock_mode(tmp_path: Path) -> None:
    spec, rows = write_spec(tmp_path), write_rows(tmp_path, 3)
    code, _, err = invoke("exec", str(spec), "--batch", "--mock")
    assert code == 2 and "--input" in err
    code, _, err = invoke("exec", str(spec), "--input", str(rows), "--batch", "--mock", "--no-wait")
    assert code == 2 and "forgets the batch" in err
    assert ledger_lines(LEDGER) == []


def test_a_row_too_large_for_a_batch_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(build, "DEFAULT_LIMITS", build.BatchLimits(max_bytes=400))
    spec = tmp_path / "echo.yaml"
    spec.write_text(
        "name: echo\nmodel: gpt-4o-mini\nparams: {max_tokens: 40}\n"
        "inputs: {type: object, properties: {text: {type: string}}, required: [text]}\n"
        "messages: [{role: user, content: 'Repeat {{ text }}.'}]\n",
        encoding="utf-8",
    )
    rows = tmp_path / "rows.jsonl"
    rows.write_text('{"id": "small", "text": "a"}\n{"id": "big", "text": "' + "9" * 400 + '"}\n')
    code, _, err = invoke("exec", str(spec), "--input", str(rows), "--batch", "--mock")
    assert code == 2
    assert "row 'big' (line 2): its request is" in err and "400 bytes" in err
    assert ledger_lines(LEDGER) == [] and not _batches_recorded()


def test_duplicate_row_keys(tmp_path: Path) -> None:
    spec = write_spec(tmp_path)
    rows = tmp_path / "rows.jsonl"
    rows.write_text('{"id": "a", "n": 1}\n{"id": "a", "n": 2}\n')
    code, _, err = invoke("exec", str(spec), "--input", str(rows), "--batch", "--mock")
    assert code == 2 and "used twice" in err
    assert ledger_lines(LEDGER) == []


def test_bad_rows_fail_alone(tmp_path: Path) -> None:
    spec = write_spec(tmp_path)
    rows = tmp_path / "rows.jsonl"
    rows.write_text('{"id": "a", "n": 1}\n{"id": "b", "n": "two"}\n')
    code, _, err = invoke("exec", str(spec), "--input", str(rows), "--batch", "--mock")
    assert code == 1 and "row b: not sent" in err
    assert [line["row"] for line in ledger_lines(LEDGER)] == ["a"]


def test_a_server_without_the_batch_api(tmp_path: Path) -> None:
    with loopback(batch_api=False) as url:
        spec, rows = write_spec(tmp_path, base_url=url), write_rows(tmp_path, 3)
        code, _, err = invoke("exec", str(spec), "--input", str(rows), "--batch")
    assert code == 2
    assert f"the server at {url} has no Batch API" in err and "run without --batch" in err
    assert ledger_lines(LEDGER) == [] and not _batches_recorded()


def test_missing_rows_are_recorded_and_said(tmp_path: Path) -> None:
    spec = write_spec(tmp_path, headers={"X-Mock-Fault": "batch_missing=2"})
    rows = write_rows(tmp_path, 6)
    code, _, err = invoke("exec", str(spec), "--input", str(rows), "--batch", "--mock")
    assert code == 1
    assert "6 rows written (4 ok, 2 batch_missing)" in err and "--retry-live" in err
    lines = ledger_lines(LEDGER)
    assert len(lines) == 6
    missing = [line for line in lines if line["status"] == "error"]
    assert [line["error"]["kind"] for line in missing] == ["batch_missing"] * 2


def test_an_expired_batch(tmp_path: Path) -> None:
    spec = write_spec(tmp_path, headers={"X-Mock-Fault": "batch_expire=0.25"})
    rows = write_rows(tmp_path, 8)
    code, _, err = invoke("exec", str(spec), "--input", str(rows), "--batch", "--mock")
    assert code == 1
    assert "ended expired: 6 rows without an answer" in err
    assert "8 rows written (2 ok, 6 batch_expired)" in err
    assert len(ledger_lines(LEDGER)) == 8


def test_no_wait_then_status_collect_twice_and_retry_live(tmp_path: Path) -> None:
    with loopback() as url:
        spec = write_spec(tmp_path, base_url=url, headers={"X-Mock-Fault": "batch_missing=1"})
        rows = write_rows(tmp_path, 5)
        code, out, err = invoke("exec", str(spec), "--input", str(rows), "--batch", "--no-wait")
        assert code == 0, err
        batch_id = out.strip()
        assert batch_id.startswith("batch_") and ledger_lines(LEDGER) == []
        code, out, _ = invoke("batch", "status", batch_id)
        assert code == 0 and f"{batch_id}  completed  4 done, 0 failed of 5" in out
        code, _, err = invoke("batch", "collect", batch_id)
        assert code == 1 and "5 rows written (4 ok, 1 batch_missing)" in err
        code, _, err = invoke("batch", "collect", batch_id)
        assert code == 1 and "0 rows written" in err and "5 already in the ledger" in err
        assert len(ledger_lines(LEDGER)) == 5
        code, _, err = invoke("batch", "collect", batch_id, "--retry-live")
        assert code == 0, err
        assert "retried live: 1 rows, 1 ok" in err
        code, _, err = invoke("batch", "collect", batch_id, "--retry-live")
        assert code == 0 and "retried live: 0 rows" in err
    lines = ledger_lines(LEDGER)
    assert len(lines) == 6
    [live] = [line for line in lines if "batch_id" not in line]
    [lost] = [line for line in lines if line["status"] == "error"]
    assert live["row"] == lost["row"] and live["status"] == "ok"
    assert live["request_sha256"] == lost["request_sha256"]


def test_cancel_then_collect_what_was_done(tmp_path: Path) -> None:
    with loopback(batch_delay=3600) as url:
        spec, rows = write_spec(tmp_path, base_url=url), write_rows(tmp_path, 4)
        code, out, _ = invoke("exec", str(spec), "--input", str(rows), "--batch", "--no-wait")
        batch_id = out.strip()
        code, _, err = invoke("batch", "collect", batch_id)
        assert code == 2 and "still in_progress" in err
        code, out, _ = invoke("batch", "cancel", batch_id)
        assert code == 0 and "cancelling" in out
        code, _, err = invoke("batch", "collect", batch_id)
    assert code == 1 and "4 rows written (0 ok, 4 batch_cancelled)" in err
    assert len(ledger_lines(LEDGER)) == 4


def test_unknown_batch_ids(tmp_path: Path) -> None:
    code, _, err = invoke("batch", "status", "batch_nope")
    assert code == 2 and "name its spec with --spec" in err
    spec = write_spec(tmp_path)
    code, _, err = invoke("batch", "collect", "batch_nope", "--spec", str(spec), "--mock")
    assert code == 2 and "no such batch" in err
    assert ledger_lines(LEDGER) == []


def test_state_file_lines(tmp_path: Path) -> None:
    spec, rows = write_spec(tmp_path), write_rows(tmp_path, 2)
    invoke("exec", str(spec), "--input", str(rows), "--batch", "--mock")
    events = [json.loads(x)["event"] for x in STATE.read_text().splitlines()]
    assert events == ["created", "ended", "collected"]
    assert not LEGACY_STATE.exists()
    [rows_file] = Path("runs/batches").glob("*.rows")
    keys = [json.loads(line)[0] for line in rows_file.read_text().splitlines()]
    fingerprints = [json.loads(line)[1] for line in rows_file.read_text().splitlines()]
    assert keys == ["r0", "r1"]
    assert fingerprints == [line["request_sha256"] for line in ledger_lines(LEDGER)]


def test_dry_run_sends_nothing(tmp_path: Path) -> None:
    spec, rows = write_spec(tmp_path), write_rows(tmp_path, 5)
    code, out, err = invoke("exec", str(spec), "--input", str(rows), "--batch", "--dry-run")
    assert code == 0 and "dry run: 5 rows in 1 batch input file (5 rows / " in err
    assert "nothing sent" in err and out == ""
    assert not Path("runs").exists()


def test_a_failed_batch_writes_nothing_and_says_why(tmp_path: Path) -> None:
    import openai

    with loopback() as url:
        with openai.OpenAI(base_url=url, api_key="sk-test", max_retries=0) as client:
            bad = client.files.create(file=("bad.jsonl", b"{oops\n"), purpose="batch")
            batch = client.batches.create(
                input_file_id=bad.id, endpoint="/v1/chat/completions", completion_window="24h"
            )
        spec = write_spec(tmp_path, base_url=url)
        code, _, err = invoke("batch", "collect", batch.id, "--spec", str(spec))
    assert code == 1
    assert f"batch {batch.id} failed; no row was sent:" in err
    assert "line 1: This line is not parseable as valid JSON." in err
    assert ledger_lines(LEDGER) == []


def test_a_row_in_an_open_batch_never_runs_live_too(tmp_path: Path) -> None:
    """A batch started with --no-wait and not collected yet holds its rows: a live run of the
    same data set (with or without --resume) leaves them to the batch."""
    with loopback() as url:
        spec = write_spec(tmp_path, base_url=url, headers={"X-Mock-Fault": "batch_delay=60s"})
        rows = write_rows(tmp_path, 4)
        code, out, err = invoke("exec", str(spec), "--input", str(rows), "--batch", "--no-wait")
        assert code == 0, err
        more = tmp_path / "more.jsonl"
        more.write_text(rows.read_text() + '{"id": "r9", "n": 9}\n', encoding="utf-8")
        env = {"OPENAI_API_KEY": "sk-test-0123456789abcdef0123"}
        result = CliRunner().invoke(cli, ["exec", str(spec), "--input", str(more)], env=env)
        assert result.exit_code == 1, result.stderr  # 4 rows are not done: they wait
        assert "4 waiting in batch" in result.stderr and "--skip-batched" in result.stderr
        skipped = CliRunner().invoke(
            cli, ["exec", str(spec), "--input", str(more), "--resume", "--skip-batched"], env=env
        )
        assert skipped.exit_code == 0, skipped.stderr
    assert [line["row"] for line in ledger_lines(LEDGER)] == ["r9"]


def test_the_state_file_is_not_matched_by_a_ledger_glob(tmp_path: Path) -> None:
    """`runs/*.jsonl` (what report.md recommends) reads the ledger, not the batch state: a
    report of a healthy ledger beside batches says nothing about skipped lines."""
    spec, rows = write_spec(tmp_path), write_rows(tmp_path, 3)
    assert invoke("exec", str(spec), "--input", str(rows), "--batch", "--mock")[0] == 0
    assert STATE.is_file() and sorted(Path("runs").glob("*.jsonl")) == [LEDGER]
    for extra in ([], ["--html", str(tmp_path / "r.html")], ["--format", "json"]):
        code, out, err = invoke("report", "--ledger", "runs/*.jsonl", *extra)
        assert code == 0, err
        assert "skipped" not in err and "Warning" not in err, err
        assert "3" in out


def test_a_batch_started_before_the_state_file_moved_is_still_found(tmp_path: Path) -> None:
    """A batch in flight across an upgrade: it was recorded in runs/batches.jsonl; status,
    collect and a data set's --resume still find it there, and what happens to it next is
    appended to the new file, read after the old one."""
    with loopback(batch_delay=3600) as url:
        spec, rows = write_spec(tmp_path, base_url=url), write_rows(tmp_path, 4)
        code, out, err = invoke("exec", str(spec), "--input", str(rows), "--batch", "--no-wait")
        assert code == 0, err
        batch_id = out.strip()
        STATE.rename(LEGACY_STATE)  # as the runner before this one left it
        code, out, err = invoke("batch", "list")
        assert code == 0 and batch_id in out, err
        code, _, err = invoke("exec", str(spec), "--input", str(rows), "--resume")
        assert code == 1 and "waiting in a batch" in err, err  # not run live twice
        assert ledger_lines(LEDGER) == []
        assert invoke("batch", "cancel", batch_id)[0] == 0
        code, _, err = invoke("batch", "collect", batch_id)
        assert code == 1 and "4 rows written (0 ok, 4 batch_cancelled)" in err, err
        code, _, err = invoke("batch", "collect", batch_id)
        assert "0 rows written" in err and "4 already in the ledger" in err, err
    assert len(LEGACY_STATE.read_text().splitlines()) == 1  # its created line, left as it was
    events = [json.loads(x)["event"] for x in STATE.read_text().splitlines()]
    assert "collected" in events and "created" not in events
    assert len(ledger_lines(LEDGER)) == 4
