"""The files a report touches, without DuckDB: the ledgers named by paths and globs (regular files
only, each checked before anything is read), a scan of each for lines longer than any runner
writes and for a torn last line, copies without those lines for DuckDB, and the one file a
report may write (--html), checked before the query runs."""

from __future__ import annotations

import glob
import json
import os
import stat
from collections.abc import Sequence
from dataclasses import dataclass

from runner.errors import ConfigError
from runner.ledger.encoding import MAX_LINE_BYTES
from runner.ledger.paths import fs_of, kind_of, shown
from runner.ledger.reading import iter_lines

__all__ = ["FileScan", "check_output", "copy_without_long_lines", "expand_ledgers", "scan"]

_CHUNK = 1 << 20


def _refusal(path: str) -> str | None:
    """Why `path` cannot be read as a ledger (not a regular file, unreadable), or None. Opened
    without blocking, so that a FIFO is refused instead of waited on."""
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))
    except IsADirectoryError:
        return "it is a directory"
    except OSError as exc:
        return exc.strerror or type(exc).__name__
    try:
        st = os.fstat(fd)
        return kind_of(st, fs_of(fd) if stat.S_ISREG(st.st_mode) else None)
    except OSError as exc:
        return exc.strerror or type(exc).__name__
    finally:
        os.close(fd)


def expand_ledgers(patterns: Sequence[str]) -> list[str]:
    """Each ledger path or glob -> the files it names, in order, each once. A path that does
    not exist, a glob that matches no file, or anything that is not a regular readable file
    (a directory named, a device, a FIFO, a kernel file under /proc) raises ConfigError. A
    glob passes over the directories it matches."""
    files: list[str] = []
    seen: set[str] = set()
    for pattern in patterns:
        if not pattern.strip():
            raise ConfigError("--ledger: the path is empty")
        if "\x00" in pattern:
            raise ConfigError(f"--ledger {shown(pattern)}: the path contains a NUL byte")
        if os.path.lexists(pattern) or not glob.has_magic(pattern):
            # A file named like a glob (runs/a[1].jsonl) is that file.
            if not os.path.lexists(pattern):
                raise ConfigError(f"no ledger at {pattern}")
            if os.path.isdir(pattern):
                raise ConfigError(f"--ledger {pattern}: it is a directory (name the .jsonl file)")
            reason = _refusal(pattern)
            if reason is not None:
                raise ConfigError(f"--ledger {pattern}: {reason}")
            found = [pattern]
        else:
            found = []
            for path in sorted(glob.glob(pattern, recursive=True)):
                if os.path.isdir(path):
                    continue
                reason = _refusal(path)
                if reason is not None:
                    raise ConfigError(
                        f"--ledger {pattern}: {path} {reason.removeprefix('it ')} "
                        "(name the ledger files, or a glob that matches only them)"
                    )
                found.append(path)
            if not found:
                raise ConfigError(f"--ledger {pattern}: the pattern matches no file")
        for path in found:
            key = os.path.realpath(path)
            if key not in seen:
                seen.add(key)
                files.append(path)
    return files


@dataclass(frozen=True)
class FileScan:
    """What one pass over a ledger's bytes found: lines longer than MAX_LINE_BYTES (never
    written by runner, skipped) and whether its last line is torn (no newline, not JSON)."""

    path: str
    long_lines: int
    torn: bool


def scan(path: str) -> FileScan:
    """Read the file once, in pieces of 1 MiB, holding one piece at a time (and, at the end, a
    last line without its newline, to tell whether it is torn)."""
    long = 0
    run = 0  # bytes of the line being read, so far
    with open(path, "rb") as f:
        while chunk := f.read(_CHUNK):
            first = chunk.find(b"\n")
            if first < 0:
                run += len(chunk)
                continue
            if run + first > MAX_LINE_BYTES:
                long += 1
            # A line wholly inside this piece is shorter than the piece: not too long.
            run = len(chunk) - chunk.rfind(b"\n") - 1
    if run > MAX_LINE_BYTES:
        return FileScan(path, long + 1, False)
    return FileScan(path, long, run > 0 and _torn_tail(path, run))


def _torn_tail(path: str, length: int) -> bool:
    """Whether the last `length` bytes of the file (a line without its newline) are not JSON."""
    with open(path, "rb") as f:
        f.seek(-length, os.SEEK_END)
        return _not_json(f.read(length))


def _not_json(data: bytes) -> bool:
    try:
        json.loads(data)
    except (ValueError, RecursionError):
        return True
    return False


def copy_without_long_lines(path: str, folder: str, n: int) -> str:
    """A copy of the ledger in `folder` without its lines longer than MAX_LINE_BYTES (the JSON
    reader cannot skip a line much longer than its object limit); their count is the scan's."""
    target = os.path.join(folder, f"ledger-{n}.jsonl")
    with open(path, "rb") as source, open(target, "wb") as out:
        for _, line in iter_lines(source):
            out.write(line)
    return target


def check_output(path: str, ledgers: Sequence[str], *, flag: str = "--html") -> None:
    """Refuse, before any work, an output path that cannot be written or that is one of the
    ledgers read (a hard link or a symbolic link to one included): a report never changes a
    ledger. Nothing is created here."""
    where = f"{flag} {path}"
    if not path.strip():
        raise ConfigError(f"{flag}: the path is empty")
    if "\x00" in path:
        raise ConfigError(f"{flag} {shown(path)}: the path contains a NUL byte")
    folder = os.path.dirname(path) or "."
    parent = folder
    while parent and not os.path.exists(parent) and os.path.dirname(parent) != parent:
        parent = os.path.dirname(parent)
    parent = parent or "."
    if not os.path.isdir(parent):
        raise ConfigError(f"{where}: {parent} is a file, not a directory")
    if parent != folder:
        raise ConfigError(f"{where}: no such directory {folder} (create it first)")
    if os.path.exists(path):
        st = os.stat(path)
        for ledger in ledgers:
            other = os.stat(ledger)
            if (st.st_dev, st.st_ino) == (other.st_dev, other.st_ino):
                raise ConfigError(f"{where}: it is a ledger this report reads ({ledger})")
        reason = kind_of(st, fs_of(path) if stat.S_ISREG(st.st_mode) else None)
        if reason is not None:
            raise ConfigError(f"{where}: {reason}")
        if not os.access(path, os.W_OK):
            raise ConfigError(f"{where}: the file is read-only for this user")
    elif os.path.islink(path):
        raise ConfigError(
            f"{where}: it is a symbolic link to {os.readlink(path)}, which does not exist"
        )
    elif not os.access(folder, os.W_OK | os.X_OK):
        raise ConfigError(f"{where}: cannot create a file in {folder} (permission denied)")
