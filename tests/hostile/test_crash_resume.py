"""Crash and resume: `runner exec --input` killed with SIGKILL at different moments — before its
first line, after its first answers, half-way, and in the middle of fast appends under load —
then resumed. Every ledger line parses (a torn last line at most, which the reader skips), and
after the resume every row is `ok` exactly once."""

from __future__ import annotations

import collections
import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from runner.ledger import read_records


def setup(tmp_path: Path, rows: int, latency: str, concurrency: int) -> tuple[Path, Path, Path]:
    spec = tmp_path / "crash.yaml"
    spec.write_text(
        "name: crash\nmodel: gpt-4o-mini\nparams: {max_tokens: 10}\n"
        "inputs: {type: object, properties: {n: {type: integer}}, required: [n]}\n"
        "messages: [{role: user, content: 'Say {{ n }}.'}]\n"
        f"provider: {{headers: {{X-Mock-Fault: 'latency={latency}'}}}}\n"
        f"rate: {{concurrency: {concurrency}}}\n",
        encoding="utf-8",
    )
    data = tmp_path / "rows.jsonl"
    data.write_text("".join(f'{{"id": "r{i}", "n": {i}}}\n' for i in range(rows)), "utf-8")
    return spec, data, tmp_path / "ledger.jsonl"


def ok_rows(ledger: Path) -> collections.Counter[str]:
    with pytest.warns(Warning) if _torn(ledger) else _nothing():
        lines = list(read_records(ledger))
    return collections.Counter(line["row"] for line in lines if line["status"] == "ok")


def _torn(ledger: Path) -> bool:
    return ledger.exists() and not ledger.read_bytes().endswith(b"\n") and ledger.stat().st_size > 0


class _nothing:  # noqa: N801 - a do-nothing context manager
    def __enter__(self) -> None:
        return None

    def __exit__(self, *exc: object) -> None:
        return None


def lines_parse_but_the_last(ledger: Path) -> None:
    if not ledger.exists():
        return
    raw = ledger.read_bytes().split(b"\n")
    whole, last = raw[:-1], raw[-1]
    for line in whole:
        json.loads(line)  # every complete line is whole JSON
    assert last == b"" or not last.endswith(b"}\n")  # at most a torn last line


@pytest.mark.parametrize(
    ("moment", "rows", "latency", "concurrency", "kill_at"),
    [
        ("before the first line", 8, "2s", 2, 0),
        # Two at a time, 300 ms each: the lines come in pairs, well apart.
        ("after the first answers", 8, "300ms", 2, 2),
        ("half-way", 8, "300ms", 2, 4),
        ("during fast appends under load", 600, "0ms", 32, 150),
    ],
)
def test_sigkill_then_resume(
    tmp_path: Path, moment: str, rows: int, latency: str, concurrency: int, kill_at: int
) -> None:
    spec, data, ledger = setup(tmp_path, rows, latency, concurrency)
    args = ["exec", str(spec), "--input", str(data), "--mock", "--ledger", str(ledger), "-q"]
    proc = subprocess.Popen(
        [sys.executable, "-m", "runner", *args],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        cwd=tmp_path,
    )
    deadline = time.monotonic() + 30
    if kill_at == 0:
        time.sleep(1.0)  # started, calls in flight, nothing answered yet
    else:
        while time.monotonic() < deadline and (
            not ledger.exists() or ledger.read_bytes().count(b"\n") < kill_at
        ):
            time.sleep(0.002)
    proc.send_signal(signal.SIGKILL)
    proc.wait(30)
    assert proc.returncode == -signal.SIGKILL, moment
    lines_parse_but_the_last(ledger)
    before = sum(ok_rows(ledger).values()) if ledger.exists() else 0
    assert before < rows, f"{moment}: the run finished before it was killed"
    done = subprocess.run(
        [sys.executable, "-m", "runner", *args, "--resume", "--concurrency", "32"],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert "Traceback" not in done.stderr
    assert ok_rows(ledger) == {f"r{i}": 1 for i in range(rows)}, moment
