"""Small inline SVG charts, drawn by hand (no libraries, no script): stacked vertical bars over
categories such as days, grouped horizontal bars per label, and an empty state. Each chart has
a title, a legend, axes with round ticks, and a hover tooltip (<title>) on every bar."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from html import escape

__all__ = ["PALETTE", "Series", "bar_chart", "empty_chart", "hbar_chart", "nice_ticks"]

# Tableau 10: distinct, readable on white, kind to the common colour-vision deficiencies.
PALETTE = (
    "#4e79a7",
    "#f28e2b",
    "#59a14f",
    "#e15759",
    "#76b7b2",
    "#edc948",
    "#b07aa1",
    "#ff9da7",
    "#9c755f",
    "#bab0ac",
)
INK, MUTED, GRID, AXIS = "#1f2933", "#6b7785", "#e6e9ee", "#9aa5b1"
Format = Callable[[float], str]


@dataclass(frozen=True)
class Series:
    name: str
    values: Sequence[float | None]
    color: str


def nice_ticks(top: float, count: int = 5) -> list[float]:
    """0 and round steps (1, 2, 2.5, 5 x 10^n) up to at least `top`."""
    if top <= 0 or not math.isfinite(top):
        return [0.0, 1.0]
    raw = top / count
    power = 10 ** math.floor(math.log10(raw))
    step = next(m * power for m in (1, 2, 2.5, 5, 10) if m * power >= raw)
    ticks = [0.0]
    while ticks[-1] < top - step * 1e-9:
        ticks.append(round(ticks[-1] + step, 12))
    return ticks


def _el(tag: str, content: str | None = None, **attrs: object) -> str:
    """An SVG element; floats get one decimal, `stroke_dasharray` becomes stroke-dasharray."""
    text = "".join(
        f' {k.rstrip("_").replace("_", "-")}="{f"{v:.1f}" if isinstance(v, float) else v}"'
        for k, v in attrs.items()
    )
    return f"<{tag}{text}/>" if content is None else f"<{tag}{text}>{content}</{tag}>"


def _text(x: float, y: float, body: str, *, size: int = 11, fill: str = MUTED, **attrs: str) -> str:
    return _el("text", body, x=float(x), y=float(y), font_size=size, fill=fill, **attrs)


def _tip(text: str) -> str:
    return f"<title>{escape(text)}</title>"


def _frame(width: int, height: int, title: str, label: str, body: list[str]) -> str:
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}" role="img" aria-label="{escape(label)}" '
        'font-family="system-ui, -apple-system, Segoe UI, Roboto, Helvetica, Arial, sans-serif">'
        f"<title>{escape(label)}</title>"
        + _text(0, 18, escape(title), size=15, fill=INK, font_weight="600")
        + "".join(body)
        + "</svg>"
    )


LEGEND_ROW = 20.0  # the height of a row of the legend


def _legend(series: Sequence[Series], y: float, width: int) -> tuple[list[str], float]:
    """A key for every series, in rows as wide as the chart (a name too long for a row is cut,
    whole in its tooltip); returns the elements and the height the rows below the first take,
    which the chart moves its plot down by."""
    keys, x, row = [], 0.0, 0
    room = (width - 18 - 16) / 6.6  # characters in a row of its own
    for s in series:
        shown = s.name if len(s.name) <= room else s.name[: max(int(room) - 1, 1)] + "…"
        span = 18 + 6.6 * len(shown) + 16
        if x + span > width and x > 0:
            x, row = 0.0, row + 1
        top = y + row * LEGEND_ROW
        mark = _el("rect", x=x, y=top - 9, width=10, height=10, rx=2, fill=s.color)
        name = _text(x + 15, top, escape(shown), size=12, fill=INK)
        keys.append(_el("g", _tip(s.name) + mark + name, class_="key"))
        x += span
    return [_el("g", "".join(keys), class_="legend")], row * LEGEND_ROW


def empty_chart(title: str, message: str, *, width: int = 520, height: int = 280) -> str:
    """A titled frame saying why there is nothing to draw."""
    middle = 34 + (height - 34) / 2 + 4
    body = [
        _el(
            "rect",
            x=0.5,
            y=34.5,
            width=width - 1,
            height=height - 35,
            rx=8,
            fill="#f8f9fb",
            stroke=GRID,
            stroke_dasharray="4 4",
        ),
        _text(width / 2, middle, escape(message), size=13, text_anchor="middle"),
    ]
    return _frame(width, height, title, f"{title}: {message}", body)


def bar_chart(
    title: str,
    categories: Sequence[str],
    series: Sequence[Series],
    *,
    fmt: Format,
    width: int = 520,
    height: int = 300,
    tips: Sequence[str] | None = None,
    tip_fmt: Format | None = None,
) -> str:
    """Stacked vertical bars, one per category (left to right), one segment per series.
    `tips[i]` is the tooltip heading of category i (default: the category); `tip_fmt` formats
    the values in tooltips (default: `fmt`, the axis format)."""
    top = max((sum(s.values[i] or 0 for s in series) for i in range(len(categories))), default=0)
    ticks = nice_ticks(top)
    left = 14 + 6.6 * max(len(fmt(t)) for t in ticks)
    body, extra = _legend(series, 42, width)
    height += int(extra)
    plot_top, plot_bottom = 62.0 + extra, height - 30.0
    plot_w, plot_h = width - left - 8, plot_bottom - plot_top

    def y_of(value: float) -> float:
        return plot_bottom - value / ticks[-1] * plot_h

    for tick in ticks:
        y = y_of(tick)
        line = AXIS if tick == 0 else GRID
        body.append(_el("line", x1=left, x2=width - 8.0, y1=y, y2=y, stroke=line))
        body.append(_text(left - 8, y + 4, escape(fmt(tick)), text_anchor="end"))
    n = max(len(categories), 1)
    band = plot_w / n
    bar = min(band * 0.72, 46)
    label_w = 6.6 * max((len(c) for c in categories), default=1) + 12
    every = max(1, math.ceil(n * label_w / plot_w))  # label every n-th bar so none overlap
    for i, category in enumerate(categories):
        x = left + band * i + (band - bar) / 2
        base = 0.0
        head = tips[i] if tips else category
        for s in series:
            value = s.values[i] or 0
            if value <= 0:
                continue
            y0, y1 = y_of(base), y_of(base + value)
            base += value
            tip = _tip(f"{head} · {s.name}: {(tip_fmt or fmt)(value)}")
            size = {"width": bar, "height": max(y0 - y1, 0.5)}
            body.append(_el("rect", tip, x=x, y=y1, **size, fill=s.color))
        if i % every == 0:
            cx = left + band * (i + 0.5)
            body.append(_text(cx, plot_bottom + 18, escape(category), text_anchor="middle"))
    return _frame(width, height, title, title, body)


def hbar_chart(
    title: str,
    labels: Sequence[str],
    series: Sequence[Series],
    *,
    fmt: Format,
    width: int = 520,
    top: float | None = None,
    note: str = "",
) -> str:
    """Horizontal bars, one row per label (top to bottom), one bar per series inside the row,
    each with its value written at its end. `top` fixes the scale's end (100% for rates)."""
    largest = max((v or 0 for s in series for v in s.values), default=0)
    ticks = nice_ticks(top if top is not None else largest)
    left = min(150.0, 16 + 6.8 * max((len(label) for label in labels), default=4))
    bar_h, gap = 13.0, 12.0
    row_h = bar_h * len(series) + gap
    body, extra = _legend(series, 42, width) if len(series) > 1 else ([], 0.0)
    plot_top = 62.0 + extra
    plot_w = width - left - 56
    height = int(plot_top + row_h * len(labels) + 30 + (18 if note else 0))
    plot_bottom = plot_top + row_h * len(labels)

    def x_of(value: float) -> float:
        return left + min(value, ticks[-1]) / ticks[-1] * plot_w

    for tick in ticks:
        x = x_of(tick)
        line = AXIS if tick == 0 else GRID
        body.append(_el("line", x1=x, x2=x, y1=plot_top - 4, y2=plot_bottom, stroke=line))
        body.append(_text(x, plot_bottom + 16, escape(fmt(tick)), text_anchor="middle"))
    for row, label in enumerate(labels):
        y = plot_top + row * row_h + gap / 2
        shown = label if len(label) <= 20 else label[:19] + "…"
        middle = y + bar_h * len(series) / 2 + 4
        name = _tip(label) + escape(shown)
        body.append(_text(left - 8, middle, name, size=12, fill=INK, text_anchor="end"))
        for k, s in enumerate(series):
            value = s.values[row]
            yk = y + k * bar_h
            if value is None:
                body.append(_text(left + 4, yk + bar_h - 3, "no data", size=10))
                continue
            end = x_of(value)
            tip = _tip(f"{label} · {s.name}: {fmt(value)}")
            size = {"width": max(end - left, 1.0), "height": bar_h - 2}
            body.append(_el("rect", tip, x=left, y=yk, **size, rx=2, fill=s.color))
            body.append(_text(end + 5, yk + bar_h - 3, escape(fmt(value)), size=10, fill=INK))
    if note:
        body.append(_text(0, height - 4, escape(note), size=11))
    return _frame(width, height, title, title, body)
