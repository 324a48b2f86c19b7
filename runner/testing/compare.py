"""`--compare BASELINE`: each case's output beside the baseline's latest `ok` output for the same
spec and case (unchanged, changed with a short diff, or new), with the cost and latency deltas.
"""

from __future__ import annotations

import difflib
import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import TYPE_CHECKING, Any, Literal

from runner.interrupts import interruptible
from runner.ledger.encoding import canonical_json
from runner.testing.expectations import same_json

if TYPE_CHECKING:
    from runner.ledger.replay import ReplaySource

__all__ = ["Comparison", "compare_case"]

State = Literal["unchanged", "changed", "new"]
_MAX_DIFF_LINES = 12
_MAX_COMPARED_LINES = 2000


@dataclass(frozen=True)
class Comparison:
    """One case against the baseline."""

    state: State
    diff: str = ""  # a short unified diff of the outputs when changed
    cost_delta_usd: Decimal | None = None  # now minus baseline; None when either is unknown
    latency_delta_ms: float | None = None
    baseline_id: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "state": self.state,
            "diff": self.diff,
            "cost_delta_usd": None if self.cost_delta_usd is None else float(self.cost_delta_usd),
            "latency_delta_ms": None
            if self.latency_delta_ms is None
            else round(self.latency_delta_ms, 1),
            "baseline_id": self.baseline_id,
        }


def compare_case(
    baseline: ReplaySource,
    spec_name: str,
    case: str,
    *,
    value: Any,
    text: str | None,
    has_value: bool,
    cost_usd: Decimal | None,
    latency_ms: float | None,
    variant: str | None = None,
) -> Comparison:
    """Compare one case's output (and the figures of its call) with the baseline's for the
    same spec, case and variant."""
    record = baseline.latest_for(spec_name, case, ok=True, variant=variant)
    if record is None:
        return Comparison("new")
    # A baseline is a file anyone may have edited: every field is read for what it is.
    cost = _number(_mapping(record.get("cost")).get("usd"))
    cost_delta = None if cost is None or cost_usd is None else cost_usd - cost
    recorded_latency = _number(record.get("latency_ms"))
    latency_delta = (
        None
        if latency_ms is None or recorded_latency is None
        else latency_ms - float(recorded_latency)
    )
    output = _mapping(record.get("output"))
    same, diff = _same_output(output, value, text, has_value)
    return Comparison(
        "unchanged" if same else "changed",
        diff,
        cost_delta,
        latency_delta,
        str(record.get("id")),
    )


def _mapping(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def _number(value: Any) -> Decimal | None:
    """A finite number from a baseline line, or None."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    number = Decimal(str(value))
    return number if number.is_finite() else None


def _same_output(
    output: Mapping[str, Any], value: Any, text: str | None, has_value: bool
) -> tuple[bool, str]:
    if not has_value:
        return False, "no output now"
    if output.get("text") is None and isinstance(output.get("sha256"), str):
        # Recorded without content: only the hash of the text can be compared.
        now = text if text is not None else canonical_json(value)
        same = hashlib.sha256(now.encode("utf-8")).hexdigest() == output["sha256"]
        return same, "" if same else "(the baseline kept no content: the output's hash differs)"
    before = _value_of(output)
    if same_json(before, value):
        return True, ""
    return False, _short_diff(before, value)


def _value_of(output: Mapping[str, Any]) -> Any:
    if output.get("json") is not None:
        return output["json"]
    if output.get("tool_calls"):
        return output["tool_calls"]
    return output.get("text")


def _short_diff(before: Any, after: Any) -> str:
    # difflib can take quadratic time: only the first lines are compared (the diff shown is
    # twelve lines anyway), and a signal stops it at once (it runs inside the event loop).
    old, new = _lines(before)[:_MAX_COMPARED_LINES], _lines(after)[:_MAX_COMPARED_LINES]
    with interruptible():
        lines = list(difflib.unified_diff(old, new, "baseline", "now", n=1, lineterm=""))
    if len(lines) > _MAX_DIFF_LINES:
        lines = [*lines[:_MAX_DIFF_LINES], f"... ({len(lines) - _MAX_DIFF_LINES} more lines)"]
    return "\n".join(lines)


def _lines(value: Any) -> list[str]:
    if isinstance(value, str):
        return value.splitlines() or [""]
    return json.dumps(value, indent=2, sort_keys=True, ensure_ascii=False).splitlines()
