"""Value shapes that cross module boundaries: messages, usage, attempts, completions, prices, costs,
and the ledger line. Plain data only: no I/O and no third-party imports.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, Literal, TypedDict

__all__ = [
    "LEDGER_VERSION",
    "Attempt",
    "Choice",
    "Completion",
    "Cost",
    "LedgerRecord",
    "Message",
    "Price",
    "StreamDelta",
    "Usage",
]

# A chat message exactly as the Chat Completions API takes it ({"role": ..., "content": ...}).
Message = dict[str, Any]


@dataclass(frozen=True)
class Usage:
    """Token counts as the server reported them. `cached` and `reasoning` are subsets of
    `prompt` and `completion` respectively, as in OpenAI's usage object."""

    prompt: int = 0
    completion: int = 0
    cached: int = 0
    reasoning: int = 0

    @property
    def total(self) -> int:
        return self.prompt + self.completion

    def __add__(self, other: Usage) -> Usage:
        return Usage(
            self.prompt + other.prompt,
            self.completion + other.completion,
            self.cached + other.cached,
            self.reasoning + other.reasoning,
        )

    def __bool__(self) -> bool:
        return bool(self.prompt or self.completion)

    @classmethod
    def from_api(cls, usage: Mapping[str, Any] | None) -> Usage | None:
        """Read OpenAI's `usage` object; None when the server sent none. ValueError when a
        count is not a non-negative whole number (a server's bug must not pass for usage)."""
        if not usage:
            return None
        prompt_details = usage.get("prompt_tokens_details") or {}
        completion_details = usage.get("completion_tokens_details") or {}
        if not isinstance(prompt_details, Mapping) or not isinstance(completion_details, Mapping):
            raise ValueError("the usage details are not objects")
        return cls(
            prompt=_count(usage.get("prompt_tokens"), "prompt_tokens"),
            completion=_count(usage.get("completion_tokens"), "completion_tokens"),
            cached=_count(prompt_details.get("cached_tokens"), "cached_tokens"),
            reasoning=_count(completion_details.get("reasoning_tokens"), "reasoning_tokens"),
        )

    def to_dict(self) -> dict[str, int]:
        return {
            "prompt": self.prompt,
            "completion": self.completion,
            "cached": self.cached,
            "reasoning": self.reasoning,
            "total": self.total,
        }


def _count(value: Any, name: str) -> int:
    """A token count as servers send it: an integer, a whole float, or digits in a string."""
    if value is None:
        return 0
    if isinstance(value, str) and value.isascii() and value.isdigit() and len(value) <= 18:
        return int(value)
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if isinstance(value, int) and not isinstance(value, bool) and 0 <= value < 2**63:
        return value
    raise ValueError(f"{name} is {str(value)[:40]!r}, not a token count")


@dataclass(frozen=True)
class StreamDelta:
    """A piece of a streamed reply, handed to the caller as it arrives."""

    choice: int
    text: str = ""
    refusal: str = ""
    # True on the first delta of a new attempt after an earlier attempt had shown text:
    # whoever displays the stream must say that the answer starts over.
    restart: bool = False


@dataclass(frozen=True)
class Choice:
    """One choice of a completion, whole (a finished stream is assembled into the same shape)."""

    index: int
    text: str | None
    finish_reason: str | None
    refusal: str | None = None
    tool_calls: tuple[dict[str, Any], ...] = ()
    function_call: dict[str, Any] | None = None  # the legacy single function call

    def message(self) -> Message:
        """The assistant message as the API would echo it back in a follow-up request."""
        msg: Message = {"role": "assistant", "content": self.text}
        if self.refusal:
            msg["refusal"] = self.refusal
        if self.tool_calls:
            msg["tool_calls"] = [dict(c) for c in self.tool_calls]
        if self.function_call:
            msg["function_call"] = dict(self.function_call)
        return msg


