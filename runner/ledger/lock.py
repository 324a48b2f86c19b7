"""Run locks: at most one data-set run, resume or batch collect of one spec writes to one ledger
at a time, so that a row is never paid twice by two processes that each saw it "not done". A
lock is an `flock` on a small file beside the ledger (`.<ledger name>.locks/<scope>.lock`): the
kernel drops it when its holder exits, killed or not, so a lock is never stale. The file holds
who has it (pid, host, start time, what) for the message of the run that is refused.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import socket
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from runner.errors import LedgerUnavailable, RunLocked
from runner.ledger.encoding import utc_timestamp

try:
    import fcntl
except ImportError:  # pragma: no cover - no fcntl (Windows): runs are not locked
    fcntl = None  # type: ignore[assignment]

__all__ = ["RunLock", "describe_holder", "lock_path", "read_holder", "run_lock", "spec_scope"]

_POLL_S = 0.1


def spec_scope(spec_path: str | os.PathLike[str]) -> str:
    """The scope of every run of one spec file: its resolved path."""
    return "spec:" + os.path.realpath(spec_path)


def lock_path(ledger_path: str | os.PathLike[str], scope: str) -> Path:
    """The lock file of `scope` for this ledger (the ledger's real path, so that two spellings
    of one file share their locks)."""
    ledger = Path(os.path.realpath(ledger_path))
    digest = hashlib.sha256(scope.encode("utf-8", "surrogatepass")).hexdigest()[:24]
    return ledger.parent / f".{ledger.name}.locks" / f"{digest}.lock"


class RunLock:
    """An exclusive lock on (ledger, scope), held from `acquire` to `release` (or as a context
    manager). `acquire` raises RunLocked at once when another process holds it, unless `wait`
    is given: then it waits (True: for ever; a number: that many seconds), calling
    `on_wait(holder)` once when it starts waiting. Held locks are per process: a second
    RunLock on the same scope in the same process is refused too."""

    def __init__(
        self,
        ledger_path: str | os.PathLike[str],
        scope: str,
        *,
        what: str = "a data-set run",
        wait: bool | float = False,
        on_wait: Callable[[dict[str, Any]], None] | None = None,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.path = lock_path(ledger_path, scope)
        self.ledger_path = os.fspath(ledger_path)
        self.scope = scope
        self.what = what
        self.wait = wait
        self.on_wait = on_wait
        self._clock = clock
        self._sleep = sleep
        self._fd: int | None = None

    @property
    def held(self) -> bool:
        return self._fd is not None

    def acquire(self) -> None:
        if self._fd is not None or fcntl is None:
            return
        fd = self._open()
        try:
            self._lock(fd)
            holder = {
                "pid": os.getpid(),
                "host": socket.gethostname(),
                "started": utc_timestamp(),
                "what": self.what,
            }
            os.ftruncate(fd, 0)
            os.pwrite(fd, (json.dumps(holder) + "\n").encode("utf-8"), 0)
        except BaseException:
            os.close(fd)
            raise
        self._fd = fd

    def release(self) -> None:
        fd, self._fd = self._fd, None
        if fd is None:
            return
        with contextlib.suppress(OSError):
            os.ftruncate(fd, 0)  # no holder any more (the file stays: deleting it would race)
        os.close(fd)  # closing the descriptor drops the flock

    def __enter__(self) -> RunLock:
        self.acquire()
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()

    def _open(self) -> int:
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            return os.open(self.path, os.O_RDWR | os.O_CREAT, 0o666)
        except OSError as exc:
            raise LedgerUnavailable(
                f"cannot lock the ledger {self.ledger_path} ({self.path}: "
                f"{exc.strerror or type(exc).__name__}); nothing was sent"
            ) from None

    def _lock(self, fd: int) -> None:
        assert fcntl is not None
        deadline = None
        if self.wait is not False and self.wait is not True:
            deadline = self._clock() + float(self.wait)
        told = False
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                return
            except BlockingIOError:
                pass
            holder = read_holder(self.path)
            if self.wait is False or (deadline is not None and self._clock() >= deadline):
                raise RunLocked(self._refusal(holder), holder=holder)
            if not told and self.on_wait is not None:
                self.on_wait(holder)
                told = True
            self._sleep(_POLL_S)

    def _refusal(self, holder: dict[str, Any]) -> str:
        who = describe_holder(holder)
        waited = "" if self.wait is False else " (gave up waiting)"
        return (
            f"{who} is already writing this spec's rows to the ledger {self.ledger_path}"
            f"{waited}: two at once could pay for a row twice. Wait for it to end, or pass "
            "--wait to start when it does; nothing was sent"
        )


def read_holder(path: str | os.PathLike[str]) -> dict[str, Any]:
    """What the lock file says of its holder ({} when it says nothing readable)."""
    try:
        with open(path, "rb") as f:
            data = f.read(4096)
        value = json.loads(data.decode("utf-8"))
    except (OSError, ValueError):
        return {}
    return value if isinstance(value, dict) else {}


def describe_holder(holder: dict[str, Any]) -> str:
    """ "a data-set run (pid 123 on host h, started 2026-...)", or "another runner process"."""
    if not holder.get("pid"):
        return "another runner process"
    what = str(holder.get("what") or "another runner process")
    where = f"pid {holder['pid']}"
    if holder.get("host"):
        where += f" on {holder['host']}"
    if holder.get("started"):
        where += f", started {holder['started']}"
    return f"{what} ({where})"


@contextlib.contextmanager
def run_lock(ledger_path: str | os.PathLike[str], scope: str, **kw: Any) -> Iterator[RunLock]:
    """`with run_lock(ledger, scope): ...`: a RunLock held for the block."""
    lock = RunLock(ledger_path, scope, **kw)
    with lock:
        yield lock
