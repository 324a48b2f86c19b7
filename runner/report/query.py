"""DuckDB over the JSONL ledgers: every line is read as text and parsed once, unreadable lines are
counted instead of failing the query, and the figures are SQL over a flattened `ledger` view.
This is the only module that imports duckdb.

Every query runs confined: DuckDB may read the ledgers and nothing else, writes nothing but its
own spill files in a private temporary folder (removed afterwards), loads no extension and
changes no setting once the views exist (`enable_external_access`, `allowed_paths`,
`lock_configuration`; complete from DuckDB 2.0). A query runs on a worker thread while the
main thread waits for it, so Ctrl-C, SIGTERM and SIGHUP interrupt it at once.
"""

from __future__ import annotations

import shutil
import tempfile
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import date, datetime
from decimal import Decimal
from typing import TYPE_CHECKING, Any

import duckdb

from runner.errors import ConfigError, LedgerError
from runner.ledger.encoding import MAX_LINE_BYTES
from runner.redact import redact
from runner.report.files import FileScan, copy_without_long_lines, scan
from runner.report.model import GROUP_FIELDS, Report, SqlResult, check_range
from runner.report.sql import BREAKDOWNS, LEDGER_COLUMNS

from . import sql

if TYPE_CHECKING:
    from runner.pricing import PriceBook

__all__ = ["LEDGER_COLUMNS", "build_report", "run_sql"]

# What --sql runs: queries. Anything else (COPY, ATTACH, SET, PRAGMA, CALL, CREATE, INSTALL,
# LOAD...) is refused before it runs, on top of the engine's own confinement.
_QUERIES = {duckdb.StatementType.SELECT, duckdb.StatementType.EXPLAIN}
# How long an interrupted query may take to stop before the command gives up on it.
_STOP_SECONDS = 2.0


def _connect(folder: str) -> duckdb.DuckDBPyConnection:
    """A connection that spills to `folder` (never to `.tmp` in the current directory), in
    UTC, with no progress bar and no extension ever downloaded or loaded on its own (json and
    icu are built into the Python package)."""
    con = duckdb.connect(
        config={
            "autoinstall_known_extensions": False,
            "autoload_known_extensions": False,
            "temp_directory": folder,
        }
    )
    con.execute("SET TimeZone = 'UTC'")
    con.execute("SET enable_progress_bar = false")  # stderr is for warnings, not progress bars
    return con


def _confine(con: duckdb.DuckDBPyConnection, readable: Sequence[str]) -> None:
    """From now on the connection reads `readable` and nothing else (no other file, no
    network, no extension), writes no file but its spill files, and no setting can change."""
    paths = "[" + ", ".join(sql.literal(path) for path in readable) + "]"
    con.execute(f"SET allowed_paths = {paths}")
    con.execute("SET enable_external_access = false")
    con.execute("SET lock_configuration = true")


class _Engine:
    """A confined connection whose statements run on a worker thread: the main thread waits in
    Python, where signal handlers run, and a KeyboardInterrupt there (Ctrl-C, or SIGTERM and
    SIGHUP, which the CLI turns into one) interrupts DuckDB."""

    def __init__(self, con: duckdb.DuckDBPyConnection) -> None:
        self.con = con
        self.busy = False  # a statement that would not stop still holds the connection

    def run(self, statement: str) -> tuple[list[str], list[tuple[Any, ...]]]:
        """The column names and rows of `statement` (none for a statement without a result)."""

        def work() -> tuple[list[str], list[tuple[Any, ...]]]:
            cursor = self.con.execute(statement)
            columns = [d[0] for d in cursor.description or []]
            return columns, cursor.fetchall() if columns else []

        result: tuple[list[str], list[tuple[Any, ...]]] = self._call(work)
        return result

    def each(self, statement: str, size: int = 20_000) -> Iterator[list[tuple[Any, ...]]]:
        """The rows of `statement`, `size` at a time, so that a big answer is never held."""
        cursor = self._call(lambda: self.con.execute(statement))
        while True:
            rows: list[tuple[Any, ...]] = self._call(lambda: cursor.fetchmany(size))
            if not rows:
                return
            yield rows

    def _call(self, work: Any) -> Any:
        """What `work()` returns, run on the worker thread."""
        box: dict[str, Any] = {}
        done = threading.Event()

        def job() -> None:
            try:
                box["result"] = work()
            except BaseException as exc:  # handed to the waiting thread
                box["error"] = exc
            finally:
                done.set()

        thread = threading.Thread(target=job, name="runner-report-query", daemon=True)
        self.busy = True
        thread.start()
        try:
            # An Event, not Thread.join: a KeyboardInterrupt inside join can leave the thread
            # marked as finished while it still runs (Python before 3.13).
            while not done.wait(0.05):
                pass
        except BaseException:
            self._stop(done)
            raise
        self.busy = False
        error = box.get("error")
        if isinstance(error, duckdb.InterruptException):
            raise KeyboardInterrupt from None
        if error is not None:
            raise error
        return box["result"]

    def _stop(self, done: threading.Event) -> None:
        deadline = time.monotonic() + _STOP_SECONDS
        while not done.is_set() and time.monotonic() < deadline:
            self.con.interrupt()  # again: the first may come before the query starts
            done.wait(0.02)
        self.busy = not done.is_set()

    def close(self) -> None:
        if not self.busy:  # closing under a running statement could block the exit
            try:
                self.con.close()
            except duckdb.Error:  # still busy after all: the process is ending anyway
                pass


