"""The HTML page: self-contained (no script, nothing fetched), four titled charts with axes and
legends, sensible empty states, escaped names; and a real headless Chromium opening it."""

from __future__ import annotations

import re
import shutil
import struct
import subprocess
from datetime import datetime
from pathlib import Path

import pytest
from _report_lines import record, sample_records, write_lines

from runner.report import build_report, render_html
from runner.report.svg import Series, bar_chart, hbar_chart, nice_ticks

NOW = datetime(2025, 3, 15, 9, 0)
SVG_NS = "http://www.w3.org/2000/svg"


@pytest.fixture
def page(tmp_path: Path) -> str:
    path = write_lines(tmp_path / "ledger.jsonl", list(sample_records()))
    return render_html(build_report([str(path)], breakdowns=True), now=NOW)


def test_the_page_is_self_contained(page: str) -> None:
    assert page.startswith("<!doctype html>")
    assert "<script" not in page and "<link" not in page and "url(" not in page
    assert "@import" not in page and "<img" not in page
    assert re.findall(r"https?://[^\s\"'<>]+", page) == [SVG_NS] * page.count("<svg")


def test_four_charts_with_titles_axes_and_legends(page: str) -> None:
    svgs = re.findall(r"<svg .*?</svg>", page, flags=re.S)
    assert len(svgs) == 4
    titles = [re.search(r"<title>(.*?)</title>", s).group(1) for s in svgs]  # type: ignore[union-attr]
    assert titles == [
        "Cost per day by model",
        "Tokens per day",
        "Latency by spec (ms)",
        "Error rate by spec",
    ]
    cost = svgs[0]
    assert "Mar 12" in cost and "Mar 14" in cost  # x axis: the days
    assert ">$0<" in cost  # y axis starts at $0
    assert "gpt-4o-mini" in cost and "o3-mini" in cost  # the legend
    assert "2025-03-12 · gpt-4o: $0.00450" in cost  # a bar's tooltip
    assert "p50" in svgs[2] and "p95" in svgs[2]
    assert "33.3%" in svgs[3] and "25.0%" in svgs[3]  # haiku 1 of 3, sentiment 1 of 4


def test_the_page_shows_the_range_the_figures_and_the_table(page: str) -> None:
    assert "12 calls · 2025-03-12 08:00 to 2025-03-14 23:59 UTC" in page
    assert "Generated 2025-03-15 09:00 UTC" in page
    assert '<th class="key">spec</th>' in page
    assert page.count("<tr>") == 1 + 5 + 1  # header, five groups, total


def test_empty_states(tmp_path: Path) -> None:
    path = tmp_path / "empty.jsonl"
    path.write_bytes(b"")
    page = render_html(build_report([str(path)], breakdowns=True), now=NOW)
    assert len(re.findall(r">No calls in this range\.?<", page)) == 5  # four charts, the table
    assert "The ledger is empty" in page
    ok_only = write_lines(tmp_path / "ok.jsonl", [record(1)])
    page = render_html(build_report([str(ok_only)], breakdowns=True), now=NOW)
    assert "No failed calls in this range" in page


def test_mock_only_costs_are_charted_as_estimates(tmp_path: Path) -> None:
    path = write_lines(tmp_path / "l.jsonl", [record(1, mock=True, cost={"estimated": True})])
    page = render_html(build_report([str(path)], breakdowns=True), now=NOW)
    assert "Estimated cost per day by model" in page
    assert "Mock calls only: what the real models would have cost." in page


def test_names_are_escaped(tmp_path: Path) -> None:
    path = write_lines(tmp_path / "l.jsonl", [record(1, spec={"name": "<b>&x"})])
    page = render_html(build_report([str(path)], by=["spec"], breakdowns=True), now=NOW)
    assert "<b>&x" not in page and "&lt;b&gt;&amp;x" in page


@pytest.mark.parametrize(
    ("top", "ticks"),
    [
        (0, [0.0, 1.0]),
        (9, [0.0, 2.0, 4.0, 6.0, 8.0, 10.0]),
        (0.0037, [0.0, 0.001, 0.002, 0.003, 0.004]),
        (1234, [0.0, 250.0, 500.0, 750.0, 1000.0, 1250.0]),
    ],
)
def test_nice_ticks(top: float, ticks: list[float]) -> None:
    assert nice_ticks(top) == ticks


def test_charts_stack_and_scale() -> None:
    svg = bar_chart(
        "t", ["a", "b"], [Series("x", [1, 3], "#111"), Series("y", [1, None], "#222")], fmt=str
    )
    heights = [float(h) for h in re.findall(r'<rect [^>]*height="([\d.]+)"[^>]*><title>', svg)]
    assert heights[0] == heights[1] and heights[2] == pytest.approx(3 * heights[0], abs=0.2)
    bars = hbar_chart("t", ["long name " * 5], [Series("x", [None], "#111")], fmt=str)
    assert "no data" in bars and "…" in bars


# --- in a real browser --------------------------------------------------------------------------

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
needs_chromium = pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed")


def _chromium(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    assert CHROMIUM is not None
    command = [
        CHROMIUM,
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--hide-scrollbars",
        "--no-first-run",
        f"--user-data-dir={tmp_path / 'profile'}",
        "--enable-logging=stderr",
        "--v=0",
        *args,
    ]
    return subprocess.run(command, capture_output=True, text=True, timeout=120)


def _console(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if ":CONSOLE" in line or "Uncaught" in line]


@needs_chromium
def test_console_errors_would_be_seen(tmp_path: Path) -> None:
    """The check below can fail: a page with a broken script shows up in chromium's log."""
    broken = tmp_path / "broken.html"
    broken.write_text("<p>x</p><script>undefinedFunction()</script>", encoding="utf-8")
    proc = _chromium(tmp_path, "--dump-dom", broken.as_uri())
    assert any("Uncaught ReferenceError" in line for line in _console(proc.stderr)), proc.stderr


@needs_chromium
def test_chromium_renders_the_page(tmp_path: Path, page: str) -> None:
    html = tmp_path / "report.html"
    html.write_text(page, encoding="utf-8")
    dom = _chromium(tmp_path, "--dump-dom", html.as_uri())
    assert dom.returncode == 0, dom.stderr
    assert _console(dom.stderr) == []
    svgs = re.findall(r"<svg [^>]*>", dom.stdout)
    assert len(svgs) == 4
    for tag in svgs:
        width = float(re.search(r'width="([\d.]+)"', tag).group(1))  # type: ignore[union-attr]
        height = float(re.search(r'height="([\d.]+)"', tag).group(1))  # type: ignore[union-attr]
        assert width > 0 and height > 0
    shot = tmp_path / "report.png"
    proc = _chromium(tmp_path, f"--screenshot={shot}", "--window-size=1200,1600", html.as_uri())
    assert proc.returncode == 0 and _console(proc.stderr) == [], proc.stderr
    png = shot.read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    assert struct.unpack(">II", png[16:24]) == (1200, 1600)
    assert len(png) > 30_000  # charts and text, not a blank page
