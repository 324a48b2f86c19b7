"""The comparison table of a `runner test` run: one row per variant (`--model`, a spec's
`variants:`), with its pass rate, the cases it fails, what a case cost and what the variant
cost in total, its tokens and its latency p50 and p95; as text, Markdown, JSON and a
self-contained HTML page. Pure functions from CaseResults to text.
"""

from __future__ import annotations

import html
import json
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from runner.testing.formats import money, shown
from runner.testing.stats import percentile
from runner.testing.suite import CaseResult

__all__ = [
    "VariantRow",
    "comparison_html",
    "comparison_json",
    "comparison_markdown",
    "comparison_rows",
    "comparison_text",
    "render_comparison",
]

DEFAULT = "(spec's model)"  # the row of cases that ran on no variant


@dataclass(frozen=True)
class VariantRow:
    """One variant's figures over the cases of the run that ran on it (skipped ones aside)."""

    variant: str
    models: tuple[str, ...]
    cases: int  # cases run
    passed: int  # cases that passed (their min_pass_rate reached)
    runs: int  # runs of those cases (cases x --repeat)
    runs_passed: int
    all_passed: int  # cases whose every run passed: pass^k
    failing: tuple[str, ...]  # `spec::case` of the cases that failed
    flaky: tuple[str, ...]  # `spec::case` of the cases some runs of which failed
    cost_usd: Decimal | None  # every run's cost, judges included; None when one is unknown
    cost_estimated: bool
    tokens: int
    latency_p50: float | None
    latency_p95: float | None

    @property
    def pass_rate(self) -> float | None:
        """Runs passed over runs: with --repeat 1, cases passed over cases."""
        return self.runs_passed / self.runs if self.runs else None

    @property
    def cost_per_case(self) -> Decimal | None:
        """What one run of a case cost on average (its judges included)."""
        return None if self.cost_usd is None or not self.runs else self.cost_usd / self.runs

    def to_dict(self) -> dict[str, Any]:
        per_case = self.cost_per_case
        return {
            "variant": self.variant,
            "models": list(self.models),
            "cases": self.cases,
            "passed": self.passed,
            "failed": self.cases - self.passed,
            "runs": self.runs,
            "runs_passed": self.runs_passed,
            "pass_rate": None if self.pass_rate is None else round(self.pass_rate, 4),
            "pass_all": self.all_passed,
            "failing": list(self.failing),
            "flaky": list(self.flaky),
            "cost_usd": None if self.cost_usd is None else float(self.cost_usd),
            "cost_per_case_usd": None if per_case is None else float(round(per_case, 12)),
            "cost_estimated": self.cost_estimated,
            "tokens": self.tokens,
            "latency_ms_p50": _round(self.latency_p50),
            "latency_ms_p95": _round(self.latency_p95),
        }


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 1)


def comparison_rows(results: Sequence[CaseResult]) -> list[VariantRow]:
    """One row per variant, in the order the variants first appear."""
    groups: dict[str, list[CaseResult]] = {}
    for result in results:
        if result.status != "skipped":
            groups.setdefault(result.variant or DEFAULT, []).append(result)
    rows = []
    for variant, cases in groups.items():
        cost: Decimal | None = Decimal(0)
        for case in cases:
            if case.ledger_ids:  # a case that sent nothing cost nothing
                cost = None if cost is None or case.cost_usd is None else cost + case.cost_usd
        latencies = [x for case in cases for x in case.run_latencies]
        rows.append(
            VariantRow(
                variant=variant,
                models=tuple(dict.fromkeys(c.model for c in cases if c.model)),
                cases=len(cases),
                passed=sum(1 for c in cases if c.passed),
                runs=sum(c.runs for c in cases),
                runs_passed=sum(c.passes for c in cases),
                all_passed=sum(1 for c in cases if c.pass_all),
                failing=tuple(f"{c.spec}::{c.case}" for c in cases if c.failed),
                flaky=tuple(f"{c.spec}::{c.case}" for c in cases if c.flaky),
                cost_usd=cost,
                cost_estimated=any(c.cost_estimated for c in cases),
                tokens=sum(c.tokens for c in cases),
                latency_p50=percentile(latencies, 0.5),
                latency_p95=percentile(latencies, 0.95),
            )
        )
    return rows


