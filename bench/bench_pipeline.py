"""What the whole pipeline adds per call: render, count, preflight, guards, retry policy, output
validation, pricing and the ledger line, against the bare client call it wraps.

2000 calls (200 with --quick) of the city example against `runner mock-server` on loopback with
no latency, 16 at a time. The baseline is runner's ChatClient sending the already-rendered
request; the pipeline is Session.arun. CPU is this process's (the server runs in its own).
Target (issue 4): at most 0.5 ms of added CPU per call.
"""

from __future__ import annotations

import asyncio
import shutil
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

from _mockproc import mock_server

import runner
from runner.client import ChatClient
from runner.engine import Session

ROOT = Path(__file__).resolve().parent.parent
CONCURRENCY = 16


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


async def _drive(calls: int, one: Callable[[int], Awaitable[object]]) -> tuple[float, float]:
    queue = iter(range(calls))

    async def worker() -> None:
        for i in queue:
            await one(i)

    cpu, wall = time.process_time(), time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(CONCURRENCY)))
    return time.process_time() - cpu, time.perf_counter() - wall


CITIES = ["Paris", "Lima", "Osaka", "Nairobi", "Oslo", "Quito", "Hanoi", "Perth"]


async def _bare(spec: runner.PromptSpec, calls: int) -> tuple[float, float]:
    async with Session(environ={}, ledger=Path(tempfile.gettempdir()) / "unused.jsonl") as s:
        bodies = [s.preflight(spec, {"city": c}).body for c in CITIES]
    assert spec.provider.base_url is not None
    client = ChatClient(base_url=spec.provider.base_url, api_key="", max_connections=64)
    async with client:
        await _drive(CONCURRENCY, lambda i: client.complete(bodies[i % len(bodies)]))  # warm up
        return await _drive(calls, lambda i: client.complete(bodies[i % len(bodies)]))


async def _pipeline(spec: runner.PromptSpec, calls: int, ledger: Path) -> tuple[float, float]:
    async with Session(environ={}, ledger=ledger) as s:
        await _drive(CONCURRENCY, lambda i: s.arun(spec, {"city": CITIES[i % len(CITIES)]}))
        return await _drive(calls, lambda i: s.arun(spec, {"city": CITIES[i % len(CITIES)]}))


def run(quick: bool = False) -> tuple[str, list[str], list[list[object]], list[str]]:
    calls = 200 if quick else 2000
    with mock_server() as base_url, tempfile.TemporaryDirectory() as tmp:
        spec = runner.load(_spec(Path(tmp), base_url))
        ledger = Path(tmp) / "ledger.jsonl"
        bare_cpu, bare_wall = asyncio.run(_bare(spec, calls))
        pipe_cpu, pipe_wall = asyncio.run(_pipeline(spec, calls, ledger))
        written = sum(1 for _ in ledger.open(encoding="utf-8"))
    bare_ms, pipe_ms = bare_cpu / calls * 1000, pipe_cpu / calls * 1000
    rows: list[list[object]] = [
        ["bare ChatClient.complete (baseline)", bare_ms, bare_wall, "1.00x"],
        ["Session.arun (whole pipeline)", pipe_ms, pipe_wall, f"{pipe_ms / bare_ms:.2f}x"],
    ]
    notes = [
        f"{calls} calls, {CONCURRENCY} at a time, mock server on loopback, no latency",
        f"added CPU per call: {pipe_ms - bare_ms:.3f} ms (target <= 0.5 ms)",
        f"ledger lines written: {written - CONCURRENCY} measured + {CONCURRENCY} warm-up",
    ]
    columns = ["path", "CPU ms/call", "wall s", "vs baseline"]
    return "Pipeline overhead per call", columns, rows, notes