@dataclass(frozen=True)
class Completion:
    """A finished chat completion, from one HTTP request (one attempt)."""

    id: str
    model: str  # the model that served it, as the server named it
    choices: tuple[Choice, ...]
    usage: Usage | None
    request_id: str | None = None  # x-request-id
    latency_ms: float = 0.0
    ttft_ms: float | None = None  # streaming only: time to the first content delta
    system_fingerprint: str | None = None
    # Response headers that the rate limiter reads (x-ratelimit-*), lower-case names.
    rate_headers: Mapping[str, str] = field(default_factory=dict)

    @property
    def text(self) -> str | None:
        return self.choices[0].text if self.choices else None


@dataclass(frozen=True)
class Attempt:
    """One try of a call, as the ledger records it."""

    number: int  # 1-based
    outcome: str  # "ok" or an error kind (runner.errors: RunnerError.kind)
    waited_s: float = 0.0  # sleep before this attempt (backoff, Retry-After, rate limiter)
    latency_ms: float = 0.0
    status: int | None = None  # HTTP status when there was one
    usage: Usage | None = None  # tokens this attempt consumed, when the server reported them
    request_id: str | None = None
    message: str | None = None  # the error message, for failed attempts

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "n": self.number,
            "outcome": self.outcome,
            "waited_s": round(self.waited_s, 3),
            "latency_ms": round(self.latency_ms, 1),
        }
        if self.status is not None:
            out["status"] = self.status
        if self.usage is not None:
            out["usage"] = self.usage.to_dict()
        if self.request_id:
            out["request_id"] = self.request_id
        if self.message:
            out["message"] = self.message
        return out


@dataclass(frozen=True)
class Price:
    """What a model costs, in USD per million tokens, and where that figure came from."""

    model: str
    input: Decimal
    output: Decimal
    cached_input: Decimal | None  # None: cached tokens are billed as ordinary input
    source: str  # "genai-prices 0.2.3" or "override: path/to/runner.yaml"
    context_window: int | None = None


@dataclass(frozen=True)
class Cost:
    """The cost of some usage. `usd` is None when the price is unknown: never 0 by default."""

    usd: Decimal | None
    source: str  # as Price.source, or "unknown"
    estimated: bool = False  # True for mock-mode calls: what the real model would have cost

    @property
    def known(self) -> bool:
        return self.usd is not None

    def __str__(self) -> str:
        if self.usd is None:
            return "unknown"
        return f"${self.usd:.6f}"

    def to_dict(self) -> dict[str, Any]:
        return {
            "usd": None if self.usd is None else float(self.usd),
            "source": self.source,
            "estimated": self.estimated,
        }


# --- the ledger line ------------------------------------------------------------------------

LEDGER_VERSION = 1

Status = Literal["ok", "error", "invalid_output"]


class SpecRef(TypedDict):
    path: str  # relative to the git work tree root when in one, else as given
    name: str
    sha256: str
    commit: str | None
    dirty: bool | None  # None outside git


class ErrorInfo(TypedDict, total=False):
    kind: str
    type: str  # the exception class name
    status: int
    message: str
    errors: list[str]  # validation errors for invalid_output


class LedgerRecord(TypedDict, total=False):
    """One call: one line of runs/ledger.jsonl. Documented field by field in docs/ledger.md."""

    v: int
    id: str  # time-sortable unique id
    ts: str  # UTC, ISO 8601 with milliseconds and Z
    spec: SpecRef
    request_sha256: str
    case: str | None
    row: str | None
    model: str  # asked for
    served_model: str | None
    params: dict[str, Any]
    vars: dict[str, Any] | None
    messages: list[Message] | None
    status: Status
    output: dict[str, Any] | None  # {"text": ..., "json": ...}
    error: ErrorInfo | None
    attempts: list[dict[str, Any]]
    usage: dict[str, Any]  # server-reported sums over attempts, plus "estimated_prompt"
    cost: dict[str, Any]
    latency_ms: float
    ttft_ms: float | None
    request_id: str | None
    mock: bool
    content: bool  # absent or true; false when `ledger: {content: false}` withheld the content
