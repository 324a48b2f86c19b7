"""Start `runner mock-server` as a separate process on a free loopback port (so its CPU is not
counted against the client being measured), and stop it afterwards."""

from __future__ import annotations

import contextlib
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator

_READY = re.compile(r"on http://[^:]+:(\d+)/v1")


@contextlib.contextmanager
def mock_server(*args: str) -> Iterator[str]:
    """Yield the base URL of a running mock server started with these extra options."""
    exe = shutil.which("runner") or f"{sys.prefix}/bin/runner"
    proc = subprocess.Popen(
        [exe, "mock-server", "--port", "0", *args],
        stderr=subprocess.PIPE,
        stdout=subprocess.DEVNULL,
        text=True,
    )
    try:
        assert proc.stderr is not None
        line = proc.stderr.readline()
        match = _READY.search(line)
        if match is None:
            raise RuntimeError(f"mock server did not start: {line}{proc.stderr.read()}")
        yield f"http://127.0.0.1:{match.group(1)}/v1"
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
