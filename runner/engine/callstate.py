"""The typed state of one call while it runs (runner.engine.call): what it sends as that
changes (a re-ask of invalid output, an output-mode fall back), which attempt's request went
out last, the rate limiter's wait before each attempt and the text each attempt streamed. Plain
bookkeeping: no I/O, no policy.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any

from runner.types import Attempt, Message, StreamDelta

__all__ = ["CallState", "renumbered"]


@dataclass
class CallState:
    """One call's state. A re-ask replaces `body`; a fall back to another output mode replaces
    `mode`, `base`, `body` and `messages`, and numbers the new mode's attempts after the
    `offset` attempts the refused modes made (kept in `earlier`)."""

    body: dict[str, Any]  # what the next attempt sends
    base: dict[str, Any]  # the current mode's request, before any re-ask
    request: Any  # the same, wire-neutral (runner.providers.WireRequest)
    mode: str | None  # the output mode being tried; None without an output schema
    messages: list[Message]  # the current mode's messages (the line records them)
    offset: int = 0  # how many attempts the refused modes made
    earlier: list[Attempt] = field(default_factory=list)  # those attempts, numbered
    sent: int = 0  # the (numbered) attempt whose request went out last...
    sent_body: dict[str, Any] | None = None  # ...and its body
    limiter_waits: dict[int, float] = field(default_factory=dict)  # attempt -> queued (s)
    partial: dict[int, dict[int, list[str]]] = field(default_factory=dict)  # attempt -> choice
    shown: bool = False  # a streamed delta reached the caller: a retry must say it restarts

    def numbered(self, attempts: list[Attempt]) -> list[Attempt]:
        """The current mode's attempts numbered after the refused modes', those first."""
        return self.earlier + renumbered(attempts, self.offset)

    def switch_mode(
        self, mode: str, request: Any, body: dict[str, Any], tried: list[Attempt]
    ) -> None:
        """Go on in `mode` with `request` (built as `body`), after the refused mode's attempts
        `tried` (numbered)."""
        self.earlier.extend(tried)
        self.offset = len(self.earlier)
        self.mode = mode
        self.request = request
        self.body = self.base = body
        self.messages = list(request.messages)

    def with_limiter_waits(self, attempts: list[Attempt]) -> list[Attempt]:
        """Move the rate limiter's queueing from an attempt's latency to its wait."""
        out = []
        for a in attempts:
            wait = self.limiter_waits.get(a.number, 0.0)
            if wait:
                latency = max(0.0, a.latency_ms - wait * 1000)
                a = replace(a, waited_s=a.waited_s + wait, latency_ms=latency)
            out.append(a)
        return out

    def partial_text(self) -> str | None:
        """The first choice's text streamed by the latest attempt that streamed any."""
        if not self.partial:
            return None
        texts = self.partial[max(self.partial)].get(0)
        return "".join(texts) if texts else None

    def delta_sink(
        self, number: int, sink: Callable[[StreamDelta], None] | None
    ) -> Callable[[StreamDelta], None]:
        """Keeps the text of each streamed choice of attempt `number` (an interrupted call
        records what arrived) and hands deltas to the caller's `sink`, saying when a retry
        starts the answer over."""
        kept: dict[int, list[str]] = self.partial.setdefault(number, {})
        first = True

        def deliver(delta: StreamDelta) -> None:
            nonlocal first
            if delta.text:
                kept.setdefault(delta.choice, []).append(delta.text)
            if sink is None:
                return
            if first and self.shown and number > 1:
                sink(StreamDelta(delta.choice, restart=True))
            first = False
            self.shown = True
            sink(delta)

        return deliver


def renumbered(attempts: list[Attempt], offset: int) -> list[Attempt]:
    """The attempts numbered `offset` further on."""
    return [replace(a, number=a.number + offset) for a in attempts] if offset else list(attempts)
