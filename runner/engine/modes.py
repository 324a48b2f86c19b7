"""How a call's output mode moves under `output.mode: auto`: where it starts (the spec's first
mode, or the mode an earlier call of the run learned for this endpoint) and where it goes when
the server refuses a mode (to the wire's next one) or ignores the schema (to prompt mode). Each
move is recorded as the line's `output_fallback` and taught to the Session. No I/O.
"""

from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING, Any

from runner.engine.callstate import CallState, renumbered
from runner.engine.preflight import request_in_mode
from runner.errors import RunnerError

if TYPE_CHECKING:
    from runner.engine.parts import CallParts
    from runner.providers import WireAPI

__all__ = ["fall_back", "learned_start", "next_mode"]


def next_mode(modes: tuple[str, ...], mode: str | None) -> str | None:
    """The output mode to fall back to after `mode` was refused (None: none is left)."""
    if mode not in modes:
        return None
    at = modes.index(mode)
    return modes[at + 1] if at + 1 < len(modes) else None


def learned_start(parts: CallParts, wire: WireAPI, state: CallState) -> dict[str, Any] | None:
    """Start in the mode an earlier call of the run learned for this endpoint (only under
    `auto`): the fallback record of this call, or None when it starts as the spec says."""
    output, learned = parts.spec.output, parts.learned_mode
    if output is None or output.mode != "auto" or learned is None:
        return None
    mode, why = learned
    request = request_in_mode(parts.spec, parts.settings, list(parts.pre.messages), mode)
    state.request, state.mode = request, mode
    state.body = state.base = wire.build_body(request)
    state.messages = list(request.messages)
    return {"from": "json_schema", "to": mode, "why": why, "learned": True}


def fall_back(
    parts: CallParts,
    wire: WireAPI,
    state: CallState,
    exc: RunnerError,
    why: str,
    record: dict[str, Any] | None,
) -> dict[str, Any]:
    """Switch output mode after the server refused this one (to the next) or ignored the schema
    (to prompt mode) — only under `auto`; else raise `exc` with every attempt. A fall back
    starts a fresh retry budget, and the Session learns it for later calls. Returns the call's
    new fallback record (`record` is the one it had)."""
    output = parts.spec.output
    tried = renumbered(exc.attempts, state.offset)
    target = "prompt" if why == "ignored" else next_mode(wire.capabilities.output_modes, state.mode)
    if output is None or output.mode != "auto" or target is None or target == state.mode:
        exc.attempts = state.earlier + tried
        raise exc
    verb = "refused" if why == "refused" else "ignored the schema of"
    note = f"The server {verb} output.mode {state.mode}; falling back to {target}."
    tried[-1] = replace(tried[-1], message=f"{tried[-1].message} {note}")
    first = record["from"] if record else state.mode
    if parts.learn_mode is not None:
        parts.learn_mode(target, why)
    # From the rendered messages (`auto` starts as json_schema, which adds nothing to them),
    # in the next mode.
    request = request_in_mode(parts.spec, parts.settings, list(parts.pre.messages), target)
    state.switch_mode(target, request, wire.build_body(request), tried)
    return {"from": first, "to": target, "why": why, "learned": False}
