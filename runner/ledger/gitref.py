"""Where a spec file stands in git, for the ledger: its path relative to the work tree, the
HEAD commit and whether the file differs from it. One `git` subprocess per (file, sha256) in a
process, cached, so data-set runs cause no subprocess storms; never raises, never prints.
"""

from __future__ import annotations

import functools
import hashlib
import os
import re
import subprocess
from pathlib import Path, PurePath

from runner.ledger.line import SpecRef

__all__ = ["spec_ref"]

_GIT_TIMEOUT_S = 3.0
_OBJECT_ID = re.compile(r"[0-9a-f]{40}|[0-9a-f]{64}")
# Set by git hooks and wrappers; they would point `git -C <root>` at another repository.
_GIT_LOCATION_VARS = frozenset(
    {
        "GIT_DIR",
        "GIT_WORK_TREE",
        "GIT_INDEX_FILE",
        "GIT_OBJECT_DIRECTORY",
        "GIT_ALTERNATE_OBJECT_DIRECTORIES",
        "GIT_COMMON_DIR",
        "GIT_NAMESPACE",
        "GIT_PREFIX",
    }
)


def spec_ref(path: str | os.PathLike[str], *, sha256: str, name: str) -> SpecRef:
    """Describe the spec file for the ledger: its path relative to the git work tree, its
    sha256, the HEAD commit and whether the file differs from it (None/None outside git).

    A relative `path` is taken from the current directory, as opening the file did. Git runs
    at most once per (file, sha256) in a process; failures of git give commit and dirty None.
    A spec that is no file (built in memory, as `runner probe` builds its own) has no place
    in git: its path as given, commit and dirty None.
    """
    key = (os.fspath(path), sha256, name, os.getcwd() if not os.path.isabs(path) else "")
    found = _REFS.get(key)
    if found is not None:
        return dict(found)  # type: ignore[return-value]
    ref = _spec_ref(path, sha256=sha256, name=name)
    if len(_REFS) < 256:
        _REFS[key] = ref
    return dict(ref)  # type: ignore[return-value]


# (path as given, sha256, name, cwd when relative) -> the ref: one spec's rows share it.
_REFS: dict[tuple[str, str, str, str], SpecRef] = {}


def _spec_ref(path: str | os.PathLike[str], *, sha256: str, name: str) -> SpecRef:
    absolute = os.path.normpath(os.path.abspath(path))
    if not os.path.isfile(absolute):
        return {
            "path": os.fspath(path),
            "name": name,
            "sha256": sha256,
            "commit": None,
            "dirty": None,
        }
    relative, commit, dirty = _git_info(absolute, sha256.lower())
    shown = relative if relative is not None else os.fspath(path).replace(os.sep, "/")
    return {"path": shown, "name": name, "sha256": sha256, "commit": commit, "dirty": dirty}


def _worktree_root(directory: str) -> str | None:
    """The nearest directory holding `.git` (a directory, or a file in worktrees/submodules)."""
    current = directory
    while True:
        if os.path.lexists(os.path.join(current, ".git")):
            return current
        parent = os.path.dirname(current)
        if parent == current:
            return None
        current = parent


@functools.lru_cache(maxsize=512)
def _git_info(absolute: str, sha256: str) -> tuple[str | None, str | None, bool | None]:
    root = _worktree_root(os.path.dirname(absolute))
    if root is None:
        return None, None, None
    relative = PurePath(os.path.relpath(absolute, root)).as_posix()
    env = {k: v for k, v in os.environ.items() if k not in _GIT_LOCATION_VARS}
    try:
        proc = subprocess.run(
            ["git", "-C", root, "rev-parse", "--git-dir", "HEAD", f"HEAD:{relative}"],
            stdin=subprocess.DEVNULL,
            capture_output=True,
            timeout=_GIT_TIMEOUT_S,
            check=False,
            env=env,
        )
    except (OSError, subprocess.SubprocessError):  # no git, or it hung
        return relative, None, None
    # rev-parse prints what it resolved, in order, and echoes what it could not resolve.
    lines = proc.stdout.decode("utf-8", "replace").splitlines() + ["", "", ""]
    if not lines[0]:  # not even --git-dir: git cannot read this repository
        return relative, None, None
    if not _OBJECT_ID.fullmatch(lines[1]):  # no commit yet: nothing is committed
        return relative, None, True
    commit = lines[1]
    if not _OBJECT_ID.fullmatch(lines[2]):  # untracked, or not in HEAD
        return relative, commit, True
    return relative, commit, not _matches_blob(absolute, sha256, lines[2])


def _matches_blob(absolute: str, sha256: str, blob_id: str) -> bool:
    """Whether the file, as loaded (its sha256), is byte for byte the committed blob."""
    try:
        data = Path(absolute).read_bytes()
    except OSError:
        return False
    if hashlib.sha256(data).hexdigest() != sha256:  # changed on disk since it was loaded
        return False
    header = b"blob %d\0" % len(data)
    if len(blob_id) == 40:
        digest = hashlib.sha1(header + data, usedforsecurity=False).hexdigest()
    else:
        digest = hashlib.sha256(header + data).hexdigest()
    return digest == blob_id
