"""What a fresh interpreter does: `python -c CODE ARGS...` in a new process, for tests of what
a command or an import loads and sets up (nothing is shared with the test process)."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Mapping


def python_output(code: str, *args: str, env: Mapping[str, str] | None = None) -> str:
    """The process's standard output; the test fails (CalledProcessError, with its stderr)
    when it exits non-zero."""
    ran = subprocess.run(
        [sys.executable, "-c", code, *args],
        capture_output=True,
        text=True,
        env=None if env is None else dict(env),
    )
    if ran.returncode != 0:
        raise subprocess.CalledProcessError(ran.returncode, ran.args, ran.stdout, ran.stderr)
    return ran.stdout
