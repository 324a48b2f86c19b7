"""The append-only JSONL file: one line per call written under an exclusive lock in one write.
It never builds a line (runner.ledger.line does), encodes one (runner.ledger.encoding) or reads
one back (runner.ledger.reading), and never reads settings.
"""

from __future__ import annotations

import errno
import functools
import os
import stat
import threading
import time
from collections.abc import Mapping
from pathlib import Path
from types import TracebackType
from typing import Any

from runner.errors import LedgerError, LedgerUnavailable
from runner.ledger.encoding import encode_line
from runner.ledger.paths import fs_of, kind_of, shown, unusable_path

try:
    import fcntl
except ImportError:  # pragma: no cover - no fcntl (Windows): appends rely on O_APPEND alone
    fcntl = None  # type: ignore[assignment]

__all__ = ["Ledger"]

# --- writing ---------------------------------------------------------------------------------

_REOPEN_TRIES = 5
# Below this much free space on the ledger's filesystem no new call is sent: its line (often a
# few KiB, up to the size of its prompt and answer) might not fit.
MIN_FREE_BYTES = 1 << 20
# Free space seen this far above that is trusted for a second (less what this ledger wrote
# since), not asked of the filesystem before every call: another writer would have to fill
# 64 MiB within that second for a line to meet a full disk, which then fails as a disk that
# fills after sending does (the line is handed back, never half-written).
_ROOMY_BYTES = 64 << 20
_SPACE_TRUSTED_S = 1.0

# Bumped in a forked child: a descriptor opened before the fork shares its lock with the
# parent and is reopened (cheaper than asking getpid on every append).
_forks = [0]


def _forked() -> None:
    _forks[0] += 1


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_forked)


