"""`runner report` with a real key in the environment and ledgers runner really wrote: replayed
calls are no spend, every line runner can write is read, `--sql` reads only the ledgers and
prints no secret, CSV cells cannot be formulas, signals stop a long query, bad flags and paths
are clear errors; and the ledger writer says what is wrong with a path it cannot use.

Every case checks the exit code, that no traceback is printed, the exact ledger line count,
that the key never appears, and a wall-time bound."""

from __future__ import annotations

import csv
import io
import json
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from _trust_recorded import FAKE_KEY, Canned, canned_server, reply, server_env, write_spec
from click.testing import CliRunner

from runner.cli import cli
from runner.errors import LedgerUnavailable
from runner.ledger.encoding import MAX_LINE_BYTES, encode_line
from runner.ledger.store import Ledger

KEY_ENV = {"OPENAI_API_KEY": FAKE_KEY}


# --- helpers ------------------------------------------------------------------------------------

_SHA = "5f0c4be1d2a7c8e9f3b6a1d4c7e0f2a5b8d1e4f7a0c3b6d9e2f5a8b1c4d7e0f3"


def record(n: int = 0, **over: Any) -> dict[str, Any]:
    """A v1 ledger line of a real (priced) call; `over` replaces fields (`spec` merges)."""
    rec: dict[str, Any] = {
        "v": 1,
        "id": f"01JP9ZMQCNBRX9RWDJTG7R{n:04d}",
        "ts": "2025-03-14T09:26:53.589Z",
        "spec": {"path": "prompts/city.yaml", "name": "city", "sha256": _SHA, "commit": None,
                 "dirty": None},
        "request_sha256": _SHA,
        "case": None,
        "row": None,
        "model": "gpt-4o-mini",
        "served_model": "gpt-4o-mini-2024-07-18",
        "params": {},
        "vars": None,
        "messages": None,
        "status": "ok",
        "output": {"text": "{}", "json": {}},
        "error": None,
        "attempts": [{"n": 1, "outcome": "ok", "waited_s": 0.0, "latency_ms": 800.0}],
        "usage": {"prompt": 100, "completion": 20, "cached": 0, "reasoning": 0, "total": 120},
        "cost": {"usd": 0.000027, "source": "genai-prices", "estimated": False},
        "latency_ms": 800.0,
        "ttft_ms": None,
        "request_id": "req_1",
        "mock": False,
    }  # fmt: skip
    for key, value in over.items():
        rec[key] = rec[key] | value if key == "spec" else value
    return rec


def write_lines(path: Path, lines: Sequence[dict[str, Any] | bytes]) -> Path:
    """Records as JSON lines, bytes as they are."""
    with path.open("wb") as f:
        for line in lines:
            f.write(line if isinstance(line, bytes) else json.dumps(line).encode() + b"\n")
    return path


@dataclass
class Ran:
    code: int
    stdout: str
    stderr: str
    seconds: float


def _lines(*paths: Path) -> int:
    """Non-blank lines in these files (0 for a missing one): a report must change none."""
    total = 0
    for path in paths:
        if path.is_file():
            with path.open("rb") as f:
                total += sum(1 for line in f if line.strip())
    return total


def _report(args: Sequence[str], env: Mapping[str, str] | None = None) -> Ran:
    """`runner report ARGS` in-process, with the fake key in the environment."""
    started = time.monotonic()
    result = CliRunner().invoke(cli, ["report", *args], env={**KEY_ENV, **(env or {})})
    seconds = time.monotonic() - started
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise AssertionError(f"an exception escaped: {result.exception!r}")
    return Ran(result.exit_code, result.stdout, result.stderr, seconds)


def _child_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("RUNNER_", "OPENAI_"))}
    env.update(KEY_ENV, NO_COLOR="1", **extra)
    return env


