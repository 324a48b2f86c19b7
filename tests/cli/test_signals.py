"""SIGTERM (what CI systems and `kill` send) stops every command with exit status 143, says
`Interrupted.`, and shows no traceback — each command caught while it is busy: a call waiting
on a slow server, a data set, test cases, a query, a long validation, a ledger scan, a
server, a batch request, a baseline being recorded. A test below holds the list to
`runner --help`'s, so a new command needs its case here."""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from runner.cli import COMMANDS

ROOT = Path(__file__).resolve().parents[2]
SLOW = "provider: {headers: {X-Mock-Fault: 'latency=60s'}}\n"
SPEC = (
    "name: slow\nmodel: gpt-4o-mini\nparams: {max_tokens: 10}\n"
    "messages: [{role: user, content: 'Say {{ n }}.'}]\n"
    "tests:\n  - {name: one, vars: {n: 1}, expect: [{text_contains: x}]}\n"
)


def _env(**extra: str) -> dict[str, str]:
    keep = {k: v for k, v in os.environ.items() if not k.startswith(("RUNNER_", "OPENAI_"))}
    return keep | {"RUNNER_CACHE_DIR": os.environ["RUNNER_CACHE_DIR"], **extra}


def _big_spec(folder: Path, cases: int = 60_000) -> Path:
    body = "".join(f"  - name: c{i}\n    expect: [{{text_contains: x}}]\n" for i in range(cases))
    path = folder / "big.yaml"
    path.write_text("name: big\nmodel: gpt-4o-mini\nmessages: [{role: user, content: hi}]\n"
                    "tests:\n" + body)  # fmt: skip
    return path


class Silent(str):
    """A base URL whose server accepts connections and never answers; `listener` is its socket,
    whose next connection says the command is waiting on it."""

    listener: socket.socket


@pytest.fixture
def silent_server() -> Iterator[Silent]:
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(16)
    url = Silent(f"http://127.0.0.1:{listener.getsockname()[1]}/v1")
    url.listener = listener
    try:
        yield url
    finally:
        listener.close()


# Each command: how to set it up in a folder, its arguments, extra environment, and what says
# it is busy: a line on its stderr, a file it writes, a connection to the silent server, or
# (None) a second of its CPU time.
Busy = str | Path | socket.socket | None
Setup = Callable[[Path, Silent], tuple[list[str], dict[str, str], Busy]]


def _exec(folder: Path, url: Silent) -> tuple[list[str], dict[str, str], Busy]:
    (folder / "s.yaml").write_text(SPEC + SLOW)
    return ["exec", "s.yaml", "--var", "n=1", "--mock"], {}, "mock mode"


def _exec_input(folder: Path, url: Silent) -> tuple[list[str], dict[str, str], Busy]:
    # More rows than run at once, so the signal finds some sent and some never started.
    (folder / "s.yaml").write_text(SPEC + "provider: {headers: {X-Mock-Fault: 'latency=2s'}}\n")
    (folder / "rows.jsonl").write_text("".join(f'{{"n": {i}}}\n' for i in range(40)))
    return ["exec", "s.yaml", "--input", "rows.jsonl", "--mock"], {}, "mock mode"


def _test(folder: Path, url: Silent) -> tuple[list[str], dict[str, str], Busy]:
    (folder / "s.yaml").write_text(SPEC + SLOW)
    return ["test", "s.yaml", "--mock"], {}, "mock mode"


def _report(folder: Path, url: Silent) -> tuple[list[str], dict[str, str], Busy]:
    (folder / "l.jsonl").write_text("")
    query = "SELECT sum(a.range * b.range) FROM range(1000000000000) a, range(10) b"
    return ["report", "--ledger", "l.jsonl", "--sql", query], {}, None


def _validate(folder: Path, url: Silent) -> tuple[list[str], dict[str, str], Busy]:
    return ["validate", str(_big_spec(folder))], {}, None


def _render(folder: Path, url: Silent) -> tuple[list[str], dict[str, str], Busy]:
    return ["render", str(_big_spec(folder))], {}, None


def _log(folder: Path, url: Silent) -> tuple[list[str], dict[str, str], Busy]:
    line = json.dumps({"v": 1, "id": "01JP9ZMQCNBRX9RWDJTG7R0001", "status": "ok",
                       "spec": {"name": "s"}, "pad": "x" * 200})  # fmt: skip
    (folder / "l.jsonl").write_text((line + "\n") * 400_000)  # ~100 MB, scanned to the start
    return ["log", "--ledger", "l.jsonl", "--spec", "nothing-matches"], {}, None


def _mock_server(folder: Path, url: Silent) -> tuple[list[str], dict[str, str], Busy]:
    return ["mock-server", "--port", "0"], {}, "runner mock server on"


def _batch(folder: Path, url: Silent) -> tuple[list[str], dict[str, str], Busy]:
    # A batch in the state file, made on a server that never answers when asked about it.
    from runner.batch.state import record_created

    (folder / "s.yaml").write_text(SPEC)
    spec = {"path": "s.yaml", "resolved": str(folder / "s.yaml"), "git_path": "s.yaml",
            "name": "slow", "sha256": "0" * 64}  # fmt: skip
    ledger = folder / "runs" / "ledger.jsonl"
    record_created(
        ledger,
        {"id": "batch_1", "status": "in_progress", "input_file_id": "file_1"},
        [],
        spec=spec,
        input=None,
        model="gpt-4o-mini",
        base_url=url,
        mock=False,
        group="batch_1",
        part=1,
        parts=1,
        row_count=1,
    )
    args = ["batch", "status", "batch_1", "--ledger", str(ledger)]
    return args, {"RUNNER_BASE_URL": url, "OPENAI_API_KEY": "sk-x"}, url.listener