class Ledger:
    """An append-only JSONL file that several threads and processes can append to at once.

    Each append takes an exclusive `flock`, writes the whole line with `os.write` and unlocks.
    The file stays open between appends; it is reopened after a fork or when the path has been
    replaced (rotated, deleted) so a line never goes to an unlinked file. With `fsync=True`
    each line is flushed to the disk before `append` returns (survives power loss, not only
    process crashes), at the price of one disk flush per call.
    """

    def __init__(self, path: str | os.PathLike[str], *, fsync: bool = False) -> None:
        self.path = os.fspath(path)
        self.fsync = fsync
        self._fd: int | None = None
        self._fork = -1
        self._readable = True  # False when only write access was granted: no torn-line check
        self._regular = False
        self._room = 0  # free bytes last seen on the filesystem, less what was written since
        self._room_until = 0.0  # time.monotonic() until which `_room` is trusted
        # (st_dev, st_ino, size) just after this ledger's last line: when the file is still
        # there, that line ends it with a newline, and there is no torn tail to look for.
        self._end: tuple[int, int, int] | None = None
        self._mutex = threading.Lock()  # flock does not exclude threads sharing one fd
        self._file: tuple[int, int] | None = None  # (st_dev, st_ino) of the open descriptor

    def __repr__(self) -> str:
        return f"Ledger({self.path!r})"

    def __reduce__(self) -> tuple[Any, ...]:
        # Pickled for a process pool: the receiver opens its own descriptor and lock.
        return (functools.partial(Ledger, fsync=self.fsync), (self.path,))

    def __enter__(self) -> Ledger:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def __del__(self) -> None:
        try:
            self.close()
        except Exception:  # interpreter shutdown: nothing useful to do
            pass

    def append(self, record: Mapping[str, Any]) -> None:
        """Write `record` as one line. LedgerError when the file cannot take it; TypeError or
        ValueError when the record holds something JSON cannot (see `encode_line`)."""
        self.append_line(encode_line(record))

    def append_line(self, line: bytes) -> None:
        """Write one encoded line (from `encode_line`). LedgerError when the file cannot take it."""
        with self._mutex:
            for _ in range(_REOPEN_TRIES):
                fd = self._open()
                self._lock(fd)
                try:
                    current = self._current()
                    if current is not None:
                        self._write(fd, line, current)
                        return
                finally:
                    _unlock(fd)
                self._close_fd()  # the path now names another file: follow it
            raise LedgerError(f"cannot write the ledger {self.path}: the file keeps being replaced")

    def check_writable(self) -> None:
        """Raise LedgerUnavailable when a line could not be appended now: the path cannot be
        opened for appending (a directory, a path under a file, a read-only filesystem) or
        its filesystem has less than MIN_FREE_BYTES free. Called before a request is sent, so
        that no paid call goes unrecorded for a reason that was known in advance."""
        with self._mutex:
            try:
                self._open()
                now = time.monotonic()
                roomy = self._room >= _ROOMY_BYTES and now < self._room_until
                if self._regular and not roomy and hasattr(os, "statvfs"):  # POSIX
                    fs = os.statvfs(self.path)
                    free = fs.f_bavail * fs.f_frsize
                    if free < MIN_FREE_BYTES:
                        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
                    self._room, self._room_until = free, now + _SPACE_TRUSTED_S
            except LedgerError as exc:
                raise LedgerUnavailable(f"{exc.message}; nothing was sent") from exc
            except OSError as exc:
                raise LedgerUnavailable(
                    f"{self._error('write', exc).message}; nothing was sent"
                ) from exc

    def close(self) -> None:
        """Close the file; a later append opens it again."""
        with self._mutex:
            self._close_fd()

    def _error(self, action: str, exc: OSError) -> LedgerError:
        reason = exc.strerror or exc.__class__.__name__
        if isinstance(exc, PermissionError) and os.path.isfile(self.path):
            reason += " (the file is read-only for this user)"
        return self._refused(reason, action)

    def _refused(self, reason: str, action: str = "open") -> LedgerError:
        return LedgerError(
            f"cannot {action} the ledger {shown(self.path)}: {reason} "
            "(choose another file with --ledger or RUNNER_LEDGER)"
        )

    def _open(self) -> int:
        if self._fd is not None and self._fork == _forks[0]:
            return self._fd
        # After a fork the inherited descriptor shares its lock with the parent: reopen.
        self._close_fd()
        # What can never be a ledger is named as such (a file in the way of a folder, a
        # device, a kernel file), not by the errno an attempt would give ("File exists").
        reason = unusable_path(self.path)
        if reason is not None:
            raise self._refused(reason)
        try:
            Path(self.path).parent.mkdir(parents=True, exist_ok=True)
            try:
                fd = os.open(self.path, os.O_RDWR | os.O_APPEND | os.O_CREAT, 0o666)
                self._readable = True
            except PermissionError:
                fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o666)
                self._readable = False
        except OSError as exc:
            reason = unusable_path(self.path)  # replaced since the check above
            raise (self._refused(reason) if reason else self._error("open", exc)) from exc
        try:
            st = os.fstat(fd)
            reason = kind_of(st, fs_of(fd) if stat.S_ISREG(st.st_mode) else None)
            if reason is None and self.fsync:  # make the file's directory entry durable too
                _fsync_dir(os.path.dirname(os.path.abspath(self.path)))
        except OSError as exc:
            os.close(fd)
            raise self._error("open", exc) from exc
        if reason is not None:  # a device or a pipe slipped in after the check
            os.close(fd)
            raise self._refused(reason)
        self._fd, self._fork = fd, _forks[0]
        self._regular, self._room, self._end = stat.S_ISREG(st.st_mode), 0, None
        self._file = (st.st_dev, st.st_ino)
        return fd

    def _close_fd(self) -> None:
        fd, self._fd = self._fd, None
        if fd is not None:  # in a forked child this closes only the child's copy
            os.close(fd)

    def _lock(self, fd: int) -> None:
        if fcntl is None:  # pragma: no cover - see the module's fcntl import
            return
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
        except OSError as exc:
            self._close_fd()
            raise self._error("lock", exc) from exc

    def _current(self) -> os.stat_result | None:
        """The open file's stat when the path still names it, else None. The path's stat is
        the file's own then (same device and inode): no fstat is needed."""
        try:
            named = os.stat(self.path)
        except FileNotFoundError:
            return None
        except OSError as exc:
            raise self._error("write", exc) from exc
        if (named.st_dev, named.st_ino) != self._file:
            return None
        return named

    def _write(self, fd: int, line: bytes, st: os.stat_result) -> None:
        regular = stat.S_ISREG(st.st_mode)
        size = st.st_size
        # An earlier writer killed mid-line left a fragment: end it, so this line stays whole.
        # No need to look when the file ends where this ledger's own last line did.
        ours = self._end == (st.st_dev, st.st_ino, size)
        if regular and size and self._readable and not ours and os.pread(fd, 1, size - 1) != b"\n":
            line = b"\n" + line
        view = memoryview(line)
        written = 0
        try:
            while written < len(line):
                n = os.write(fd, view[written:])
                if n <= 0:
                    raise OSError(0, "the file accepted no more bytes")
                written += n
            if self.fsync:
                os.fsync(fd)
        except OSError as exc:
            self._end = None
            if written and regular:
                try:  # we hold the lock, so nothing was appended after our fragment
                    os.ftruncate(fd, size)
                except OSError:
                    pass
            raise self._error("write", exc) from exc
        self._end = (st.st_dev, st.st_ino, size + written)
        self._room -= written


def _unlock(fd: int) -> None:
    if fcntl is not None:
        fcntl.flock(fd, fcntl.LOCK_UN)


def _fsync_dir(directory: str) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
