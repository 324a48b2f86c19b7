"""Run locks: one data-set run, resume or collect of a spec per ledger at a time; the holder is
named; a killed holder's lock is free at once; waiting works and gives up when told."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from runner.errors import RunLocked
from runner.ledger.lock import RunLock, lock_path, spec_scope


def test_a_second_lock_on_the_same_scope_is_refused_naming_the_holder(tmp_path: Path) -> None:
    ledger = tmp_path / "runs" / "ledger.jsonl"
    with (
        RunLock(ledger, "spec:/a.yaml", what="a data-set run"),
        pytest.raises(RunLocked) as caught,
    ):
        RunLock(ledger, "spec:/a.yaml").acquire()
    message = str(caught.value)
    assert f"pid {os.getpid()}" in message
    assert socket.gethostname() in message
    assert "started 20" in message and "--wait" in message
    assert caught.value.exit_code == 2
    assert caught.value.holder["pid"] == os.getpid()


def test_other_scopes_and_other_ledgers_do_not_conflict(tmp_path: Path) -> None:
    ledger = tmp_path / "ledger.jsonl"
    with (
        RunLock(ledger, "spec:/a.yaml"),
        RunLock(ledger, "spec:/b.yaml"),
        RunLock(tmp_path / "other.jsonl", "spec:/a.yaml"),
    ):
        pass


def test_two_spellings_of_one_ledger_share_the_lock(tmp_path: Path) -> None:
    (tmp_path / "runs").mkdir()
    ledger = tmp_path / "runs" / "ledger.jsonl"
    ledger.touch()
    (tmp_path / "link.jsonl").symlink_to(ledger)
    with RunLock(ledger, "s"), pytest.raises(RunLocked):
        RunLock(tmp_path / "runs" / ".." / "link.jsonl", "s").acquire()


def test_the_lock_is_free_again_after_release(tmp_path: Path) -> None:
    lock = RunLock(tmp_path / "l.jsonl", "s")
    lock.acquire()
    lock.release()
    with RunLock(tmp_path / "l.jsonl", "s") as again:
        assert again.held


def test_waiting_gives_up_after_its_time_and_tells_once(tmp_path: Path) -> None:
    told = []
    now = [0.0]

    def sleep(seconds: float) -> None:
        now[0] += seconds

    with RunLock(tmp_path / "l.jsonl", "s", what="a batch collect"):
        waiter = RunLock(
            tmp_path / "l.jsonl",
            "s",
            wait=1.0,
            on_wait=told.append,
            clock=lambda: now[0],
            sleep=sleep,
        )
        with pytest.raises(RunLocked, match="a batch collect .*gave up waiting"):
            waiter.acquire()
    assert len(told) == 1 and told[0]["what"] == "a batch collect"
    assert 1.0 <= now[0] < 1.5


_HOLDER = textwrap.dedent(
    """
    import sys, time
    from runner.ledger.lock import RunLock
    lock = RunLock(sys.argv[1], "s", what="a data-set run")
    lock.acquire()
    print("held", flush=True)
    time.sleep(60)
    """
)


def test_a_killed_holder_leaves_no_stale_lock_and_a_waiter_gets_it(tmp_path: Path) -> None:
    ledger = tmp_path / "l.jsonl"
    child = subprocess.Popen(
        [sys.executable, "-c", _HOLDER, str(ledger)], stdout=subprocess.PIPE, text=True
    )
    try:
        assert child.stdout is not None and child.stdout.readline().strip() == "held"
        with pytest.raises(RunLocked, match=f"pid {child.pid}"):
            RunLock(ledger, "s").acquire()
        os.kill(child.pid, signal.SIGKILL)
        started = time.monotonic()
        with RunLock(ledger, "s", wait=20.0) as lock:
            assert lock.held
        assert time.monotonic() - started < 15
    finally:
        child.kill()
        child.wait()
        assert child.stdout is not None
        child.stdout.close()


def test_the_lock_file_lives_beside_the_ledger_out_of_ledger_globs(tmp_path: Path) -> None:
    path = lock_path(tmp_path / "runs" / "ledger.jsonl", spec_scope("prompts/city.yaml"))
    assert path.parent == (tmp_path / "runs" / ".ledger.jsonl.locks").resolve()
    assert path.suffix == ".lock"


def test_an_unwritable_lock_place_is_a_clear_error(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("x")
    from runner.errors import LedgerUnavailable

    with pytest.raises(LedgerUnavailable, match="cannot lock the ledger"):
        RunLock(tmp_path / "file" / "ledger.jsonl", "s").acquire()