def _exec_batch(folder: Path, url: Silent) -> tuple[list[str], dict[str, str], Busy]:
    # Waiting for a batch that takes an hour (`url` is the batch server's, not the silent one).
    (folder / "s.yaml").write_text(SPEC)
    (folder / "rows.jsonl").write_text('{"n": 1}\n{"n": 2}\n')
    args = ["exec", "s.yaml", "--input", "rows.jsonl", "--batch"]
    return args, {"RUNNER_BASE_URL": url, "OPENAI_API_KEY": "sk-x"}, "created batch"


def _probe(folder: Path, url: Silent) -> tuple[list[str], dict[str, str], Busy]:
    # Its first request goes to a server that never answers.
    args = ["probe", "--base-url", url, "--model", "m"]
    return args, {"OPENAI_API_KEY": "sk-x"}, url.listener


# The in-process mock answering after a minute: a test's child process loads this first.
_SLOW_MOCK = """
import runner.mock.faults as faults

_made = faults.Faults.__init__

def _slow(self, *args, **kwargs):
    kwargs.setdefault("latency", 60.0)
    _made(self, *args, **kwargs)

faults.Faults.__init__ = _slow
"""


def _init(folder: Path, url: Silent) -> tuple[list[str], dict[str, str], Busy]:
    # Caught recording the baseline (its files written), each answer a minute away.
    (folder / "slow").mkdir()
    (folder / "slow" / "sitecustomize.py").write_text(_SLOW_MOCK)
    return ["init", "new"], {"PYTHONPATH": str(folder / "slow")}, folder / "new" / "README.md"


CASES: dict[str, Setup] = {
    "exec": _exec,
    "exec --input": _exec_input,
    "test": _test,
    "report": _report,
    "validate": _validate,
    "render": _render,
    "log": _log,
    "mock-server": _mock_server,
    "exec --batch": _exec_batch,
    "batch": _batch,
    "init": _init,
    "probe": _probe,
}


@pytest.fixture
def batch_server() -> Iterator[Silent]:
    """runner's mock server on a loopback port, its batches taking an hour."""
    server = subprocess.Popen(
        [sys.executable, "-m", "runner", "mock-server", "--port", "0", "--batch-delay", "1h"],
        env=_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    assert server.stdout is not None
    try:
        found = re.search(r"http://\S+/v1", server.stdout.readline())
        assert found is not None
        yield Silent(found.group())
    finally:
        server.terminate()
        server.communicate(timeout=30)


def test_every_command_has_a_case() -> None:
    assert {name.split()[0] for name in CASES} == set(COMMANDS)


def _cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


@pytest.mark.parametrize("name", CASES)
def test_sigterm_exits_143(
    name: str, tmp_path: Path, silent_server: Silent, request: pytest.FixtureRequest
) -> None:
    url = request.getfixturevalue("batch_server") if name == "exec --batch" else silent_server
    args, env, busy = CASES[name](tmp_path, url)
    proc = subprocess.Popen(
        [sys.executable, "-m", "runner", *args],
        cwd=tmp_path,
        env=_env(**env),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert proc.stderr is not None
    connections: list[socket.socket] = []
    try:
        if isinstance(busy, str):
            seen = proc.stderr.readline()
            while busy not in seen and seen.startswith("Note:"):  # a note may come first
                seen = proc.stderr.readline()
            assert busy in seen, seen
            time.sleep(0.5)
        elif isinstance(busy, socket.socket):
            busy.settimeout(60)
            connection, _ = busy.accept()
            connections.append(connection)
            time.sleep(0.3)
        elif isinstance(busy, Path):
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline and not busy.exists() and proc.poll() is None:
                time.sleep(0.005)
            time.sleep(0.2)
        else:
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline and _cpu_seconds(proc.pid) < 1.0:
                time.sleep(0.02)
        assert proc.poll() is None, f"{name} ended before the signal: {proc.communicate()}"
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
        for connection in connections:
            connection.close()
    assert proc.returncode == 143, err
    assert re.search(r"^Interrupted[.:]", err, flags=re.M) and "Traceback" not in err, err
    if name in LEDGER_CHECKS:
        LEDGER_CHECKS[name](err, _ledger_lines(tmp_path / "runs" / "ledger.jsonl"))


def _ledger_lines(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


def _one_interrupted_call(err: str, lines: list[dict[str, Any]]) -> None:
    """The call waiting on the server when the signal came has its line: interrupted."""
    assert [(line["status"], line["error"]["kind"]) for line in lines] == [
        ("error", "interrupted")
    ], lines


def _every_row_sent_has_its_line(err: str, lines: list[dict[str, Any]]) -> None:
    """The rows sent before the signal finish and are recorded; the rest are not run."""
    done = re.search(r"(\d+) of 40 rows ok · (\d+) failed .* (\d+) not run", err)
    assert done is not None, err
    ok, failed, not_run = (int(n) for n in done.groups())
    assert not_run > 0 and ok + failed + not_run == 40, err
    assert len(lines) == ok + failed and {line["status"] for line in lines} <= {"ok", "error"}


def _the_batch_is_left_to_collect(err: str, lines: list[dict[str, Any]]) -> None:
    """The batch runs on at the server: no line yet, and the way back is named."""
    assert lines == [] and "runner batch collect" in err, err


LEDGER_CHECKS: dict[str, Callable[[str, list[dict[str, Any]]], None]] = {
    "exec --batch": _the_batch_is_left_to_collect,
    "exec": _one_interrupted_call,
    "exec --input": _every_row_sent_has_its_line,
    "test": _one_interrupted_call,
}
