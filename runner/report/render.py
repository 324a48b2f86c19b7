"""Reports and --sql answers as text: an aligned table, JSON, CSV and Markdown. The human tables
(text, Markdown, the CLI's rich table, the HTML page) share `human_table`."""

from __future__ import annotations

import csv
import io
import json
import math
import re
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from runner.report.model import Report, SqlResult

__all__ = [
    "DROP_ORDER",
    "FittedTable",
    "HumanTable",
    "compact",
    "describe_range",
    "fit_table",
    "format_money",
    "human_table",
    "money_tick",
    "render_csv",
    "render_json",
    "render_markdown",
    "render_text",
    "visible",
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
    ("replayed", "replayed", _int, lambda t: t["replayed"]),
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
    return visible(text[:12] if field == "commit" else text)


# Characters a table must show, not obey: C0 and C1 controls (an escape sequence would drive
# the terminal, a newline would break a row), line and paragraph separators, and the bidi
# controls that reorder what follows them.
_HIDDEN = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069]")
_NAMED = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}


def _escaped(match: re.Match[str]) -> str:
    char = match.group()
    if char in _NAMED:
        return _NAMED[char]
    code = ord(char)
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def visible(text: str) -> str:
    """`text` with its control characters written out (a newline as \\n, ESC as \\x1b)."""
    return _HIDDEN.sub(_escaped, text)


def human_table(data: Report | SqlResult) -> HumanTable:
    if isinstance(data, SqlResult):
        rows = [[visible(_plain(v)) for v in row] for row in data.rows]
        numeric = [_numeric([r[i] for r in data.rows]) for i in range(len(data.columns))]
        return HumanTable([visible(c) for c in data.columns], rows, numeric)
    total = data.total or {}
    shown = [c for c in _HUMAN if c[3] is None or (total and c[3](total))]
    headers = [*data.by, *(c[1] for c in shown)]
    numeric = [False] * len(data.by) + [True] * len(shown)
    rows = [[_key(f, g[f]) for f in data.by] + [c[2](g[c[0]]) for c in shown] for g in data.groups]
    footer = None
    if data.total and len(data.groups) > 1 and data.by:
        footer = ["total"] + [""] * (len(data.by) - 1) + [c[2](total[c[0]]) for c in shown]
    for model in data.price_as:  # --price-as: what each group would have cost on it
        headers.append(f"as {visible(model)}")
        numeric.append(True)
        for row, group in zip(rows, data.groups, strict=True):
            row.append(_priced(group, model))
        if footer is not None:
            footer.append(_priced(total, model))
    return HumanTable(headers, rows, numeric, footer)


def _priced(figures: dict[str, Any], model: str) -> str:
    found = (figures.get("priced_as") or {}).get(model)
    if found is None:
        return NONE
    return format_money(found["cost_usd"]) + (" est" if found["estimated"] else "")


# A table wider than the terminal loses columns in this order (docs/report.md), each dropped
# only while the table is still too wide: what the other columns tell already, or tell
# nearly, goes first. The group fields, `calls`, `error %`, the costs and `p50 ms` stay; then
# the longest names are cut short with "…". --format csv and json always have everything.
DROP_ORDER = (
    "ttft p50 ms",
    "est. calls",
    "max ms",
    "cached tok",
    "unpriced",
    "replayed",
    "errors",
    "p95 ms",
    "prompt tok",
    "compl. tok",
)
_SHORTEST_NAME = 8


@dataclass(frozen=True)
class FittedTable:
    """A HumanTable made to fit a width: the headers of the columns left out, in the order
    they were dropped, and whether names were cut short."""

    table: HumanTable
    dropped: list[str]
    shortened: bool

    def note(self, width: int) -> str | None:
        """One line saying what fitting `width` columns cost, or None when nothing."""
        if not self.dropped and not self.shortened:
            return None
        what = []
        if self.dropped:
            what.append(f"left out {', '.join(self.dropped)}")
        if self.shortened:
            what.append("cut long names short")
        return (
            f"to fit {width} columns, the table {' and '.join(what)} (a wider terminal, "
            "--format csv or --format json shows everything)"
        )


def _table_width(table: HumanTable, gap: int) -> int:
    body = [table.headers, *table.rows, *([table.total] if table.total else [])]
    widths = [max(len(row[i]) for row in body) for i in range(len(table.headers))]
    return sum(widths) + gap * (len(widths) - 1)