def _cells(rows: Sequence[VariantRow]) -> tuple[list[str], list[list[str]], list[bool]]:
    """Headers, cells and which columns are numbers. Runs and pass^k appear with --repeat."""
    repeated = any(r.runs > r.cases for r in rows)
    # The model column only says something when a variant is not named after its model.
    models = any(r.models != (r.variant,) for r in rows)
    headers = ["variant", *(["model"] if models else []), "pass rate", "cases passed"]
    if repeated:
        headers += ["runs passed", "pass^k"]
    headers += ["failing", "cost/case", "cost", "tokens", "p50 ms", "p95 ms"]
    body = []
    for r in rows:
        cells = [
            shown(r.variant),
            *([shown(", ".join(r.models))] if models else []),
            "-" if r.pass_rate is None else f"{r.pass_rate * 100:.1f}%",
            f"{r.passed}/{r.cases}",
        ]
        if repeated:
            cells += [f"{r.runs_passed}/{r.runs}", f"{r.all_passed}/{r.cases}"]
        shown_failing = ", ".join(shown(name) for name in r.failing[:5])
        if len(r.failing) > 5:
            shown_failing += f" and {len(r.failing) - 5} more"
        cells += [
            shown_failing or "-",
            _usd(r.cost_per_case, r.cost_estimated),
            _usd(r.cost_usd, r.cost_estimated),
            f"{r.tokens:,}",
            "-" if r.latency_p50 is None else f"{r.latency_p50:,.0f}",
            "-" if r.latency_p95 is None else f"{r.latency_p95:,.0f}",
        ]
        body.append(cells)
    numbers = ("pass rate", "cost/case", "cost", "tokens", "p50 ms", "p95 ms")
    numeric = [h in numbers for h in headers]
    return headers, body, numeric


def _usd(value: Decimal | None, estimated: bool) -> str:
    return money(None if value is None else round(value, 6), estimated=estimated)


def comparison_text(results: Sequence[CaseResult]) -> str:
    """The table aligned for a terminal or a CI log (no trailing newline)."""
    headers, body, numeric = _cells(comparison_rows(results))
    widths = [max([len(h), *(len(r[i]) for r in body)]) for i, h in enumerate(headers)]

    def line(cells: list[str]) -> str:
        out = [
            c.rjust(w) if num else c.ljust(w)
            for c, w, num in zip(cells, widths, numeric, strict=True)
        ]
        return "  ".join(out).rstrip()

    return "\n".join([line(headers), "  ".join("-" * w for w in widths), *map(line, body)])


def _md(cell: str) -> str:
    return cell.replace("\\", "\\\\").replace("|", "\\|").replace("<", "&lt;")


def comparison_markdown(results: Sequence[CaseResult]) -> str:
    """The table in GitHub-flavoured Markdown, for a pull-request comment."""
    headers, body, numeric = _cells(comparison_rows(results))
    lines = ["| " + " | ".join(headers) + " |"]
    lines.append("|" + "|".join("---:" if n else "---" for n in numeric) + "|")
    lines += ["| " + " | ".join(_md(c) for c in row) + " |" for row in body]
    return "\n".join(lines)


def comparison_json(results: Sequence[CaseResult]) -> str:
    """The rows as a JSON list, one object per variant."""
    rows = [r.to_dict() for r in comparison_rows(results)]
    return json.dumps(rows, indent=2, ensure_ascii=False)


_STYLE = (
    "body{font:14px/1.4 system-ui,sans-serif;margin:2em;color:#222}"
    "table{border-collapse:collapse}th,td{padding:4px 10px;border-bottom:1px solid #ddd}"
    "th{text-align:left;background:#f4f4f4}td.n{text-align:right;font-variant-numeric:"
    "tabular-nums}caption{text-align:left;font-weight:600;margin-bottom:.5em}"
)


def comparison_html(results: Sequence[CaseResult], *, title: str = "runner test") -> str:
    """A self-contained page (no script, nothing fetched): the comparison table, then every
    case's verdict per variant."""
    headers, body, numeric = _cells(comparison_rows(results))

    def row(cells: Sequence[str], tag: str = "td") -> str:
        return (
            "<tr>"
            + "".join(
                f"<{tag}{' class=n' if tag == 'td' and numeric[i] else ''}>{html.escape(c)}</{tag}>"
                for i, c in enumerate(cells)
            )
            + "</tr>"
        )

    table = (
        "<table><caption>Variants side by side</caption>"
        + row(headers, "th")
        + "".join(row(cells) for cells in body)
        + "</table>"
    )
    cases = "".join(
        "<tr>"
        + "".join(
            f"<td>{html.escape(c)}</td>"
            for c in (
                r.status.upper(),
                shown(f"{r.spec}::{r.case}"),
                shown(r.variant or DEFAULT),
                "-" if r.pass_rate is None else f"{r.passes}/{r.runs}",
            )
        )
        + "</tr>"
        for r in results
    )
    listing = (
        "<table><caption>Cases</caption><tr><th>verdict</th><th>case</th><th>variant</th>"
        f"<th>runs passed</th></tr>{cases}</table>"
    )
    return (
        f"<!doctype html><html><head><meta charset=utf-8><title>{html.escape(title)}</title>"
        f"<style>{_STYLE}</style></head><body><h1>{html.escape(title)}</h1>{table}"
        f"<p></p>{listing}</body></html>\n"
    )


def render_comparison(results: Sequence[CaseResult], path: str) -> str:
    """The table in the format `path`'s extension names: .json, .md, .html (.htm), else
    text."""
    lower = path.lower()
    if lower.endswith(".json"):
        return comparison_json(results) + "\n"
    if lower.endswith((".md", ".markdown")):
        return comparison_markdown(results) + "\n"
    if lower.endswith((".html", ".htm")):
        return comparison_html(results)
    return comparison_text(results) + "\n"
