"""`runner report`: figures per group of calls (spec, model, day, ...) read from one or more JSONL
ledgers with DuckDB; or any SQL query over the calls.

Public names: `build_report(files, by=, since=, until=, breakdowns=) -> Report`,
`run_sql(files, query, since=, until=) -> SqlResult`, `expand_ledgers(patterns)`,
`parse_by(values)`, `parse_when(text, what=)`, `GROUP_FIELDS`, `FIGURES`, `LEDGER_COLUMNS`.
"""

from __future__ import annotations

from .model import (
    FIGURES,
    GROUP_FIELDS,
    LedgerRead,
    Report,
    SqlResult,
    expand_ledgers,
    parse_by,
    parse_when,
)
from .query import LEDGER_COLUMNS, build_report, run_sql

__all__ = [
    "FIGURES",
    "GROUP_FIELDS",
    "LEDGER_COLUMNS",
    "LedgerRead",
    "Report",
    "SqlResult",
    "build_report",
    "expand_ledgers",
    "parse_by",
    "parse_when",
    "run_sql",
]
