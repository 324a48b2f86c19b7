"""SIGTERM and SIGHUP (what CI systems send on cancel) stop `runner exec` like Ctrl-C: the call
in flight is cancelled, its line is written with kind `interrupted`, every attempt (the one in
flight included) and the text streamed so far, and the exit status says which signal it was."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from _ledger_schema import LINE_VALIDATOR
from _trust_recorded import (
    FAKE_KEY,
    Canned,
    canned_server,
    chunk,
    reply,
    server_env,
    sse,
    write_spec,
)

from runner.engine.session import Session
from runner.ledger.reading import read_records
from runner.spec.load import load_spec


def _interrupt(
    tmp_path: Path, signum: int, canned: Canned, *flags: str, ignore_sigint: bool = False
) -> tuple[int, str, list[Any]]:
    ledger = tmp_path / "ledger.jsonl"
    spec = write_spec(tmp_path)
    with canned_server(canned) as server:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("RUNNER_", "OPENAI_"))}
        env.update(server_env(server), NO_COLOR="1")
        proc = subprocess.Popen(
            [sys.executable, "-m", "runner", "exec", str(spec), "--var", "who=Ada",
             "--ledger", str(ledger), *flags],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            preexec_fn=_ignore_sigint if ignore_sigint else None,
        )  # fmt: skip
        try:
            assert server.in_flight.wait(20), "the request never arrived"
            time.sleep(0.2)  # let the first bytes of a stalled stream reach the client
            proc.send_signal(signum)
            signalled = time.monotonic()
            out, err = proc.communicate(timeout=20)
            assert time.monotonic() - signalled < 5  # it did not wait for the stalled reply
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.communicate()
        assert len(server.requests) == 1
    lines = list(read_records(ledger)) if ledger.is_file() else []
    for line in lines:
        LINE_VALIDATOR.validate(line)
    everything = out + err + json.dumps(lines)
    assert "Traceback" not in everything, err
    assert FAKE_KEY not in everything
    return proc.returncode, err, lines


def _ignore_sigint() -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)


@pytest.mark.parametrize(
    ("signum", "code"),
    [(signal.SIGTERM, 143), (signal.SIGHUP, 129), (signal.SIGINT, 130)],
    ids=["SIGTERM", "SIGHUP", "SIGINT"],
)
def test_a_signal_mid_call_writes_the_line_and_exits_with_its_status(
    tmp_path: Path, signum: int, code: int
) -> None:
    rc, err, lines = _interrupt(tmp_path, signum, Canned(reply(), delay=8))
    assert rc == code, err
    [line] = lines
    assert line["error"]["kind"] == "interrupted"
    [attempt] = line["attempts"]
    assert attempt["outcome"] == "interrupted"
    assert attempt["usage"]["estimated"] is True  # the request went out: its prompt counts
    assert attempt["usage"]["prompt"] == line["usage"]["estimated_prompt"] > 0
    assert line["cost"]["estimated"] is True
    assert "Interrupted." in err


def test_sigterm_works_when_sigint_is_ignored(tmp_path: Path) -> None:
    """A shell script's background job starts with SIGINT ignored; SIGTERM must still stop
    the call and record it."""
    rc, err, lines = _interrupt(
        tmp_path, signal.SIGTERM, Canned(reply(), delay=8), ignore_sigint=True
    )
    assert rc == 143, err
    [line] = lines
    assert line["error"]["kind"] == "interrupted"
    assert [a["outcome"] for a in line["attempts"]] == ["interrupted"]


def test_an_interrupted_stream_keeps_the_text_received(tmp_path: Path) -> None:
    stalled = sse(chunk("Hello"), chunk(" there"), chunk(finish="stop"))
    first = len(b"data: " + json.dumps(chunk("Hello")).encode() + b"\n\n")
    stalled.split, stalled.delay = first, 8
    rc, err, lines = _interrupt(tmp_path, signal.SIGTERM, stalled, "--stream")
    assert rc == 143, err
    [line] = lines
    assert line["output"]["text"] == "Hello"
    assert line["attempts"][0]["usage"]["completion"] == 1


def test_a_cancelled_task_keeps_its_attempts(tmp_path: Path) -> None:
    spec = load_spec(write_spec(tmp_path, "retry: {attempts: 3, backoff: {initial: 1ms}}\n"))
    ledger = tmp_path / "ledger.jsonl"

    async def main(server_url_env: dict[str, str], arrived: asyncio.Event) -> None:
        async with Session(ledger=ledger, environ=server_url_env) as session:
            task = asyncio.create_task(session.arun(spec, {"who": "a"}))
            while not arrived.is_set():
                await asyncio.sleep(0.01)
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task

    failing = Canned({"error": {"message": "down"}}, status=500)
    with canned_server(failing, Canned(reply(), delay=5)) as server:

        class Arrived:
            def is_set(self) -> bool:
                return len(server.requests) >= 2

        asyncio.run(main(server_env(server), Arrived()))  # type: ignore[arg-type]
    [line] = read_records(ledger)
    LINE_VALIDATOR.validate(line)
    assert [a["outcome"] for a in line["attempts"]] == ["server_error", "interrupted"]
    assert line["error"]["kind"] == "interrupted"


def test_sigterm_during_a_slow_mock_call(tmp_path: Path) -> None:
    """The built-in mock, slowed by X-Mock-Fault: the ledger file appears (checked writable)
    just before the request goes out, so the signal lands while the mock is still waiting."""
    ledger = tmp_path / "ledger.jsonl"
    spec = write_spec(tmp_path, 'provider: {headers: {X-Mock-Fault: "latency=8s"}}\n')
    env = {k: v for k, v in os.environ.items() if not k.startswith(("RUNNER_", "OPENAI_"))}
    proc = subprocess.Popen(
        [sys.executable, "-m", "runner", "exec", str(spec), "--var", "who=Ada", "--mock",
         "--ledger", str(ledger)],
        env={**env, "NO_COLOR": "1"},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 20
        while not ledger.exists() and time.monotonic() < deadline:
            time.sleep(0.05)
        time.sleep(0.5)
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=20)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == 143, err
    assert "Traceback" not in out + err
    [line] = read_records(ledger)
    LINE_VALIDATOR.validate(line)
    assert line["error"]["kind"] == "interrupted" and line["mock"] is True
    assert [a["outcome"] for a in line["attempts"]] == ["interrupted"]
