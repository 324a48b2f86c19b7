"""How `runner test` shows results: plain text (a line per case), JSON (a list of case objects),
GitHub annotations (`::error file=...,line=...::`) and a Markdown table for a pull-request
comment or the job summary. Each format ends with the closing line `N passed, N failed`.
Pure functions from CaseResults to text.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from decimal import Decimal

from runner.testing.suite import CaseResult

__all__ = ["FORMATS", "as_json", "github", "markdown", "money", "summary_line", "text", "text_line"]

FORMATS = ("text", "json", "github", "markdown")
_INDENT = "    "


def summary_line(results: Sequence[CaseResult]) -> str:
    """The closing line: `N passed, N failed` (and `, N skipped` when some were)."""
    passed = sum(1 for r in results if r.passed)
    failed = sum(1 for r in results if r.failed)
    skipped = len(results) - passed - failed
    return f"{passed} passed, {failed} failed" + (f", {skipped} skipped" if skipped else "")


def money(usd: Decimal | None, *, estimated: bool = False, called: bool = True) -> str:
    if not called:
        return "-"
    if usd is None:
        return "cost unknown"
    return f"${usd:.6f}" + (" est" if estimated else "")


def _latency(ms: float | None) -> str:
    return "-" if ms is None else f"{ms:.0f} ms"


def text_line(result: CaseResult) -> str:
    """One case: PASS/FAIL, spec::case, cost, latency (and the comparison when there is one)."""
    if result.status == "skipped":
        return f"SKIP  {result.spec}::{result.case}  ({result.skip_reason})"
    mark = "PASS" if result.passed else "FAIL"
    parts = [
        f"{mark}  {result.spec}::{result.case}",
        money(result.cost_usd, estimated=result.cost_estimated, called=bool(result.ledger_ids)),
        _latency(result.latency_ms),
    ]
    if result.replayed:
        parts.append("replayed")
    if result.comparison is not None:
        parts.append(result.comparison.state)
    return "  ".join(parts)


def _details(result: CaseResult) -> list[str]:
    lines = []
    for failure in result.failures:
        lines.append(f"{_INDENT}{failure}")
        lines.extend(f"{_INDENT}  {d}" for d in failure.detail.splitlines() if failure.detail)
    comparison = result.comparison
    if comparison is not None and comparison.diff:
        lines.extend(f"{_INDENT}{d}" for d in comparison.diff.splitlines())
    return lines


def text(results: Sequence[CaseResult]) -> str:
    """Every case (failures and diffs indented under it); no closing line."""
    out: list[str] = []
    for result in results:
        out.append(text_line(result))
        out.extend(_details(result))
    return "\n".join(out)


def as_json(results: Sequence[CaseResult]) -> str:
    return json.dumps([r.to_dict() for r in results], indent=2, ensure_ascii=False, default=str)


def github(results: Sequence[CaseResult]) -> str:
    """The text lines, then one `::error` annotation per failure, at its line in the spec."""
    out = [text(results)] if results else []
    for result in results:
        for failure in result.failures:
            title = _escape_property(f"{result.spec}::{result.case}")
            message = str(failure) + (f"\n{failure.detail}" if failure.detail else "")
            out.append(
                f"::error file={_escape_property(result.path)},line={failure.line or result.line},"
                f"title={title}::{_escape_data(message)}"
            )
    return "\n".join(out)


def _escape_data(value: str) -> str:
    return value.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def _escape_property(value: str) -> str:
    return _escape_data(value).replace(":", "%3A").replace(",", "%2C")


def markdown(results: Sequence[CaseResult]) -> str:
    """A table fit for a pull-request comment or $GITHUB_STEP_SUMMARY, failures under it."""
    compared = any(r.comparison is not None for r in results)
    head = ["", "spec", "case", "cost", "latency"]
    if compared:
        head += ["output", "Δ cost", "Δ latency"]
    rows = [
        f"### runner test: {summary_line(results)}",
        "",
        "| " + " | ".join(head) + " |",
        "|" + "---|" * len(head),
    ]
    for r in results:
        cells = [
            {"passed": "✅", "failed": "❌"}.get(r.status, "⏭"),
            _cell(r.spec),
            _cell(r.case),
            money(r.cost_usd, estimated=r.cost_estimated, called=bool(r.ledger_ids)),
            _latency(r.latency_ms),
        ]
        if compared:
            c = r.comparison
            cells += [
                "-" if c is None else c.state,
                "-" if c is None or c.cost_delta_usd is None else _signed_usd(c.cost_delta_usd),
                "-"
                if c is None or c.latency_delta_ms is None
                else f"{round(c.latency_delta_ms):+d} ms",
            ]
        rows.append("| " + " | ".join(cells) + " |")
    for r in results:
        details = _details(r)
        if details:
            rows += [
                "",
                f"<details><summary>{_cell(r.spec)}::{_cell(r.case)}</summary>",
                "",
                "```",
                *(d.removeprefix(_INDENT) for d in details),
                "```",
                "</details>",
            ]
    rows.append("")  # the closing line that follows must not join the table
    return "\n".join(rows)


def _signed_usd(delta: Decimal) -> str:
    text = f"{delta:+.6f}"
    return "+0.000000" if text == "-0.000000" else text


def _cell(value: str) -> str:
    return value.replace("|", "\\|").replace("<", "&lt;")
