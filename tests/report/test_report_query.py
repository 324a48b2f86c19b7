"""The report's figures over real ledger files: grouping, the cost partition, percentiles, time
ranges, providers, and every kind of line that must be skipped, counted or left out."""

from __future__ import annotations

import ast
import json
from datetime import datetime
from pathlib import Path

import pytest
from _report_lines import record, sample_records, write_lines

from runner.errors import ConfigError
from runner.report import FIGURES, LEDGER_COLUMNS, build_report, run_sql

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def sample(tmp_path: Path) -> str:
    return str(write_lines(tmp_path / "ledger.jsonl", list(sample_records())))


def test_total_figures_of_the_sample(sample: str) -> None:
    report = build_report([sample], by=())
    assert report.groups == [report.total]
    total = report.total
    assert total is not None
    assert (total["calls"], total["ok"], total["errors"]) == (12, 9, 3)
    assert total["error_rate"] == 0.25
    # Known prices, not estimates: calls 1-6, 11 and 12; call 4 cost 0.
    assert total["cost_usd"] == pytest.approx(0.000027 * 5 + 0.0045 + 0.00265, abs=1e-12)
    assert total["estimated_cost_usd"] == pytest.approx(0.00004, abs=1e-12)
    assert (total["unpriced_calls"], total["estimated_calls"]) == (2, 2)
    assert total["cached_tokens"] == 64 + 512
    assert total["ttft_ms_p50"] == 180.0  # the two streamed calls: 150 and 210
    assert total["latency_ms_max"] == 4000.0
    assert (report.lines, report.calls, report.bad_lines, report.newer_lines) == (12, 12, 0, 0)
    assert report.first_ts == datetime(2025, 3, 12, 8, 0)
    assert report.last_ts == datetime(2025, 3, 14, 23, 59, 59, 999000)
    assert report.warnings() == [] and report.notes() == []


def test_groups_have_exactly_the_by_fields_and_the_figures(sample: str) -> None:
    report = build_report([sample], by=["spec", "model"])
    assert [list(g) for g in report.groups] == [["spec", "model", *FIGURES]] * len(report.groups)
    keys = [(g["spec"], g["model"]) for g in report.groups]
    assert keys == sorted(keys)  # ordered by the group fields
    city = {g["model"]: g for g in report.groups if g["spec"] == "city"}
    mini = city["gpt-4o-mini"]
    assert (mini["calls"], mini["errors"]) == (3, 1)
    # quantile_cont interpolates: latencies 700, 900, 4000
    assert (mini["latency_ms_p50"], mini["latency_ms_p95"]) == (900.0, 3690.0)
    haiku = {g["model"]: g for g in report.groups if g["spec"] == "haiku"}
    finetune = haiku["my-finetune"]
    assert finetune["cost_usd"] is None  # no known price: never shown as 0
    assert finetune["unpriced_calls"] == 2
    mock = {g["model"]: g for g in report.groups if g["spec"] == "sentiment"}["gpt-4o-mini"]
    assert mock["cost_usd"] == pytest.approx(0.000054)
    assert mock["estimated_cost_usd"] == pytest.approx(0.00004)


def test_day_is_the_utc_date_and_days_sort_in_order(tmp_path: Path) -> None:
    lines = [
        record(1, ts="2025-03-14T23:59:59.999Z"),
        record(2, ts="2025-03-14T01:00:00.000+02:00"),  # 2025-03-13 23:00 UTC
        record(3, ts="2025-03-01T00:00:00.000Z"),
    ]
    report = build_report([str(write_lines(tmp_path / "l.jsonl", lines))], by=["day"])
    assert [(g["day"], g["calls"]) for g in report.groups] == [
        ("2025-03-01", 1),
        ("2025-03-13", 1),
        ("2025-03-14", 1),
    ]


def test_provider_comes_from_mock_or_an_optional_field(tmp_path: Path) -> None:
    lines = [
        record(1, mock=True, cost={"estimated": True}),
        record(2, provider="https://API.example.com:8443/v1"),
        record(3, provider="llm.internal"),
        record(4),
        record(5, provider=42),  # not a string: ignored, as unknown
    ]
    report = build_report([str(write_lines(tmp_path / "l.jsonl", lines))], by=["provider"])
    assert [(g["provider"], g["calls"]) for g in report.groups] == [
        ("api.example.com", 1),
        ("llm.internal", 1),
        ("mock", 1),
        (None, 2),
    ]
    assert report.bad_lines == 0


