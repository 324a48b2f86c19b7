"""`runner report`: figures per group of calls (spec, model, day, ...) read from one or more JSONL
ledgers with DuckDB, printed as a table, JSON, CSV or Markdown, or drawn as a self-contained HTML
page; or any SQL query over the calls.

Public names: `build_report(files, by=, since=, until=, breakdowns=) -> Report`,
`run_sql(files, query, since=, until=) -> SqlResult`, `expand_ledgers(patterns)`,
`check_output(path, ledgers)`, `parse_by(values)`, `parse_when(text, what=)`, `GROUP_FIELDS`,
`FIGURES`, `LEDGER_COLUMNS`; the
renderers `render_text`, `render_json`, `render_csv`, `render_markdown`, `render_html`, and
`human_table`, `fit_table` (a table within the terminal's width: `DROP_ORDER`),
`describe_range`, `EMPTY` for other table printers (the CLI's rich table).
"""

from __future__ import annotations

from runner.report.files import check_output, expand_ledgers
from runner.report.html import render_html
from runner.report.model import (
    FIGURES,
    GROUP_FIELDS,
    LedgerRead,
    Report,
    SqlResult,
    parse_by,
    parse_when,
)
from runner.report.query import LEDGER_COLUMNS, build_report, run_sql
from runner.report.render import (
    DROP_ORDER,
    EMPTY,
    HumanTable,
    describe_range,
    fit_table,
    human_table,
    render_csv,
    render_json,
    render_markdown,
    render_text,
)

__all__ = [
    "DROP_ORDER",
    "EMPTY",
    "FIGURES",
    "GROUP_FIELDS",
    "LEDGER_COLUMNS",
    "HumanTable",
    "LedgerRead",
    "Report",
    "SqlResult",
    "build_report",
    "check_output",
    "describe_range",
    "expand_ledgers",
    "fit_table",
    "human_table",
    "parse_by",
    "parse_when",
    "render_csv",
    "render_html",
    "render_json",
    "render_markdown",
    "render_text",
    "run_sql",
]