def _report_process(
    args: Sequence[str], cwd: Path, env: Mapping[str, str] | None = None, timeout: float = 60
) -> Ran:
    """`runner report ARGS` as a real process (its /proc/self/environ holds the key)."""
    started = time.monotonic()
    proc = subprocess.run(
        [sys.executable, "-m", "runner", "report", *args],
        cwd=cwd,
        env={**_child_env(), **(env or {})},
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    return Ran(proc.returncode, proc.stdout, proc.stderr, time.monotonic() - started)


def _clean(out: Ran, *, code: int, ledger_lines: int, found: int, limit: float = 20.0) -> None:
    """The checks of every case: exit code, no traceback, the ledger lines unchanged, no key
    anywhere, a bounded wall time."""
    shown = f"code={out.code} stdout={out.stdout[-2000:]!r} stderr={out.stderr[-2000:]!r}"
    assert out.code == code, shown
    assert "Traceback" not in out.stdout + out.stderr, shown
    assert found == ledger_lines, shown
    everything = out.stdout + out.stderr
    assert FAKE_KEY not in everything and FAKE_KEY[8:] not in everything, shown
    assert out.seconds < limit, shown


def _sample(tmp_path: Path, n: int = 3) -> Path:
    return write_lines(tmp_path / "ledger.jsonl", [record(i) for i in range(n)])


# --- 1. replayed lines are their own bucket -----------------------------------------------------

TEST_SPEC_CASES = """tests:
  - name: ada
    vars: {who: Ada}
  - name: bob
    vars: {who: Bob}
"""


def _runner(args: Sequence[str], env: Mapping[str, str], cwd: Path) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "runner", *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 0, proc.stderr
    assert "Traceback" not in proc.stdout + proc.stderr


@pytest.fixture(scope="module")
def replayed_ledger(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """2 real calls (`runner test` against a server), then 3 `runner test --replay` runs of
    the same 2 cases into the same ledger: 8 lines, 6 of them replayed."""
    folder = tmp_path_factory.mktemp("replays")
    spec = write_spec(folder, TEST_SPEC_CASES)
    ledger = folder / "ledger.jsonl"
    with canned_server(Canned(reply())) as server:
        env = _child_env(**server_env(server))
        _runner(["test", str(spec), "--ledger", str(ledger)], env, folder)
        for _ in range(3):
            _runner(
                ["test", str(spec), "--replay", str(ledger), "--ledger", str(ledger)], env, folder
            )
        assert len(server.requests) == 2
    return ledger


def _real(ledger: Path) -> list[dict[str, Any]]:
    return [
        r for r in map(json.loads, ledger.read_text("utf-8").splitlines()) if "replayed" not in r
    ]


def test_replayed_lines_are_not_calls_or_spend(replayed_ledger: Path) -> None:
    real = _real(replayed_ledger)
    assert len(real) == 2 and _lines(replayed_ledger) == 8
    out = _report(["--ledger", str(replayed_ledger), "--format", "json", "--by", "spec"])
    _clean(out, code=0, ledger_lines=8, found=_lines(replayed_ledger))
    [group] = json.loads(out.stdout)
    assert group["calls"] == 2 and group["replayed"] == 6
    assert group["cost_usd"] == pytest.approx(sum(r["cost"]["usd"] for r in real))
    assert group["prompt_tokens"] == sum(r["usage"]["prompt"] for r in real)
    assert "6 replayed calls" in out.stderr and "not counted" in out.stderr


@pytest.mark.parametrize("fmt", ["table", "csv", "markdown"])
def test_replayed_lines_are_shown_apart_in_every_format(replayed_ledger: Path, fmt: str) -> None:
    out = _report(["--ledger", str(replayed_ledger), "--format", fmt, "--by", "spec"])
    _clean(out, code=0, ledger_lines=8, found=_lines(replayed_ledger))
    if fmt == "csv":
        [row] = list(csv.DictReader(io.StringIO(out.stdout)))
        assert (row["calls"], row["replayed"]) == ("2", "6")
    else:
        header = next(line for line in out.stdout.splitlines() if "calls" in line)
        cells = next(
            line for line in out.stdout.splitlines() if line.lstrip("| ").startswith("trust")
        )
        split = (
            (lambda s: [c.strip() for c in s.strip("|").split("|")])
            if fmt == "markdown"
            else str.split
        )
        names = split(header.replace("error %", "error%").replace(" tok", "_tok"))
        values = split(cells)
        assert values[names.index("calls")] == "2" and values[names.index("replayed")] == "6"
        assert "2 calls" in out.stdout


def test_replayed_lines_on_the_html_page(replayed_ledger: Path, tmp_path: Path) -> None:
    page = tmp_path / "report.html"
    out = _report(["--ledger", str(replayed_ledger), "--html", str(page)])
    _clean(out, code=0, ledger_lines=8, found=_lines(replayed_ledger))
    text = page.read_text("utf-8")
    assert re.search(r">\s*2\s*<", text) and "6 replayed" in text
    assert FAKE_KEY not in text


def test_a_ledger_of_replays_only_has_no_calls(tmp_path: Path) -> None:
    lines = [record(i, replayed={"from": "base.jsonl", "id": f"r{i}"}) for i in range(3)]
    ledger = write_lines(tmp_path / "l.jsonl", lines)
    for args in (["--format", "json"], ["--html", str(tmp_path / "r.html")], []):
        out = _report(["--ledger", str(ledger), *args])
        _clean(out, code=0, ledger_lines=3, found=_lines(ledger))
        assert "3 replayed calls" in out.stderr
    assert (
        json.loads(_report(["--ledger", str(ledger), "--format", "json"]).stdout)[0]["calls"] == 0
    )


def test_the_sql_view_has_replayed_and_batch_id(tmp_path: Path) -> None:
    lines = [
        record(1),
        record(2, replayed={"from": "base.jsonl", "id": "x"}),
        record(3, batch_id="batch_abc"),
    ]
    ledger = write_lines(tmp_path / "l.jsonl", lines)
    query = "SELECT id[-1:] AS n, replayed, batch_id FROM ledger ORDER BY n"
    out = _report(["--ledger", str(ledger), "--sql", query, "--format", "json"])
    _clean(out, code=0, ledger_lines=3, found=_lines(ledger))
    assert json.loads(out.stdout) == [
        {"n": "1", "replayed": False, "batch_id": None},
        {"n": "2", "replayed": True, "batch_id": None},
        {"n": "3", "replayed": False, "batch_id": "batch_abc"},
    ]


# --- 2. every line runner can write, runner can read --------------------------------------------


def _big_record(n: int, size: int) -> dict[str, Any]:
    rec = record(n)
    rec["output"] = {"text": "x" * size, "json": None}
    return rec


def _child_peak(args: Sequence[str], cwd: Path) -> tuple[Ran, float]:
    """Run the report in a child of a fresh Python (so RUSAGE_CHILDREN is its alone)."""
    code = (
        "import json, resource, subprocess, sys, time\n"
        "t = time.monotonic()\n"
        "p = subprocess.run(sys.argv[1:], capture_output=True, text=True)\n"
        "print(json.dumps([p.returncode, p.stdout, p.stderr, time.monotonic() - t,\n"
        "    resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024]))\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code, sys.executable, "-m", "runner", "report", *args],
        cwd=cwd,
        env=_child_env(),
        capture_output=True,
        text=True,
        timeout=120,
    )
    rc, out, err, seconds, peak = json.loads(proc.stdout)
    return Ran(rc, out, err, seconds), peak


def test_a_36_mb_line_runner_wrote_is_read(tmp_path: Path) -> None:
    ledger = tmp_path / "ledger.jsonl"
    with Ledger(ledger) as store:
        store.append(record(1))
        store.append(_big_record(2, 36_000_000))
        store.append(record(3))
    assert ledger.stat().st_size > 36_000_000
    out, peak = _child_peak(["--ledger", str(ledger), "--format", "json", "--by", ""], tmp_path)
    _clean(out, code=0, ledger_lines=3, found=_lines(ledger), limit=30)
    assert json.loads(out.stdout)[0]["calls"] == 3
    assert out.stderr == ""
    assert peak < 800, f"peak memory {peak:.0f} MB"


def test_the_longest_line_runner_can_write_is_read(tmp_path: Path) -> None:
    rec = _big_record(2, 0)
    overhead = len(encode_line(rec))
    rec = _big_record(2, MAX_LINE_BYTES - overhead)
    line = encode_line(rec)
    assert len(line) == MAX_LINE_BYTES
    ledger = write_lines(tmp_path / "ledger.jsonl", [record(1), line, record(3)])
    out, peak = _child_peak(["--ledger", str(ledger), "--format", "json", "--by", ""], tmp_path)
    _clean(out, code=0, ledger_lines=3, found=_lines(ledger), limit=30)
    assert json.loads(out.stdout)[0]["calls"] == 3 and out.stderr == ""
    assert peak < 800, f"peak memory {peak:.0f} MB"


@pytest.mark.parametrize("size", [65 << 20, 200 << 20])
def test_a_longer_garbage_line_is_skipped_not_fatal(tmp_path: Path, size: int) -> None:
    ledger = tmp_path / "ledger.jsonl"
    with ledger.open("wb") as f:
        f.write(encode_line(record(1)))
        f.write(b'{"v":1,"junk":"')
        chunk = b"y" * (1 << 20)
        for _ in range(size >> 20):
            f.write(chunk)
        f.write(b'"}\n')
        f.write(encode_line(record(3)))
    for args in (["--format", "json", "--by", ""], ["--sql", "SELECT count(*) AS n FROM ledger"]):
        out, peak = _child_peak(["--ledger", str(ledger), *args, "--format", "json"], tmp_path)
        _clean(out, code=0, ledger_lines=3, found=_lines(ledger), limit=40)
        [row] = json.loads(out.stdout)
        assert row.get("calls", row.get("n")) == 2
        assert "1 ledger line skipped" in out.stderr and "longer than" in out.stderr
        assert peak < 800, f"peak memory {peak:.0f} MB"


def test_a_long_last_line_without_newline_is_skipped(tmp_path: Path) -> None:
    ledger = tmp_path / "ledger.jsonl"
    with ledger.open("wb") as f:
        f.write(encode_line(record(1)))
        f.write(b"z" * ((64 << 20) * 2 + 5))  # no newline at the end: a torn write of garbage
    out = _report(["--ledger", str(ledger), "--format", "json", "--by", ""])
    _clean(out, code=0, ledger_lines=2, found=_lines(ledger), limit=40)
    assert json.loads(out.stdout)[0]["calls"] == 1
    assert "1 ledger line skipped" in out.stderr


# --- 3. --sql reads only the ledgers, writes nothing, prints no secret --------------------------


@pytest.fixture
def secret_file(tmp_path: Path) -> Path:
    path = tmp_path / "secret.txt"
    path.write_text(f"OPENAI_API_KEY={FAKE_KEY}\n", encoding="utf-8")
    return path


CONFINED = [
    "SELECT * FROM read_text('/proc/self/environ')",
    "SELECT * FROM read_csv('/proc/self/environ', header = false)",
    "SELECT * FROM read_json('/proc/self/environ')",
    "SELECT * FROM read_blob('/proc/self/environ')",
    "SELECT * FROM read_text('{secret}')",
    "SELECT * FROM read_csv('{secret}', header = false, sep = '=')",
    "SELECT * FROM read_json_objects('{secret}')",
    "SELECT * FROM '{secret}'",
    "SELECT * FROM glob('/*')",
    "SELECT content FROM read_text('/etc/hostname')",
    "COPY (SELECT * FROM ledger) TO '{out}'",
    "COPY (SELECT 1) TO '{out}' (FORMAT csv)",
    "EXPORT DATABASE '{outdir}'",
    "ATTACH '{db}' AS other",
    "ATTACH '{db}'; CREATE TABLE other.t AS SELECT 1",
    "INSTALL httpfs",
    "LOAD httpfs",
    "FORCE INSTALL json",
    "SET enable_external_access = true",
    "SET lock_configuration = false",
    "RESET enable_external_access",
    "SET allowed_paths = ['/proc/self/environ']",
    "SET threads = 1",
    "PRAGMA enable_profiling",
    "PRAGMA profiling_output = '{out}'",
    "SELECT * FROM enable_profiling()",
    "CALL enable_logging()",
    "SELECT getenv('OPENAI_API_KEY')",
    "CREATE SECRET s (TYPE s3, KEY_ID 'a', SECRET 'b')",
    "CREATE TABLE t AS SELECT 1",
    "SELECT 1; COPY (SELECT 1) TO '{out}'",
    "EXPLAIN ANALYZE COPY (SELECT 1) TO '{out}'",
    "EXPLAIN ANALYZE SELECT * FROM read_text('{secret}')",
]


@pytest.mark.parametrize("query", CONFINED)
def test_sql_cannot_reach_outside_the_ledgers(
    tmp_path: Path, secret_file: Path, query: str
) -> None:
    ledger = _sample(tmp_path)
    out_file, out_dir, db = tmp_path / "out.csv", tmp_path / "exported", tmp_path / "other.db"
    text = query.format(secret=secret_file, out=out_file, outdir=out_dir, db=db)
    before = sorted(p.name for p in tmp_path.iterdir())
    out = _report_process(["--ledger", str(ledger), "--sql", text], tmp_path)
    _clean(out, code=2, ledger_lines=3, found=_lines(ledger))
    assert out.stdout == ""
    assert out.stderr.startswith("Error: --sql"), out.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == before  # nothing written
    assert "sk-" not in out.stdout + out.stderr


def test_current_setting_shows_no_secret(tmp_path: Path) -> None:
    ledger = _sample(tmp_path)
    query = (
        "SELECT name, value FROM duckdb_settings() UNION ALL "
        "SELECT 'home', current_setting('home_directory')"
    )
    out = _report_process(["--ledger", str(ledger), "--sql", query, "--format", "csv"], tmp_path)
    _clean(out, code=0, ledger_lines=3, found=_lines(ledger))
    assert "sk-" not in out.stdout


def test_what_sql_prints_is_redacted(tmp_path: Path) -> None:
    """A key in the environment, in a ledger line or in the query never prints: not in the
    rows, not in a column name, not in an error message."""
    lines = [record(1, row=f"token {FAKE_KEY}"), record(2, case="sk-proj-ABCDEFGHIJKLMNOPQRST")]
    ledger = write_lines(tmp_path / "ledger.jsonl", lines)
    queries = [
        ('SELECT "row", "case" FROM ledger', 0),
        (f"SELECT '{FAKE_KEY}' AS \"{FAKE_KEY}\"", 0),
        (f"SELECT '{FAKE_KEY}'::INTEGER", 2),
        (f"SELECT nope AS x FROM ledger WHERE spec_name = '{FAKE_KEY}'", 2),
    ]
    for fmt in ("table", "json", "csv", "markdown"):
        for query, code in queries:
            out = _report_process(
                ["--ledger", str(ledger), "--sql", query, "--format", fmt], tmp_path
            )
            _clean(out, code=code, ledger_lines=2, found=_lines(ledger))
            assert "sk-proj-ABCDEFGHIJ" not in out.stdout + out.stderr


@pytest.mark.parametrize(
    "query",
    [
        "SELECT spec_name, count(*) AS n FROM ledger GROUP BY ALL",
        "WITH t AS (SELECT * FROM ledger) SELECT count(*) AS n FROM t",
        "FROM ledger SELECT count(*) AS n",
        "DESCRIBE ledger",
        "SUMMARIZE ledger",
        "SELECT count(*) AS n FROM ledger; SELECT sum(prompt_tokens) AS n FROM ledger",
        "EXPLAIN SELECT * FROM ledger",
    ],
)
def test_queries_over_the_view_still_work(tmp_path: Path, query: str) -> None:
    ledger = _sample(tmp_path)
    out = _report_process(["--ledger", str(ledger), "--sql", query, "--format", "json"], tmp_path)
    _clean(out, code=0, ledger_lines=3, found=_lines(ledger))
    assert json.loads(out.stdout)


# --- 4. CSV cells are never formulas ------------------------------------------------------------

FORMULAS = ['=HYPERLINK("http://evil.example","click")', "+1+2", "-3+4", "@SUM(A1)", "\tx", "\rx"]


def test_csv_cells_cannot_start_a_formula(tmp_path: Path) -> None:
    lines = [
        record(i, spec={"name": text}, model=text, case=text) for i, text in enumerate(FORMULAS)
    ]
    ledger = write_lines(tmp_path / "ledger.jsonl", lines)
    out = _report(["--ledger", str(ledger), "--format", "csv", "--by", "spec,model,case"])
    _clean(out, code=0, ledger_lines=len(FORMULAS), found=_lines(ledger))
    rows = list(csv.reader(io.StringIO(out.stdout, newline="")))
    cells = [cell for row in rows[1:] for cell in row[:3]]
    assert sorted(cells) == sorted(["'" + t for t in FORMULAS] * 3)
    for row in rows[1:]:
        assert row[3] == "1"  # calls: a number stays a number


def test_csv_from_sql_neutralises_strings_not_numbers(tmp_path: Path) -> None:
    ledger = _sample(tmp_path)
    query = "SELECT -1 AS n, -2.5 AS x, '-1' AS s, '=1+1' AS f, 'plain' AS p, '@x' AS a"
    out = _report(["--ledger", str(ledger), "--sql", query, "--format", "csv"])
    _clean(out, code=0, ledger_lines=3, found=_lines(ledger))
    assert out.stdout.splitlines() == ["n,x,s,f,p,a", "-1,-2.5,'-1,'=1+1,plain,'@x"]


def test_a_formula_column_name_is_neutralised(tmp_path: Path) -> None:
    ledger = _sample(tmp_path)
    out = _report(["--ledger", str(ledger), "--sql", 'SELECT 1 AS "=cmd"', "--format", "csv"])
    _clean(out, code=0, ledger_lines=3, found=_lines(ledger))
    assert out.stdout.splitlines() == ["'=cmd", "1"]


def test_control_and_markup_characters_in_names_are_shown_not_obeyed(tmp_path: Path) -> None:
    """The human tables show a name's control characters instead of sending them to the
    terminal (an escape sequence, a newline that breaks a Markdown row), and rich markup in a
    name is text."""
    names = ["\x1b[2Jwiped", "two\nlines", "[/bold]x", "a|b"]
    lines = [record(i, spec={"name": name}) for i, name in enumerate(names)]
    ledger = write_lines(tmp_path / "ledger.jsonl", lines)
    for fmt in ("table", "markdown"):
        out = _report(["--ledger", str(ledger), "--format", fmt, "--by", "spec"])
        _clean(out, code=0, ledger_lines=4, found=_lines(ledger))
        assert "\x1b" not in out.stdout and "two\nlines" not in out.stdout
        shown = out.stdout.replace("\\\\", "\\")  # Markdown doubles a backslash
        assert "\\x1b[2Jwiped" in shown and "two\\nlines" in shown


def test_rich_markup_in_a_name_is_text(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from runner.cli.report import _print_rich
    from runner.report import build_report

    names = ["[/bold]x", "[red]y[/red]", "\x1b[31mz"]
    ledger = write_lines(
        tmp_path / "l.jsonl", [record(i, spec={"name": n}) for i, n in enumerate(names)]
    )
    _print_rich(build_report([str(ledger)], by=["spec"]))
    shown = capsys.readouterr().out
    assert "[/bold]x" in shown and "[red]y[/red]" in shown and "\x1b[31m" not in shown


# --- 5. signals stop a long query ---------------------------------------------------------------

SLOW = "SELECT sum(a.range * b.range) AS s FROM range(1000000000000) a, range(10) b"
# The figures' own query made as slow as SLOW, for a report that is not --sql (a ledger big
# enough to take seconds would take gigabytes): the signal path is the one every query takes.
SLOW_REPORT = (
    "import sys, runner.report.sql as q\n"
    f"q.grouped_sql = lambda *a, **k: {SLOW!r}\n"
    "from runner.cli import main\n"
    "sys.argv[0] = 'runner'\n"
    "main()\n"
)


def _default_sigint() -> None:
    signal.signal(signal.SIGINT, signal.SIG_DFL)


@pytest.mark.parametrize(
    ("signum", "code"), [(signal.SIGINT, 130), (signal.SIGTERM, 143), (signal.SIGHUP, 129)]
)
@pytest.mark.parametrize("what", ["sql", "report"])
def test_a_signal_stops_a_long_query(tmp_path: Path, signum: int, code: int, what: str) -> None:
    ledger = _sample(tmp_path)
    if what == "sql":
        command = ["-m", "runner", "report", "--ledger", str(ledger), "--sql", SLOW]
    else:
        command = ["-c", SLOW_REPORT, "report", "--ledger", str(ledger), "--by", "spec"]
    scratch = tmp_path / "tmp"  # DuckDB's private folder goes here, and must be gone after
    scratch.mkdir()
    proc = subprocess.Popen(
        [sys.executable, *command],
        cwd=tmp_path,
        env=_child_env(TMPDIR=str(scratch)),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        preexec_fn=_default_sigint,
    )
    try:
        time.sleep(2.5)  # Python and DuckDB start, the query runs
        assert proc.poll() is None, proc.communicate()
        proc.send_signal(signum)
        sent = time.monotonic()
        out, err = proc.communicate(timeout=20)
        waited = time.monotonic() - sent
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    ran = Ran(proc.returncode, out, err, waited)
    _clean(ran, code=code, ledger_lines=3, found=_lines(ledger), limit=3)
    assert "Interrupted." in err and out == ""
    assert list(scratch.iterdir()) == []


# --- 6. bad flags and paths are clear errors, checked before the query ------------------------


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (["--since", "99999999d"], "--since 99999999d: too far back"),
        (["--until", "99999999d"], "--until 99999999d: too far back"),
        (["--since", "9999999999999999999999d"], "--since 9999999999999999999999d: too far back"),
        (["--until", "9999-12-31"], "--until 9999-12-31: too late"),
        (["--since", "0000-01-01"], "--since '0000-01-01': not a duration"),
        (["--since", "yesterday"], "--since 'yesterday': not a duration"),
        (
            ["--since", "2025-03-14", "--until", "2025-03-01"],
            "--since must be earlier than --until",
        ),
        (["--since", "1d", "--until", "2d"], "--since must be earlier than --until"),
        (["--by", "nope"], "--by nope: unknown field"),
        (["--sql", "SELEC 1"], "--sql: Parser Error"),
        (["--sql", ""], "--sql: the query is empty"),
        (["--sql", "   ;  "], "--sql: the query is empty"),
    ],
)
def test_bad_flags_are_clear_errors(tmp_path: Path, flags: list[str], message: str) -> None:
    ledger = _sample(tmp_path)
    out = _report(["--ledger", str(ledger), *flags])
    _clean(out, code=2, ledger_lines=3, found=_lines(ledger))
    assert out.stderr.startswith(f"Error: {message}"), out.stderr
    assert out.stdout == ""


@pytest.mark.parametrize("stdout", ["dev-full", "closed"])
@pytest.mark.parametrize("args", [["--format", "json"], ["--sql", "SELECT * FROM range(100000)"]])
def test_an_unwritable_stdout_is_a_clear_error(
    tmp_path: Path, stdout: str, args: list[str]
) -> None:
    ledger = _sample(tmp_path)
    started = time.monotonic()
    with open("/dev/full", "w") as full:
        proc = subprocess.run(
            [sys.executable, "-m", "runner", "report", "--ledger", str(ledger), *args],
            cwd=tmp_path,
            env=_child_env(),
            stdout=full if stdout == "dev-full" else subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
            timeout=60,
            preexec_fn=(lambda: os.close(1)) if stdout == "closed" else None,
        )
    out = Ran(proc.returncode, "", proc.stderr, time.monotonic() - started)
    _clean(out, code=2, ledger_lines=3, found=_lines(ledger))
    expected = {
        "dev-full": "Error: cannot write the report to standard output: No space left on device\n",
        "closed": "Error: cannot write the report: standard output is closed\n",
    }
    assert proc.stderr == expected[stdout]


def _fifo(tmp_path: Path) -> Path:
    path = tmp_path / "fifo.jsonl"
    os.mkfifo(path)
    return path


def _dir_only(tmp_path: Path) -> str:
    (tmp_path / "d1.jsonl").mkdir()
    return str(tmp_path / "*.jsonl")


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda t: "/etc/*", "is not a regular file"),
        (lambda t: "/dev/zero", "/dev/zero: it is not a regular file (a device)"),
        (lambda t: "/dev/null", "/dev/null: it is not a regular file (a device)"),
        (
            lambda t: "/proc/self/environ",
            "/proc/self/environ: it is not a regular file (a special file of the kernel",
        ),
        (lambda t: str(_fifo(t)), "fifo.jsonl: it is not a regular file (a pipe or a socket)"),
        (lambda t: str(t), "is a directory"),
        (lambda t: _dir_only(t), "matches no file"),
        (lambda t: str(t / "none" / "*.jsonl"), "matches no file"),
        (lambda t: str(t / "missing.jsonl"), "no ledger at"),
        (lambda t: "/dev/*", "is not a regular file"),
        (lambda t: "", "--ledger: the path is empty"),
    ],
)
def test_bad_ledger_paths_are_clear_errors(tmp_path: Path, make: Any, message: str) -> None:
    pattern = make(tmp_path)
    out = _report(["--ledger", pattern])
    _clean(out, code=2, ledger_lines=0, found=0, limit=20)
    assert message in out.stderr and out.stderr.startswith("Error: "), out.stderr
    assert out.stdout == ""


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads any file")
def test_an_unreadable_ledger_is_a_clear_error(tmp_path: Path) -> None:
    ledger = _sample(tmp_path)
    ledger.chmod(0)
    out = _report(["--ledger", str(ledger)])
    _clean(out, code=2, ledger_lines=0, found=0)
    assert "Permission denied" in out.stderr