def test_status_case_and_commit_groups(sample: str) -> None:
    by_status = build_report([sample], by=["status"]).groups
    assert [(g["status"], g["calls"]) for g in by_status] == [
        ("error", 2),
        ("invalid_output", 1),
        ("ok", 9),
    ]
    by_case = build_report([sample], by=["case"]).groups
    assert [(g["case"], g["calls"]) for g in by_case] == [
        ("negative", 1),
        ("positive", 1),
        (None, 10),
    ]
    by_commit = build_report([sample], by=["commit"]).groups
    assert [g["calls"] for g in by_commit] == [3, 9]


def test_since_and_until_keep_the_range_and_count_the_rest(sample: str) -> None:
    report = build_report(
        [sample], by=["day"], since=datetime(2025, 3, 13), until=datetime(2025, 3, 14)
    )
    assert [g["day"] for g in report.groups] == ["2025-03-13"]
    assert (report.calls, report.outside, report.lines) == (4, 8, 12)
    empty = build_report([sample], since=datetime(2030, 1, 1))
    assert empty.groups == [] and empty.total is None
    assert empty.notes() == ["no call in the time range (12 outside it)"]


def test_since_after_until_is_refused(sample: str) -> None:
    with pytest.raises(ConfigError, match="earlier"):
        build_report([sample], since=datetime(2025, 3, 14), until=datetime(2025, 3, 13))


BAD_LINES = [
    '{"v":1,"ts":"2025-03-14T09:26:53.589Z"',  # not JSON
    "[1, 2, 3]",  # not an object
    "null",
    json.dumps(record(90) | {"usage": {"prompt": "lots", "completion": 1, "cached": 0}}),
    json.dumps(record(91) | {"usage": "many"}),
    json.dumps(record(92) | {"ts": "yesterday"}),
    json.dumps(record(93) | {"cost": {"usd": "free", "source": "x", "estimated": False}}),
    json.dumps(record(94) | {"ttft_ms": "fast"}),
    json.dumps(record(95) | {"v": "1"}),
    json.dumps({k: v for k, v in record(96).items() if k != "v"}),
    json.dumps({k: v for k, v in record(97).items() if k != "latency_ms"}),
    json.dumps(record(98) | {"mock": "yes"}),
    json.dumps(record(99) | {"usage": {"prompt": "12", "completion": 1, "cached": 0}}),
    json.dumps(record(100) | {"usage": {"prompt": 1.5, "completion": 1, "cached": 0}}),
    json.dumps(record(101) | {"latency_ms": "800"}),
    json.dumps(record(102) | {"cost": {"usd": 0.1, "source": "x", "estimated": "false"}}),
    json.dumps(record(103) | {"v": 1.0}),
]


@pytest.mark.parametrize("line", BAD_LINES, ids=range(len(BAD_LINES)))
def test_a_bad_line_is_counted_and_skipped(tmp_path: Path, line: str) -> None:
    path = write_lines(tmp_path / "l.jsonl", [record(1), line, record(2)])
    report = build_report([str(path)], by=())
    assert (report.calls, report.bad_lines, report.lines) == (2, 1, 3)
    assert report.warnings() == ["1 ledger line skipped: not JSON, or a field missing or wrong"]


def test_undecodable_and_blank_lines(tmp_path: Path) -> None:
    lines = [record(1), b"\xff\xfe{garbage\n", b"\n", b"   \n", record(2), b"a\x1eb\n"]
    report = build_report([str(write_lines(tmp_path / "l.jsonl", lines))], by=())
    assert (report.calls, report.bad_lines, report.lines) == (2, 2, 4)


def test_crlf_and_long_lines_are_read(tmp_path: Path) -> None:
    big = record(2, messages=[{"role": "user", "content": "x" * 3_000_000}])
    lines = [json.dumps(record(1)).encode() + b"\r\n", big]
    report = build_report([str(write_lines(tmp_path / "l.jsonl", lines))], by=())
    assert (report.calls, report.bad_lines) == (2, 0)


def test_a_torn_last_line_is_named(tmp_path: Path) -> None:
    path = write_lines(tmp_path / "l.jsonl", [record(1), json.dumps(record(2))[:57].encode()])
    report = build_report([str(path)], by=())
    assert (report.calls, report.bad_lines) == (1, 1)
    assert report.torn_files == (str(path),)
    assert report.warnings() == [
        "1 ledger line skipped: not JSON, or a field missing or wrong; the last line of "
        f"{path} is incomplete (a write was interrupted?)"
    ]


def test_a_last_line_without_newline_that_parses_is_not_torn(tmp_path: Path) -> None:
    path = write_lines(tmp_path / "l.jsonl", [record(1), json.dumps(record(2)).encode()])
    report = build_report([str(path)], by=())
    assert (report.calls, report.bad_lines, report.torn_files) == (2, 0, ())


