"""`runner test --replay`: the cost of a CI regression run that replays a recorded baseline.

A spec with 200 test cases (50 with --quick; three expectations each) is recorded once with `--mock
--record-missing`, then replayed from that baseline. The baseline figure is the same spec cut to
one case, replayed the same way, so the difference is what 199 more cases cost beyond start-up
(imports, the tokenizer, the price database). Target (CI issue): well under 2 s of CPU beyond
start-up. CPU = user + system of the `runner test` process, median of 9 (1 with --quick), the two
alternated.
"""

from __future__ import annotations

import shutil
import statistics
import sys
import tempfile
from pathlib import Path

from _child import measure
from _table import Headline

ROOT = Path(__file__).resolve().parent.parent
RUNNER_EXE = shutil.which("runner") or f"{sys.prefix}/bin/runner"
CITIES = ["Paris", "Lima", "Osaka", "Nairobi", "Oslo", "Quito", "Hanoi", "Perth"]


def _spec(folder: Path, cases: int) -> Path:
    text = (ROOT / "prompts" / "city.yaml").read_text(encoding="utf-8")
    text = text[: text.index("\ntests:")] + "\ntests:\n"
    for i in range(cases):
        text += (
            f"  - name: case-{i}\n"
            f"    vars: {{city: {CITIES[i % len(CITIES)]}-{i}}}\n"
            "    expect:\n"
            "      - schema_valid: true\n"
            "      - {path: landmarks, min_items: 1}\n"
            "      - {max_cost_usd: 0.01}\n"
        )
    path = folder / "prompts" / f"replay-{cases}.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def _cpu(cmd: list[str], cwd: Path) -> tuple[float, float]:
    cpu, wall, _ = measure(cmd, cwd)
    return cpu, wall


def run(
    quick: bool = False,
) -> tuple[str, list[str], list[list[object]], list[str], list[Headline]]:
    runs = 1 if quick else 9
    size = 50 if quick else 200
    found: dict[int, tuple[float, float]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        (folder / ".git").mkdir()
        shutil.copytree(ROOT / "schemas", folder / "schemas")
        (folder / "prompts").mkdir()
        commands: dict[int, list[str]] = {}
        for cases in (1, size):
            spec = _spec(folder, cases)
            base = folder / f"base-{cases}.jsonl"
            record = [RUNNER_EXE, "test", str(spec), "--mock", "--replay", str(base)]
            _cpu([*record, "--record-missing", "--ledger", str(folder / "rec.jsonl")], folder)
            commands[cases] = [RUNNER_EXE, "test", str(spec), "--replay", str(base)]
        samples: dict[int, list[tuple[float, float]]] = {1: [], size: []}
        for i in range(runs):  # alternated, so a drift of the machine's speed hits both alike
            for cases, replay in commands.items():
                ledger = folder / f"run-{cases}-{i}.jsonl"
                samples[cases].append(_cpu([*replay, "--ledger", str(ledger)], folder))
                lines = ledger.read_text(encoding="utf-8").splitlines()
                assert len(lines) == cases, (len(lines), cases)
        for cases, taken in samples.items():
            found[cases] = (
                statistics.median(s[0] for s in taken),
                statistics.median(s[1] for s in taken),
            )
    one, many = found[1], found[size]
    rows: list[list[object]] = [
        [
            "1 case (baseline: start-up and one replayed case)",
            one[0] * 1000,
            one[1] * 1000,
            "1.00x",
        ],
        [f"{size} cases", many[0] * 1000, many[1] * 1000, f"{many[0] / one[0]:.2f}x"],
    ]
    beyond = many[0] - one[0]
    notes = [
        f"CPU and wall of `runner test SPEC --replay BASELINE`, median of {runs}; every case "
        "has three expectations and is replayed from a baseline recorded with --mock",
        f"{size - 1} more cases cost {beyond:+.2f} s of CPU "
        f"({beyond / (size - 1) * 1000:+.2f} ms per case); "
        "target: 200 cases well under 2 s of CPU beyond start-up; a start-up varies by about "
        "0.1 s between runs on a busy machine",
    ]
    headline = Headline(
        f"runner test --replay, {size} cases, CPU",
        f"{many[0]:.2f} s ({beyond:+.2f} s)",
        f"1 case: {one[0]:.2f} s",
        many[0] / one[0],
        "+ < 2 s beyond start-up",
        beyond < 2.0,
    )
    columns = ["run", "CPU ms", "wall ms", "vs baseline"]
    return "runner test --replay (CI regression run)", columns, rows, notes, [headline]
