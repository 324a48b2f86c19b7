"""DuckDB over the JSONL ledgers: every line is read as text and parsed once, unreadable lines are
counted instead of failing the query, and the figures are SQL over a flattened `ledger` view.
This is the only module that imports duckdb."""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import date, datetime
from decimal import Decimal
from typing import Any

import duckdb

from runner.errors import ConfigError, LedgerError
from runner.report.model import GROUP_FIELDS, Report, SqlResult
from runner.report.sql import BREAKDOWNS, LEDGER_COLUMNS

from . import sql

__all__ = ["LEDGER_COLUMNS", "build_report", "run_sql"]


def _connect() -> duckdb.DuckDBPyConnection:
    # No extension is ever downloaded; json and icu are built into the Python package.
    con = duckdb.connect(
        config={"autoinstall_known_extensions": False, "autoload_known_extensions": False}
    )
    con.execute("SET TimeZone = 'UTC'")
    con.execute("SET enable_progress_bar = false")  # stderr is for warnings, not progress bars
    scratch = os.path.join(tempfile.gettempdir(), f"runner-report-{os.getpid()}")
    con.execute(f"SET temp_directory = {sql.literal(scratch)}")
    return con


@contextmanager
def _opened(files: Sequence[str]) -> Iterator[duckdb.DuckDBPyConnection]:
    """A connection with `_lines`: one row per non-blank line, its columns and `line_kind`.
    Engine errors while reading become LedgerError; Ctrl-C stays KeyboardInterrupt."""
    if not files:
        raise ConfigError("no ledger to read")
    con = _connect()
    try:
        for statement in sql.lines_sql(files):
            con.execute(statement)
        yield con
    except duckdb.InterruptException:
        raise KeyboardInterrupt from None
    except duckdb.Error as exc:
        raise LedgerError(f"cannot read the ledgers: {exc}") from None
    finally:
        con.close()


def _grouped(
    con: duckdb.DuckDBPyConnection, sets: Sequence[Sequence[str]], when: str
) -> tuple[dict[str, dict[str, Any]], list[list[dict[str, Any]]]]:
    """One scan of `_lines`: raw figures per part (ok, outside the time range, bad, newer),
    and for each of `sets` the groups of the counted calls, sorted by their fields (nulls
    last)."""
    cursor = con.execute(sql.grouped_sql("_lines", sets, when))
    names = [d[0] for d in cursor.description or []]
    rows = [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]
    fields = sql.set_fields(sets)
    alone = sql.set_mask(fields, ())
    parts = {r["part"]: r for r in rows if r["grouping_set"] == alone}
    found = []
    for fields_of_set in sets:
        if not fields_of_set:  # no --by: every counted call is one group
            found.append([parts["ok"]] if "ok" in parts else [])
            continue
        mask = sql.set_mask(fields, fields_of_set)
        group = [r for r in rows if r["grouping_set"] == mask and r["part"] == "ok"]
        columns = [GROUP_FIELDS[f] for f in fields_of_set]
        group.sort(key=lambda r: [(r[c] is None, "" if r[c] is None else r[c]) for c in columns])
        found.append(group)
    return parts, found


def _money(value: Decimal | None) -> float | None:
    return None if value is None else float(value)


def _ms(value: float | None) -> float | None:
    return None if value is None else round(float(value), 1)


def _figures(row: dict[str, Any]) -> dict[str, Any]:
    calls = int(row["calls"])
    ok = int(row["ok"])
    latency = row["latency"] or [None, None]
    return {
        "calls": calls,
        "ok": ok,
        "errors": calls - ok,
        "error_rate": round((calls - ok) / calls, 4) if calls else None,
        "prompt_tokens": int(row["prompt_tokens"] or 0),
        "completion_tokens": int(row["completion_tokens"] or 0),
        "cached_tokens": int(row["cached_tokens"] or 0),
        "cost_usd": _money(row["cost_usd"]),
        "unpriced_calls": int(row["unpriced_calls"]),
        "estimated_cost_usd": _money(row["estimated_cost_usd"]),
        "estimated_calls": int(row["estimated_calls"]),
        "latency_ms_p50": _ms(latency[0]),
        "latency_ms_p95": _ms(latency[1]),
        "latency_ms_max": _ms(row["latency_ms_max"]),
        "ttft_ms_p50": _ms(row["ttft_ms_p50"]),
    }


