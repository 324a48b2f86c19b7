"""Where the row lines of a data-set run go (`--output`): checked before anything is opened or
sent (never one of the files runner reads or appends to — through a symlink or a hard link
either —, never a directory, never in a directory that does not exist: none is created), and
opened only once the run holds its lock, so a refused run truncates nothing.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import IO, TYPE_CHECKING

from runner.errors import ConfigError

if TYPE_CHECKING:
    from runner.spec.model import PromptSpec

__all__ = [
    "check_input_path",
    "check_output_path",
    "check_stdout",
    "open_output",
    "protected_paths",
]


def open_output(output: str | None, *, append: bool) -> IO[str]:
    """The output (checked by check_output_path before anything was opened): appended to with
    --resume, else replaced."""
    if output is None:
        return sys.stdout
    try:  # resume adds to the earlier run's lines
        return open(output, "a" if append else "w", encoding="utf-8")  # noqa: SIM115
    except OSError as exc:
        raise ConfigError(
            f"cannot write --output {output}: {exc.strerror}; nothing was sent"
        ) from None


def protected_paths(
    ledger: Path, spec: PromptSpec, *, input_path: str, vars_files: Sequence[str]
) -> list[tuple[str, str]]:
    """The files an --output must never be: what runner reads or appends to."""
    from runner.batch.state import state_paths

    found = [
        ("the ledger", str(ledger)),
        *(("the batch state file", str(path)) for path in state_paths(Path(ledger))),
        ("the spec", str(spec.path)),
    ]
    if input_path != "-":
        found.append(("the input file", input_path))
    found += [("a --vars-file", path) for path in vars_files]
    return found


def check_output_path(output: str, *, protected: Sequence[tuple[str, str]]) -> None:
    """Refuse (ConfigError, exit 2, before anything is opened or truncated) an --output that is
    one of the `protected` files — through a symlink or a hard link too — or that cannot be
    written: a directory, a missing directory (never created), no write permission."""
    for label, path in protected:
        if _same_file(output, path):
            raise ConfigError(
                f"--output {output} is {label} ({path}): writing the row lines there would "
                "destroy it; choose another file (nothing was opened or sent)"
            )
    if os.path.isdir(output):
        raise ConfigError(f"--output {output} is a directory: name a file in it")
    parent = os.path.dirname(os.path.abspath(output)) or "."
    if not os.path.exists(parent):
        raise ConfigError(
            f"--output {output}: the directory {parent} does not exist (runner does not "
            "create it); nothing was sent"
        )
    if not os.path.isdir(parent):
        raise ConfigError(f"--output {output}: {parent} is not a directory; nothing was sent")
    try:
        st = os.stat(output)
    except FileNotFoundError:
        if not os.access(parent, os.W_OK | os.X_OK):
            raise ConfigError(
                f"cannot write --output {output}: the directory {parent} is not writable; "
                "nothing was sent"
            ) from None
        return
    except OSError as exc:
        raise ConfigError(f"cannot write --output {output}: {exc.strerror}") from None
    import stat as stat_mod

    if stat_mod.S_ISREG(st.st_mode):  # try it, without truncating or creating anything
        try:
            os.close(os.open(output, os.O_WRONLY | os.O_APPEND))
        except OSError as exc:
            raise ConfigError(
                f"cannot write --output {output}: {exc.strerror}; nothing was sent"
            ) from None


def check_input_path(input_path: str, *, ledger: Path) -> None:
    """Refuse an --input that is the ledger or the batch state file: the run appends to it
    while reading it, so every line it writes would become a row to run (and pay for)."""
    from runner.batch.state import state_paths

    if input_path == "-":
        return
    state = [("the batch state file", path) for path in state_paths(ledger)]
    for label, path in (("the ledger", ledger), *state):
        if _same_file(input_path, str(path)):
            raise ConfigError(
                f"--input {input_path} is {label} ({path}): the run would read the lines it "
                "writes as new rows; give the data set's own file (nothing was sent)"
            )


def check_stdout(protected: Sequence[tuple[str, str]]) -> None:
    """Refuse to print row lines to a stdout that is redirected into one of the `protected`
    files (`>> runs/ledger.jsonl`): the same as --output naming it."""
    try:
        out = os.fstat(sys.stdout.fileno())
    except (OSError, ValueError, AttributeError):  # no real stdout (a test runner's buffer)
        return
    import stat as stat_mod

    if not stat_mod.S_ISREG(out.st_mode):
        return
    for label, path in protected:
        try:
            st = os.stat(path)
        except OSError:
            continue
        if (st.st_dev, st.st_ino) == (out.st_dev, out.st_ino):
            raise ConfigError(
                f"stdout is redirected into {label} ({path}): the row lines would be written "
                "into it; redirect them elsewhere or use --output FILE (nothing was sent)"
            )


def _same_file(a: str, b: str) -> bool:
    """Whether two paths name one file: the same inode when both exist (symlinks followed, hard
    links found), else the same resolved path."""
    try:
        sa, sb = os.stat(a), os.stat(b)
    except OSError:
        return os.path.realpath(a) == os.path.realpath(b)
    return (sa.st_dev, sa.st_ino) == (sb.st_dev, sb.st_ino)