@contextmanager
def _opened(files: Sequence[str]) -> Iterator[tuple[_Engine, list[FileScan]]]:
    """A confined engine with `_lines` (one row per non-blank line, its columns and
    `line_kind`), and what the scan of each file found. Lines longer than runner ever writes
    are left out (a file that has one is read from a copy without it, in the private folder).
    Engine errors while reading become LedgerError; signals stay KeyboardInterrupt."""
    if not files:
        raise ConfigError("no ledger to read")
    try:
        scans = [scan(path) for path in files]
    except OSError as exc:
        raise LedgerError(f"cannot read the ledger {exc.filename}: {exc.strerror}") from None
    folder = tempfile.mkdtemp(prefix="runner-report-")
    engine: _Engine | None = None
    try:
        read = {}
        for n, found in enumerate(scans):
            path = (
                copy_without_long_lines(found.path, folder, n) if found.long_lines else found.path
            )
            read[path] = found.path
        engine = _Engine(_connect(folder))
        for statement in sql.lines_sql(read, MAX_LINE_BYTES + 1):
            engine.run(statement)
        _confine(engine.con, list(read))
        yield engine, scans
    except duckdb.Error as exc:
        raise LedgerError(f"cannot read the ledgers: {exc}") from None
    finally:
        try:
            if engine is not None:
                engine.close()
        finally:  # the private folder goes whatever happened to the connection
            shutil.rmtree(folder, ignore_errors=True)


def _grouped(
    engine: _Engine, sets: Sequence[Sequence[str]], when: str, *, pricing: bool = False
) -> tuple[dict[str, dict[str, Any]], list[list[dict[str, Any]]]]:
    """One scan of `_lines`: raw figures per part (ok, outside the time range, bad, newer,
    state), and for each of `sets` the groups of the counted lines, sorted by their fields
    (nulls last); `pricing` adds the token sums --price-as prices."""
    names, found_rows = engine.run(sql.grouped_sql("_lines", sets, when, pricing=pricing))
    rows = [dict(zip(names, row, strict=True)) for row in found_rows]
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
        columns = [sql.column(f) for f in fields_of_set]
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
        "replayed": int(row["replayed"]),
    }


def _masked(value: Any) -> Any:
    """A value fit to print: every string in it through the redactor (a key in a ledger line,
    or one a query spells out, never prints)."""
    if isinstance(value, str):
        return redact(value)
    if isinstance(value, list | tuple):
        return type(value)(_masked(v) for v in value)
    if isinstance(value, dict):
        return {_masked(k): _masked(v) for k, v in value.items()}
    return value


def _group(row: dict[str, Any], by: Sequence[str]) -> dict[str, Any]:
    keys = {}
    for name in by:
        value = row[GROUP_FIELDS[name]]
        keys[name] = value.isoformat() if isinstance(value, date) else _masked(value)
    return keys | _figures(row)


class _Lines:
    """How many lines of each kind one scan saw."""

    def __init__(self, parts: dict[str, dict[str, Any]], scans: Sequence[FileScan]) -> None:
        def count(part: str) -> int:
            return int(parts[part]["lines"]) if part in parts else 0

        self.bad = count("bad")
        self.newer = count("newer")
        self.outside = count("outside")
        self.state = count("state")
        self.replayed = int(parts["ok"]["replayed"]) if "ok" in parts else 0
        newest = parts["newer"]["newest"] if "newer" in parts else None
        self.newest = None if newest is None else int(newest)
        self.total = sum(count(p) for p in parts if p != "state")
        self.long = sum(s.long_lines for s in scans)
        self.torn = tuple(s.path for s in scans if s.torn)

    def counts(self) -> dict[str, Any]:
        return {
            "lines": self.total,
            "outside": self.outside,
            "bad_lines": self.bad,
            "newer_lines": self.newer,
            "newest_version": self.newest,
            "torn_files": self.torn,
            "replayed": self.replayed,
            "long_lines": self.long,
            "state_lines": self.state,
        }


