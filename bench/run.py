"""Benchmarks: `python bench/run.py [NAME...] [--quick]`.

Each benchmark prints a table whose rows are measured in the same run as their baseline, with
the ratio against it. Names: startup, validate, client, limiter, pipeline, dataset, batch,
report (default: all).
`--quick` shrinks call counts and durations for a smoke run; report figures from a full run.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from _table import print_table  # noqa: E402

BENCHES = ["startup", "validate", "client", "limiter", "pipeline", "dataset", "batch", "report"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("names", nargs="*", metavar="NAME", help=", ".join(BENCHES))
    parser.add_argument("--quick", action="store_true", help="small sizes, for a smoke run")
    args = parser.parse_args()
    names = args.names or BENCHES
    unknown = sorted(set(names) - set(BENCHES))
    if unknown:
        parser.error(f"unknown benchmark(s) {unknown}; choose from {BENCHES}")
    for name in names:
        module = __import__(f"bench_{name}")
        started = time.perf_counter()
        title, columns, rows, notes = module.run(quick=args.quick)
        print_table(title, columns, rows, notes)
        print(f"({name}: {time.perf_counter() - started:.1f} s)\n", flush=True)


if __name__ == "__main__":
    main()
