"""A plain-text table printer shared by the benchmarks (no dependencies, copy-paste friendly)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple


def print_table(
    title: str, columns: Sequence[str], rows: Sequence[Sequence[object]], notes: Sequence[str]
) -> None:
    cells = [[_fmt(c) for c in row] for row in rows]
    widths = [max(len(str(h)), *(len(r[i]) for r in cells)) for i, h in enumerate(columns)]
    print(f"## {title}")
    print("| " + " | ".join(str(h).ljust(w) for h, w in zip(columns, widths, strict=True)) + " |")
    print("|" + "|".join("-" * (w + 2) for w in widths) + "|")
    for row in cells:
        print("| " + " | ".join(_cell(c, w) for c, w in zip(row, widths, strict=True)) + " |")
    for note in notes:
        print(f"- {note}")


def _cell(text: str, width: int) -> str:
    """Numbers right-aligned, words left-aligned."""
    return text.rjust(width) if text[:1].isdigit() else text.ljust(width)


def _fmt(value: object) -> str:
    if isinstance(value, float):
        if value >= 100:
            return f"{value:,.0f}"
        if value >= 10:
            return f"{value:.1f}"
        return f"{value:.2f}" if value >= 0.1 else f"{value:.3f}"
    return str(value)


class Headline(NamedTuple):
    """One row of the summary table: a figure, its baseline (measured in the same run), the
    ratio between them, and the target it is held to (if any)."""

    figure: str
    measured: str
    baseline: str
    ratio: float
    target: str = ""
    met: bool | None = None  # None: no target, the figure is for information


def headline_rows(headlines: Sequence[Headline]) -> list[list[object]]:
    verdict = {True: "met", False: "MISSED", None: ""}
    return [
        [h.figure, h.measured, h.baseline, f"{h.ratio:.2f}x", h.target, verdict[h.met]]
        for h in headlines
    ]


HEADLINE_COLUMNS = ["figure", "measured", "baseline (same run)", "ratio", "target", "verdict"]
