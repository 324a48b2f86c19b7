"""Why a path cannot hold a ledger (or another file runner appends to or reads back), in words a
user can act on: a file where a folder should be, a directory, a device, a pipe, a kernel file
under /proc or /sys, a symbolic link to nowhere, a NUL byte. It only looks (stat, never
create or open for writing); the store decides what to do with the answer.
"""

from __future__ import annotations

import os
import stat

__all__ = ["fs_of", "kind_of", "shown", "unusable_path"]


def shown(path: str) -> str:
    """The path as a message may print it: control characters (a NUL byte) made visible."""
    if path.isprintable():
        return path
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in path)


def kind_of(st: os.stat_result, fs: os.statvfs_result | None = None) -> str | None:
    """What keeps a file with this stat (and, for a regular file, its filesystem's statvfs)
    from being a ledger: "it is a directory", "it is not a regular file (a device)"...; None for an
    ordinary regular file."""
    mode = st.st_mode
    if stat.S_ISDIR(mode):
        return "it is a directory"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "it is not a regular file (a device)"
    if stat.S_ISFIFO(mode) or stat.S_ISSOCK(mode):
        return "it is not a regular file (a pipe or a socket)"
    if not stat.S_ISREG(mode):
        return "it is not a regular file"
    if fs is not None and fs.f_blocks == 0:
        # procfs, sysfs and their kind report no blocks at all: their files are the kernel's,
        # read-only or special, whatever `stat` says about them.
        return "it is not a regular file (a special file of the kernel, as under /proc or /sys)"
    return None


def fs_of(path_or_fd: str | int) -> os.statvfs_result | None:
    """statvfs of a path or an open file; None where the system has none (Windows) or it fails."""
    try:
        if isinstance(path_or_fd, int):
            return os.fstatvfs(path_or_fd) if hasattr(os, "fstatvfs") else None
        return os.statvfs(path_or_fd) if hasattr(os, "statvfs") else None
    except OSError:
        return None


def _blocking_ancestor(path: str) -> str | None:
    """The nearest existing ancestor of `path` that is not a directory, if any."""
    parent = os.path.dirname(os.path.abspath(path))
    while True:
        try:
            st = os.stat(parent)
        except FileNotFoundError:
            pass
        except OSError:  # ENOTDIR: something above is a file; keep climbing to name it
            pass
        else:
            return None if stat.S_ISDIR(st.st_mode) else parent
        above = os.path.dirname(parent)
        if above == parent:
            return None
        parent = above


def unusable_path(path: str, *, creating: bool = True) -> str | None:
    """Why `path` cannot be a ledger, or None when it may be one (it may still fail to open,
    for example for lack of permission). With `creating`, a missing file is fine as long as it
    could be created (its folder may be created too)."""
    if "\x00" in path:
        return "the path contains a NUL byte"
    blocking = _blocking_ancestor(path)
    if blocking is not None:
        return f"{shown(blocking)} is a file, not a directory"
    try:
        st = os.stat(path)
    except FileNotFoundError:
        if os.path.islink(path):
            target = os.readlink(path)
            absolute = os.path.join(os.path.dirname(path), target)
            if not creating or not os.path.isdir(os.path.dirname(absolute)):
                return f"it is a symbolic link to {shown(target)}, which does not exist"
        return None
    except OSError:
        return None  # the open that follows reports it in the system's words
    return kind_of(st, fs_of(path) if stat.S_ISREG(st.st_mode) else None)
