"""Evaluation (issue 20): a variant matrix replayed, and `runner report --price-as`.

1. `runner test SPEC --model A --model B --model C --repeat 3 --replay BASELINE` over a spec of
   200 cases (50 with --quick): 1,800 case-runs, every one answered from a baseline recorded
   once with `--mock --record-missing`. The baseline figure is the same spec cut to one case,
   one model, no repeat, replayed the same way, so the difference is what 1,799 more case-runs
   cost beyond start-up. Target: at most 2 ms of CPU per case-run beyond start-up. CPU = user +
   system of the `runner test` process, median of 5 (1 with --quick), the two alternated.
2. `runner report --by spec,model --format json --price-as M` over 1,000,000 synthetic ledger
   lines (30,000 with --quick; bench_report's lines), against the same report without
   --price-as. Two targets: gpt-4.1-mini (the recorded models' tokenizer: the recorded counts
   are reused) and gpt-4-turbo (another tokenizer: every call's content is re-counted). Target:
   at most 1.5x the plain report's wall time; best of 3 (1 with --quick), alternated.
"""

from __future__ import annotations

import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

from _child import measure
from _table import Headline
from bench_replay import _spec
from bench_report import _child, synthetic_lines

ROOT = Path(__file__).resolve().parent.parent
RUNNER_EXE = shutil.which("runner") or f"{sys.prefix}/bin/runner"
MODELS = ["gpt-4o-mini", "gpt-4.1-mini", "gpt-4o"]
REPEAT = 3


def _matrix(quick: bool) -> tuple[list[list[object]], list[str], Headline]:
    runs = 1 if quick else 5
    size = 50 if quick else 200
    variants = [arg for model in MODELS for arg in ("--model", model)]
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        (folder / ".git").mkdir()
        shutil.copytree(ROOT / "schemas", folder / "schemas")
        (folder / "prompts").mkdir()
        commands: dict[int, list[str]] = {}
        case_runs = {1: 1, size: size * len(MODELS) * REPEAT}
        for cases in (1, size):
            spec = _spec(folder, cases)
            base = folder / f"base-{cases}.jsonl"
            matrix = ["--model", MODELS[0]]
            if cases > 1:
                matrix = [*variants, "--repeat", str(REPEAT)]
            record = [RUNNER_EXE, "test", str(spec), "--mock", "--replay", str(base), *matrix]
            measure(
                [*record, "--record-missing", "--ledger", str(folder / "rec.jsonl")],
                folder,
                ok=(0, 1),
            )
            commands[cases] = [RUNNER_EXE, "test", str(spec), "--replay", str(base), *matrix]
        samples: dict[int, list[tuple[float, float]]] = {1: [], size: []}
        for i in range(runs):  # alternated, so a drift of the machine's speed hits both alike
            for cases, replay in commands.items():
                ledger = folder / f"run-{cases}-{i}.jsonl"
                cpu, wall, _ = measure([*replay, "--ledger", str(ledger)], folder, ok=(0, 1))
                samples[cases].append((cpu, wall))
                lines = ledger.read_text(encoding="utf-8").splitlines()
                assert len(lines) == case_runs[cases], (len(lines), case_runs[cases])
    one, many = (
        tuple(statistics.median(s[j] for s in samples[cases]) for j in (0, 1))
        for cases in (1, size)
    )
    more = case_runs[size] - 1
    per_run = (many[0] - one[0]) / more * 1000
    rows: list[list[object]] = [
        ["1 case, 1 model (baseline: start-up and one case-run)", one[0] * 1000, one[1] * 1000],
        [
            f"{size} cases x {len(MODELS)} models x --repeat {REPEAT} ({case_runs[size]:,} runs)",
            many[0] * 1000,
            many[1] * 1000,
        ],
    ]
    notes = [
        f"CPU and wall of `runner test SPEC --replay BASELINE --model {' --model '.join(MODELS)} "
        f"--repeat {REPEAT}`, median of {runs}; three expectations a case",
        f"{more:,} more case-runs cost {many[0] - one[0]:+.2f} s of CPU: {per_run:.2f} ms each; "
        "target <= 2 ms per case-run beyond start-up",
    ]
    headline = Headline(
        f"variant matrix replayed, {case_runs[size]:,} case-runs, CPU per case-run",
        f"{per_run:.2f} ms",
        f"start-up + 1 run: {one[0]:.2f} s",
        many[0] / one[0],
        "<= 2 ms beyond start-up",
        per_run <= 2.0,
    )
    return rows, notes, headline


def _repricing(quick: bool) -> tuple[list[list[object]], list[str], list[Headline]]:
    count = 30_000 if quick else 1_000_000
    runs = 1 if quick else 3
    with tempfile.TemporaryDirectory() as tmp:
        ledger = Path(tmp) / "ledger.jsonl"
        started = time.perf_counter()
        with open(ledger, "w", encoding="utf-8") as f:
            for chunk in range(0, count, 100_000):
                size = min(100_000, count - chunk)
                f.write("\n".join(synthetic_lines(size, seed=chunk, first=chunk, total=count)))
                f.write("\n")
        made = time.perf_counter() - started
        plain = [RUNNER_EXE, "report", "--ledger", str(ledger), "--by", "spec,model"]
        plain += ["--format", "json"]
        commands = {
            "plain": plain,
            "gpt-4.1-mini": [*plain, "--price-as", "gpt-4.1-mini"],
            "gpt-4-turbo": [*plain, "--price-as", "gpt-4-turbo"],
        }
        found: dict[str, list[tuple[float, float, float]]] = {name: [] for name in commands}
        for _ in range(runs):
            for name, cmd in commands.items():
                found[name].append(_child(cmd))
    best = {name: min(taken) for name, taken in found.items()}
    base = best["plain"]
    labels = {
        "plain": "runner report --by spec,model (baseline)",
        "gpt-4.1-mini": "+ --price-as gpt-4.1-mini (same tokenizer: counts reused)",
        "gpt-4-turbo": "+ --price-as gpt-4-turbo (another tokenizer: content re-counted)",
    }
    rows: list[list[object]] = [
        [labels[n], w * 1000, c * 1000, mb, f"{w / base[0]:.2f}x"] for n, (w, c, mb) in best.items()
    ]
    notes = [
        f"{count:,} lines (generated in {made:.0f} s); best of {runs} runs each, wall clock, "
        "interpreter start included; target: --price-as <= 1.5x the plain report",
    ]
    headlines = [
        Headline(
            f"runner report --price-as {name} over {count:,} lines, wall",
            f"{best[name][0]:.2f} s",
            f"plain report: {base[0]:.2f} s",
            best[name][0] / base[0],
            "<= 1.5x",
            best[name][0] / base[0] <= 1.5,
        )
        for name in ("gpt-4.1-mini", "gpt-4-turbo")
    ]
    return rows, notes, headlines


def run(
    quick: bool = False,
) -> tuple[str, list[str], list[list[object]], list[str], list[Headline]]:
    matrix_rows, matrix_notes, matrix = _matrix(quick)
    price_rows, price_notes, priced = _repricing(quick)
    columns = ["run", "wall ms", "cpu ms", "peak MB", "vs baseline"]
    rows: list[list[object]] = [[r[0], r[2], r[1], "", ""] for r in matrix_rows] + price_rows
    return (
        "Evaluation: a variant matrix replayed; --price-as",
        columns,
        rows,
        [*matrix_notes, *price_notes],
        [matrix, *priced],
    )
