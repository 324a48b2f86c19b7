"""How `runner test` shows results: plain text (a line per case), JSON (a list of case objects),
GitHub annotations (`::error file=...,line=...::`) and a Markdown table for a pull-request
comment or the job summary. Each format ends with the closing line `N passed, N failed`.
Pure functions from CaseResults to text.

Names and texts come from specs and replies, so nothing in them may act on the reader's
terminal or on the CI log: control characters (ANSI escapes, carriage returns, line breaks in a
name) are shown as escapes (`\x1b`, `\r`, `\n`), a line never starts with a GitHub workflow
command it did not come from, and a Markdown fence is longer than any run of backticks inside.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from decimal import Decimal

from runner.testing.suite import CaseResult

__all__ = [
    "FORMATS",
    "as_json",
    "github",
    "markdown",
    "money",
    "shown",
    "summary_line",
    "runs_text",
    "text",
    "text_line",
    "verdicts",
]

FORMATS = ("text", "json", "github", "markdown")
_INDENT = "    "
# C0 and C1 controls, DEL, Unicode line and paragraph separators, bidi controls, lone surrogates.
_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069\ud800-\udfff]")


def _escape_control(match: re.Match[str]) -> str:
    code = ord(match.group())
    return {0x09: "\\t", 0x0A: "\\n", 0x0D: "\\r"}.get(
        code, f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"
    )


def shown(text: str) -> str:
    """One line of text as it may reach a terminal or a log: every control character escaped."""
    return _CONTROL.sub(_escape_control, text)


def _lines(text: str) -> list[str]:
    """Text split at its line breaks, each line shown safely. A line that would start with
    `::` (after spaces, which GitHub's runner skips) would be read as a workflow command such
    as `::error::` or `::add-mask::`: its first colon is escaped."""
    out = []
    for line in text.split("\n"):
        line = shown(line)
        body = line.lstrip()
        if body.startswith("::"):
            line = line[: len(line) - len(body)] + "\\x3a" + body[1:]
        out.append(line)
    return out


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


def runs_text(result: CaseResult) -> str:
    """`2/3 runs passed (95% CI 0.21-0.94)`, and the case's threshold when it is not 1."""
    low, high = result.interval or (0.0, 1.0)
    text = f"{result.passes}/{result.runs} runs passed (95% CI {low:.2f}-{high:.2f})"
    if result.min_pass_rate < 1:
        text += f", min {result.min_pass_rate:g}"
    return text


def text_line(result: CaseResult) -> str:
    """One case: PASS/FAIL, spec::case[variant], the runs when repeated, cost, latency (and
    the comparison when there is one)."""
    name = shown(result.name)
    if result.status == "skipped":
        return f"SKIP  {name}  ({shown(result.skip_reason or '')})"
    mark = "PASS" if result.passed else "FAIL"
    parts = [f"{mark}  {name}"]
    if result.runs > 1:
        parts.append(runs_text(result))
    parts += [
        money(result.cost_usd, estimated=result.cost_estimated, called=bool(result.ledger_ids)),
        _latency(result.latency_ms),
    ]
    if result.replayed:
        parts.append("replayed")
    if result.comparison is not None:
        parts.append(result.comparison.state)
    return "  ".join(parts)


def _details(result: CaseResult) -> list[str]:
    lines: list[str] = []
    for failure in result.failures:
        lines.extend(f"{_INDENT}{line}" for line in _lines(str(failure)))
        lines.extend(f"{_INDENT}  {d}" for d in _lines(failure.detail) if failure.detail)
    for failure in result.flaky_failures:  # a case that passed with some runs failing
        lines.extend(f"{_INDENT}(a failed run) {line}" for line in _lines(str(failure)))
    comparison = result.comparison
    if comparison is not None and comparison.diff:
        lines.extend(f"{_INDENT}{d}" for d in _lines(comparison.diff))
    return lines


def text(results: Sequence[CaseResult]) -> str:
    """Every case (failures and diffs indented under it); no closing line."""
    out: list[str] = []
    for result in results:
        out.append(text_line(result))
        out.extend(_details(result))
    return "\n".join(out)


def verdicts(results: Sequence[CaseResult]) -> list[str]:
    """After repeated runs: the failing cases (no run passed) apart from the flaky ones (some
    runs passed, some failed: the line says whether the case still reached its
    min_pass_rate). Empty when no case ran more than once."""
    if not any(r.runs > 1 for r in results):
        return []
    failing = [r for r in results if r.failed and not r.passes]
    flaky = [r for r in results if r.flaky]
    out = []
    if failing:
        out.append(f"Failing ({len(failing)}, no run passed):")
        out += [f"{_INDENT}{shown(r.name)}  0/{r.runs}" for r in failing]
    if flaky:
        out.append(f"Flaky ({len(flaky)}, some runs failed):")
        out += [
            f"{_INDENT}{shown(r.name)}  {runs_text(r)}  {'passed' if r.passed else 'FAILED'}"
            for r in flaky
        ]
    return out


def as_json(results: Sequence[CaseResult]) -> str:
    return json.dumps([r.to_dict() for r in results], indent=2, ensure_ascii=False, default=str)


def github(results: Sequence[CaseResult]) -> str:
    """The text lines, then one `::error` annotation per failure, at its line in the spec."""
    out = [text(results)] if results else []
    for result in results:
        for failure in result.failures:
            title = _escape_property(result.name)
            message = str(failure) + (f"\n{failure.detail}" if failure.detail else "")
            out.append(
                f"::error file={_escape_property(result.path)},line={failure.line or result.line},"
                f"title={title}::{_escape_data(message)}"
            )
    return "\n".join(out)


def _escape_data(value: str) -> str:
    """A workflow command's message: GitHub's own escapes for %, CR and LF; other control
    characters shown as escapes (the message keeps its line breaks)."""
    text = "\n".join(_lines(value))
    return text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def _escape_property(value: str) -> str:
    return _escape_data(shown(value)).replace(":", "%3A").replace(",", "%2C")


def markdown(results: Sequence[CaseResult]) -> str:
    """A table fit for a pull-request comment or $GITHUB_STEP_SUMMARY, failures under it."""
    compared = any(r.comparison is not None for r in results)
    varied = any(r.variant is not None for r in results)
    repeated = any(r.runs > 1 for r in results)
    head = ["", "spec", "case", *(["variant"] if varied else []), "cost", "latency"]
    if repeated:
        head[-2:-2] = ["runs passed", "95% CI"]
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
            *([_cell(r.variant or "-")] if varied else []),
        ]
        if repeated:
            low, high = r.interval or (0.0, 1.0)
            cells += [f"{r.passes}/{r.runs}", "-" if not r.runs else f"{low:.2f}-{high:.2f}"]
        cells += [
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
            longest = max((len(run) for d in details for run in re.findall("`+", d)), default=0)
            fence = "`" * max(3, longest + 1)  # no line inside can close it
            rows += [
                "",
                f"<details><summary>{_cell(r.name)}</summary>",
                "",
                fence,
                *(d.removeprefix(_INDENT) for d in details),
                fence,
                "</details>",
            ]
    rows.append("")  # the closing line that follows must not join the table
    return "\n".join(rows)


def _signed_usd(delta: Decimal) -> str:
    # Six decimals, or as many as a change smaller than a millionth of a dollar needs to show
    # (a prompt a few tokens longer costs +0.0000003, not +0.000000).
    places = 6 if delta == 0 else max(6, -delta.adjusted())
    text = f"{delta:+.{places}f}"
    return "+0.000000" if text.strip("+-0.") == "" else text


def _cell(value: str) -> str:
    return shown(value).replace("|", "\\|").replace("<", "&lt;")