def _without(table: HumanTable, column: int) -> HumanTable:
    def cut(cells: list[Any]) -> list[Any]:
        return cells[:column] + cells[column + 1 :]

    total = cut(table.total) if table.total else None
    return HumanTable(cut(table.headers), [cut(r) for r in table.rows], cut(table.numeric), total)


def fit_table(table: HumanTable, width: int | None, *, gap: int = 2) -> FittedTable:
    """`table` within `width` columns (None: any width), `gap` the space between columns:
    columns dropped in DROP_ORDER, then the longest name cells cut short with "…"."""
    dropped: list[str] = []
    if width is None:
        return FittedTable(table, dropped, False)
    for header in DROP_ORDER:
        if _table_width(table, gap) <= width:
            break
        if header in table.headers:
            table = _without(table, table.headers.index(header))
            dropped.append(header)
    shortened = False
    while _table_width(table, gap) > width:
        keys = [i for i, numeric in enumerate(table.numeric) if not numeric]
        rows = [table.headers, *table.rows, *([table.total] if table.total else [])]
        widest = max(keys, key=lambda i: max(len(r[i]) for r in rows), default=None)
        if widest is None:
            break
        longest = max(len(r[widest]) for r in table.rows) if table.rows else 0
        room = max(longest - (_table_width(table, gap) - width), _SHORTEST_NAME)
        if room >= longest:
            break  # names as short as they may be: the table stays wider than the terminal
        for row in table.rows:
            if len(row[widest]) > room:
                row[widest] = row[widest][: room - 1] + "…"
        shortened = True
    return FittedTable(table, dropped, shortened)


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
    return moment.isoformat(sep=" ", timespec="minutes")  # strftime writes year 1 as "1"


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
    parts.append(visible(files[0]) if len(files) == 1 else f"{len(files)} ledgers")
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


def render_text(data: Report | SqlResult, *, width: int | None = None) -> str:
    """A plain aligned table (what a pipe or a CI log gets; a terminal gets rich's), fitted to
    `width` columns when one is given (see fit_table)."""
    table = fit_table(human_table(data), width).table
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
    """CSV with a header row; an empty cell is null; numbers without exponents. A text cell
    that a spreadsheet would read as a formula is neutralised (see `_csv_text`)."""
    out = io.StringIO()
    # csv quotes a field holding a character of the line terminator: with "\r\n" it quotes
    # both a CR and a LF inside a cell, where "\n" alone would leave a bare CR that readers
    # take for the end of the row. Each row then ends in "\n".
    row_buffer = io.StringIO()
    writer = csv.writer(row_buffer, lineterminator="\r\n")
    rows = [[_csv_text(c) for c in data.columns]]
    rows += ([_csv_cell(v) for v in row] for row in _value_rows(data))
    for cells in rows:
        row_buffer.seek(0)
        row_buffer.truncate()
        writer.writerow(cells)
        out.write(row_buffer.getvalue()[:-2] + "\n")
    return out.getvalue()


# A cell starting with one of these is a formula to a spreadsheet (=HYPERLINK(...), +cmd,
# -cmd, @SUM), or turns into one once the leading tab or carriage return is dropped.
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def _csv_text(text: str) -> str:
    """OWASP's rule for CSV injection: a text cell that starts like a formula gets a leading
    apostrophe, which spreadsheets show as text and do not evaluate. Numbers are not text."""
    return "'" + text if text.startswith(_FORMULA_START) else text


def _value_rows(data: Report | SqlResult) -> list[list[Any]]:
    if isinstance(data, SqlResult):
        return [list(row) for row in data.rows]
    return [[_field(group, c) for c in data.columns] for group in data.groups]


def _field(group: dict[str, Any], column: str) -> Any:
    """A group's value for a CSV column: `priced_as.MODEL.KEY` reaches into `priced_as`."""
    if column.startswith("priced_as.") and column not in group:
        model, _, key = column.removeprefix("priced_as.").rpartition(".")
        return (group.get("priced_as") or {}).get(model, {}).get(key)
    return group[column]


def _csv_cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float | Decimal):
        return _decimal(value)
    if isinstance(value, int):
        return str(value)
    if isinstance(value, datetime | date):
        return value.isoformat()
    return _csv_text(str(value))
