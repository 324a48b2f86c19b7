"""The values a call hands back: `Result` (one successful call), `Preflight` (a request
rendered and priced before sending) and `SessionStats` (totals across a session's calls).
Plain data with no I/O.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from runner.types import Attempt, Cost, Message, Usage, quick_init

__all__ = ["Preflight", "Result", "SessionStats"]


@quick_init
@dataclass(frozen=True)
class Result:
    """The outcome of one successful call."""

    value: Any  # parsed JSON with an output schema; tool calls for a tool call; else the text
    text: str | None
    usage: Usage  # summed over every attempt that consumed tokens
    cost: Cost
    attempts: tuple[Attempt, ...]
    latency_ms: float
    request_id: str | None
    model: str
    served_model: str | None
    finish_reason: str | None
    ttft_ms: float | None = None
    ledger_id: str | None = None
    mock: bool = False
    choices: tuple[Any, ...] = ()  # the value of every choice when n > 1
    # The reply's x-ratelimit-* headers (lower-case names), as the limiter read them.
    rate_headers: Mapping[str, str] = field(default_factory=dict)
    # Answered from a recorded line (--replay, --cache): {from, id[, reason]}, and the
    # recorded call's latency and cost (nothing was spent now).
    replayed: dict[str, str] | None = None
    recorded_latency_ms: float | None = None

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "value": self.value,
            "text": self.text,
            "model": self.model,
            "served_model": self.served_model,
            "finish_reason": self.finish_reason,
            "usage": self.usage.to_dict(),
            "cost": self.cost.to_dict(),
            "attempts": [a.to_dict() for a in self.attempts],
            "latency_ms": round(self.latency_ms, 1),
            "ttft_ms": None if self.ttft_ms is None else round(self.ttft_ms, 1),
            "request_id": self.request_id,
            "ledger_id": self.ledger_id,
            "mock": self.mock,
        }
        if len(self.choices) > 1:
            out["choices"] = list(self.choices)
        if self.replayed is not None:
            out["replayed"] = dict(self.replayed)
        return out


@quick_init
@dataclass(frozen=True)
class Preflight:
    """Everything known before sending: the exact request, its tokens and its worst-case cost."""

    model: str
    vars: dict[str, Any]  # after defaults from `inputs` were applied
    messages: list[Message]
    body: dict[str, Any]
    prompt_tokens: int
    max_output_tokens: int | None
    context_window: int | None
    # The worst-case Cost of one attempt, or a function that works it out when `max_cost` is
    # first read: only a budget and `runner render` ask, so a call without one never prices it.
    # Left out of == and repr: it follows from the fields above (and a function is no value).
    worst: Cost | Callable[[], Cost] = field(compare=False, repr=False)
    # The neutral request the body was built from (runner.providers.WireRequest), and the
    # wire API that built it ("chat" or "responses").
    request: Any = None
    api: str = "chat"
    choices: int = 1  # how many answers the request asks for (`n`)
    # The spec param that sets max_output_tokens, as written (the wire's `output_limit`).
    output_limit_name: str = "the output token limit"

    @property
    def max_cost(self) -> Cost:
        """The most one attempt of this request can cost (see preflight.worst_cost)."""
        worst = self.worst
        if not isinstance(worst, Cost):
            worst = worst()
            object.__setattr__(self, "worst", worst)  # frozen: worked out once, then kept
        return worst

    def output_allowance(self, n: int = 1) -> int | None:
        """The most output tokens the request allows over its `n` choices: its output limit
        each, else what the context window leaves after the prompt; None when neither is
        known."""
        if self.max_output_tokens is not None:
            per_choice = self.max_output_tokens
        elif self.context_window is not None:
            per_choice = max(0, self.context_window - self.prompt_tokens)
        else:
            return None
        return per_choice * max(1, n)

    def to_dict(self) -> dict[str, Any]:
        return {
            "model": self.model,
            "api": self.api,
            "messages": self.messages,
            "prompt_tokens": self.prompt_tokens,
            "max_output_tokens": self.max_output_tokens,
            "context_window": self.context_window,
            "max_cost_usd": None if self.max_cost.usd is None else float(self.max_cost.usd),
            "price_source": self.max_cost.source,
            "body": self.body,
        }


@dataclass
class SessionStats:
    """Usage across the calls of a Session (the original plan's usage tracker)."""

    calls: int = 0
    failures: int = 0
    usage: Usage = field(default_factory=Usage)
    cost_usd: Decimal = Decimal(0)
    unpriced_calls: int = 0  # calls whose cost is unknown: not counted in cost_usd
    latency_ms: float = 0.0
    # Calls answered from a recorded line (--replay, --cache): nothing sent, nothing spent,
    # so in no other figure; `saved_usd` is what their recorded calls cost.
    replayed: int = 0
    saved_usd: Decimal = Decimal(0)

    @property
    def average_tokens(self) -> float:
        return self.usage.total / self.calls if self.calls else 0.0

    @property
    def average_latency_ms(self) -> float:
        return self.latency_ms / self.calls if self.calls else 0.0

    def to_dict(self) -> dict[str, Any]:
        return {
            "calls": self.calls,
            "failures": self.failures,
            "usage": self.usage.to_dict(),
            "average_tokens_per_call": round(self.average_tokens, 1),
            "average_latency_ms": round(self.average_latency_ms, 1),
            "cost_usd": float(self.cost_usd),
            "unpriced_calls": self.unpriced_calls,
            "replayed": self.replayed,
            "saved_usd": float(self.saved_usd),
        }

    def add(
        self, usage: Usage, cost: Cost, latency_ms: float, *, ok: bool, replayed: bool = False
    ) -> None:
        """Count one finished call (one answered from a recorded line apart)."""
        if replayed:
            self.replayed += 1
            self.saved_usd += cost.usd or Decimal(0)
            return
        self.calls += 1
        self.failures += 0 if ok else 1
        self.usage = self.usage + usage
        self.latency_ms += latency_ms
        if cost.usd is None:
            if usage:
                self.unpriced_calls += 1
        else:
            self.cost_usd += cost.usd
