"""`runner report --by spec,model --format json` over a large synthetic ledger, against a plain
`json.loads` loop that sums the same fields (the least any Python reader must do).

Target (report issue): the report at most 0.25x the loop's wall time. Both run as fresh
processes; peak memory is each child's ru_maxrss.
"""

from __future__ import annotations

import json
import random
import shutil
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

from _table import Headline

FULL, QUICK = 1_000_000, 30_000

_SPECS = [
    ("city", "prompts/city.yaml"),
    ("sentiment", "prompts/sentiment.yaml"),
    ("haiku", "prompts/haiku.yaml"),
    ("weather-tool", "prompts/weather-tool.yaml"),
    ("summary", "prompts/summary.yaml"),
]
# model, served model, $ per million input tokens, $ per million output tokens (None: unknown)
_MODELS = [
    ("gpt-4o-mini", "gpt-4o-mini-2024-07-18", 0.15, 0.6),
    ("gpt-4o", "gpt-4o-2024-08-06", 2.5, 10.0),
    ("o3-mini", "o3-mini-2025-01-31", 1.1, 4.4),
    ("my-finetune", "my-finetune", None, None),
]
_SHA = "5f0c4be1d2a7c8e9f3b6a1d4c7e0f2a5b8d1e4f7a0c3b6d9e2f5a8b1c4d7e0f3"


