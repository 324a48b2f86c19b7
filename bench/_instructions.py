"""Instructions per call of the whole pipeline (Session.arun), counted by callgrind when valgrind
is installed. Unlike CPU time, the count does not move with a shared machine's speed, so it
shows what a change to the per-call code bought. Every call is answered in process with one
reply recorded from the mock server at the start: only runner's own work (and asyncio's) is
counted. Under valgrind OpenSSL's sha256 runs without the CPU's SHA instructions, so the
request fingerprint weighs more in this count than on the CPU."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

_SCRIPT = """
import asyncio, json, sys
from pathlib import Path
import runner
from runner.engine.session import Session
from runner.providers.client import ModelClient

spec = runner.load(sys.argv[1])
ledger, calls, cities = Path(sys.argv[2]), int(sys.argv[3]), json.loads(sys.argv[4])
recorded = []
send = ModelClient.complete


async def answer(self, body, timeout=None):
    if not recorded:  # the first call goes to the mock server; every other gets its reply
        recorded.append(await send(self, body, timeout=timeout))
    return recorded[0]


ModelClient.complete = answer


async def main():
    async with Session(environ={}, ledger=ledger) as session:
        for i in range(100 + calls):  # 100 to warm up, then the calls counted
            await session.arun(spec, {"city": cities[i % len(cities)]})


asyncio.run(main())
"""


def instructions_per_call(
    spec: Path, folder: Path, calls: int, cities: Sequence[str]
) -> float | None:
    """The instructions one more call costs: a run of 100 + `calls` calls (one city after
    another as the spec's variable) less a run of 100, divided by `calls`; None without
    valgrind."""
    valgrind = shutil.which("valgrind")
    if valgrind is None:
        return None
    totals = []
    for n in (0, calls):
        out = folder / f"callgrind-{n}.out"
        cmd = [valgrind, "--tool=callgrind", f"--callgrind-out-file={out}", sys.executable]
        cmd += ["-c", _SCRIPT, str(spec), str(folder / f"callgrind-{n}.jsonl"), str(n)]
        cmd.append(json.dumps(list(cities)))
        subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        totals.append(_total(out))
    return (totals[1] - totals[0]) / calls


def _total(path: Path) -> int:
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.startswith(("summary:", "totals:")):
            return int(line.split()[1])
    raise RuntimeError(f"no instruction total in {path}")
