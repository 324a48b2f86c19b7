"""Data-set runs (`runner exec --input`, runner.dataset): throughput, CPU, memory, resume and
the cold start of one call.

1. 2000 rows (200 with --quick) of the city example against `runner mock-server --latency
   100ms` on loopback, 50 calls in flight, three ways in the same run: a bare httpx2 asyncio
   loop posting the already-rendered requests (the baseline), the openai SDK (AsyncOpenAI with
   a semaphore), and runner's data-set run (DatasetRun: render, count, guards, validation,
   prices, one ledger line per row). Wall time and this process's CPU per row (the server
   runs in its own process). Targets: wall <= 1.1x the bare loop; CPU per row <= the SDK's.
2. Peak memory (ru_maxrss) of `runner exec --input --mock` (in-process mock) over 100,000
   rows next to 1,000 rows (--quick: 1,000 and 200): memory must not grow with the file.
3. --resume's ledger scan over a 1,000,000-line ledger (30,000 with --quick) against parsing
   every line (runner.ledger.read_records).
4. CPU of one `runner exec prompts/city.yaml --var city=Paris --mock` against a one-call
   openai SDK script making the same request to the mock server (target <= 0.7x) and against
   `python -c "import openai"` (target <= 1.0x), fresh processes, median of 9 after a warm-up
   run (1, cold, with --quick); wall time to the printed answer too.
5. Whole processes, start-up included: `runner exec --input` over 1,000 and 2,000 rows (200
   with --quick) against the mock server at 100 ms, 50 in flight, against a bare httpx2 script
   (interpreter start, imports, the same requests, 50 in flight) in its own process. Target:
   wall <= 1.10x the script's, median of 5 (1 with --quick): one run moves by 2-3%.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import httpx2
import openai
from _child import measure
from _mockproc import mock_server
from _table import Headline

import runner
from runner.dataset import DatasetRun, Item
from runner.dataset.resume import done_rows
from runner.engine.session import Session
from runner.ledger import read_records

ROOT = Path(__file__).resolve().parent.parent
CITIES = ["Paris", "Lima", "Osaka", "Nairobi", "Oslo", "Quito", "Hanoi", "Perth"]
IN_FLIGHT = 50
RUNNER_EXE = shutil.which("runner") or f"{sys.prefix}/bin/runner"


def _spec(folder: Path, base_url: str | None) -> Path:
    """The city example in a work tree of its own, sent to `base_url`, 64 calls at a time."""
    (folder / ".git").mkdir(exist_ok=True)
    if not (folder / "schemas").exists():
        shutil.copytree(ROOT / "schemas", folder / "schemas")
    (folder / "prompts").mkdir(exist_ok=True)
    text = (ROOT / "prompts" / "city.yaml").read_text(encoding="utf-8")
    if base_url is not None:
        text = text.replace("https://api.openai.com/v1", base_url)
    text = text.replace("rate: {rpm: 500, tpm: 200000, concurrency: 8}", "rate: {concurrency: 64}")
    path = folder / "prompts" / ("city-bench.yaml" if base_url else "city-mock.yaml")
    path.write_text(text, encoding="utf-8")
    return path


def _items(count: int) -> list[Item]:
    return [Item(str(i), {"city": CITIES[i % len(CITIES)]}, i) for i in range(1, count + 1)]


async def _limited(count: int, one: Callable[[int], Awaitable[object]]) -> None:
    gate = asyncio.Semaphore(IN_FLIGHT)

    async def guarded(i: int) -> None:
        async with gate:
            await one(i)

    await asyncio.gather(*(guarded(i) for i in range(count)))


async def _bare(base_url: str, bodies: list[dict[str, Any]], count: int) -> tuple[float, float]:
    limits = httpx2.Limits(max_connections=64, max_keepalive_connections=64)
    async with httpx2.AsyncClient(limits=limits, timeout=120) as client:
        url = f"{base_url}/chat/completions"
        headers = {"Authorization": "Bearer sk-bench", "Content-Type": "application/json"}

        async def one(i: int) -> object:
            body = json.dumps(bodies[i % len(bodies)]).encode()
            response = await client.post(url, content=body, headers=headers)
            response.raise_for_status()
            return json.loads(response.json()["choices"][0]["message"]["content"])

        await _limited(IN_FLIGHT, one)  # warm-up: open the connections
        cpu, wall = time.process_time(), time.perf_counter()
        await _limited(count, one)
        return time.process_time() - cpu, time.perf_counter() - wall


async def _sdk(base_url: str, bodies: list[dict[str, Any]], count: int) -> tuple[float, float]:
    limits = httpx2.Limits(max_connections=64, max_keepalive_connections=64)
    client = openai.AsyncOpenAI(
        api_key="sk-bench",
        base_url=base_url,
        max_retries=0,
        http_client=openai.DefaultAsyncHttpx2Client(limits=limits),
    )
    async with client:

        async def one(i: int) -> object:
            body = bodies[i % len(bodies)]
            reply = await client.chat.completions.create(**body)
            return json.loads(reply.choices[0].message.content or "null")

        await _limited(IN_FLIGHT, one)
        cpu, wall = time.process_time(), time.perf_counter()
        await _limited(count, one)
        return time.process_time() - cpu, time.perf_counter() - wall


async def _runner(spec: runner.PromptSpec, ledger: Path, count: int) -> tuple[float, float]:
    async with Session(environ={}, ledger=ledger) as session:
        warm = DatasetRun(session, spec, _items(IN_FLIGHT), concurrency=IN_FLIGHT)
        [r async for r in warm.results()]  # tokenizer, validators, connections
        run = DatasetRun(session, spec, _items(count), concurrency=IN_FLIGHT, total=count)
        cpu, wall = time.process_time(), time.perf_counter()
        async for result in run.results():
            assert result.status == "ok", result.error
        return time.process_time() - cpu, time.perf_counter() - wall


Part = tuple[list[list[object]], list[str], list[Headline]]


def _throughput(quick: bool, folder: Path) -> Part:
    count = 200 if quick else 2000
    rows: list[list[object]] = []
    with mock_server("--latency", "100ms") as base_url:
        spec = runner.load(_spec(folder, base_url))
        with Session(environ={}, ledger=folder / "unused.jsonl") as session:
            bodies = [session.preflight(spec, {"city": c}).body for c in CITIES]
        bodies = [{k: v for k, v in b.items() if k != "stream"} for b in bodies]
        results = {
            "bare httpx2 loop (baseline)": asyncio.run(_bare(base_url, bodies, count)),
            "openai SDK + semaphore": asyncio.run(_sdk(base_url, bodies, count)),
            "runner DatasetRun": asyncio.run(_runner(spec, folder / "ledger.jsonl", count)),
        }
    base_cpu, base_wall = results["bare httpx2 loop (baseline)"]
    sdk_cpu = results["openai SDK + semaphore"][0]
    for label, (cpu, wall) in results.items():
        rows.append(
            [
                label,
                f"{wall:.2f}",
                f"{wall / base_wall:.2f}x",
                cpu / count * 1000,
                f"{cpu / sdk_cpu:.2f}x",
            ]
        )
    written = sum(1 for _ in read_records(folder / "ledger.jsonl"))
    notes = [
        f"{count} rows, {IN_FLIGHT} in flight, mock server with 100 ms latency in its own process;"
        f" ideal wall {count / IN_FLIGHT * 0.1:.1f} s",
        "targets: runner wall <= 1.1x the bare loop; runner CPU/row <= the SDK's",
        f"runner wrote {written} ledger lines (warm-up of {IN_FLIGHT} included)",
    ]
    cpu, wall = results["runner DatasetRun"]
    headlines = [
        Headline(
            f"data set, {count:,} rows, 100 ms, {IN_FLIGHT} in flight: wall",
            f"{wall:.2f} s",
            f"bare httpx2 loop: {base_wall:.2f} s",
            wall / base_wall,
            "<= 1.1x",
            wall / base_wall <= 1.1,
        ),
        Headline(
            "data set: CPU per row",
            f"{cpu / count * 1000:.2f} ms",
            f"openai SDK + semaphore: {sdk_cpu / count * 1000:.2f} ms",
            cpu / sdk_cpu,
            "<= 1.0x",
            cpu <= sdk_cpu,
        ),
    ]
    return rows, notes, headlines


def _child(cmd: list[str], cwd: Path) -> tuple[float, float, int]:
    """(cpu s, wall s, peak RSS KiB) of one fresh process; exit 1 (a row failed) is a result."""
    return measure(cmd, cwd, ok=(0, 1))


def _memory(quick: bool, folder: Path) -> Part:
    spec = _spec(folder, None)
    rows: list[list[object]] = []
    sizes = (200, 1000) if quick else (1000, 100_000)
    for count in sizes:
        data = folder / f"rows-{count}.jsonl"
        with data.open("w", encoding="utf-8") as f:
            for i in range(count):
                f.write(json.dumps({"id": f"r{i}", "city": CITIES[i % len(CITIES)]}) + "\n")
        ledger = folder / f"mem-{count}.jsonl"
        cmd = [RUNNER_EXE, "exec", str(spec), "--input", str(data), "--mock", "-q"]
        cmd += ["--ledger", str(ledger), "--output", os.devnull, "--concurrency", "50"]
        cpu, wall, rss = _child(cmd, folder)
        lines = sum(1 for _ in ledger.open("rb"))
        rows.append([f"{count:,} rows, --mock in-process", rss / 1024, wall, cpu / count * 1000])
        assert lines == count, (lines, count)
    notes = ["peak RSS (ru_maxrss) of the whole process; one ledger line per row checked"]
    small, big = rows[0][1], rows[1][1]
    assert isinstance(small, float) and isinstance(big, float)
    headline = Headline(
        f"peak memory of a {sizes[1]:,}-row run (runner exec --input --mock)",
        f"{big:.0f} MiB",
        f"{sizes[0]:,} rows: {small:.0f} MiB",
        big / small,
        "< 200 MiB and <= 1.1x (flat)",
        big < 200 and big / small <= 1.1,
    )
    return rows, notes, [headline]


def _resume_scan(quick: bool, folder: Path) -> Part:
    count = 30_000 if quick else 1_000_000
    spec = runner.load(_spec(folder, None))
    ledger = folder / "big-ledger.jsonl"
    with Session(mock=True, ledger=ledger) as session:
        session.run(spec, {"city": "Paris"}, row="0")
    template = ledger.read_text(encoding="utf-8").strip()
    other = template.replace(f'"name":"{spec.name}"', '"name":"another-spec"')
    with ledger.open("w", encoding="utf-8") as f:
        for i in range(count):  # a shared ledger: a quarter of the lines are this spec's rows
            line = template if i % 4 == 0 else other
            f.write(line.replace('"row":"0"', f'"row":"{i}"') + "\n")
    size = ledger.stat().st_size
    started = time.perf_counter()
    done = set(done_rows(ledger, spec.name, mock=True).ok)
    fast = time.perf_counter() - started
    started = time.perf_counter()
    naive = {
        r["row"]
        for r in read_records(ledger)
        if r["spec"]["name"] == spec.name and r["status"] == "ok" and r["mock"] is True
    }
    slow = time.perf_counter() - started
    assert done == naive and len(done) == count // 4
    rows: list[list[object]] = [
        ["parse every line (read_records)", slow, "1.00x"],
        [
            "done_rows (byte search, then a partial read: fingerprints per row)",
            fast,
            f"{fast / slow:.2f}x",
        ],
    ]
    notes = [f"{count:,} lines ({size / 1e6:.0f} MB), a quarter of them the spec's ok rows"]
    headline = Headline(
        f"--resume: find the done rows in a {count:,}-line ledger",
        f"{fast:.2f} s",
        f"parse every line: {slow:.2f} s",
        fast / slow,
        "< 1.0x",
        fast < slow,
    )
    return rows, notes, [headline]


_SDK_ONE_CALL = """
import json, sys
import openai
client = openai.OpenAI(api_key="sk-bench", base_url=sys.argv[1], max_retries=0)
reply = client.chat.completions.create(**json.loads(sys.argv[2]))
print(reply.choices[0].message.content)
"""


def _cold_call(quick: bool, folder: Path) -> Part:
    """One call from a cold process: runner exec --mock (the mock answers in-process) against
    a one-call openai SDK script sending the same request to `runner mock-server` (its own
    process, not counted): the target of the data-set issue. `import openai` alone for scale."""
    spec = _spec(folder, None)
    ledger = folder / "cold.jsonl"
    baseline = "openai SDK one-call script (baseline)"
    found: dict[str, tuple[float, float]] = {}
    runs = 1 if quick else 9
    with mock_server() as base_url:
        with Session(environ={}, ledger=folder / "unused.jsonl") as session:
            body = session.preflight(runner.load(spec), {"city": "Paris"}).body
        body.pop("stream", None)
        cases = {
            baseline: [sys.executable, "-c", _SDK_ONE_CALL, base_url, json.dumps(body)],
            'python -c "import openai"': [sys.executable, "-c", "import openai"],
            "runner exec city --var city=Paris --mock": [
                RUNNER_EXE,
                "exec",
                str(spec),
                "--var",
                "city=Paris",
                "--mock",
                "--ledger",
                str(ledger),
            ],  # fmt: skip
        }
        for label, cmd in cases.items():
            if not quick:
                _child(cmd, folder)  # warm the page cache
            samples = [_child(cmd, folder) for _ in range(runs)]
            found[label] = (
                statistics.median(s[0] for s in samples),
                statistics.median(s[1] for s in samples),
            )
    base = found[baseline][0]
    rows: list[list[object]] = [
        [label, cpu * 1000, wall * 1000, f"{cpu / base:.2f}x"]
        for label, (cpu, wall) in found.items()
    ]
    cpu, wall = found["runner exec city --var city=Paris --mock"]
    just_import = found['python -c "import openai"'][0]
    headlines = [
        Headline(
            "one runner exec --mock, CPU (cold process)",
            f"{cpu * 1000:.0f} ms (wall {wall * 1000:.0f} ms)",
            f"openai SDK one-call script: {base * 1000:.0f} ms",
            cpu / base,
            "<= 0.7x",
            cpu / base <= 0.7,
        ),
        Headline(
            "one runner exec --mock, CPU vs importing openai",
            f"{cpu * 1000:.0f} ms",
            f'python -c "import openai": {just_import * 1000:.0f} ms',
            cpu / just_import,
            "<= 1.0x",
            cpu / just_import <= 1.0,
        ),
    ]
    notes = [
        f"CPU = user + system of the process; median of {runs}; targets runner <= 0.7x the SDK "
        'script and <= 1.0x python -c "import openai"; the SDK script calls runner mock-server '
        "in its own process (not counted); wall is to the printed answer (the process's exit)"
    ]
    return rows, notes, headlines


_BARE_SCRIPT = """
import asyncio, json, sys
import httpx2

