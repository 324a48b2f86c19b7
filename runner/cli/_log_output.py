"""What `runner log` prints: a block per call (what ran, how it went, a preview of the answer or
the error) and one call whole (messages, reply, attempts). Rendering only, from ledger lines
read as they are: a ledger is a file anyone may have edited, so every field is taken only in
its expected shape, control characters are shown as escapes, and secrets are masked.
"""

from __future__ import annotations

import json
import re
import shutil
import sys
from typing import Any

from runner.cli._common import colour
from runner.redact import redact

__all__ = ["block", "whole", "width"]

INDENT = "  "
_STATUS_COLOURS = {"ok": "green", "error": "red", "invalid_output": "red"}
# C0 and C1 controls, DEL, line and paragraph separators, bidi controls: shown, never obeyed.
_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069]")


def width() -> int:
    """The width to fit: the terminal's (COLUMNS wins), else 100 (a pipe, a file, a log)."""
    if sys.stdout is not None and sys.stdout.isatty():
        return max(40, shutil.get_terminal_size((100, 24)).columns)
    return 100


def _shown(text: str) -> str:
    return _CONTROL.sub(lambda m: repr(m.group())[1:-1], text)


def _cut(text: str, room: int) -> str:
    return text if len(text) <= room else text[: max(room - 1, 0)] + "…"


def _dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) else None


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value)


def _when(record: dict[str, Any]) -> str:
    ts = _text(record.get("ts")) or "?"
    return _shown(ts.replace("T", " ").split(".")[0].removesuffix("Z")) + " UTC"


def _money(usd: float) -> str:
    return f"${usd:,.2f}" if usd >= 1 else f"${usd:.6f}"


def _cost(record: dict[str, Any], *, whole: bool = False) -> str:
    cost = _dict(record.get("cost"))
    usd = _number(cost.get("usd"))
    text = "cost unknown" if usd is None else _money(usd)
    if usd is not None and cost.get("estimated") is True:
        text += " est"
    if isinstance(record.get("replayed"), dict):  # answered from a recording: nothing spent
        return f"not spent (replayed; recorded at {text})" if whole else "not spent (replayed)"
    return text


def _tokens(record: dict[str, Any]) -> str:
    usage = _dict(record.get("usage"))
    prompt, completion = _number(usage.get("prompt")), _number(usage.get("completion"))
    if prompt is None or completion is None:
        return "tokens ?"
    text = f"{prompt:,.0f}+{completion:,.0f} tokens"
    cached = _number(usage.get("cached"))
    return text + (f" ({cached:,.0f} cached)" if cached else "")


def _latency(record: dict[str, Any]) -> str:
    ms = _number(record.get("latency_ms"))
    return "latency ?" if ms is None else f"{ms:,.0f} ms"


def _status(record: dict[str, Any]) -> str:
    status = _text(record.get("status")) or "?"
    return colour(_shown(status), _STATUS_COLOURS.get(status, "yellow"))


def _attempts(record: dict[str, Any]) -> str:
    attempts = record.get("attempts")
    n = len(attempts) if isinstance(attempts, list) else 0
    return f"{n} attempt{'s' if n != 1 else ''}"


def _model(record: dict[str, Any]) -> str:
    model = _shown(_text(record.get("model")) or "?")
    return model + (" (mock)" if record.get("mock") is True else "")


def _spec_name(record: dict[str, Any]) -> str:
    spec = _dict(record.get("spec"))
    return _shown(_text(spec.get("name")) or _text(spec.get("path")) or "?")


def _where(record: dict[str, Any]) -> list[str]:
    """What the call belonged to: a test case, a data-set row, a batch; replayed or not."""
    parts = []
    for field, label in (("case", "case"), ("row", "row"), ("batch_id", "batch")):
        value = _text(record.get(field))
        if value:
            parts.append(f"{label} {_shown(value)}")
    replayed = _dict(record.get("replayed"))
    if replayed:
        parts.append(f"replayed from {_shown(str(replayed.get('from', '?')))}")
    return parts


