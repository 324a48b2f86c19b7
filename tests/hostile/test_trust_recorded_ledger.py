"""A ledger that cannot take a line is found before the request is sent (exit 2, nothing
sent); a write that still fails after sending says the call was not recorded and prints its
line on stderr (exit 1); a failure while pricing, checking or building the line still writes
a line (kind `internal`)."""

from __future__ import annotations

import errno
import json
import os
from pathlib import Path
from typing import Any

import pytest
from _trust_recorded import (
    FAKE_KEY,
    Canned,
    assert_clean,
    canned_server,
    chunk,
    reply,
    run_cli,
    server_env,
    sse,
    write_spec,
)

import runner.engine.answer
import runner.engine.call
import runner.ledger.store
from runner.engine.session import Session
from runner.errors import InternalError, LedgerError, LedgerUnavailable
from runner.ledger.reading import read_records
from runner.pricing import PriceBook
from runner.spec.load import load_spec


def _exec(tmp_path: Path, ledger: Path, *replies: Canned, extra: str = "") -> Any:
    args = ["exec", str(write_spec(tmp_path, extra)), "--var", "who=Ada"]
    with canned_server(*(replies or (Canned(reply()),))) as server:
        out = run_cli(args, ledger, env=server_env(server))
    return out, server


def test_a_directory_in_place_of_the_ledger_is_found_before_sending(tmp_path: Path) -> None:
    ledger = tmp_path / "ledger.jsonl"
    ledger.mkdir()
    out, server = _exec(tmp_path, ledger)
    assert server.requests == []
    assert_clean(out, code=2, lines=0)
    assert "nothing was sent" in out.stderr and str(ledger) in out.stderr


def test_a_ledger_under_a_file_is_found_before_sending(tmp_path: Path) -> None:
    (tmp_path / "afile").write_text("x", encoding="utf-8")
    ledger = tmp_path / "afile" / "ledger.jsonl"
    out, server = _exec(tmp_path, ledger)
    assert server.requests == []
    assert_clean(out, code=2, lines=0)
    assert "nothing was sent" in out.stderr