def _html_targets(tmp_path: Path, case: str) -> str:
    if case == "missing-dir":
        return str(tmp_path / "nonexistent" / "dir" / "r.html")
    if case == "directory":
        return str(tmp_path)
    if case == "under-a-file":
        (tmp_path / "afile").write_text("x", encoding="utf-8")
        return str(tmp_path / "afile" / "r.html")
    if case == "the-ledger":
        return str(tmp_path / "ledger.jsonl")
    if case == "a-hard-link-to-the-ledger":
        os.link(tmp_path / "ledger.jsonl", tmp_path / "linked.html")
        return str(tmp_path / "linked.html")
    if case == "a-symlink-to-the-ledger":
        (tmp_path / "sym.html").symlink_to(tmp_path / "ledger.jsonl")
        return str(tmp_path / "sym.html")
    return {"dev-full": "/dev/full", "proc": "/proc/version", "empty": ""}[case]


@pytest.mark.parametrize(
    ("case", "message"),
    [
        ("missing-dir", "no such directory"),
        ("directory", "is a directory"),
        ("under-a-file", "is a file, not a directory"),
        ("the-ledger", "is a ledger this report reads"),
        ("a-hard-link-to-the-ledger", "is a ledger this report reads"),
        ("a-symlink-to-the-ledger", "is a ledger this report reads"),
        ("dev-full", "not a regular file"),
        ("proc", "not a regular file"),
        ("empty", "the path is empty"),
    ],
)
def test_a_bad_html_path_is_refused_before_the_query(
    tmp_path: Path, case: str, message: str
) -> None:
    ledger = _sample(tmp_path)
    target = _html_targets(tmp_path, case)
    before = ledger.read_bytes()
    out = _report(["--ledger", str(ledger), "--html", target])
    _clean(out, code=2, ledger_lines=3, found=_lines(ledger))
    assert out.stderr.startswith(f"Error: --html {target}".rstrip() + ":"), out.stderr
    assert message in out.stderr, out.stderr
    assert out.stdout == ""  # refused before the report was made and printed
    assert ledger.read_bytes() == before
    assert not (tmp_path / "nonexistent").exists()