def _error_line(record: dict[str, Any]) -> str | None:
    error = _dict(record.get("error"))
    if not error:
        return None
    kind = _shown(_text(error.get("kind")) or "error")
    status = _number(error.get("status"))
    head = kind + (f" (HTTP {status:.0f})" if status is not None else "")
    message = " ".join((_text(error.get("message")) or "").split())
    errors = [e for e in error.get("errors") or [] if isinstance(e, str)]
    if errors:
        message += f" [{'; '.join(errors[:3])}{'; ...' if len(errors) > 3 else ''}]"
    return f"error: {head}: {_shown(message)}" if message else f"error: {head}"


def _answer(record: dict[str, Any]) -> Any:
    """The answer as recorded: parsed JSON, tool calls or text; None when none was kept."""
    output = _dict(record.get("output"))
    if output.get("json") is not None:
        return output["json"]
    if output.get("tool_calls"):
        return output["tool_calls"]
    return _text(output.get("text"))


def _withheld(record: dict[str, Any]) -> bool:
    output = _dict(record.get("output"))
    return bool(output) and _answer(record) is None and isinstance(output.get("sha256"), str)


def _one_line(value: Any) -> str:
    if isinstance(value, str):
        return " ".join(value.split())
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


def _wrapped(parts: list[str], room: int) -> list[str]:
    """Parts joined with " · ", a new line where the next would pass `room` (colour codes
    take no room)."""
    lines: list[str] = []
    current, used = "", 0
    for part in parts:
        size = len(click_unstyle(part))
        if current and used + 3 + size > room:
            lines.append(current)
            current, used = "", 0
        current, used = (f"{current} · {part}", used + 3 + size) if current else (part, size)
    if current:
        lines.append(current)
    return lines


def click_unstyle(text: str) -> str:
    import click

    return click.unstyle(text)


def block(record: dict[str, Any], *, width: int) -> str:
    """One call in a few lines: its id and time; spec, model, status, attempts, tokens, cost
    and latency; what it belonged to; the answer's first line or the error."""
    room = width - len(INDENT)
    head = f"{_shown(str(record.get('id')))} · {_when(record)}"
    figures = [
        _spec_name(record),
        _model(record),
        _status(record),
        _attempts(record),
        _tokens(record),
        _cost(record),
        _latency(record),
    ]
    lines = [head, *(INDENT + line for line in _wrapped(figures, room))]
    where = _where(record)
    if where:
        lines += [INDENT + line for line in _wrapped(where, room)]
    error = _error_line(record)
    if error is not None:
        lines += _wrapped_text(error, room, most=4)
    answer = _answer(record)
    if answer is not None:
        lines.append(INDENT + _cut("output: " + _shown(_one_line(answer)), room))
    elif _withheld(record):
        lines.append(INDENT + "output: not kept (the spec records no content)")
    return redact("\n".join(lines))


def _wrapped_text(text: str, room: int, *, most: int) -> list[str]:
    """An `error: ...` line over at most `most` lines of `room` columns, the lines after the
    first indented once more, the rest cut with "…"; its first word in red on a terminal."""
    import textwrap

    wrapped = textwrap.wrap(text, room, subsequent_indent=INDENT, break_on_hyphens=False)
    if len(wrapped) > most:
        wrapped = [*wrapped[: most - 1], _cut(wrapped[most - 1] + " …", room)]
    if wrapped and wrapped[0].startswith("error:"):
        wrapped[0] = colour("error:", "red") + wrapped[0][len("error:") :]
    return [INDENT + line for line in wrapped]


def _section(title: str) -> str:
    return colour(title, "cyan", bold=True)


def _indented(text: str, depth: int = 2) -> list[str]:
    pad = INDENT * depth
    return [pad + _shown(line) for line in (text.splitlines() or [""])]


def _pretty(value: Any) -> str:
    if isinstance(value, str):
        return value
    return json.dumps(value, ensure_ascii=False, indent=2)