def synthetic_lines(
    count: int, *, seed: int = 1, days: int = 30, first: int = 0, total: int | None = None
) -> list[str]:
    """Lines `first` to `first + count` of a ledger of `total` lines shaped like runner's own
    (content kept, one or more attempts) over `days` days: mostly ok, some retried rate
    limits, some mock and unpriced calls."""
    rng = random.Random(seed)
    start = datetime(2025, 3, 1, tzinfo=UTC).timestamp()
    step = days * 86400 / max(total or count, 1)
    out = []
    for i in range(first, first + count):
        name, path = _SPECS[rng.randrange(len(_SPECS))]
        model, served, price_in, price_out = _MODELS[rng.choices(range(4), (6, 3, 2, 1))[0]]
        mock = rng.random() < 0.1
        prompt, completion = rng.randint(40, 3000), rng.randint(5, 800)
        cached = rng.choice((0, 0, 0, prompt // 2))
        failed = rng.random() < 0.04
        latency = round(rng.lognormvariate(6.6, 0.55), 1)
        stream = rng.random() < 0.3
        tries = 1 + (rng.random() < 0.08)
        usage = {"prompt": prompt, "completion": completion, "cached": cached, "reasoning": 0}
        usage["total"] = prompt + completion
        attempts = [
            {
                "n": n + 1,
                "outcome": "ok" if n == tries - 1 and not failed else "rate_limit",
                "waited_s": 0.0 if n == 0 else 1.5,
                "latency_ms": round(latency / tries, 1),
                "status": 200 if n == tries - 1 and not failed else 429,
                "usage": usage,
                "request_id": f"req_{i}_{n}",
            }
            for n in range(tries)
        ]
        usd = (
            None
            if price_in is None
            else round((prompt * price_in + completion * price_out) / 1e6, 9)
        )
        stamp = datetime.fromtimestamp(start + i * step, UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")
        record = {
            "v": 1,
            "id": f"01JP{i:022d}",
            "ts": stamp[:-3] + "Z",
            "spec": {
                "path": path,
                "name": name,
                "sha256": _SHA,
                "commit": _SHA[:40],
                "dirty": False,
            },
            "request_sha256": _SHA,
            "case": None,
            "row": str(i),
            "model": model,
            "served_model": None if failed else served,
            "params": {"temperature": 0.3, "max_tokens": 800},
            "vars": {"city": "Paris", "n": i},
            "messages": [
                {"role": "system", "content": "You are a precise geography assistant."},
                {"role": "user", "content": f"Tell me about city number {i}."},
            ],
            "status": "error" if failed else "ok",
            "output": None
            if failed
            else {
                "text": '{"country":"France","population":2100000}',
                "json": {"country": "France"},
            },
            "error": {"kind": "rate_limit", "type": "RateLimited", "status": 429, "message": "429"}
            if failed
            else None,
            "attempts": attempts,
            "usage": usage | {"estimated_prompt": prompt},
            "cost": {"usd": usd, "source": "genai-prices 0.2.3", "estimated": mock},
            "latency_ms": latency,
            "ttft_ms": round(latency * 0.3, 1) if stream and not failed else None,
            "request_id": f"req_{i}_{tries - 1}",
            "mock": mock,
        }
        out.append(json.dumps(record, separators=(",", ":")))
    return out


# The baseline: the same figures with a json.loads loop (medians need every latency kept).
_BASELINE = r"""
import json, sys
groups = {}
with open(sys.argv[1], "rb") as f:
    for raw in f:
        try:
            r = json.loads(raw)
        except ValueError:
            continue
        g = groups.setdefault((r["spec"]["name"], r["model"]), [0, 0, 0, 0, 0, 0.0, 0, []])
        g[0] += 1
        g[1] += r["status"] == "ok"
        u = r["usage"]
        g[2] += u["prompt"]; g[3] += u["completion"]; g[4] += u["cached"]
        if r["cost"]["usd"] is None:
            g[6] += 1
        else:
            g[5] += r["cost"]["usd"]
        g[7].append(r["latency_ms"])
for g in groups.values():
    g[7].sort()
print(len(groups))
"""


def _child(cmd: list[str]) -> tuple[float, float, float]:
    """Wall seconds, CPU seconds (user + system, every thread) and peak RSS in MB of one child
    process, run alone under a small wrapper so that ru_maxrss is the child's own."""
    code = (
        "import resource, subprocess, sys, time\n"
        "t = time.perf_counter()\n"
        "subprocess.run(sys.argv[1:], check=True, stdout=subprocess.DEVNULL)\n"
        "wall = time.perf_counter() - t\n"
        "r = resource.getrusage(resource.RUSAGE_CHILDREN)\n"
        "print(wall, r.ru_utime + r.ru_stime, r.ru_maxrss)\n"
    )
    out = subprocess.run([sys.executable, "-c", code, *cmd], capture_output=True, text=True)
    if out.returncode:
        raise RuntimeError(out.stderr)
    wall, cpu, rss_kb = out.stdout.split()
    return float(wall), float(cpu), int(rss_kb) / 1024


def run(
    quick: bool = False,
) -> tuple[str, list[str], list[list[object]], list[str], list[Headline]]:
    count = QUICK if quick else FULL
    runs = 1 if quick else 3
    exe = shutil.which("runner") or f"{sys.prefix}/bin/runner"
    with tempfile.TemporaryDirectory() as tmp:
        ledger = Path(tmp) / "ledger.jsonl"
        started = time.perf_counter()
        with open(ledger, "w", encoding="utf-8") as f:
            for chunk in range(0, count, 100_000):
                size = min(100_000, count - chunk)
                lines = synthetic_lines(size, seed=chunk, first=chunk, total=count)
                f.write("\n".join(lines) + "\n")
        made = time.perf_counter() - started
        size = ledger.stat().st_size / 1e6
        report_cmd = [
            exe,
            "report",
            "--ledger",
            str(ledger),
            "--by",
            "spec,model",
            "--format",
            "json",
        ]
        base_cmd = [sys.executable, "-c", _BASELINE, str(ledger)]
        bases, reports = [], []
        for _ in range(runs):  # alternate, so a change in machine load hits both alike
            bases.append(_child(base_cmd))
            reports.append(_child(report_cmd))
        base, ours = min(bases), min(reports)
    rows: list[list[object]] = [
        ["json.loads loop (baseline)", base[0] * 1000, base[1] * 1000, base[2], "1.00x"],
        [
            "runner report --by spec,model --format json",
            ours[0] * 1000,
            ours[1] * 1000,
            ours[2],
            f"{ours[0] / base[0]:.2f}x",
        ],
    ]
    notes = [
        f"{count:,} lines, {size:,.0f} MB (generated in {made:.0f} s); best of {runs} runs each, "
        "wall clock, interpreter start included",
        "target: runner report <= 0.25x the baseline (wall clock)",
        "cpu ms: user + system of the child, all its threads (DuckDB uses one per core)",
        "peak MB: the child process's ru_maxrss",
    ]
    columns = ["command", "wall ms", "cpu ms", "peak MB", "vs baseline"]
    headline = Headline(
        f"runner report over {count:,} lines, wall",
        f"{ours[0]:.2f} s, {ours[2]:.0f} MB peak",
        f"json.loads loop: {base[0]:.2f} s",
        ours[0] / base[0],
        "<= 0.25x",
        ours[0] / base[0] <= 0.25,
    )
    return "runner report", columns, rows, notes, [headline]