def test_a_full_disk_is_found_before_sending(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    real = os.statvfs

    class Full:
        def __init__(self, path: Any) -> None:
            found = real(path)
            self.f_frsize, self.f_bavail = found.f_frsize, 0

    monkeypatch.setattr(runner.ledger.store.os, "statvfs", Full)
    ledger = tmp_path / "ledger.jsonl"
    out, server = _exec(tmp_path, ledger)
    assert server.requests == []
    assert_clean(out, code=2, lines=0)
    assert "No space left on device" in out.stderr and "nothing was sent" in out.stderr


def test_a_disk_that_fills_after_sending_loses_no_result(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def full(fd: int, data: Any) -> int:
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(runner.ledger.store.os, "write", full)
    ledger = tmp_path / "ledger.jsonl"
    out, server = _exec(tmp_path, ledger)
    assert len(server.requests) == 1
    assert_clean(out, code=1, lines=0)
    assert "succeeded, but it was NOT recorded" in out.stderr
    shown = [line for line in out.stderr.splitlines() if line.startswith("{")]
    [line] = [json.loads(text) for text in shown]
    assert line["status"] == "ok" and line["output"]["text"] == "hello there"


def test_dev_full_as_the_ledger_is_refused_before_sending(tmp_path: Path) -> None:
    """A device is no ledger (a line written to it is lost): refused before anything is sent.
    A disk that fills after sending is test_a_disk_that_fills_after_sending_loses_no_result."""
    out, server = _exec(tmp_path, Path("/dev/full"))
    assert server.requests == []
    assert_clean(out, code=2, lines=0)
    assert "it is not a regular file (a device)" in out.stderr and "nothing was sent" in out.stderr


def test_the_python_api_gets_the_unrecorded_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    spec = load_spec(write_spec(tmp_path))
    ledger = tmp_path / "ledger.jsonl"
    with canned_server(Canned(reply())) as server:
        with Session(ledger=ledger, environ=server_env(server)) as session:
            session.run(spec, {"who": "a"})  # opens the ledger
            monkeypatch.setattr(
                runner.ledger.store.os,
                "write",
                lambda fd, data: (_ for _ in ()).throw(OSError(errno.ENOSPC, "full")),
            )
            with pytest.raises(LedgerError) as info:
                session.run(spec, {"who": "b"})
        assert len(server.requests) == 2
    assert not isinstance(info.value, LedgerUnavailable)
    assert info.value.unrecorded is not None
    assert json.loads(info.value.unrecorded)["vars"] == {"who": "b"}
    assert FAKE_KEY not in info.value.unrecorded
    assert len(ledger.read_text().splitlines()) == 1


def test_a_crash_while_pricing_still_writes_a_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(*args: Any, **kw: Any) -> Any:
        raise ArithmeticError("pricing exploded")

    monkeypatch.setattr(PriceBook, "cost_of_attempts", broken)
    ledger = tmp_path / "ledger.jsonl"
    out, server = _exec(tmp_path, ledger)
    assert len(server.requests) == 1
    assert_clean(out, code=0, lines=1)  # the answer itself was fine and is printed
    [line] = out.lines
    assert line["error"]["kind"] == "internal" and "pricing exploded" in line["error"]["message"]
    assert "succeeded" in line["error"]["message"]
    assert line["attempts"][0]["usage"]["prompt"] == 12
    assert line["cost"]["usd"] is None


def test_a_crash_while_building_the_line_still_writes_a_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(**kw: Any) -> Any:
        raise KeyError("line exploded")

    monkeypatch.setattr(runner.engine.call, "build_line", broken)
    ledger = tmp_path / "ledger.jsonl"
    out, _ = _exec(tmp_path, ledger)
    assert_clean(out, code=0, lines=1)
    assert out.lines[0]["error"]["kind"] == "internal"
    assert out.lines[0]["cost"]["usd"] is not None  # priced before the crash


def test_a_crash_while_validating_is_recorded_as_internal(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(schema: Any) -> Any:
        raise RuntimeError("validator exploded")

    monkeypatch.setattr(runner.engine.answer, "compile_validator", broken)
    ledger = tmp_path / "ledger.jsonl"
    schema = "{type: object, additionalProperties: false}"
    out, server = _exec(
        tmp_path, ledger, Canned(reply("{}")), extra=f"output: {{schema: {schema}}}\n"
    )
    assert len(server.requests) == 1
    assert_clean(out, code=1, lines=1)
    [line] = out.lines
    assert line["error"]["kind"] == "internal" and "validator exploded" in line["error"]["message"]
    assert line["attempts"][0]["outcome"] == "internal"
    assert line["usage"]["prompt"] == 12 and line["cost"]["usd"] > 0
    assert "Error:" in out.stderr


def test_internal_errors_are_not_retried(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(
        runner.engine.answer,
        "compile_validator",
        lambda schema: (_ for _ in ()).throw(RuntimeError("boom")),
    )
    spec = load_spec(
        write_spec(
            tmp_path,
            "output: {schema: {type: object, additionalProperties: false}}\n"
            "retry: {attempts: 3, backoff: {initial: 1ms}}\n",
        )
    )
    with canned_server(Canned(reply("{}"))) as server:
        session = Session(ledger=tmp_path / "l.jsonl", environ=server_env(server))
        with session, pytest.raises(InternalError):
            session.run(spec, {"who": "a"})
        assert len(server.requests) == 1


def test_a_delta_callback_that_raises_mid_stream_still_writes_a_line(tmp_path: Path) -> None:
    """`runner exec --stream | head -c1` closes the pipe: the printer raises mid-stream."""
    spec = load_spec(write_spec(tmp_path, "stream: true\n"))
    ledger = tmp_path / "ledger.jsonl"

    def closed_pipe(delta: Any) -> None:
        raise BrokenPipeError(32, "Broken pipe")

    stream = sse(chunk("Hello"), chunk(" there"), chunk(finish="stop"))
    with canned_server(stream) as server:
        session = Session(ledger=ledger, environ=server_env(server))
        with session, pytest.raises(InternalError, match="BrokenPipeError"):
            session.run(spec, {"who": "a"}, on_delta=closed_pipe)
        assert len(server.requests) == 1
    [line] = read_records(ledger)
    assert line["error"]["kind"] == "internal"
    [attempt] = line["attempts"]
    assert attempt["outcome"] == "internal"
    assert attempt["usage"]["estimated"] is True and attempt["usage"]["prompt"] > 0