def build_report(
    files: Sequence[str],
    *,
    by: Sequence[str] = ("spec", "model"),
    since: datetime | None = None,
    until: datetime | None = None,
    breakdowns: bool = False,
    price_as: Sequence[str] = (),
    prices: PriceBook | None = None,
) -> Report:
    """Read the ledger files (explicit paths) and return the figures per `by` group of the calls
    with since <= ts < until (naive datetimes are UTC). `breakdowns=True` adds the groupings
    the HTML page charts (one scan either way). `price_as` prices every group on those models
    too (runner.report.reprice; `prices`, default genai-prices' alone): the token sums come
    from the same scan, and calls re-counted on another tokenizer from one more."""
    check_range(since, until)
    targets = []
    if price_as:  # tokenizers and prices load only for it
        from runner.pricing import PriceBook

        from . import reprice

        targets = reprice.targets(price_as, prices or PriceBook())
    sets = [tuple(by), *(BREAKDOWNS if breakdowns else ())]
    if targets:
        sets.append(reprice.price_set(by))
    when = sql.time_filter(since, until)
    repricing = None
    with _opened(files) as (engine, scans):
        parts, found = _grouped(engine, sets, when, pricing=bool(targets))
        if targets:
            repricing = reprice.Repricing(tuple(by), targets, found.pop())
            sets.pop()
            models = repricing.need_recount()
            if models:
                repricing.recount(_content_rows(engine, by, models, when))
            repricing.price()
    lines = _Lines(parts, scans)
    pairs = zip(sets[1:], found[1:], strict=True)
    extra = {",".join(fields): [_group(r, fields) for r in rows] for fields, rows in pairs}
    ok = parts.get("ok")
    groups = [_group(r, by) for r in found[0]]
    total = _figures(ok) if ok else None
    if repricing is not None:
        for row, group in zip(found[0], groups, strict=True):
            group["priced_as"] = repricing.priced(tuple(row[sql.column(f)] for f in by))
        if total is not None:
            total["priced_as"] = repricing.total()
    return Report(
        by=tuple(by),
        groups=groups,
        total=total,
        price_as=tuple(t.model for t in targets),
        pricing_notes=tuple(repricing.notes) if repricing is not None else (),
        files=tuple(files),
        calls=int(ok["calls"]) if ok else 0,
        first_ts=ok["first_ts"] if ok else None,
        last_ts=ok["last_ts"] if ok else None,
        since=since,
        until=until,
        breakdowns=extra,
        **lines.counts(),
    )


def _content_rows(
    engine: _Engine, by: Sequence[str], models: Sequence[str], when: str
) -> Iterator[tuple[Any, ...]]:
    """The counted calls of `models` whose usage can be priced, with their content, for
    --price-as to re-count on another tokenizer: the --by values, model, batch, the recorded
    counts, the messages and the reply's text."""
    keys = "".join(f'"{sql.column(f)}", ' for f in by)
    listed = ", ".join(sql.literal(m) for m in models)
    statement = (
        f"SELECT {keys}model, _batch, prompt_tokens, cached_tokens, completion_tokens, "
        f"_messages, _output_text FROM _lines WHERE line_kind = 'ok' AND ({when}) "
        f"AND replayed IS NOT DISTINCT FROM false AND NOT _implausible AND model IN ({listed})"
    )
    for rows in engine.each(statement):
        yield from rows


def _check_query(engine: _Engine, query: str) -> None:
    """Refuse an empty query, one that does not parse, and any statement but a query."""
    try:
        statements = engine.con.extract_statements(query)
    except duckdb.Error as exc:
        raise ConfigError(f"--sql: {exc}") from None
    if not statements:
        raise ConfigError("--sql: the query is empty")
    for statement in statements:
        if statement.type not in _QUERIES:
            raise ConfigError(
                f"--sql: {statement.type.name} statements are not run: --sql takes queries "
                "(SELECT, WITH, FROM, VALUES, DESCRIBE, SUMMARIZE, SHOW, EXPLAIN) over the "
                "ledger view; a report reads the ledgers and writes nothing"
            )


def run_sql(
    files: Sequence[str],
    query: str,
    *,
    since: datetime | None = None,
    until: datetime | None = None,
) -> SqlResult:
    """Run `query` over the `ledger` view (counted and replayed calls with since <= ts < until;
    columns in LEDGER_COLUMNS), confined to reading the ledgers. A statement that is not a
    query, or an engine error, raises ConfigError with the engine's message. Strings in the
    rows and column names come back redacted."""
    check_range(since, until)
    when = sql.time_filter(since, until)
    with _opened(files) as (engine, scans):
        _check_query(engine, query)
        parts, _ = _grouped(engine, [()], when)  # the line counts, then the query: two scans
        public = ", ".join(f'"{name}"' for name in LEDGER_COLUMNS)
        engine.run(
            f"CREATE TEMP VIEW ledger AS SELECT {public} FROM _lines "
            f"WHERE line_kind = 'ok' AND {when}"
        )
        try:
            columns, rows = engine.run(query)
        except duckdb.Error as exc:
            raise ConfigError(f"--sql: {exc}") from None
    lines = _Lines(parts, scans)
    calls = int(parts["ok"]["calls"]) if "ok" in parts else 0
    return SqlResult(
        columns=[redact(c) for c in columns],
        rows=[_masked(row) for row in rows],
        files=tuple(files),
        calls=calls,
        **lines.counts(),
    )
