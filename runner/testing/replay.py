"""What `runner test --replay` adds around the replay source (runner.ledger.replay): a unified
diff that shows why a request is not in the baseline, and `--record-missing`, which appends the
calls sent live to the baseline so that the next replay finds them.
"""

from __future__ import annotations

import difflib
import json
from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from runner.interrupts import interruptible

if TYPE_CHECKING:
    from runner.errors import NotRecorded
    from runner.ledger.line import LedgerRecord
    from runner.ledger.replay import ReplaySource
    from runner.ledger.store import Ledger

__all__ = ["BaselineRecorder", "explain_miss"]

_MAX_DIFF_LINES = 60
_MAX_COMPARED_LINES = 2000


def explain_miss(
    source: ReplaySource,
    spec_name: str,
    case: str,
    error: NotRecorded,
    *,
    variant: str | None = None,
) -> str:
    """The diff between the request as it is now and the one recorded for this spec, case and
    variant, messages first, then parameters; '' when the request is recorded (fewer times
    than the run asks for it: the message says so)."""
    if error.recorded:
        return ""
    recorded = source.latest_for(spec_name, case, variant=variant)
    if recorded is None:
        where = f"{spec_name} case {case}" + ("" if variant is None else f" variant {variant}")
        return f"(the baseline has no line for {where}: a new case?)"
    if recorded.get("messages") is None:
        return "(the recorded line kept no content: no diff of the messages)"
    parts = [
        _diff(
            _messages_text(recorded.get("messages") or []),
            _messages_text(error.messages),
            "messages (recorded)",
            "messages (now)",
        ),
        _diff(
            _params_text(_recorded_params(recorded)),
            _params_text(error.params),
            "request parameters (recorded)",
            "request parameters (now)",
        ),
    ]
    lines = [line for part in parts for line in part]
    if not lines:
        return "(the messages and parameters are the same: the output schema or tools changed)"
    if len(lines) > _MAX_DIFF_LINES:
        lines = [*lines[:_MAX_DIFF_LINES], f"... ({len(lines) - _MAX_DIFF_LINES} more lines)"]
    return "\n".join(lines)


def _diff(old: list[str], new: list[str], old_name: str, new_name: str) -> list[str]:
    # difflib can take quadratic time: the first lines only, and interruptible (it runs
    # inside the event loop, where a signal would otherwise wait for it).
    old, new = old[:_MAX_COMPARED_LINES], new[:_MAX_COMPARED_LINES]
    with interruptible():
        diff = difflib.unified_diff(old, new, old_name, new_name, n=2, lineterm="")
        return [line.rstrip("\n") for line in diff]


def _messages_text(messages: Sequence[Mapping[str, Any]]) -> list[str]:
    lines = []
    for message in messages:
        lines.append(f"[{message.get('role')}]")
        content = message.get("content")
        text = content if isinstance(content, str) else json.dumps(content, ensure_ascii=False)
        lines.extend(text.splitlines() or [""])
    return lines


def _params_text(params: Mapping[str, Any]) -> list[str]:
    return [f"{key}: {json.dumps(params[key], sort_keys=True)}" for key in sorted(params)]


def _recorded_params(record: Mapping[str, Any]) -> dict[str, Any]:
    """What the ledger keeps of a request besides its messages: the model and the params."""
    params = dict(record.get("params") or {})
    params["model"] = record.get("model")
    return params


class BaselineRecorder:
    """`--record-missing`: every line of a call that was sent live (not replayed) is appended
    to the baseline too, the same line as in the run's ledger."""

    def __init__(self, baseline: Ledger) -> None:
        self.baseline = baseline
        self.recorded = 0

    def add(self, records: Iterable[LedgerRecord]) -> None:
        for record in records:
            if "replayed" not in record:
                self.baseline.append(record)
                self.recorded += 1
