"""Run one command in a fresh process and measure it: CPU (user + system), wall time and peak
RSS, from os.wait4 so the figures are that process's own."""

from __future__ import annotations

import os
import subprocess
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path


def measure(cmd: Sequence[str], cwd: Path, *, ok: Sequence[int] = (0,)) -> tuple[float, float, int]:
    """(CPU s, wall s, peak RSS KiB) of `cmd`. Its stderr goes to a temporary file (a pipe read
    only after the exit would hang a child that writes more than the pipe holds) and is shown
    when the exit status is not in `ok`."""
    with tempfile.TemporaryFile() as err:
        started = time.perf_counter()
        proc = subprocess.Popen(cmd, cwd=cwd, stdout=subprocess.DEVNULL, stderr=err)
        _, status, usage = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - started
        proc.returncode = os.waitstatus_to_exitcode(status)
        if proc.returncode not in ok:
            err.seek(0)
            tail = err.read().decode(errors="replace")[-2000:]
            raise RuntimeError(f"{list(cmd)} exited {proc.returncode}: {tail}")
    return usage.ru_utime + usage.ru_stime, wall, usage.ru_maxrss
