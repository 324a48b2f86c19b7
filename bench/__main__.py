"""One benchmark command: `python -m bench [NAME...] [--quick]`.

Runs every benchmark (or the named ones) and prints each one's table — every figure measured in
the same run as its baseline, with the ratio against it — then one summary table of the headline
figures and their targets. Saves the whole output, headed by a description of the machine and
the summary, under bench/results/<UTC time>.md. `--quick` shrinks sizes for a smoke run of
under a minute; report figures from a full run.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import os
import platform
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from _table import HEADLINE_COLUMNS, Headline, headline_rows, print_table  # noqa: E402

BENCHES = [
    "startup",
    "validate",
    "client",
    "limiter",
    "pipeline",
    "dataset",
    "peers",
    "batch",
    "report",
    "replay",
    "evaluation",
    "hostile",
]


def machine() -> list[str]:
    """What the figures were measured on."""
    try:
        cpu = next(
            line.split(":", 1)[1].strip()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if line.startswith("model name")
        )
    except (OSError, StopIteration):
        cpu = platform.processor() or "unknown"
    try:
        commit = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, cwd=HERE
        ).stdout.strip()
    except OSError:
        commit = ""
    load = os.getloadavg() if hasattr(os, "getloadavg") else None
    return [
        f"- when: {datetime.now(UTC).isoformat(timespec='seconds')}",
        f"- commit: {commit or 'unknown'}",
        f"- machine: {cpu}, {os.cpu_count()} cores, {platform.system()} {platform.release()}",
        f"- python: {platform.python_version()}",
        f"- load average at start: {', '.join(f'{x:.2f}' for x in load) if load else 'unknown'}",
    ]


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.splitlines()[0])
    parser.add_argument("names", nargs="*", metavar="NAME", help=", ".join(BENCHES))
    parser.add_argument("--quick", action="store_true", help="small sizes, under a few minutes")
    args = parser.parse_args()
    names = args.names or BENCHES
    unknown = sorted(set(names) - set(BENCHES))
    if unknown:
        parser.error(f"unknown benchmark(s) {unknown}; choose from {BENCHES}")
    # pip compiles the installed packages (openai, click...); an editable runner may have no
    # .pyc yet (or PYTHONDONTWRITEBYTECODE set), which would charge it the compile every start.
    import compileall

    compileall.compile_dir(str(HERE.parent / "runner"), quiet=1)
    header = ["# runner benchmarks" + (" (--quick)" if args.quick else ""), "", *machine(), ""]
    print("\n".join(header), flush=True)
    details: list[str] = []
    headlines: list[Headline] = []
    began = time.perf_counter()
    for name in names:
        module = __import__(f"bench_{name}")
        started = time.perf_counter()
        title, columns, rows, notes, *more = module.run(quick=args.quick)
        headlines += more[0] if more else []
        text = io.StringIO()
        with contextlib.redirect_stdout(text):
            print_table(title, columns, rows, notes)
            print(f"({name}: {time.perf_counter() - started:.1f} s)\n")
        print(text.getvalue(), end="", flush=True)
        details.append(text.getvalue())
    summary = io.StringIO()
    with contextlib.redirect_stdout(summary):
        print_table(
            "Summary: headline figures",
            HEADLINE_COLUMNS,
            headline_rows(headlines),
            [
                "every ratio is the figure over its baseline, both measured in this run; "
                "the tables below give the details",
                f"all benchmarks: {time.perf_counter() - began:.0f} s",
            ],
        )
    print(summary.getvalue(), flush=True)
    saved = [*header, summary.getvalue(), *details]
    results = HERE / "results"
    results.mkdir(exist_ok=True)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    path = results / f"{stamp}{'-quick' if args.quick else ''}.md"
    path.write_text("\n".join(saved), encoding="utf-8")
    print(f"saved: {path.relative_to(HERE.parent)}")


if __name__ == "__main__":
    main()
