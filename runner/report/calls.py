"""The HTML report's per-call section: the latest calls (as `runner.ledger.recent` reads them,
newest first), one `<details>` each that opens on its messages and reply when content was
recorded, and three filters (spec, model, status) run by a small inline script. Ledger lines are
taken only in their expected shape, every text is escaped, and secrets are masked.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from html import escape
from typing import Any

from runner.redact import redact

__all__ = ["SCRIPT", "calls_section"]

FILTERS = (("spec", "Spec"), ("model", "Model"), ("status", "Status"))

# Hides the calls the three selects rule out and counts those left. No network, no eval.
SCRIPT = """(() => {
  const section = document.getElementById("calls");
  if (!section) return;
  const selects = [...section.querySelectorAll("select[data-filter]")];
  const calls = [...section.querySelectorAll("details.call")];
  const count = section.querySelector(".calls-shown");
  const update = () => {
    let shown = 0;
    for (const call of calls) {
      const keep = selects.every((s) => !s.value || call.dataset[s.dataset.filter] === s.value);
      call.hidden = !keep;
      shown += keep ? 1 : 0;
    }
    count.textContent = `${shown} of ${calls.length} calls shown`;
  };
  selects.forEach((s) => s.addEventListener("change", update));
  update();
})();"""


def _dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _str(value: Any) -> str:
    return value if isinstance(value, str) else ""


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value)


def _safe(text: str) -> str:
    return escape(redact(text))


def _pretty(value: Any) -> str:
    if isinstance(value, str):
        return value
    return json.dumps(value, ensure_ascii=False, indent=2, default=str)


def _fields(record: dict[str, Any]) -> dict[str, str]:
    spec = _dict(record.get("spec"))
    return {
        "spec": _str(spec.get("name")) or _str(spec.get("path")) or "?",
        "model": _str(record.get("model")) or "?",
        "status": _str(record.get("status")) or "?",
    }


def _figures(record: dict[str, Any]) -> str:
    usage = _dict(record.get("usage"))
    prompt, completion = _number(usage.get("prompt")), _number(usage.get("completion"))
    tokens = (
        "? tokens"
        if prompt is None or completion is None
        else (f"{prompt:,.0f}+{completion:,.0f} tokens")
    )
    cost = _dict(record.get("cost"))
    usd = _number(cost.get("usd"))
    money = "cost ?" if usd is None else (f"${usd:,.2f}" if usd >= 1 else f"${usd:.6f}")
    if usd is not None and cost.get("estimated") is True:
        money += " est"
    if isinstance(record.get("replayed"), dict):
        money = "replayed, not spent"
    ms = _number(record.get("latency_ms"))
    latency = "? ms" if ms is None else f"{ms:,.0f} ms"
    return f"{tokens} · {money} · {latency}"


def _messages(record: dict[str, Any]) -> str:
    messages = record.get("messages")
    if not isinstance(messages, list):
        return ""
    out = []
    for message in messages:
        message = _dict(message)
        role = _str(message.get("role")) or "?"
        content = message.get("content")
        body = _pretty(content) if content is not None else _pretty(message)
        out.append(f'<div class="msg"><b>{_safe(role)}</b><pre>{_safe(body)}</pre></div>')
    return "<h3>Messages</h3>" + "".join(out)


def _reply(record: dict[str, Any]) -> str:
    output = _dict(record.get("output"))
    if output.get("json") is not None:
        text = _pretty(output["json"])
    elif _str(output.get("text")):
        text = _str(output.get("text"))
    elif output.get("tool_calls"):
        text = _pretty(output["tool_calls"])
    else:
        return ""
    return f'<h3>Reply</h3><pre class="reply">{_safe(text)}</pre>'


def _error(record: dict[str, Any]) -> str:
    error = _dict(record.get("error"))
    if not error:
        return ""
    kind, message = _str(error.get("kind")) or "error", _str(error.get("message"))
    return f'<p class="call-error"><b>{_safe(kind)}</b> {_safe(message)}</p>'


def _call(record: dict[str, Any]) -> str:
    fields = _fields(record)
    data = "".join(f' data-{k}="{_safe(v)}"' for k, v in fields.items())
    when = _str(record.get("ts")).replace("T", " ").split(".")[0].removesuffix("Z")
    content = _messages(record) + _reply(record)
    if not content:
        content = '<p class="empty">Content was not recorded for this call.</p>'
    status = escape(fields["status"])
    kind = "ok" if fields["status"] == "ok" else "bad"
    return (
        f'<details class="call"{data}><summary>'
        f'<span class="when">{escape(when or "?")}</span> '
        f"<b>{_safe(fields['spec'])}</b> · {_safe(fields['model'])} · "
        f'<span class="status {kind}">{status}</span> · '
        f'<span class="figures">{escape(_figures(record))}</span></summary>'
        f'<div class="call-body">{_error(record)}{content}'
        f'<p class="call-id">id <code>{escape(_str(record.get("id")))}</code></p></div></details>'
    )


def _select(key: str, label: str, values: Sequence[str]) -> str:
    options = "".join(f'<option value="{_safe(v)}">{_safe(v)}</option>' for v in values)
    return (
        f'<label>{label} <select data-filter="{key}"><option value="">all</option>'
        f"{options}</select></label>"
    )


def calls_section(calls: Sequence[dict[str, Any]], *, limit: int) -> str:
    """The section, or an empty string when no calls were asked for (`limit` 0)."""
    if limit < 1:
        return ""
    if not calls:
        body = '<p class="empty">No calls in this range.</p>'
    else:
        rows = [_fields(c) for c in calls]
        filters = "".join(
            _select(key, label, sorted({row[key] for row in rows})) for key, label in FILTERS
        )
        body = (
            f'<div class="filters">{filters}<span class="calls-shown">'
            f"{len(calls)} of {len(calls)} calls shown</span></div>"
            f'<div class="call-list">{"".join(_call(c) for c in calls)}</div>'
        )
    return (
        f'<section class="card" id="calls"><h2>Latest calls</h2>'
        f'<p class="note">The latest {limit:,} calls at most, newest first; open one for its '
        "messages and reply (when content was recorded).</p>"
        f"{body}</section>"
    )