def _group(row: dict[str, Any], by: Sequence[str]) -> dict[str, Any]:
    keys = {}
    for name in by:
        value = row[GROUP_FIELDS[name]]
        keys[name] = value.isoformat() if isinstance(value, date) else value
    return keys | _figures(row)


class _Lines:
    """How many lines of each kind one scan saw."""

    def __init__(self, parts: dict[str, dict[str, Any]]) -> None:
        def count(part: str) -> int:
            return int(parts[part]["calls"]) if part in parts else 0

        self.bad = count("bad")
        self.newer = count("newer")
        self.outside = count("outside")
        newest = parts["newer"]["newest"] if "newer" in parts else None
        self.newest = None if newest is None else int(newest)
        self.total = sum(count(p) for p in parts)


def _torn(path: str) -> bool:
    """True when the file's last line lacks its newline and is not JSON: an interrupted write."""
    with open(path, "rb") as f:
        end = f.seek(0, os.SEEK_END)
        if end == 0:
            return False
        f.seek(end - 1)
        if f.read(1) == b"\n":
            return False
        tail = b""
        pos = end
        while pos > 0 and b"\n" not in tail:
            step = min(65536, pos)
            pos -= step
            f.seek(pos)
            tail = f.read(step) + tail
    try:
        json.loads(tail.rsplit(b"\n", 1)[-1])
    except ValueError:
        return True
    return False


def build_report(
    files: Sequence[str],
    *,
    by: Sequence[str] = ("spec", "model"),
    since: datetime | None = None,
    until: datetime | None = None,
    breakdowns: bool = False,
) -> Report:
    """Read the ledger files (explicit paths) and return the figures per `by` group of the calls
    with since <= ts < until (naive datetimes are UTC). `breakdowns=True` adds the groupings
    the HTML page charts (one scan either way)."""
    if since is not None and until is not None and since >= until:
        raise ConfigError("--since must be earlier than --until")
    sets = [tuple(by), *(BREAKDOWNS if breakdowns else ())]
    with _opened(files) as con:
        parts, found = _grouped(con, sets, sql.time_filter(since, until))
    lines = _Lines(parts)
    pairs = zip(sets[1:], found[1:], strict=True)
    extra = {",".join(fields): [_group(r, fields) for r in rows] for fields, rows in pairs}
    ok = parts.get("ok")
    return Report(
        by=tuple(by),
        groups=[_group(r, by) for r in found[0]],
        total=_figures(ok) if ok else None,
        files=tuple(files),
        lines=lines.total,
        calls=int(ok["calls"]) if ok else 0,
        outside=lines.outside,
        bad_lines=lines.bad,
        newer_lines=lines.newer,
        newest_version=lines.newest,
        torn_files=tuple(f for f in files if _torn(f)),
        first_ts=ok["first_ts"] if ok else None,
        last_ts=ok["last_ts"] if ok else None,
        since=since,
        until=until,
        breakdowns=extra,
    )


def run_sql(
    files: Sequence[str],
    query: str,
    *,
    since: datetime | None = None,
    until: datetime | None = None,
) -> SqlResult:
    """Run `query` over the `ledger` view (counted calls with since <= ts < until; columns in
    LEDGER_COLUMNS). An engine error raises ConfigError with the engine's message."""
    when = sql.time_filter(since, until)
    with _opened(files) as con:
        parts, _ = _grouped(con, [()], when)  # the line counts, then the query: two scans
        public = ", ".join(f'"{name}"' for name in LEDGER_COLUMNS)
        con.execute(
            f"CREATE TEMP VIEW ledger AS SELECT {public} FROM _lines "
            f"WHERE line_kind = 'ok' AND {when}"
        )
        try:
            cursor = con.execute(query)
            columns = [d[0] for d in cursor.description or []]
            rows = cursor.fetchall() if columns else []
        except duckdb.InterruptException:
            raise
        except duckdb.Error as exc:
            raise ConfigError(f"--sql: {exc}") from None
    lines = _Lines(parts)
    calls = int(parts["ok"]["calls"]) if "ok" in parts else 0
    return SqlResult(
        columns=columns,
        rows=rows,
        files=tuple(files),
        lines=lines.total,
        calls=calls,
        outside=lines.outside,
        bad_lines=lines.bad,
        newer_lines=lines.newer,
        newest_version=lines.newest,
        torn_files=tuple(f for f in files if _torn(f)),
    )