def test_newer_lines_are_counted_not_read(tmp_path: Path) -> None:
    newer = record(2) | {"v": 3, "usage": {"prompt": {"text": 5}}}  # a shape we cannot know
    lines = [record(1), newer, record(3) | {"v": 2}]
    report = build_report([str(write_lines(tmp_path / "l.jsonl", lines))], by=())
    assert (report.calls, report.newer_lines, report.newest_version, report.bad_lines) == (
        1,
        2,
        3,
        0,
    )
    assert report.warnings() == [
        "2 ledger lines written by a newer runner (ledger format v3; this runner reads v1) "
        "not counted: upgrade runner to include them"
    ]


def test_an_empty_ledger_is_said_plainly(tmp_path: Path) -> None:
    path = tmp_path / "empty.jsonl"
    path.write_bytes(b"")
    report = build_report([str(path)])
    assert (report.groups, report.total, report.lines) == ([], None, 0)
    assert report.notes() == [f"the ledger is empty ({path}): no calls to report"]


def test_several_ledgers_add_up(tmp_path: Path) -> None:
    a = write_lines(tmp_path / "a.jsonl", [record(1), record(2)])
    b = write_lines(tmp_path / "b.jsonl", [record(3, model="gpt-4o")])
    report = build_report([str(a), str(b)], by=["model"])
    assert [(g["model"], g["calls"]) for g in report.groups] == [("gpt-4o", 1), ("gpt-4o-mini", 2)]
    assert report.files == (str(a), str(b))


@pytest.mark.parametrize("by", [["model", "day"], ["spec"], ["day"], []])
def test_breakdowns_do_not_change_the_groups(sample: str, by: list[str]) -> None:
    """The chart groupings share the scan (and sometimes a grouping) with --by."""
    plain = build_report([sample], by=by)
    both = build_report([sample], by=by, breakdowns=True)
    assert both.groups == plain.groups and both.total == plain.total
    assert both.breakdowns["spec"] == build_report([sample], by=["spec"]).groups


def test_breakdowns_for_the_charts(sample: str) -> None:
    report = build_report([sample], by=["status"], breakdowns=True)
    assert set(report.breakdowns) == {"day,model", "spec", "day"}
    assert [g["day"] for g in report.breakdowns["day"]] == [
        "2025-03-12",
        "2025-03-13",
        "2025-03-14",
    ]
    assert sum(g["calls"] for g in report.breakdowns["day,model"]) == 12


def test_sql_over_the_ledger_view(sample: str) -> None:
    result = run_sql([sample], "SELECT * FROM ledger LIMIT 0")
    assert tuple(result.columns) == LEDGER_COLUMNS
    result = run_sql(
        [sample],
        "SELECT spec_name, count(*) AS n, sum(attempts) AS tries FROM ledger "
        'WHERE "case" IS NULL GROUP BY ALL ORDER BY n DESC, spec_name',
    )
    assert result.columns == ["spec_name", "n", "tries"]
    assert result.rows == [("city", 5, 7), ("haiku", 3, 5), ("sentiment", 2, 2)]
    assert result.calls == 12


def test_sql_sees_only_the_time_range(sample: str) -> None:
    result = run_sql([sample], "SELECT count(*) FROM ledger", since=datetime(2025, 3, 14))
    assert result.rows == [(4,)]


def test_a_sql_error_carries_the_engines_message(sample: str) -> None:
    with pytest.raises(ConfigError, match=r'^--sql: Parser Error: syntax error at or near "SELEC"'):
        run_sql([sample], "SELEC 1")
    with pytest.raises(ConfigError, match="nope"):
        run_sql([sample], "SELECT nope FROM ledger")


def test_only_query_imports_duckdb() -> None:
    importers = []
    for path in sorted((ROOT / "runner").rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            names = []
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
                names = [node.module]
            if any(n.split(".")[0] == "duckdb" for n in names):
                importers.append(path.relative_to(ROOT).as_posix())
    assert importers == ["runner/report/query.py"]


def test_the_engine_stays_quiet_and_offline(tmp_path: Path) -> None:
    """No progress bar on stderr (DuckDB draws one for queries over 2 s, even in a CI log), no
    extension downloaded, times in UTC."""
    from runner.report.query import _connect

    con = _connect(str(tmp_path))
    try:
        settings = con.execute(
            "SELECT current_setting('enable_progress_bar'), "
            "current_setting('autoinstall_known_extensions'), current_setting('TimeZone')"
        ).fetchone()
    finally:
        con.close()
    assert settings == (False, False, "UTC")
