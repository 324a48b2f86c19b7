"""A signal at any moment of a command's life, start-up included, ends it with 128 + the
signal's number and no traceback. (A signal that landed during a lazy import surfaced as a
RuntimeError from dataclasses' __set_name__, with a traceback; one that landed before the
command began raised KeyboardInterrupt inside an import.)"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

# SIGTERM and SIGHUP are what CI systems and terminals send on cancel. (A Ctrl-C that lands inside
# an import a command makes lazily is Python's own KeyboardInterrupt there: not tested here.)
SIGNALS = [signal.SIGTERM, signal.SIGHUP]


def _cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _default_sigint() -> None:
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def _spec(folder: Path) -> Path:
    cases = "".join(f"  - name: c{i}\n    expect: [{{text_contains: x}}]\n" for i in range(20000))
    path = folder / "t.yaml"
    path.write_text(
        "name: t\nmodel: gpt-4o-mini\nmessages:\n  - {role: user, content: hi}\ntests:\n" + cases
    )
    return path


@pytest.mark.parametrize("seed", range(5))
def test_a_signal_during_start_up_exits_with_its_status_and_no_traceback(
    tmp_path: Path, seed: int
) -> None:
    spec = _spec(tmp_path)
    rng = random.Random(seed)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("RUNNER_", "OPENAI_"))}
    for _ in range(6):
        signum = rng.choice(SIGNALS)
        command = rng.choice([["validate", str(spec)], ["render", str(spec)]])
        proc = subprocess.Popen(
            [sys.executable, "-m", "runner", *command],
            cwd=tmp_path,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            preexec_fn=_default_sigint,
        )
        try:
            # Past the interpreter's own start (Python's defaults rule until runner's main
            # runs), then somewhere in the imports, the parsing or the command's first steps.
            deadline = time.monotonic() + 30
            while proc.poll() is None and time.monotonic() < deadline:
                try:
                    if _cpu_seconds(proc.pid) >= 0.12:
                        break
                except OSError:
                    break
                time.sleep(0.005)
            time.sleep(rng.uniform(0, 0.4))
            if proc.poll() is not None:
                proc.communicate()
                continue  # it finished first: nothing to check for this draw
            proc.send_signal(signum)
            signalled = time.monotonic()
            out, err = proc.communicate(timeout=30)
            waited = time.monotonic() - signalled
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.communicate()
        # 128 + N from runner's handling, or -N when the signal ended the process before
        # runner's handlers were in place (the interpreter's own start): both say "signal N".
        assert proc.returncode in (128 + signum, -signum), (command, signum, out, err)
        assert "Traceback" not in out + err, (command, signum, err)
        assert waited < 5, f"{waited:.1f} s"