async def main(url, rows_path, in_flight):
    with open(rows_path, encoding="utf-8") as f:
        rows = [json.loads(line) for line in f]
    template = json.loads(sys.argv[4])
    limits = httpx2.Limits(max_connections=64, max_keepalive_connections=64)
    headers = {"Authorization": "Bearer sk-bench", "Content-Type": "application/json"}
    gate = asyncio.Semaphore(in_flight)
    async with httpx2.AsyncClient(limits=limits, timeout=120) as client:
        async def one(row):
            body = dict(template)
            body["messages"] = [dict(m) for m in template["messages"]]
            body["messages"][-1]["content"] = body["messages"][-1]["content"].replace(
                "Paris", row["city"])
            async with gate:
                r = await client.post(url + "/chat/completions", content=json.dumps(body),
                                      headers=headers)
                r.raise_for_status()
                return json.loads(r.json()["choices"][0]["message"]["content"])
        out = await asyncio.gather(*(one(row) for row in rows))
    with open(sys.argv[5], "w", encoding="utf-8") as f:
        for answer in out:
            f.write(json.dumps(answer) + chr(10))

asyncio.run(main(sys.argv[1], sys.argv[2], int(sys.argv[3])))
"""


def _whole_process(quick: bool, folder: Path) -> Part:
    """A data set as a user runs it: whole processes, start-up included."""
    sizes = (200,) if quick else (1000, 2000)
    runs = 1 if quick else 5
    rows: list[list[object]] = []
    headlines: list[Headline] = []
    with mock_server("--latency", "100ms") as base_url:
        spec = _spec(folder, base_url)
        with Session(environ={}, ledger=folder / "unused.jsonl") as session:
            body = session.preflight(runner.load(spec), {"city": "Paris"}).body
        body.pop("stream", None)
        for count in sizes:
            data = folder / f"whole-{count}.jsonl"
            with data.open("w", encoding="utf-8") as f:
                for i in range(count):
                    f.write(json.dumps({"id": f"r{i}", "city": CITIES[i % len(CITIES)]}) + "\n")
            bare = [sys.executable, "-c", _BARE_SCRIPT, base_url, str(data), str(IN_FLIGHT)]
            bare += [json.dumps(body), os.devnull]
            found: dict[str, list[tuple[float, float]]] = {"bare": [], "runner": []}
            for n in range(runs):  # alternate, so that a busy spell hurts both alike
                found["bare"].append(_child(bare, folder)[:2])
                ledger = folder / f"whole-{count}-{n}.jsonl"
                cmd = [RUNNER_EXE, "exec", str(spec), "--input", str(data), "-q"]
                cmd += ["--ledger", str(ledger), "--output", os.devnull]
                cmd += ["--concurrency", str(IN_FLIGHT)]
                found["runner"].append(_child(cmd, folder)[:2])
                assert sum(1 for _ in ledger.open("rb")) == count
            b_cpu = statistics.median(c for c, _ in found["bare"])
            b_wall = statistics.median(w for _, w in found["bare"])
            r_cpu = statistics.median(c for c, _ in found["runner"])
            r_wall = statistics.median(w for _, w in found["runner"])
            rows.append([f"{count:,} rows: bare httpx2 script (baseline)", b_wall, 1.0, b_cpu])
            rows.append([f"{count:,} rows: runner exec --input", r_wall, r_wall / b_wall, r_cpu])
            headlines.append(
                Headline(
                    f"data set, {count:,} rows, whole process (start-up included): wall",
                    f"{r_wall:.2f} s",
                    f"bare httpx2 script: {b_wall:.2f} s",
                    r_wall / b_wall,
                    "<= 1.10x",
                    r_wall / b_wall <= 1.10,
                )
            )
    notes = [
        f"whole processes, median of {runs}, alternating; mock server at 100 ms in its own "
        f"process, {IN_FLIGHT} in flight; ideal wall = rows / {IN_FLIGHT} x 0.1 s"
    ]
    return rows, notes, headlines


def run(
    quick: bool = False,
) -> tuple[str, list[str], list[list[object]], list[str], list[Headline]]:
    rows: list[list[object]] = []
    notes: list[str] = []
    headlines: list[Headline] = []
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        part_rows, part_notes, found = _throughput(quick, folder)
        headlines += found
        rows += [["throughput", *r] for r in part_rows]
        notes += part_notes
        memory_rows, memory_notes, found = _memory(quick, folder)
        headlines += found
        for label, rss, wall, cpu_row in memory_rows:
            rows.append(["memory", label, f"{wall:.2f}", "", cpu_row, f"{rss:.0f} MiB peak"])
        notes += memory_notes
        scan_rows, scan_notes, found = _resume_scan(quick, folder)
        headlines += found
        for label, seconds, ratio in scan_rows:
            rows.append(["resume scan", label, f"{seconds:.2f}", ratio, "", ""])
        notes += scan_notes
        whole_rows, whole_notes, found = _whole_process(quick, folder)
        headlines += found
        for label, wall_s, ratio, cpu_s in whole_rows:
            cpu_text = f"{cpu_s:.2f} s CPU"
            rows.append(["whole process", label, f"{wall_s:.2f}", f"{ratio:.2f}x", "", cpu_text])
        notes += whole_notes
        cold_rows, cold_notes, found = _cold_call(quick, folder)
        headlines += found
        for label, cpu_ms, wall_ms, ratio in cold_rows:
            rows.append(["one call", label, f"{wall_ms / 1000:.2f}", "", cpu_ms, f"{ratio} CPU"])
        notes += cold_notes
    for row in rows:
        while len(row) < 6:
            row.append("")
    columns = ["part", "what", "wall s", "wall vs base", "CPU ms (per row)", "vs SDK / other"]
    return "Data sets", columns, rows, notes, headlines
