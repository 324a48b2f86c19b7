"""Cold start: `runner --help` against `python -c "import click"`, both as fresh processes.

Target (issue 2): runner --help at most 1.5x the bare click import.
"""

from __future__ import annotations

import shutil
import statistics
import subprocess
import sys
import time

from _table import Headline


def _median_wall(cmd: list[str], runs: int) -> float:
    subprocess.run(cmd, capture_output=True, check=True)  # warm the page cache
    samples = []
    for _ in range(runs):
        started = time.perf_counter()
        subprocess.run(cmd, capture_output=True, check=True)
        samples.append(time.perf_counter() - started)
    return statistics.median(samples) * 1000


def run(
    quick: bool = False,
) -> tuple[str, list[str], list[list[object]], list[str], list[Headline]]:
    runs = 5 if quick else 30
    runner_exe = shutil.which("runner") or f"{sys.prefix}/bin/runner"
    cases = [
        ("python -c pass", [sys.executable, "-c", "pass"]),
        ('python -c "import click" (baseline)', [sys.executable, "-c", "import click"]),
        ("runner --help", [runner_exe, "--help"]),
        ("runner exec --help", [runner_exe, "exec", "--help"]),
    ]
    times = {label: _median_wall(cmd, runs) for label, cmd in cases}
    base = times['python -c "import click" (baseline)']
    rows: list[list[object]] = [[label, ms, f"{ms / base:.2f}x"] for label, ms in times.items()]
    notes = [
        f"median of {runs} runs each, wall clock; target: runner --help <= 1.5x the baseline",
    ]
    ours = times["runner --help"]
    headline = Headline(
        "runner --help, wall (cold start)",
        f"{ours:.0f} ms",
        f'python -c "import click": {base:.0f} ms',
        ours / base,
        "<= 1.5x",
        ours / base <= 1.5,
    )
    return "Cold start", ["command", "median ms", "vs baseline"], rows, notes, [headline]