def test_a_report_writes_only_the_html_asked_for(tmp_path: Path) -> None:
    """No DuckDB temporary files in the current directory, the temporary directory or home."""
    work, tmp, home = tmp_path / "work", tmp_path / "tmp", tmp_path / "home"
    for folder in (work, tmp, home):
        folder.mkdir()
    ledger = _sample(work)
    env = {"TMPDIR": str(tmp), "HOME": str(home)}
    for args in (["--html", "r.html"], ["--sql", "SELECT * FROM ledger ORDER BY ts"], []):
        out = _report_process(["--ledger", "ledger.jsonl", *args], work, env=env)
        _clean(out, code=0, ledger_lines=3, found=_lines(ledger))
    assert sorted(p.name for p in work.iterdir()) == ["ledger.jsonl", "r.html"]
    assert list(tmp.iterdir()) == [] and list(home.iterdir()) == []


# --- 7. the ledger writer says what is wrong with a path ----------------------------------------


def _exec(tmp_path: Path, ledger: str) -> tuple[Ran, int]:
    spec = write_spec(tmp_path)
    with canned_server(Canned(reply())) as server:
        started = time.monotonic()
        result = CliRunner().invoke(
            cli,
            ["exec", str(spec), "--var", "who=Ada", "--ledger", ledger],
            env=server_env(server),
        )
        seconds = time.monotonic() - started
        sent = len(server.requests)
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise AssertionError(f"an exception escaped: {result.exception!r}")
    return Ran(result.exit_code, result.stdout, result.stderr, seconds), sent


