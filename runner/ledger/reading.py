"""Reading ledgers back: only regular files are opened, lines come one at a time (a line past
the longest runner writes is read past, never held), and torn or invalid lines are skipped with
a warning. Writing is runner.ledger.store's.
"""

from __future__ import annotations

import json
import os
import stat
import warnings
from collections.abc import Callable, Iterator
from typing import Any, BinaryIO

from runner.errors import LedgerError, RunnerWarning
from runner.ledger.encoding import MAX_LINE_BYTES
from runner.ledger.line import LEDGER_VERSION
from runner.ledger.paths import fs_of, kind_of, shown

__all__ = [
    "iter_lines",
    "iter_lines_backwards",
    "open_for_reading",
    "read_records",
    "read_records_newest_first",
]


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
