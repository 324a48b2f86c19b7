"""Reports and --sql answers as text: an aligned table, JSON, CSV and Markdown. The human tables
(text, Markdown, the CLI's rich table, the HTML page) share `human_table`."""

from __future__ import annotations

import csv
import io
import json
import math
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from runner.report.model import Report, SqlResult

__all__ = [
    "HumanTable",
    "compact",
    "describe_range",
    "format_money",
    "human_table",
    "money_tick",
    "render_csv",
    "render_json",
    "render_markdown",
    "render_text",
]

NONE = "—"
EMPTY = "No calls to report."


@dataclass(frozen=True)
class HumanTable:
    """Cells formatted for people; `numeric[i]` says column i is right-aligned."""

    headers: list[str]
    rows: list[list[str]]
    numeric: list[bool]
    total: list[str] | None = None


def format_money(value: float | None) -> str:
    """$1,234.50 from a dollar up; below that enough decimals to show 3 significant digits."""
    if value is None:
        return NONE
    if value == 0:
        return "$0"
    if abs(value) >= 1:
        return f"${value:,.2f}"
    places = min(9, max(3, 2 - math.floor(math.log10(abs(value)))))
    return f"${value:.{places}f}"


def compact(value: float) -> str:
    """1234567 -> 1.23M: three significant digits and a k, M or B."""
    for limit, suffix in ((1e9, "B"), (1e6, "M"), (1e3, "k")):
        if abs(value) >= limit:
            return f"{value / limit:.3g}{suffix}"
    return f"{value:.3g}" if value != int(value) else f"{int(value)}"


def money_tick(value: float) -> str:
    """Axis ticks are round: $0, $0.20, $1.5k, $0.00005."""
    if value == 0:
        return "$0"
    if value >= 1:
        return "$" + compact(value)
    text = f"{value:.9f}".rstrip("0")
    return "$" + (text + "0" if len(text.split(".")[1]) < 2 else text)


def _int(value: int | None) -> str:
    return NONE if value is None else f"{value:,}"


def _ms(value: float | None) -> str:
    return NONE if value is None else f"{value:,.0f}"


def _rate(value: float | None) -> str:
    return NONE if value is None else f"{value * 100:.1f}%"


# (figure, header, format, shown when): the human columns after the group fields. `ok` is left
# out (calls - errors); columns that would be empty in every row are hidden.
_HUMAN: list[tuple[str, str, Any, Any]] = [
    ("calls", "calls", _int, None),
    ("errors", "errors", _int, None),
    ("error_rate", "error %", _rate, None),
    ("prompt_tokens", "prompt tok", _int, None),
    ("completion_tokens", "compl. tok", _int, None),
    ("cached_tokens", "cached tok", _int, lambda t: t["cached_tokens"]),
    ("cost_usd", "cost", format_money, lambda t: t["cost_usd"] is not None or t["unpriced_calls"]),
    ("unpriced_calls", "unpriced", _int, lambda t: t["unpriced_calls"]),
    ("estimated_cost_usd", "est. cost", format_money, lambda t: t["estimated_calls"]),
    ("estimated_calls", "est. calls", _int, lambda t: t["estimated_calls"]),
    ("latency_ms_p50", "p50 ms", _ms, None),
    ("latency_ms_p95", "p95 ms", _ms, None),
    ("latency_ms_max", "max ms", _ms, None),
    ("ttft_ms_p50", "ttft p50 ms", _ms, lambda t: t["ttft_ms_p50"] is not None),
]


def _key(field: str, value: Any) -> str:
    if value is None:
        return "(none)"
    text = str(value)
    return text[:12] if field == "commit" else text


def human_table(data: Report | SqlResult) -> HumanTable:
    if isinstance(data, SqlResult):
        rows = [[_plain(v) for v in row] for row in data.rows]
        numeric = [_numeric([r[i] for r in data.rows]) for i in range(len(data.columns))]
        return HumanTable(list(data.columns), rows, numeric)
    total = data.total or {}
    shown = [c for c in _HUMAN if c[3] is None or (total and c[3](total))]
    headers = [*data.by, *(c[1] for c in shown)]
    numeric = [False] * len(data.by) + [True] * len(shown)
    rows = [[_key(f, g[f]) for f in data.by] + [c[2](g[c[0]]) for c in shown] for g in data.groups]
    footer = None
    if data.total and len(data.groups) > 1 and data.by:
        footer = ["total"] + [""] * (len(data.by) - 1) + [c[2](total[c[0]]) for c in shown]
    return HumanTable(headers, rows, numeric, footer)


