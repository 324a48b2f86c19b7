"""`runner validate` over 200 specs (copies of the examples in prompts/, with their schemas).

Target (issue 2): at most 2 s on a 2-core machine, interpreter start included.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _table import Headline

ROOT = Path(__file__).resolve().parent.parent


def _make_specs(folder: Path, count: int) -> None:
    examples = sorted((ROOT / "prompts").glob("*.yaml"))
    shutil.copytree(ROOT / "schemas", folder / "schemas")
    specs = folder / "prompts"
    specs.mkdir()
    for i in range(count):
        source = examples[i % len(examples)]
        text = source.read_text(encoding="utf-8")
        name_line = next(line for line in text.splitlines() if line.startswith("name:"))
        text = text.replace(name_line, f"{name_line}-{i}", 1)
        (specs / f"{source.stem}-{i:03d}.yaml").write_text(text, encoding="utf-8")


def _wall(cmd: list[str], cwd: Path, runs: int) -> float:
    best = float("inf")
    for _ in range(runs):
        started = time.perf_counter()
        subprocess.run(cmd, cwd=cwd, capture_output=True, check=True)
        best = min(best, time.perf_counter() - started)
    return best


def run(
    quick: bool = False,
) -> tuple[str, list[str], list[list[object]], list[str], list[Headline]]:
    runner_exe = shutil.which("runner") or f"{sys.prefix}/bin/runner"
    runs = 2 if quick else 5
    rows: list[list[object]] = []
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        (folder / ".git").mkdir()  # a work tree root, so schema paths stay inside it
        _make_specs(folder, 200)
        one = sorted((folder / "prompts").glob("*.yaml"))[0]
        base = _wall([runner_exe, "--help"], folder, runs)
        single = _wall([runner_exe, "validate", str(one)], folder, runs)
        many = _wall([runner_exe, "validate", "prompts"], folder, runs)
    rows.append(["runner --help (baseline: start-up only)", base, "1.00x"])
    rows.append(["runner validate, 1 spec", single, f"{single / base:.2f}x"])
    rows.append(["runner validate, 200 specs", many, f"{many / base:.2f}x"])
    rows = [[label, seconds * 1000, ratio] for label, seconds, ratio in rows]
    notes = [
        f"best of {runs} runs, wall clock, interpreter start included",
        "target: 200 specs <= 2000 ms",
        f"per spec beyond start-up: {(many - base) / 200 * 1000:.2f} ms",
    ]
    headline = Headline(
        "runner validate, 200 specs, wall",
        f"{many * 1000:.0f} ms",
        f"runner --help: {base * 1000:.0f} ms",
        many / base,
        "<= 2000 ms",
        many <= 2.0,
    )
    return "runner validate", ["command", "ms", "vs baseline"], rows, notes, [headline]
