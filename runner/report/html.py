"""The report as one self-contained HTML page: headline figures, four inline SVG charts (cost per
day by model, tokens per day, latency and error rate per spec), the table of groups (it scrolls
inside its card when wide), the latest calls (`calls.py`) and the time range. One small inline
script (the calls' filters); nothing fetched from anywhere: it opens offline. Legible from a
phone's width up (420 px)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, date, datetime, timedelta
from html import escape
from typing import Any

from runner._version import __version__
from runner.report.calls import SCRIPT, calls_section
from runner.report.model import Report
from runner.report.render import compact, describe_range, format_money, human_table, money_tick
from runner.report.svg import PALETTE, Series, bar_chart, empty_chart, hbar_chart

__all__ = ["CALLS", "render_html"]

CALLS = 100  # the latest calls the page lists, by default

MAX_MODELS = 7  # more models than this: the rest are drawn as one "other" series
MAX_SPECS = 15
NO_CALLS = "No calls in this range"


def _days(rows: Sequence[dict[str, Any]]) -> list[date]:
    found = sorted(date.fromisoformat(r["day"]) for r in rows if r.get("day"))
    if not found:
        return []
    span = (found[-1] - found[0]).days
    return [found[0] + timedelta(days=i) for i in range(span + 1)]


def _day_label(day: date, days: Sequence[date]) -> str:
    return day.strftime("%b %d" if days[0].year == days[-1].year else "%Y-%m-%d")


def _cost_chart(report: Report) -> tuple[str, str]:
    rows = report.breakdowns.get("day,model", [])
    days = _days(rows)
    title = "Cost per day by model"
    if not days:
        return empty_chart(title, NO_CALLS), ""
    real = any(r["cost_usd"] for r in rows)
    key = "cost_usd" if real else "estimated_cost_usd"
    if not real and not any(r[key] for r in rows):
        return empty_chart(title, "No call in this range has a known price"), ""
    note = ""
    if not real:
        title = "Estimated cost per day by model"
        note = "Mock calls only: what the real models would have cost."
    elif any(r["estimated_cost_usd"] for r in rows):
        note = "Mock calls' estimated costs are left out."
    totals: dict[str, float] = {}
    for r in rows:
        totals[r["model"] or "(none)"] = totals.get(r["model"] or "(none)", 0.0) + (r[key] or 0)
    ranked = sorted((m for m in totals if totals[m] > 0), key=lambda m: (-totals[m], m))
    kept = ranked if len(ranked) <= MAX_MODELS + 1 else ranked[:MAX_MODELS]
    names = kept + (["other"] if len(ranked) > len(kept) else [])
    index = {day: i for i, day in enumerate(days)}
    values = {name: [0.0] * len(days) for name in names}
    for r in rows:
        model = r["model"] or "(none)"
        if not r[key]:
            continue
        name = model if model in kept else "other"
        values[name][index[date.fromisoformat(r["day"])]] += r[key] or 0
    series = [Series(n, values[n], PALETTE[i % len(PALETTE)]) for i, n in enumerate(names)]
    labels = [_day_label(d, days) for d in days]
    tips = [d.isoformat() for d in days]
    chart = bar_chart(title, labels, series, fmt=money_tick, tips=tips, tip_fmt=format_money)
    return chart, note


def _tokens_chart(report: Report) -> str:
    rows = report.breakdowns.get("day", [])
    days = _days(rows)
    title = "Tokens per day"
    if not days:
        return empty_chart(title, NO_CALLS)
    index = {day: i for i, day in enumerate(days)}
    cached, prompt, completion = ([0.0] * len(days) for _ in range(3))
    for r in rows:
        i = index[date.fromisoformat(r["day"])]
        cached[i] = r["cached_tokens"]
        prompt[i] = r["prompt_tokens"] - r["cached_tokens"]
        completion[i] = r["completion_tokens"]
    series = [Series("prompt", prompt, PALETTE[0]), Series("completion", completion, PALETTE[1])]
    if any(cached):
        series.insert(0, Series("prompt, cached", cached, "#a0cbe8"))
    labels = [_day_label(d, days) for d in days]
    tips = [d.isoformat() for d in days]
    return bar_chart(title, labels, series, fmt=compact, tips=tips, tip_fmt=lambda v: f"{v:,.0f}")


def _by_spec(report: Report, key: str) -> tuple[list[dict[str, Any]], str]:
    rows = sorted(
        report.breakdowns.get("spec", []), key=lambda r: (-(r[key] or 0), r["spec"] or "")
    )
    more = len(rows) - MAX_SPECS
    return rows[:MAX_SPECS], f"and {more} more specs (see the table)" if more > 0 else ""


def _latency_chart(report: Report) -> str:
    title = "Latency by spec (ms)"
    rows, note = _by_spec(report, "latency_ms_p95")
    if not rows:
        return empty_chart(title, NO_CALLS)
    labels = [r["spec"] or "(none)" for r in rows]
    series = [
        Series("p50", [r["latency_ms_p50"] for r in rows], PALETTE[0]),
        Series("p95", [r["latency_ms_p95"] for r in rows], PALETTE[1]),
    ]
    return hbar_chart(title, labels, series, fmt=lambda v: f"{v:,.0f}", note=note)


def _error_chart(report: Report) -> str:
    title = "Error rate by spec"
    rows, note = _by_spec(report, "error_rate")
    if not rows:
        return empty_chart(title, NO_CALLS)
    if not any(r["errors"] for r in rows):
        return empty_chart(title, "No failed calls in this range")
    labels = [r["spec"] or "(none)" for r in rows]
    rates = [Series("error rate", [r["error_rate"] for r in rows], PALETTE[3])]
    return hbar_chart(title, labels, rates, fmt=lambda v: f"{v * 100:.1f}%", note=note)


def _card(label: str, value: str, sub: str) -> str:
    return (
        f'<div class="kpi"><div class="label">{escape(label)}</div>'
        f'<div class="value">{escape(value)}</div><div class="sub">{escape(sub)}</div></div>'
    )


def _ms(value: float | None) -> str:
    return "—" if value is None else f"{value:,.0f} ms"


def _kpis(report: Report) -> str:
    t = report.total
    if t is None:
        return ""
    cost_sub = []
    if t["estimated_calls"]:
        cost_sub.append(f"+ {format_money(t['estimated_cost_usd'])} estimated (mock)")
    if t["unpriced_calls"]:
        cost_sub.append(f"{t['unpriced_calls']:,} calls without a price")
    tokens = t["prompt_tokens"] + t["completion_tokens"]
    ttft = f" · TTFT p50 {t['ttft_ms_p50']:,.0f} ms" if t["ttft_ms_p50"] is not None else ""
    calls_sub = f"{t['ok']:,} ok · {t['errors']:,} failed"
    if t["replayed"]:  # answered from a recorded ledger: not calls, not spend
        calls_sub += f" · {t['replayed']:,} replayed, not counted"
    rate = "—" if t["error_rate"] is None else f"{t['error_rate'] * 100:.1f}%"
    cards = [
        _card("Calls", f"{t['calls']:,}", calls_sub),
        _card("Error rate", rate, f"{t['errors']:,} of {t['calls']:,}"),
        _card("Cost", format_money(t["cost_usd"]), " · ".join(cost_sub) or "known prices"),
        _card(
            "Tokens",
            compact(tokens),
            f"prompt {compact(t['prompt_tokens'])} · completion "
            f"{compact(t['completion_tokens'])} · cached {compact(t['cached_tokens'])}",
        ),
        _card(
            "Latency p50",
            _ms(t["latency_ms_p50"]),
            f"p95 {_ms(t['latency_ms_p95'])} · max {_ms(t['latency_ms_max'])}{ttft}",
        ),
    ]
    return f'<section class="kpis">{"".join(cards)}</section>'


def _table(report: Report) -> str:
    """The groups as the text table has them, token counts shortened (exact on hover)."""
    if not report.groups:
        return f'<p class="empty">{NO_CALLS}.</p>'
    cells = human_table(report)
    short = {i for i, h in enumerate(cells.headers) if h.endswith(" tok")}

    def cell(i: int, value: str, tag: str) -> str:
        kind = "num" if cells.numeric[i] else "key"
        if tag == "td" and i in short and value.replace(",", "").isdigit():
            shown = compact(int(value.replace(",", "")))
            return f'<td class="{kind}" title="{escape(value)}">{shown}</td>'
        return f'<{tag} class="{kind}">{escape(value)}</{tag}>'

    def row(values: list[str], tag: str = "td") -> str:
        return "<tr>" + "".join(cell(i, v, tag) for i, v in enumerate(values)) + "</tr>"

    foot = f"<tfoot>{row(cells.total)}</tfoot>" if cells.total else ""
    body = "".join(row(r) for r in cells.rows)
    return (
        f'<div class="table-wrap"><table><thead>{row(cells.headers, "th")}</thead>'
        f"<tbody>{body}</tbody>{foot}</table></div>"
    )


def _sentence(text: str) -> str:
    return text[:1].upper() + text[1:] + ("" if text.endswith(".") else ".")


def _chart_card(svg: str, note: str = "") -> str:
    caption = f'<p class="note">{escape(note)}</p>' if note else ""
    return f'<figure class="card chart">{svg}{caption}</figure>'


def render_html(
    report: Report,
    *,
    now: datetime | None = None,
    calls: Sequence[dict[str, Any]] | None = None,
    calls_limit: int = CALLS,
) -> str:
    """The whole page. Pass a Report built with `breakdowns=True`, or the charts are empty;
    `calls`, the latest ledger lines newest first (at most `calls_limit`), for the per-call
    section, which is left out when they are None or `calls_limit` is 0."""
    latest = "" if calls is None else calls_section(calls, limit=calls_limit)
    script = f"<script>{SCRIPT}</script>" if "details" in latest else ""
    generated = (now or datetime.now(UTC)).strftime("%Y-%m-%d %H:%M UTC")
    by = ", ".join(report.by) or "everything"
    cost_svg, cost_note = _cost_chart(report)
    alerts = "".join(f'<p class="alert">{escape(_sentence(w))}</p>' for w in report.warnings())
    alerts += "".join(f'<p class="alert info">{escape(_sentence(n))}</p>' for n in report.notes())
    ledgers = ", ".join(f"<code>{escape(f)}</code>" for f in report.files)
    return f"""<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>runner report · {escape(describe_range(report))}</title>