def _fields(record: dict[str, Any]) -> list[tuple[str, str]]:
    spec = _dict(record.get("spec"))
    where = _shown(_text(spec.get("path")) or "?")
    commit = _text(spec.get("commit"))
    if commit:
        where += f" @ {_shown(commit[:12])}" + (", dirty" if spec.get("dirty") is True else "")
    model = _model(record)
    served = _text(record.get("served_model"))
    if served and served != record.get("model"):
        model += f", served by {_shown(served)}"
    api = _text(record.get("api")) or "chat"
    cost = _dict(record.get("cost"))
    source = _text(cost.get("source"))
    ttft = _number(record.get("ttft_ms"))
    fields = [
        ("when", _when(record)),
        ("spec", f"{_spec_name(record)} ({where})"),
        ("model", f"{model} · api {_shown(api)}"),
        ("status", _status(record) + f" · {_attempts(record)}"),
        ("tokens", _tokens(record)),
        ("cost", _cost(record, whole=True) + (f" ({_shown(source)})" if source else "")),
        ("latency", _latency(record) + (f" · first token {ttft:,.0f} ms" if ttft else "")),
    ]
    where_parts = _where(record)
    if where_parts:
        fields.append(("for", " · ".join(where_parts)))
    request_id = _text(record.get("request_id"))
    if request_id:
        fields.append(("request", _shown(request_id)))
    params = _dict(record.get("params"))
    if params:
        fields.append(("params", _shown(_one_line(params))))
    variables = record.get("vars")
    if isinstance(variables, dict):
        fields.append(("vars", _shown(_one_line(variables))))
    return fields


def whole(record: dict[str, Any], *, width: int) -> str:
    """One call whole: what ran, every message as sent, the reply, and each attempt."""
    lines = [_section(f"call {_shown(str(record.get('id')))}")]
    lines += [f"{INDENT}{name:<8} {value}" for name, value in _fields(record)]
    error = _error_line(record)
    if error is not None:
        lines += _wrapped_text(error, width - len(INDENT), most=40)
    lines += ["", _section("messages")]
    messages = record.get("messages")
    if isinstance(messages, list):
        for message in messages:
            message = _dict(message)
            role = _shown(_text(message.get("role")) or "?")
            name = _text(message.get("name"))
            lines.append(f"{INDENT}[{role}{' ' + _shown(name) if name else ''}]")
            content = message.get("content")
            lines += _indented(_pretty(content) if content is not None else "")
    else:
        lines.append(f"{INDENT}not kept (the spec records no content)")
    lines += ["", _section("reply")]
    answer = _answer(record)
    if answer is not None:
        lines += _indented(_pretty(answer))
    elif _withheld(record):
        sha = _shown(str(_dict(record.get("output")).get("sha256")))
        lines.append(f"{INDENT}not kept (the spec records no content); sha256 {sha}")
    else:
        lines.append(f"{INDENT}none")
    lines += ["", _section("attempts")]
    attempts = record.get("attempts")
    for attempt in attempts if isinstance(attempts, list) else []:
        lines += _attempt_lines(_dict(attempt), width)
    if not attempts:
        lines.append(f"{INDENT}none (refused before anything was sent)")
    return redact("\n".join(lines))


def _attempt_lines(attempt: dict[str, Any], width: int) -> list[str]:
    n = _number(attempt.get("n"))
    outcome = _text(attempt.get("outcome")) or "?"
    parts = [f"{n:.0f}" if n is not None else "?", colour(_shown(outcome), _outcome(outcome))]
    status = _number(attempt.get("status"))
    if status is not None:
        parts.append(f"HTTP {status:.0f}")
    latency = _number(attempt.get("latency_ms"))
    if latency is not None:
        parts.append(f"{latency:,.0f} ms")
    waited = _number(attempt.get("waited_s"))
    if waited:
        parts.append(f"waited {waited:.2f} s")
    usage = _dict(attempt.get("usage"))
    if usage:
        parts.append(_tokens({"usage": usage}))
    request_id = _text(attempt.get("request_id"))
    if request_id:
        parts.append(_shown(request_id))
    lines = [INDENT + line for line in _wrapped(parts, width - len(INDENT))]
    message = _text(attempt.get("message"))
    if message:
        lines += _indented(" ".join(message.split()))
    return lines


def _outcome(outcome: str) -> str:
    return "green" if outcome == "ok" else "red"
