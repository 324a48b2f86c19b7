"""The HTML page: self-contained (one inline script, nothing fetched), four titled charts with
axes and a legend key for every series, sensible empty states, escaped names, the latest calls;
and a real headless Chromium opening it: at 1200 and at 420 px, its filters and its calls."""

from __future__ import annotations

import html
import json
import re
import shutil
import struct
import subprocess
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from _report_lines import record, sample_records, write_lines

from runner.ledger.recent import latest_calls
from runner.report import build_report, render_html
from runner.report.svg import PALETTE, Series, bar_chart, hbar_chart, nice_ticks

NOW = datetime(2025, 3, 15, 9, 0)
SVG_NS = "http://www.w3.org/2000/svg"


@pytest.fixture
def page(tmp_path: Path) -> str:
    path = write_lines(tmp_path / "ledger.jsonl", list(sample_records()))
    return render_html(build_report([str(path)], breakdowns=True), now=NOW)


MODELS = [f"model-{name}-2025-01-01-preview" for name in "abcdefghi"]  # 9: drawn as 7 + other
LONG_SPEC = "a-spec-whose-name-is-long-enough-to-widen-any-table-" * 2


def _busy_records() -> list[dict[str, Any]]:
    """Calls of nine models over three days, two specs, some failed, some with content."""
    out = []
    for i in range(45):
        content = i % 3 != 2
        rec = record(
            i,
            ts=f"2025-03-{12 + i % 3}T09:{i:02d}:00.000Z",
            model=MODELS[i % 9],
            spec={"name": "city" if i % 2 else LONG_SPEC},
            case=f"case-{i}",
            cost={"usd": 0.001 * (1 + i % 9)},
            messages=[{"role": "user", "content": f"Tell me about city {i}."}] if content else None,
            output={"text": f"City {i} <b>answer</b>", "json": None} if content else None,
        )
        if i % 5 == 4:
            rec |= {"status": "error", "error": {"kind": "rate_limit", "message": "slow down"}}
        out.append(rec)
    return out


@pytest.fixture
def busy_page(tmp_path: Path) -> str:
    path = write_lines(tmp_path / "busy.jsonl", _busy_records())
    by = ["spec", "model", "day", "status", "case", "commit"]
    report = build_report([str(path)], by=by, breakdowns=True)
    return render_html(report, now=NOW, calls=latest_calls([path], limit=30), calls_limit=30)


def _self_contained(page: str) -> None:
    assert page.startswith("<!doctype html>")
    assert "<link" not in page and "url(" not in page and "<iframe" not in page
    assert "@import" not in page and "<img" not in page
    assert re.findall(r"https?://[^\s\"'<>]+", page) == [SVG_NS] * page.count("<svg")
    assert not re.search(r"\b(src|href)\s*=", page), "nothing is fetched or linked"
    for forbidden in ("fetch(", "XMLHttpRequest", "import(", "WebSocket", "eval("):
        assert forbidden not in page


def test_the_page_is_self_contained(page: str, busy_page: str) -> None:
    _self_contained(page)
    assert "<script" not in page  # no calls given: no section, no script
    _self_contained(busy_page)
    assert busy_page.count("<script") == 1 and "<script>" in busy_page  # inline, small
    script = busy_page.split("<script>")[1].split("</script>")[0]
    assert len(script) < 2000


def test_every_series_drawn_has_a_key(busy_page: str) -> None:
    """Nine models: seven and "other", eight series, eight keys (the legend wraps to rows)."""
    cost = re.findall(r"<svg .*?</svg>", busy_page, flags=re.S)[0]
    keys = re.findall(r'<g class="key"><title>(.*?)</title>', cost)
    assert keys == [*sorted(MODELS, key=lambda m: -(1 + MODELS.index(m)))[:7], "other"]
    drawn = set(re.findall(r'<rect [^>]*fill="(#[0-9a-f]{6})"[^>]*><title>', cost))
    assert len(drawn) == len(keys) == 8


def test_a_legend_wraps_into_rows_and_moves_the_plot_down() -> None:
    names = [f"series number {i} with a long name" for i in range(8)]
    series = [Series(n, [1.0], PALETTE[i]) for i, n in enumerate(names)]
    svg = bar_chart("t", ["a"], series, fmt=str)
    assert re.findall(r'<g class="key"><title>(.*?)</title>', svg) == names
    rows = sorted(
        {
            float(y)
            for y in re.findall(
                r'<g class="key"><title>.*?</title><rect x="[\d.]+" y="([\d.]+)"', svg
            )
        }
    )
    assert len(rows) >= 3  # fmt: skip
    height = int(re.search(r'<svg [^>]*height="(\d+)"', svg).group(1))  # type: ignore[union-attr]
    assert height > 300  # the plot keeps its height below the legend
    lone = bar_chart("t", ["a"], [Series("x" * 200, [1.0], "#111")], fmt=str)
    assert "…" in lone and "x" * 200 in lone  # cut in the key, whole in its tooltip


def test_the_latest_calls_section(busy_page: str) -> None:
    section = busy_page.split('id="calls"')[1].split("</section>")[0]
    calls = re.findall(r'<details class="call" data-spec="([^"]*)" data-model="([^"]*)" '
                       r'data-status="([^"]*)">', section)  # fmt: skip
    assert len(calls) == 30
    assert calls[0][1] == MODELS[44 % 9]  # newest first
    for key, values in (("spec", {"city", LONG_SPEC}), ("status", {"ok", "error"})):
        select = rf'<select data-filter="{key}"><option value="">all</option>(.*?)</select>'
        options = re.findall(select, section)
        assert set(re.findall(r'<option value="([^"]*)">', options[0])) == values
    assert "City 43 &lt;b&gt;answer&lt;/b&gt;" in section  # the reply, escaped
    assert "Tell me about city 43." in section
    assert "Content was not recorded for this call." in section  # every third call
    assert "rate_limit" in section and "slow down" in section


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


