"""A probe as text: the table (one row per capability: what was sent, what came back, the
verdict) with the suggested settings under it, and the requests of a dry run. Strings only;
the command prints them.
"""

from __future__ import annotations

import json
import textwrap
from collections.abc import Sequence

from runner.probe.findings import PlannedRequest, ProbeReport

__all__ = ["plan_text", "report_text"]

# The wrapped columns' widths, so that a table fits in 100 columns; the others are as wide
# as their longest cell.
SENT_WIDTH = 30
BACK_WIDTH = 38


def report_text(report: ProbeReport) -> str:
    """The table, then the suggested settings."""
    header = ("capability", "sent", "came back", "verdict")
    rows = [
        (f.label, _wrap(f.sent, SENT_WIDTH), _wrap(f.detail, BACK_WIDTH), f.verdict)
        for f in report.findings
    ]
    label_width = max(len(header[0]), *(len(r[0]) for r in rows))
    sent_width = max(len(header[1]), *(len(line) for r in rows for line in r[1]))
    back_width = max(len(header[2]), *(len(line) for r in rows for line in r[2]))

    def line(label: str, sent: str, back: str, verdict: str) -> str:
        text = f"{label:<{label_width}}  {sent:<{sent_width}}  {back:<{back_width}}  {verdict}"
        return text.rstrip()

    out = [
        f"runner probe of {report.base_url}: model {report.model}, api {report.api}",
        "",
        line(*header),
        line("-" * label_width, "-" * sent_width, "-" * back_width, "-" * len(header[3])),
    ]
    for label, sent, back, verdict in rows:
        height = max(len(sent), len(back), 1)
        for i in range(height):
            out.append(
                line(
                    label if i == 0 else "",
                    sent[i] if i < len(sent) else "",
                    back[i] if i < len(back) else "",
                    verdict if i == 0 else "",
                )
            )
    if report.suggestions:
        out += ["", "Suggested:"]
        width = max(len(s.setting) for s in report.suggestions)
        for s in report.suggestions:
            why = _wrap(s.why, 96 - width)
            out.append(f"  {s.setting:<{width}}  {why[0]}")
            out += [f"  {'':<{width}}  {more}" for more in why[1:]]
    return "\n".join(out) + "\n"


def plan_text(requests: Sequence[PlannedRequest]) -> str:
    """The requests of a dry run, in order: method and URL, then the body of a POST."""
    out = [f"runner probe --dry-run: {len(requests)} requests, none sent.", ""]
    for request in requests:
        out.append(f"{request.method} {request.url}  ({request.capability})")
        if request.body is not None:
            out.append(json.dumps(request.body, indent=2, ensure_ascii=False))
    return "\n".join(out) + "\n"


def _wrap(text: str, width: int) -> list[str]:
    # Names with hyphens (runner-probe, x-ratelimit-*) stay whole.
    return textwrap.wrap(text, width, break_on_hyphens=False, break_long_words=False) or [""]
