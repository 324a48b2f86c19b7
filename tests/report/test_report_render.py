"""The report as text, JSON, CSV and Markdown, compared exactly with golden files
(tests/data/golden/report-*; refresh with `pytest --update-golden` and review the diff)."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import pytest
from _report_lines import check_golden, record, sample_records, write_lines

from runner.report import (
    EMPTY,
    FIGURES,
    build_report,
    render_csv,
    render_json,
    render_markdown,
    render_text,
    run_sql,
)
from runner.report.render import _HUMAN, format_money


@pytest.fixture
def sample(tmp_path: Path) -> str:
    # A fixed name: the ledger path is part of the rendered summary line.
    path = write_lines(tmp_path / "ledger.jsonl", list(sample_records()))
    return path.relative_to(tmp_path).as_posix()  # the tests run in tmp_path


def test_json_golden(sample: str, update_golden: bool) -> None:
    report = build_report([sample], by=["spec", "model"])
    text = render_json(report)
    assert [list(g) for g in json.loads(text)] == [["spec", "model", *FIGURES]] * 5
    check_golden("report-spec-model.json", text, update_golden)


def test_csv_golden(sample: str, update_golden: bool) -> None:
    text = render_csv(build_report([sample], by=["day", "status"]))
    rows = list(csv.reader(io.StringIO(text)))
    assert rows[0] == ["day", "status", *FIGURES]
    check_golden("report-day-status.csv", text, update_golden)


def test_markdown_golden(sample: str, update_golden: bool) -> None:
    check_golden(
        "report-provider.md",
        render_markdown(build_report([sample], by=["provider"])),
        update_golden,
    )


def test_text_golden(sample: str, update_golden: bool) -> None:
    text = render_text(build_report([sample], by=["spec", "case", "commit"]))
    check_golden("report-spec-case-commit.txt", text, update_golden)


def test_text_without_groups_is_one_row_and_no_total(sample: str) -> None:
    lines = render_text(build_report([sample], by=())).splitlines()
    assert lines[0].split()[:2] == ["calls", "errors"]
    assert lines[2].split()[:2] == ["12", "3"]
    assert "total" not in render_text(build_report([sample], by=()))


def test_columns_empty_everywhere_are_hidden(tmp_path: Path) -> None:
    from _report_lines import record

    path = write_lines(tmp_path / "l.jsonl", [record(1), record(2)])
    header = render_text(build_report([str(path)])).splitlines()[0].split()
    assert "unpriced" not in header and "est." not in header and "ttft" not in header
    assert "cost" in header and "cached" not in header


def test_every_figure_but_ok_has_a_human_column() -> None:
    assert {c[0] for c in _HUMAN} | {"ok"} == set(FIGURES)


def test_empty_reports(tmp_path: Path) -> None:
    path = tmp_path / "empty.jsonl"
    path.write_bytes(b"")
    report = build_report([str(path)], by=["spec"])
    assert render_json(report) == "[]\n"
    assert render_csv(report) == "spec," + ",".join(FIGURES) + "\n"
    assert render_text(report) == EMPTY + "\n"
    assert render_markdown(report) == f"_{EMPTY}_\n"


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (None, "—"),
        (0.0, "$0"),
        (1234.5, "$1,234.50"),
        (0.5, "$0.500"),
        (0.0123, "$0.0123"),
        (0.000124, "$0.000124"),
        (0.0000002, "$0.000000200"),
    ],
)
def test_money(value: float | None, text: str) -> None:
    assert format_money(value) == text


def test_sql_results_render_in_every_format(sample: str) -> None:
    result = run_sql(
        [sample],
        "SELECT model, count(*) AS calls, sum(cost_usd) AS usd, min(day) AS first "
        "FROM ledger GROUP BY model ORDER BY model",
    )
    assert json.loads(render_json(result))[0] == {
        "model": "gpt-4o",
        "calls": 2,
        "usd": 0.00715,
        "first": "2025-03-12",
    }
    assert render_csv(result).splitlines()[:2] == [
        "model,calls,usd,first",
        "gpt-4o,2,0.00715,2025-03-12",
    ]
    text = render_text(result).splitlines()
    assert text[0].split() == ["model", "calls", "usd", "first"]
    assert text[-1].split() == ["o3-mini", "1", "0.000027", "2025-03-14"]
    assert render_markdown(result).splitlines()[1] == "|---|---:|---:|---|"


def test_markdown_escapes_pipes(tmp_path: Path) -> None:
    from _report_lines import record

    path = write_lines(tmp_path / "l.jsonl", [record(1, spec={"name": "a|b"})])
    assert "| a\\|b |" in render_markdown(build_report([str(path)], by=["spec"]))


def test_replayed_calls_golden(tmp_path: Path, update_golden: bool) -> None:
    """Replayed calls (runner test --replay) are a column of their own in the human tables and
    a figure in JSON and CSV: in no other figure, not in the total's calls or cost."""
    replayed = [
        record(
            20 + i, ts="2025-03-12T12:00:00.000Z", replayed={"from": "base.jsonl", "id": f"r{i}"}
        )
        for i in range(3)
    ]
    path = write_lines(tmp_path / "ledger.jsonl", [*sample_records()[:3], *replayed])
    report = build_report([path.name], by=["spec", "model"])
    assert [(g["model"], g["calls"], g["replayed"]) for g in report.groups] == [
        ("gpt-4o", 1, 0),
        ("gpt-4o-mini", 2, 3),
    ]
    assert report.total is not None and report.total["calls"] == 3
    check_golden("report-replayed.md", render_markdown(report), update_golden)
    check_golden("report-replayed.csv", render_csv(report), update_golden)


def test_fit_table_drops_in_order_then_cuts_names() -> None:
    from runner.report import DROP_ORDER, HumanTable, fit_table

    headers = ["spec", "calls", "ttft p50 ms", "max ms", "p50 ms"]
    table = HumanTable(headers, [["long-spec-name", "1", "5", "9", "7"]], [False] + [True] * 4)
    assert fit_table(table, None).table is table
    full = sum(max(len(h), len(c)) for h, c in zip(headers, table.rows[0], strict=True)) + 8
    assert fit_table(table, full).dropped == []
    fitted = fit_table(table, full - 1)
    assert fitted.dropped == ["ttft p50 ms"] and not fitted.shortened
    fitted = fit_table(table, 30)
    assert fitted.dropped == [h for h in DROP_ORDER if h in ("ttft p50 ms", "max ms")]
    assert fitted.table.headers == ["spec", "calls", "p50 ms"]
    narrow = fit_table(table, 20)
    assert narrow.shortened
    assert len(narrow.table.rows[0][0]) >= 8 and narrow.table.rows[0][0].endswith("…")
    assert "left out ttft p50 ms, max ms and cut long names short" in (narrow.note(20) or "")