def _ledger_target(tmp_path: Path, case: str) -> str:
    if case == "under-a-file":
        (tmp_path / "somefile").write_text("x", encoding="utf-8")
        return str(tmp_path / "somefile" / "ledger.jsonl")
    if case == "deep-under-a-file":
        (tmp_path / "somefile").write_text("x", encoding="utf-8")
        return str(tmp_path / "somefile" / "a" / "b" / "ledger.jsonl")
    if case == "fifo":
        return str(_fifo(tmp_path))
    if case == "directory":
        (tmp_path / "dir.jsonl").mkdir()
        return str(tmp_path / "dir.jsonl")
    if case == "dangling-symlink":
        (tmp_path / "link.jsonl").symlink_to("/nonexistent/runner/ledger.jsonl")
        return str(tmp_path / "link.jsonl")
    if case == "nul-byte":
        return str(tmp_path / "a\x00b.jsonl")
    return {
        "proc": "/proc/version",
        "proc-environ": "/proc/self/environ",
        "dev-full": "/dev/full",
        "dev-null": "/dev/null",
        "dev-zero": "/dev/zero",
    }[case]


@pytest.mark.parametrize(
    ("case", "message"),
    [
        ("under-a-file", "somefile is a file, not a directory"),
        ("deep-under-a-file", "somefile is a file, not a directory"),
        ("proc", "not a regular file"),
        ("proc-environ", "not a regular file"),
        ("fifo", "not a regular file"),
        ("dev-full", "not a regular file"),
        ("dev-null", "not a regular file"),
        ("dev-zero", "not a regular file"),
        ("directory", "is a directory"),
        ("dangling-symlink", "a symbolic link to /nonexistent/runner/ledger.jsonl"),
        ("nul-byte", "contains a NUL byte"),
    ],
)
def test_an_unusable_ledger_path_says_why(tmp_path: Path, case: str, message: str) -> None:
    target = _ledger_target(tmp_path, case)
    out, sent = _exec(tmp_path, target)
    mine = target.startswith(str(tmp_path)) and "\x00" not in target
    _clean(out, code=2, ledger_lines=0, found=_lines(Path(target)) if mine else 0)
    assert sent == 0
    assert message in out.stderr, out.stderr
    assert "File exists" not in out.stderr and "No space left" not in out.stderr
    assert "choose another file with --ledger or RUNNER_LEDGER" in out.stderr
    assert "nothing was sent" in out.stderr
    assert not (tmp_path / "somefile").is_dir()


