"""A data set through the Batch API: how fast rows are rendered into the batch input file and
uploaded, and how much memory a whole 50,000-row batch (build, upload, wait, collect) takes.

Speed: 20,000 rows (1,000 with --quick) of a spec with an output schema, against `runner
mock-server` on loopback in its own process. The baseline is the Session's preflight alone (what
a live call renders before sending); then building the input file (preflight + JSONL line),
then building, uploading and creating the batch. Rows per second, best of 3 rounds.

Memory: peak RSS (ru_maxrss) of a fresh process that runs 50,000 rows (1,500 with --quick)
through start_batches and finish_batches against the same server, next to a process that only
imports runner (the baseline).
"""

from __future__ import annotations

import asyncio
import json
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _mockproc import mock_server
from _table import Headline

ROOT = Path(__file__).resolve().parent.parent

SPEC = """\
name: review
model: gpt-4o-mini
provider: {{base_url: "{base_url}"}}
params: {{temperature: 0, max_tokens: 60}}
inputs: {{type: object, properties: {{text: {{type: string}}}}, required: [text]}}
messages:
  - {{role: system, content: "Classify the sentiment of the review; say how sure you are."}}
  - {{role: user, content: "{{{{ text }}}}"}}
output:
  schema:
    type: object
    properties:
      label: {{type: string, enum: [positive, negative, neutral]}}
      confidence: {{type: number, minimum: 0, maximum: 1}}
    required: [label, confidence]
    additionalProperties: false
"""

WORDS = [
    "the",
    "battery",
    "lasts",
    "for",
    "days",
    "but",
    "the",
    "screen",
    "cracked",
    "after",
    "a",
    "week",
    "of",
    "careful",
    "use",
]

CHILD = """\
import asyncio, resource, sys, time
from runner.batch import PollPolicy, finish_batches, start_batches, vars_by_row
from runner.dataset.rows import read_rows
from runner.engine import Session
from runner.spec import load_spec

async def main(spec_path, rows_path, ledger):
    spec = load_spec(spec_path)
    items = list(read_rows(rows_path, spec=spec))
    async with Session(ledger=ledger) as session:
        t = time.perf_counter()
        started = await start_batches(session, spec, items, input_path=rows_path)
        built = time.perf_counter() - t
        summaries = await finish_batches(session, spec, started.batch_ids,
                                         rows=vars_by_row(spec, items), policy=PollPolicy(0.2))
    ok = sum(s.ok for s in summaries)
    print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss, ok, round(built, 2))

if len(sys.argv) > 1:
    asyncio.run(main(*sys.argv[1:]))
else:
    import runner.batch, runner.engine  # the baseline: runner imported, nothing run
    print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss, 0, 0)
"""


def _rows(path: Path, count: int) -> None:
    with path.open("w", encoding="utf-8") as f:
        for i in range(count):
            text = " ".join(WORDS[(i + k) % len(WORDS)] for k in range(12 + i % 20))
            f.write(json.dumps({"id": f"row-{i}", "text": f"Review {i}: {text}."}) + "\n")


async def _speeds(spec_path: Path, rows_path: Path, tmp: Path) -> dict[str, float]:
    from runner.batch import build_input, start_batches
    from runner.dataset.rows import read_rows
    from runner.engine import Session
    from runner.spec import load_spec

    spec = load_spec(spec_path)
    items = list(read_rows(rows_path, spec=spec))
    best: dict[str, float] = {}
    for round_ in range(3):
        ledger = tmp / f"ledger-{round_}.jsonl"
        async with Session(ledger=ledger) as session:
            session.preflight(spec, items[0].vars)  # warm-up: tokenizer, templates
            t = time.perf_counter()
            for item in items:
                session.preflight(spec, item.vars)
            took = {"preflight": time.perf_counter() - t}
            folder = tmp / f"build-{round_}"
            folder.mkdir()
            t = time.perf_counter()
            build_input(session, spec, items, folder)
            took["build"] = time.perf_counter() - t
            t = time.perf_counter()
            await start_batches(session, spec, items, input_path=str(rows_path))
            took["upload"] = time.perf_counter() - t
        for name, seconds in took.items():
            best[name] = max(best.get(name, 0.0), len(items) / seconds)
    return best


def _child(*args: str) -> tuple[int, int, float]:
    out = subprocess.run(
        [sys.executable, "-c", CHILD, *args], capture_output=True, text=True, check=True
    ).stdout.split()
    return int(out[0]), int(out[1]), float(out[2])


def run(
    quick: bool = False,
) -> tuple[str, list[str], list[list[object]], list[str], list[Headline]]:
    count, big = (1_000, 1_500) if quick else (20_000, 50_000)
    rows: list[list[object]] = []
    with mock_server() as base_url, tempfile.TemporaryDirectory() as folder:
        tmp = Path(folder)
        (tmp / ".git").mkdir()
        spec_path = tmp / "review.yaml"
        spec_path.write_text(SPEC.format(base_url=base_url), encoding="utf-8")
        rows_path = tmp / "rows.jsonl"
        _rows(rows_path, count)
        speeds = asyncio.run(_speeds(spec_path, rows_path, tmp))
        base = speeds["preflight"]
        for name, label in (
            ("preflight", "Session.preflight per row (baseline: what a live call renders)"),
            ("build", "build the batch input file (preflight + JSONL line)"),
            ("upload", "build + upload + create the batch"),
        ):
            rows.append([label, "rows/s", speeds[name], f"{speeds[name] / base:.2f}x"])
        big_rows = tmp / "big.jsonl"
        _rows(big_rows, big)
        baseline_kb, _, _ = _child()
        t = time.perf_counter()
        peak_kb, ok, built = _child(str(spec_path), str(big_rows), str(tmp / "big-ledger.jsonl"))
        wall = time.perf_counter() - t
        assert ok == big, f"{ok} of {big} rows ok"
        rows.append(
            ["a process that imports runner (baseline)", "peak MB", baseline_kb / 1024, "1.00x"]
        )
        rows.append(
            [
                f"{big:,} rows: build, upload, wait, collect",
                "peak MB",
                peak_kb / 1024,
                f"{peak_kb / baseline_kb:.2f}x",
            ]
        )
        size = big_rows.stat().st_size
    shutil.rmtree(folder, ignore_errors=True)
    notes = [
        f"speed: {count:,} rows, best of 3 rounds; mock server on loopback in its own process",
        f"memory: {big:,} rows ({size / 1e6:.1f} MB of data set), whole run {wall:.1f} s wall "
        f"({built:.1f} s to build and upload), every row ok; ru_maxrss of the runner process "
        "only (the server runs in its own)",
    ]
    headlines = [
        Headline(
            f"batch: build + upload + create, {count:,} rows",
            f"{speeds['upload']:,.0f} rows/s",
            f"Session.preflight alone: {base:,.0f} rows/s",
            speeds["upload"] / base,
        ),
        Headline(
            f"batch: peak memory of a {big:,}-row batch run",
            f"{peak_kb / 1024:.0f} MB",
            f"a process that imports runner: {baseline_kb / 1024:.0f} MB",
            peak_kb / baseline_kb,
        ),
    ]
    return (
        "Batch API: input file speed and peak memory",
        ["path", "unit", "value", "ratio"],
        rows,
        notes,
        headlines,
    )