def _numeric(values: list[Any]) -> bool:
    present = [v for v in values if v is not None]
    return bool(present) and all(
        isinstance(v, int | float | Decimal) and not isinstance(v, bool) for v in present
    )


def _plain(value: Any) -> str:
    if value is None:
        return "NULL"
    if isinstance(value, datetime):
        return value.isoformat(sep=" ")
    if isinstance(value, float | Decimal):
        return _decimal(value)
    return str(value)


def _decimal(value: float | Decimal) -> str:
    """A number without an exponent: 7.575e-05 -> 0.00007575."""
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    exact = value if isinstance(value, Decimal) else Decimal(repr(value))
    text = format(exact, "f")
    return text.rstrip("0").rstrip(".") if "." in text else text


def _when(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%d %H:%M")


def describe_range(report: Report) -> str:
    """One line: how many calls, from when to when, from which ledgers."""
    noun = "call" if report.calls == 1 else "calls"
    parts = [f"{report.calls:,} {noun}"]
    if report.first_ts and report.last_ts:
        parts.append(f"{_when(report.first_ts)} to {_when(report.last_ts)} UTC")
    if report.since or report.until:
        since = _when(report.since) if report.since else "the start"
        until = _when(report.until) if report.until else "now"
        parts.append(f"range {since} to {until}")
    files = report.files
    parts.append(files[0] if len(files) == 1 else f"{len(files)} ledgers")
    return " · ".join(parts)


def _aligned(table: HumanTable) -> list[str]:
    body = table.rows + ([table.total] if table.total else [])
    widths = [max([len(h), *(len(r[i]) for r in body)]) for i, h in enumerate(table.headers)]

    def line(cells: list[str]) -> str:
        out = [
            c.rjust(w) if num else c.ljust(w)
            for c, w, num in zip(cells, widths, table.numeric, strict=True)
        ]
        return "  ".join(out).rstrip()

    lines = [line(table.headers), "  ".join("-" * w for w in widths)]
    lines += [line(r) for r in table.rows]
    if table.total:
        lines += ["  ".join("-" * w for w in widths), line(table.total)]
    return lines


def render_text(data: Report | SqlResult) -> str:
    """A plain aligned table (what a pipe or a CI log gets; a terminal gets rich's)."""
    table = human_table(data)
    if isinstance(data, Report):
        if not data.groups:
            return EMPTY + "\n"
        return "\n".join([*_aligned(table), "", describe_range(data)]) + "\n"
    return "\n".join(_aligned(table)) + "\n"


def _md(cell: str) -> str:
    return cell.replace("\\", "\\\\").replace("|", "\\|")


def render_markdown(data: Report | SqlResult) -> str:
    """A GitHub-flavoured Markdown table, for pull requests and job summaries."""
    if isinstance(data, Report) and not data.groups:
        return f"_{EMPTY}_\n"
    table = human_table(data)
    lines = ["| " + " | ".join(_md(h) for h in table.headers) + " |"]
    lines.append("|" + "|".join("---:" if n else "---" for n in table.numeric) + "|")
    lines += ["| " + " | ".join(_md(c) for c in row) + " |" for row in table.rows]
    if table.total:
        lines.append("| " + " | ".join(f"**{_md(c)}**" if c else "" for c in table.total) + " |")
    if isinstance(data, Report):
        lines += ["", describe_range(data)]
    return "\n".join(lines) + "\n"


def _jsonable(value: Any) -> Any:
    if isinstance(value, Decimal):
        return float(value)
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if value is None or isinstance(value, str | int | float | bool):
        return value
    return str(value)


def render_json(data: Report | SqlResult) -> str:
    """A JSON list: one object per group (the `by` fields, then FIGURES) or per result row."""
    records = [_jsonable(r) for r in data.records]
    return json.dumps(records, indent=2, ensure_ascii=False) + "\n"


def render_csv(data: Report | SqlResult) -> str:
    """CSV with a header row; an empty cell is null; numbers without exponents."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(data.columns)
    for row in _value_rows(data):
        writer.writerow([_csv_cell(v) for v in row])
    return out.getvalue()


def _value_rows(data: Report | SqlResult) -> list[list[Any]]:
    if isinstance(data, SqlResult):
        return [list(row) for row in data.rows]
    return [[group[c] for c in data.columns] for group in data.groups]


def _csv_cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float | Decimal):
        return _decimal(value)
    if isinstance(value, datetime | date):
        return value.isoformat()
    return str(value)
