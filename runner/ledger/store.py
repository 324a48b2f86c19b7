"""The append-only JSONL file: one line per call written under an exclusive lock in one write,
read back line by line (torn or invalid lines are skipped with a warning). It never builds a
line (runner.ledger.line does) or encodes one (runner.ledger.encoding), and never reads settings.
"""

from __future__ import annotations

import errno
import functools
import json
import os
import stat
import threading
import warnings
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from types import TracebackType
from typing import Any, BinaryIO

from runner.errors import LedgerError, LedgerUnavailable, RunnerWarning
from runner.ledger.encoding import MAX_LINE_BYTES, encode_line
from runner.ledger.line import LEDGER_VERSION
from runner.ledger.paths import fs_of, kind_of, shown, unusable_path

try:
    import fcntl
except ImportError:  # pragma: no cover - no fcntl (Windows): appends rely on O_APPEND alone
    fcntl = None  # type: ignore[assignment]

__all__ = [
    "Ledger",
    "iter_lines",
    "iter_lines_backwards",
    "open_for_reading",
    "read_records",
    "read_records_newest_first",
]

# --- writing ---------------------------------------------------------------------------------

_REOPEN_TRIES = 5
# Below this much free space on the ledger's filesystem no new call is sent: its line (often a
# few KiB, up to the size of its prompt and answer) might not fit.
MIN_FREE_BYTES = 1 << 20


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
        self._pid = 0
        self._readable = True  # False when only write access was granted: no torn-line check
        self._mutex = threading.Lock()  # flock does not exclude threads sharing one fd

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
                    current = self._current(fd)
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
                fd = self._open()
                st = os.fstat(fd)
                if stat.S_ISREG(st.st_mode) and hasattr(os, "statvfs"):  # POSIX
                    fs = os.statvfs(self.path)
                    free = fs.f_bavail * fs.f_frsize
                    if free < MIN_FREE_BYTES:
                        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
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
        if self._fd is not None and self._pid == os.getpid():
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
        self._fd, self._pid = fd, os.getpid()
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

    def _current(self, fd: int) -> os.stat_result | None:
        """fstat of `fd` when the path still names the open file, else None."""
        try:
            named = os.stat(self.path)
            opened = os.fstat(fd)
        except FileNotFoundError:
            return None
        except OSError as exc:
            raise self._error("write", exc) from exc
        if (named.st_dev, named.st_ino) != (opened.st_dev, opened.st_ino):
            return None
        return opened

    def _write(self, fd: int, line: bytes, st: os.stat_result) -> None:
        regular = stat.S_ISREG(st.st_mode)
        size = st.st_size
        # An earlier writer killed mid-line left a fragment: end it, so this line stays whole.
        if regular and size and self._readable and os.pread(fd, 1, size - 1) != b"\n":
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
            if written and regular:
                try:  # we hold the lock, so nothing was appended after our fragment
                    os.ftruncate(fd, size)
                except OSError:
                    pass
            raise self._error("write", exc) from exc


def _unlock(fd: int) -> None:
    if fcntl is not None:
        fcntl.flock(fd, fcntl.LOCK_UN)


def _fsync_dir(directory: str) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


# --- reading ---------------------------------------------------------------------------------


def _warn(message: str) -> None:
    warnings.warn(message, RunnerWarning, stacklevel=2)


