"""Interrupting `runner exec --input` for real (a subprocess against a slow in-process mock):
the first SIGINT/SIGTERM lets the calls in flight finish and be recorded, a second aborts them
(recorded as interrupted), SIGKILL loses nothing recorded; each time `--resume` finishes the
rest so that every row ends `ok` exactly once in the ledger."""

from __future__ import annotations

import collections
import shlex
import signal
import subprocess
import sys
import time
from pathlib import Path

from runner.ledger.reading import read_records

ROWS = 6


def setup(tmp_path: Path, latency: str) -> tuple[Path, Path, Path]:
    spec = tmp_path / "slow.yaml"
    spec.write_text(
        "name: slow\nmodel: gpt-4o-mini\nparams: {max_tokens: 10}\n"
        "messages: [{role: user, content: 'Say {{ n }}.'}]\n"
        f"provider: {{headers: {{X-Mock-Fault: 'latency={latency}'}}}}\n"
        "rate: {concurrency: 2}\n",
        encoding="utf-8",
    )
    data = tmp_path / "rows.jsonl"
    data.write_text("".join(f'{{"n": {i}}}\n' for i in range(ROWS)), encoding="utf-8")
    return spec, data, tmp_path / "l.jsonl"


def start(args: list[str], cwd: Path) -> subprocess.Popen[str]:
    proc = subprocess.Popen(
        [sys.executable, "-m", "runner", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=cwd,
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    assert proc.stderr is not None
    assert "mock mode" in proc.stderr.readline()  # the run is starting its first calls
    time.sleep(0.5)
    return proc


def resume(err: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    """Run the exact command the interrupted run printed (with more calls at once)."""
    command = err.strip().splitlines()[-1].strip()
    words = shlex.split(command)
    assert words[0] == "runner" and words[-1] == "--resume"
    return subprocess.run(
        [sys.executable, "-m", "runner", *words[1:], "--concurrency", "6"],
        capture_output=True,
        text=True,
        cwd=cwd,
        timeout=60,
    )


def oks(ledger: Path) -> collections.Counter[str]:
    return collections.Counter(
        line["row"] for line in read_records(ledger) if line["status"] == "ok"
    )


def test_one_sigint_finishes_the_calls_in_flight_then_resume(tmp_path: Path) -> None:
    spec, data, led = setup(tmp_path, "1s")
    args = ["exec", str(spec), "--input", str(data), "--mock", "--ledger", str(led)]
    proc = start(args, tmp_path)
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=30)
    assert proc.returncode == 130, err
    assert "Traceback" not in err
    lines = list(read_records(led))
    assert len(lines) == 2 and all(line["status"] == "ok" for line in lines)
    assert len(out.splitlines()) == 2  # the two rows in flight got their output lines
    assert "4 not run" in err and "--resume" in err
    done = resume(err, tmp_path)
    assert done.returncode == 0, done.stderr
    assert oks(led) == {str(n): 1 for n in range(1, ROWS + 1)}
    assert len(list(read_records(led))) == ROWS


def test_a_second_sigterm_aborts_and_records_the_interrupted_calls(tmp_path: Path) -> None:
    spec, data, led = setup(tmp_path, "2s")
    args = ["exec", str(spec), "--input", str(data), "--mock", "--ledger", str(led)]
    proc = start(args, tmp_path)
    proc.send_signal(signal.SIGTERM)
    time.sleep(0.2)
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=30)
    assert proc.returncode == 143, err  # 128 + SIGTERM
    assert "Traceback" not in err
    lines = list(read_records(led))
    assert [line["error"]["kind"] for line in lines] == ["interrupted", "interrupted"]
    done = resume(err, tmp_path)
    assert done.returncode == 0, done.stderr
    assert oks(led) == {str(n): 1 for n in range(1, ROWS + 1)}


def test_sigkill_half_way_then_resume_ends_with_every_row_ok_once(tmp_path: Path) -> None:
    spec, data, led = setup(tmp_path, "300ms")
    args = ["exec", str(spec), "--input", str(data), "--mock", "--ledger", str(led)]
    proc = start(args, tmp_path)
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline and (not led.exists() or len(oks(led)) < 2):
        time.sleep(0.05)
    proc.kill()
    proc.communicate(timeout=30)
    assert proc.returncode == -signal.SIGKILL
    assert 2 <= sum(oks(led).values()) < ROWS
    done = subprocess.run(
        [sys.executable, "-m", "runner", *args, "--resume", "--concurrency", "6"],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    assert oks(led) == {str(n): 1 for n in range(1, ROWS + 1)}


def test_a_closed_stdout_stops_the_run_without_a_traceback(tmp_path: Path) -> None:
    """`runner exec --input ... | head -1`: the reader goes away mid-run."""
    spec, _, led = setup(tmp_path, "10ms")
    data = tmp_path / "many.jsonl"
    data.write_text("".join(f'{{"n": {i}}}\n' for i in range(400)), encoding="utf-8")
    proc = subprocess.Popen(
        [sys.executable, "-m", "runner", "exec", str(spec), "--input", str(data), "--mock"]
        + ["--ledger", str(led)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=tmp_path,
    )
    assert proc.stdout is not None and proc.stderr is not None
    assert proc.stdout.readline().startswith('{"row": ')
    proc.stdout.close()
    err = proc.stderr.read()
    proc.stderr.close()
    assert proc.wait(timeout=60) == 1
    assert "Traceback" not in err and "the output was closed" in err
    rows = [line["row"] for line in read_records(led)]
    assert len(rows) == len(set(rows)) < 400