def test_the_python_api_gets_the_same_reasons(tmp_path: Path) -> None:
    (tmp_path / "somefile").write_text("x", encoding="utf-8")
    cases = {
        str(tmp_path / "somefile" / "l.jsonl"): "is a file, not a directory",
        "/proc/version": "not a regular file",
        "/dev/full": "not a regular file",
        str(tmp_path / "a\x00b"): "contains a NUL byte",
    }
    for path, message in cases.items():
        with pytest.raises(LedgerUnavailable, match=message) as info:
            Ledger(path).check_writable()
        assert info.value.exit_code == 2


# --- 8. the batch state file beside the ledger --------------------------------------------------


def test_the_batch_state_file_is_passed_over(tmp_path: Path) -> None:
    from runner.batch.state import record_collected, record_created, record_ended

    runs = tmp_path / "runs"
    runs.mkdir()
    ledger = runs / "ledger.jsonl"
    with Ledger(ledger) as store:
        for i in range(3):
            store.append(record(i, batch_id="batch_1"))
    batch = {"id": "batch_1", "status": "validating", "input_file_id": "file_1"}
    record_created(ledger, batch, ["r1", "r2", "r3"], spec={"path": "s.yaml", "sha256": "x"})
    record_ended(ledger, batch | {"status": "completed", "request_counts": {"total": 3}})
    record_collected(ledger, "batch_1", written=3, skipped=0)
    # runner now keeps it in runs/batches/, out of the glob's reach; one an older runner left
    # beside the ledger is still passed over in silence.
    assert sorted(runs.glob("*.jsonl")) == [ledger]
    state = (runs / "batches" / "state.jsonl").rename(runs / "batches.jsonl")
    assert _lines(state) == 3
    for args in (
        ["--format", "json", "--by", ""],
        ["--sql", "SELECT count(*) AS calls FROM ledger", "--format", "json"],
    ):
        out = _report(["--ledger", str(runs / "*.jsonl"), *args])
        _clean(out, code=0, ledger_lines=6, found=_lines(ledger, state))
        assert out.stderr == ""
        assert json.loads(out.stdout)[0]["calls"] == 3
    only_state = _report(["--ledger", str(state), "--format", "json"])
    _clean(only_state, code=0, ledger_lines=3, found=_lines(state))
    assert json.loads(only_state.stdout) == []
    assert "batch" in only_state.stderr and "Warning" not in only_state.stderr


def test_state_like_lines_with_call_fields_still_count_as_bad(tmp_path: Path) -> None:
    """Only lines shaped like the batch state (an `event`, no `id`) are passed over:
    a broken call line that happens to carry an `event` is still counted as skipped."""
    broken = record(2) | {"event": "created", "usage": {"prompt": "lots"}}
    ledger = write_lines(tmp_path / "l.jsonl", [record(1), broken])
    out = _report(["--ledger", str(ledger), "--format", "json", "--by", ""])
    _clean(out, code=0, ledger_lines=2, found=_lines(ledger))
    assert "1 ledger line skipped" in out.stderr