def open_for_reading(
    path: str | os.PathLike[str], *, what: str = "ledger", missing_ok: bool = False
) -> BinaryIO | None:
    """Open a ledger (or another file runner wrote) for reading. Only a regular file is read:
    a directory, a device (/dev/zero, /dev/stdin), a FIFO, a socket or a kernel file (/proc,
    /sys) is refused with a LedgerError, without blocking, as is an unreadable file. A missing
    file raises too, or gives None when `missing_ok`."""
    name = os.fspath(path)
    if "\x00" in name:
        raise LedgerError(f"cannot read the {what} {shown(name)}: the path contains a NUL byte")
    try:
        # O_NONBLOCK: opening a FIFO must not wait for a writer (it is refused just below);
        # on a regular file the flag changes nothing.
        fd = os.open(name, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_CLOEXEC", 0))
    except FileNotFoundError:
        if missing_ok:
            return None
        raise LedgerError(f"no {what} at {name}") from None
    except IsADirectoryError:
        raise LedgerError(f"cannot read the {what} {name}: it is a directory") from None
    except OSError as exc:
        raise LedgerError(f"cannot read the {what} {name}: {exc.strerror}") from None
    try:
        st = os.fstat(fd)
        reason = kind_of(st, fs_of(fd) if stat.S_ISREG(st.st_mode) else None)
    except OSError as exc:
        os.close(fd)
        raise LedgerError(f"cannot read the {what} {name}: {exc.strerror}") from None
    if reason is not None:
        os.close(fd)
        raise LedgerError(f"cannot read the {what} {name}: {reason}")
    return os.fdopen(fd, "rb")


def iter_lines(
    f: BinaryIO, *, limit: int | None = None, on_long: Callable[[int], None] | None = None
) -> Iterator[tuple[int, bytes]]:
    """Yield (line number, line) of a file opened in binary mode, each line with its newline
    (the last may lack it). A line longer than `limit` (default MAX_LINE_BYTES) is never held
    in memory: it is read past in pieces and reported to `on_long(line number)` instead."""
    if limit is None:
        limit = MAX_LINE_BYTES
    number = 0
    readline = f.readline
    while True:
        raw = readline(limit + 1)
        if not raw:
            return
        number += 1
        if len(raw) <= limit or raw.endswith(b"\n"):
            yield number, raw
            continue
        while raw and not raw.endswith(b"\n"):  # the rest of the long line, a piece at a time
            raw = readline(1 << 20)
        if on_long is not None:
            on_long(number)


def iter_lines_backwards(
    f: BinaryIO,
    *,
    limit: int | None = None,
    block: int = 1 << 16,
    on_long: Callable[[int], None] | None = None,
) -> Iterator[tuple[int, bytes]]:
    """`iter_lines` from the end: (byte offset, line), last line first, read in blocks, so the
    newest lines cost what they hold, not the file's size. A line past `limit` is dropped as
    it is read and reported to `on_long(offset)`. Lines appended meanwhile are not read."""
    if limit is None:
        limit = MAX_LINE_BYTES
    f.seek(0, os.SEEK_END)
    pos = f.tell()
    if pos:
        f.seek(pos - 1)
    ended = f.read(1) == b"\n"  # whether the line being put together has its newline
    pieces: list[bytes] = []  # the line being put together, its last piece first
    size = 0  # its length so far, counted even once its bytes are dropped

    def finish(start: int) -> Iterator[tuple[int, bytes]]:
        nonlocal pieces, size, ended
        # As iter_lines: up to `limit` bytes before the newline.
        if size - ended > limit:
            if on_long is not None:
                on_long(start)
        elif size:
            yield start, b"".join(reversed(pieces))
        pieces, size, ended = [], 0, True

    while pos > 0:
        step = min(block, pos)
        pos -= step
        f.seek(pos)
        chunk = f.read(step)
        if len(chunk) != step:  # the file was cut short under us: stop at what was read
            return
        end = search = len(chunk)
        while True:
            newline = chunk.rfind(b"\n", 0, search)
            piece = chunk[newline + 1 : end]
            size += len(piece)
            if size <= limit + 1:
                pieces.append(piece)
            else:
                pieces.clear()
            if newline < 0:
                break
            # A newline ends the line before it: what was gathered so far is a whole line.
            yield from finish(pos + newline + 1)
            end, search = newline + 1, newline
    yield from finish(0)


def read_records_newest_first(
    path: str | os.PathLike[str], *, warn: Callable[[str], None] | None = None
) -> Iterator[dict[str, Any]]:
    """`read_records` from the end (`iter_lines_backwards`): lines are named by byte offset,
    and a torn last line (a write in progress) is skipped without a word."""
    f = open_for_reading(path)
    assert f is not None
    return _iter_records(f, os.fspath(path), warn or _warn, backwards=True)


def read_records(
    path: str | os.PathLike[str], *, warn: Callable[[str], None] | None = None
) -> Iterator[dict[str, Any]]:
    """Yield the ledger's records in file order, streaming; unusable lines are skipped with
    `warn(message)` (default: a RunnerWarning). A missing file, or one that is not a regular
    file, raises LedgerError at once."""
    f = open_for_reading(path)
    assert f is not None
    return _iter_records(f, os.fspath(path), warn or _warn)


def _iter_records(
    f: BinaryIO, name: str, warn: Callable[[str], None], *, backwards: bool = False
) -> Iterator[dict[str, Any]]:
    """The records of `f`, first line first, or last line first (named by byte offsets)."""
    newer_seen: set[int] = set()

    def at(place: int) -> str:
        return f"{name} (byte {place:,})" if backwards else f"{name}:{place}"

    def too_long(place: int) -> None:
        warn(f"{at(place)}: line skipped: longer than {MAX_LINE_BYTES:,} bytes")

    lines = (iter_lines_backwards if backwards else iter_lines)(f, on_long=too_long)
    try:
        with f:
            for place, raw in lines:
                if not raw.strip():
                    continue
                if backwards and not raw.endswith(b"\n"):
                    continue  # the last line, still being written: not news to the reader
                where = at(place)
                try:
                    value = json.loads(raw.rstrip(b"\n").decode("utf-8"))
                except (ValueError, RecursionError) as exc:
                    if not raw.endswith(b"\n"):  # only the last line can lack its newline
                        warn(f"{where}: incomplete last line skipped (a write was interrupted?)")
                    else:
                        warn(f"{where}: line skipped: {_why(exc)}")
                    continue
                record = _check_record(value, where, warn, newer_seen)
                if record is not None:
                    yield record
    except OSError as exc:
        raise LedgerError(f"cannot read the ledger {name}: {exc.strerror}") from exc


def _why(exc: Exception) -> str:
    if isinstance(exc, UnicodeDecodeError):
        return "not valid UTF-8"
    if isinstance(exc, json.JSONDecodeError):
        return f"not valid JSON ({exc.msg.removesuffix(' at')} at column {exc.colno})"
    return "not valid JSON"


def _check_record(
    value: Any, where: str, warn: Callable[[str], None], newer_seen: set[int]
) -> dict[str, Any] | None:
    if not isinstance(value, dict):
        warn(f"{where}: line skipped: not a JSON object")
        return None
    version = value.get("v")
    if type(version) is not int or version < 1:
        warn(f"{where}: line skipped: no ledger format version `v`")
        return None
    if version > LEDGER_VERSION and version not in newer_seen:
        newer_seen.add(version)  # once per version: a big ledger must not drown stderr
        warn(
            f"{where}: written by a newer runner (ledger format v{version}, this runner reads "
            f"v{LEDGER_VERSION}); such lines are read as far as their fields are known"
        )
    return value