# What the browser sees, measured by a script added to a copy of the page: it runs after the
# page's own, then writes its findings into the DOM that --dump-dom prints. The page is shown
# in a frame of the width under test (a headless window is never narrower than 500 px).
PROBE = """<script>
(() => {
  const r = {};
  const root = document.documentElement;
  r.viewport = window.innerWidth;
  r.pageOverflow = root.scrollWidth - root.clientWidth;
  const wrap = document.querySelector(".table-wrap");
  r.tableScrolls = wrap.scrollWidth > wrap.clientWidth;
  r.tableOverflowX = getComputedStyle(wrap).overflowX;
  const card = wrap.closest(".card").getBoundingClientRect();
  r.tableInsideCard = wrap.getBoundingClientRect().right <= card.right + 0.5;
  r.charts = [...document.querySelectorAll("svg")].map((svg) => {
    const keys = [...svg.querySelectorAll(".legend .key")];
    const bars = [...svg.querySelectorAll("rect")].filter((b) => b.querySelector("title"));
    const width = svg.viewBox.baseVal.width;
    return {
      keys: keys.length,
      series: new Set(bars.map((b) => b.getAttribute("fill"))).size,
      keysInside: keys.every((k) => { const b = k.getBBox(); return b.x + b.width <= width + 1; }),
      shownWidth: svg.getBoundingClientRect().width,
    };
  });
  r.smallestFont = Math.min(...[...document.querySelectorAll("main p, main td, summary")]
    .map((e) => parseFloat(getComputedStyle(e).fontSize)));
  const section = document.getElementById("calls");
  const visible = () => [...section.querySelectorAll("details.call")]
    .filter((d) => d.offsetParent !== null).length;
  const pick = (key, value) => {
    const select = section.querySelector(`select[data-filter="${key}"]`);
    select.value = value;
    select.dispatchEvent(new Event("change"));
  };
  r.callsAll = visible();
  pick("model", "MODEL");
  r.callsModel = visible();
  pick("status", "error");
  r.callsModelError = visible();
  r.shownText = section.querySelector(".calls-shown").textContent;
  pick("model", "");
  pick("status", "");
  pick("spec", "city");
  r.callsSpec = visible();
  const call = [...section.querySelectorAll("details.call")]
    .find((d) => d.offsetParent !== null && d.querySelector(".reply"));
  const reply = call.querySelector(".reply");
  r.replyHiddenBefore = !reply.checkVisibility();
  call.open = true;
  r.replyShownAfter = reply.checkVisibility() && reply.offsetHeight > 0;
  r.replyText = reply.textContent;
  const out = document.createElement("pre");
  out.id = "probe";
  out.textContent = JSON.stringify(r);
  parent.document.body.appendChild(out);
})();
</script>"""


def _probe(tmp_path: Path, page: str, width: int, model: str) -> dict[str, Any]:
    probed = page.replace("</body>", PROBE.replace("MODEL", model) + "</body>")
    frame = tmp_path / f"probe-{width}.html"
    frame.write_text(
        '<!doctype html><body style="margin:0"><iframe style="border:0" width="'
        f'{width}" height="900" srcdoc="{html.escape(probed)}"></iframe></body>',
        encoding="utf-8",
    )
    proc = _chromium(tmp_path, "--window-size=1300,1000", "--dump-dom", frame.as_uri())
    assert proc.returncode == 0 and _console(proc.stderr) == [], proc.stderr
    found = re.search(r'<pre id="probe">(.*?)</pre>', proc.stdout, flags=re.S)
    assert found is not None, proc.stdout[-2000:]
    return dict(json.loads(html.unescape(found.group(1))))


@needs_chromium
@pytest.mark.parametrize("width", [1200, 420])
def test_in_the_browser_keys_table_width_and_calls(
    tmp_path: Path, busy_page: str, width: int
) -> None:
    records = _busy_records()[-30:]  # the calls the page lists
    model = MODELS[8]  # four of the thirty calls, one of them failed
    r = _probe(tmp_path, busy_page, width, model)
    assert r["viewport"] == width
    assert r["pageOverflow"] <= 0, r  # the page itself never scrolls sideways
    assert r["tableOverflowX"] == "auto" and r["tableScrolls"] and r["tableInsideCard"], r
    assert len(r["charts"]) == 4
    for chart in r["charts"]:
        assert chart["keys"] == chart["series"] or (chart["series"] == 1 and chart["keys"] == 0)
        assert chart["keysInside"] and chart["shownWidth"] <= width, r
    assert r["charts"][0]["keys"] == 8, r
    assert r["smallestFont"] >= 11, r  # legible
    assert r["callsAll"] == 30
    assert r["callsModel"] == sum(1 for c in records if c["model"] == model)
    errors = sum(1 for c in records if c["model"] == model and c["status"] == "error")
    assert errors == 1 and r["callsModel"] == 4
    assert r["callsModelError"] == errors and r["shownText"] == f"{errors} of 30 calls shown"
    assert r["callsSpec"] == sum(1 for c in records if c["spec"]["name"] == "city")
    assert r["replyHiddenBefore"] and r["replyShownAfter"], json.dumps(r)
    assert re.fullmatch(r"City \d+ <b>answer</b>", r["replyText"]), r