<style>{_CSS}</style>
</head>
<body>
<main>
<header>
<p class="eyebrow">runner report</p>
<h1>Calls, cost and latency</h1>
<p class="range">{escape(describe_range(report))}</p>
</header>
{alerts}
{_kpis(report)}
<section class="charts">
{_chart_card(cost_svg, cost_note)}
{_chart_card(_tokens_chart(report))}
{_chart_card(_latency_chart(report))}
{_chart_card(_error_chart(report))}
</section>
<section class="card">
<h2>By {escape(by)}</h2>
{_table(report)}
</section>
{latest}
<footer>
<p>Ledgers: {ledgers}</p>
<p>Generated {generated} by runner {escape(__version__)}. Times are UTC; days are UTC dates.
Costs: known prices only; mock calls are estimates, shown apart; replayed calls
(<code>runner test --replay</code>) sent nothing and are in no figure but their own count.</p>
</footer>
</main>
{script}
</body>
</html>
"""


_CSS = """
:root { color-scheme: light; --ink: #1f2933; --muted: #6b7785; --line: #e6e9ee;
  --bg: #f5f7fa; --card: #ffffff; --accent: #4e79a7; }
* { box-sizing: border-box; }
body { margin: 0; background: var(--bg); color: var(--ink);
  font: 15px/1.5 system-ui, -apple-system, "Segoe UI", Roboto, Helvetica, Arial, sans-serif; }
main { max-width: 1180px; margin: 0 auto; padding: 32px 24px 48px; }
.eyebrow { margin: 0; color: var(--accent); font-size: 12px; font-weight: 600;
  letter-spacing: .08em; text-transform: uppercase; }
h1 { margin: 4px 0 4px; font-size: 28px; font-weight: 650; letter-spacing: -.01em; }
h2 { margin: 0 0 14px; font-size: 16px; font-weight: 600; }
.range { margin: 0 0 24px; color: var(--muted); }
.alert { margin: 0 0 16px; padding: 10px 14px; border-radius: 8px; background: #fff7e6;
  border: 1px solid #f5d28c; color: #7a4b00; font-size: 14px; }
.alert.info { background: #eef4fb; border-color: #c4d7ee; color: #24476b; }
.kpis { display: grid; grid-template-columns: repeat(5, minmax(0, 1fr)); gap: 14px;
  margin-bottom: 18px; }
.kpi, .card { background: var(--card); border: 1px solid var(--line); border-radius: 12px;
  box-shadow: 0 1px 2px rgba(16, 24, 40, .04); }
.kpi { padding: 14px 16px; }
.kpi .label { color: var(--muted); font-size: 12px; font-weight: 600; text-transform: uppercase;
  letter-spacing: .05em; }
.kpi .value { font-size: 24px; font-weight: 650; margin: 2px 0;
  font-variant-numeric: tabular-nums; }
.kpi .sub { color: var(--muted); font-size: 12.5px; }
.charts { display: grid; grid-template-columns: repeat(2, minmax(0, 1fr)); gap: 18px;
  margin-bottom: 18px; }
.card { padding: 18px 18px; margin: 0; }
.chart svg { display: block; max-width: 100%; height: auto; }
.note { margin: 8px 0 0; color: var(--muted); font-size: 12.5px; }
.card { min-width: 0; }
.table-wrap { overflow-x: auto; max-width: 100%; }
table { border-collapse: collapse; width: 100%; font-size: 12.5px; }
th, td { padding: 6px 5px; border-bottom: 1px solid var(--line); white-space: nowrap; }
th { color: var(--muted); font-weight: 600; font-size: 11px; text-transform: uppercase;
  letter-spacing: .03em; text-align: left; white-space: normal; vertical-align: bottom; }
th.num, td.num { text-align: right; font-variant-numeric: tabular-nums; }
tbody tr:nth-child(even) { background: #fafbfc; }
tfoot td { font-weight: 650; border-top: 2px solid var(--line); border-bottom: 0; }
.empty { color: var(--muted); }
footer { margin-top: 28px; color: var(--muted); font-size: 13px; }
footer p { margin: 0 0 6px; }
code { font: 12.5px ui-monospace, SFMono-Regular, Menlo, Consolas, monospace; }
#calls { margin-top: 18px; }
.filters { display: flex; flex-wrap: wrap; gap: 8px 16px; align-items: center;
  margin-bottom: 10px; font-size: 13px; }
.filters select { font: inherit; max-width: 14em; }
.calls-shown { color: var(--muted); }
details.call { border-top: 1px solid var(--line); padding: 6px 0; font-size: 13px; }
details.call summary { cursor: pointer; overflow-wrap: anywhere; }
.when { color: var(--muted); font-variant-numeric: tabular-nums; }
.status.ok { color: #2f7d32; } .status.bad { color: #b42318; font-weight: 600; }
.figures { color: var(--muted); }
.call-body { padding: 4px 0 4px 16px; }
.call-body h3 { margin: 8px 0 4px; font-size: 12px; color: var(--muted);
  text-transform: uppercase; letter-spacing: .04em; }
.call-body pre { margin: 2px 0 6px; padding: 8px 10px; background: #f6f8fa; border-radius: 6px;
  white-space: pre-wrap; overflow-wrap: anywhere; max-height: 24em; overflow: auto;
  font: 12px/1.45 ui-monospace, SFMono-Regular, Menlo, Consolas, monospace; }
.call-error { color: #b42318; margin: 4px 0; overflow-wrap: anywhere; }
.call-id { color: var(--muted); font-size: 12px; margin: 4px 0 0; }
.range, footer, .alert { overflow-wrap: anywhere; }
@media (max-width: 900px) { .kpis { grid-template-columns: repeat(2, minmax(0, 1fr)); }
  .charts { grid-template-columns: minmax(0, 1fr); } }
@media (max-width: 560px) { main { padding: 20px 12px 32px; }
  h1 { font-size: 22px; }
  .kpis { grid-template-columns: minmax(0, 1fr); gap: 10px; }
  .card { padding: 14px 12px; }
  .kpi .value { font-size: 20px; } }
"""
