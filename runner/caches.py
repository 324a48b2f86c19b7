"""Where runner keeps rebuildable caches (parsed BPE ranks, looked-up prices): only ever an
accelerator, so a missing, read-only or corrupt cache changes nothing but speed."""

from __future__ import annotations

import os
from pathlib import Path

__all__ = ["cache_dir"]


def cache_dir() -> Path | None:
    """$RUNNER_CACHE_DIR (empty: no cache), else $XDG_CACHE_HOME/runner, else ~/.cache/runner."""
    given = os.environ.get("RUNNER_CACHE_DIR")
    if given is not None:
        return Path(given) if given.strip() else None
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "runner"
