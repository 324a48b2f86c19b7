"""What the whole pipeline adds per call: render, count, preflight, guards, retry policy, output
validation, pricing and the ledger line, against the bare client call it wraps.

1000 calls per path in each of 10 rounds (100 x 2 with --quick) of the city example against
`runner mock-server` on loopback with no latency, 1 and 16 at a time. The baseline is runner's
ChatClient sending the already-rendered request; the pipeline is Session.arun. CPU is this
process's (the server runs in its own); the two paths alternate in shuffled order per round,
and the added CPU is the median of the rounds' own differences (pipeline minus the baseline
measured next to it), so that a drift of a shared machine between rounds cancels out.
Target (issue 4): at most 0.5 ms of added CPU per call. With valgrind installed, the pipeline's
instructions per call are counted too (bench/_instructions.py).
"""

from __future__ import annotations

import asyncio
import random
import shutil
import statistics
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

from _instructions import instructions_per_call
from _mockproc import mock_server
from _table import Headline

import runner
from runner.engine.session import Session
from runner.providers import ChatClient

ROOT = Path(__file__).resolve().parent.parent
CONCURRENCIES = (1, 16)


def _spec(folder: Path, base_url: str) -> Path:
    (folder / ".git").mkdir()  # a work tree root: the schema path must stay inside it
    shutil.copytree(ROOT / "schemas", folder / "schemas")
    (folder / "prompts").mkdir()
    text = (ROOT / "prompts" / "city.yaml").read_text(encoding="utf-8")
    text = text.replace("https://api.openai.com/v1", base_url)
    text = text.replace("rate: {rpm: 500, tpm: 200000, concurrency: 8}", "rate: {concurrency: 64}")
    path = folder / "prompts" / "city.yaml"
    path.write_text(text, encoding="utf-8")
    return path


async def _drive(
    calls: int, one: Callable[[int], Awaitable[object]], concurrency: int
) -> tuple[float, float]:
    queue = iter(range(calls))

    async def worker() -> None:
        for i in queue:
            await one(i)

    cpu, wall = time.process_time(), time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return time.process_time() - cpu, time.perf_counter() - wall


CITIES = ["Paris", "Lima", "Osaka", "Nairobi", "Oslo", "Quito", "Hanoi", "Perth"]


async def _rounds(
    spec: runner.PromptSpec, calls: int, rounds: int, ledger: Path, concurrency: int
) -> tuple[list[float], list[float], float, float]:
    """CPU ms per call of each path, per round; the order of the two paths is shuffled in
    every round so that drifts of a shared machine hit both alike. Also total wall seconds."""
    async with Session(environ={}, ledger=Path(tempfile.gettempdir()) / "unused.jsonl") as s:
        bodies = [s.preflight(spec, {"city": c}).body for c in CITIES]
    assert spec.provider.base_url is not None
    client = ChatClient(base_url=spec.provider.base_url, api_key="", max_connections=64)
    bare: list[float] = []
    pipe: list[float] = []
    walls = {"bare": 0.0, "pipe": 0.0}
    rng = random.Random(7)
    async with client, Session(environ={}, ledger=ledger) as session:

        def bare_one(i: int) -> Awaitable[object]:
            return client.complete(bodies[i % len(bodies)])

        def pipe_one(i: int) -> Awaitable[object]:
            return session.arun(spec, {"city": CITIES[i % len(CITIES)]})

        await _drive(64, bare_one, concurrency)  # warm up both paths
        await _drive(64, pipe_one, concurrency)
        for _ in range(rounds):
            order = [("bare", bare_one, bare), ("pipe", pipe_one, pipe)]
            rng.shuffle(order)
            for name, one, out in order:
                cpu, wall = await _drive(calls, one, concurrency)
                out.append(cpu / calls * 1000)
                walls[name] += wall
    return bare, pipe, walls["bare"], walls["pipe"]


def run(
    quick: bool = False,
) -> tuple[str, list[str], list[list[object]], list[str], list[Headline]]:
    calls, rounds = (100, 2) if quick else (1000, 10)
    rows: list[list[object]] = []
    notes = []
    headlines: list[Headline] = []
    with mock_server() as base_url, tempfile.TemporaryDirectory() as tmp:
        spec_path = _spec(Path(tmp), base_url)
        spec = runner.load(spec_path)
        for concurrency in CONCURRENCIES:
            ledger = Path(tmp) / f"ledger-{concurrency}.jsonl"
            bare, pipe, bare_wall, pipe_wall = asyncio.run(
                _rounds(spec, calls, rounds, ledger, concurrency)
            )
            bare_ms, pipe_ms = statistics.median(bare), statistics.median(pipe)
            added = sorted(p - b for b, p in zip(bare, pipe, strict=True))
            paired = statistics.median(added)
            rows.append([concurrency, "bare ChatClient.complete (baseline)", bare_ms, "1.00x", ""])
            rows.append(
                [
                    concurrency,
                    "Session.arun (whole pipeline)",
                    pipe_ms,
                    f"{pipe_ms / bare_ms:.2f}x",
                    f"{paired:.3f} ({added[0]:.3f} to {added[-1]:.3f})",
                ]
            )
            headlines.append(
                Headline(
                    f"pipeline CPU per call (Session.arun), {concurrency} in flight",
                    f"{pipe_ms:.2f} ms (+{paired:.2f})",
                    f"bare ChatClient.complete: {bare_ms:.2f} ms",
                    pipe_ms / bare_ms,
                    "added <= 0.5 ms",
                    paired <= 0.5,
                )
            )
            written = sum(1 for _ in ledger.open(encoding="utf-8"))
            notes.append(
                f"{concurrency} in flight: {written} ledger lines written, warm-up included"
            )
        counted = 50 if quick else 300
        count = instructions_per_call(spec_path, Path(tmp), counted, CITIES)
        notes.append(
            "valgrind is not installed: no instruction count"
            if count is None
            else f"instructions per call of Session.arun, each answered in process by one "
            f"recorded reply (callgrind, {counted} calls): {count / 1000:,.0f}k; a count that "
            "does not move with the machine's speed"
        )
    notes[:0] = [
        f"{calls} calls per path per round, {rounds} rounds, the two paths in shuffled order per "
        "round; CPU ms per call, medians of the rounds; added: the median of each round's "
        "pipeline minus its baseline (the range of those differences in brackets)",
        "mock server on loopback in its own process, no latency; target: added <= 0.5 ms",
    ]
    columns = ["in flight", "path", "CPU ms/call", "vs baseline", "added ms (rounds)"]
    return "Pipeline overhead per call", columns, rows, notes, headlines
