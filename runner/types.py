"""Value shapes that cross family boundaries: messages, usage, attempts, completions, prices and
costs (the ledger line's shape is runner.ledger.line). Plain data only: no I/O and no
third-party imports.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from decimal import Decimal
from typing import Any, TypeVar

__all__ = [
    "Attempt",
    "Choice",
    "Completion",
    "Cost",
    "Message",
    "Price",
    "StreamDelta",
    "Usage",
]

# A chat message exactly as the Chat Completions API takes it ({"role": ..., "content": ...}).
Message = dict[str, Any]

_C = TypeVar("_C", bound=type)


class _Factory:
    """The default of a parameter whose field has a default_factory (shown as dataclasses
    shows it)."""

    def __repr__(self) -> str:
        return "<factory>"


_FACTORY = _Factory()


def quick_init(cls: _C) -> _C:
    """Give a frozen dataclass an `__init__` that stores the fields in the instance's
    `__dict__`: the same parameters, defaults, factories and `__post_init__` call as the
    dataclass's own, which sets each field through `object.__setattr__` (the way past its
    frozen `__setattr__`) at about 0.1 us more per field. A call builds some hundred fields of
    these records (usage, costs, the completion, the result). The instance stays frozen: only
    `__init__` changes. The dataclass's own is kept as `_dataclass_init` (the tests compare
    the two). For plain frozen dataclasses only: no slots, InitVar or ClassVar."""
    params = cls.__dataclass_params__  # type: ignore[attr-defined]
    fields = dataclasses.fields(cls)
    if (
        not (params.frozen and params.init)
        or "__slots__" in cls.__dict__
        or len(fields) != len(cls.__dataclass_fields__)  # type: ignore[attr-defined]
    ):
        raise TypeError(f"quick_init takes a plain frozen dataclass, not {cls.__name__}")
    namespace: dict[str, Any] = {"_FACTORY": _FACTORY}
    positional: list[str] = []
    keyword: list[str] = []
    body = ["_d = self.__dict__"]
    for f in fields:
        if f.default is not dataclasses.MISSING:
            namespace[f"_default_{f.name}"] = f.default
            value = f"_default_{f.name}"
        elif f.default_factory is not dataclasses.MISSING:
            namespace[f"_factory_{f.name}"] = f.default_factory
            value = "_FACTORY"
        else:
            value = ""
        if f.init:
            (keyword if f.kw_only else positional).append(f"{f.name}={value}" if value else f.name)
            if value == "_FACTORY":
                body.append(f"if {f.name} is _FACTORY: {f.name} = _factory_{f.name}()")
            body.append(f"_d[{f.name!r}] = {f.name}")
        elif value == "_FACTORY":  # (with a plain default, the class attribute is read)
            body.append(f"_d[{f.name!r}] = _factory_{f.name}()")
    if hasattr(cls, "__post_init__"):
        body.append("self.__post_init__()")
    signature = ", ".join(["self", *positional, *(["*", *keyword] if keyword else [])])
    source = f"def __init__({signature}):\n" + "".join(f"    {line}\n" for line in body)
    exec(source, namespace)  # noqa: S102 - our own fields' names, as dataclasses does
    init = namespace["__init__"]
    original = cls.__init__  # type: ignore[misc]
    init.__qualname__ = f"{cls.__qualname__}.__init__"
    init.__module__ = cls.__module__
    init.__annotations__ = dict(original.__annotations__)
    cls._dataclass_init = original  # type: ignore[attr-defined]
    cls.__init__ = init  # type: ignore[misc]
    return cls


@quick_init
@dataclass(frozen=True)
class Usage:
    """Token counts of one or more attempts. `cached` and `reasoning` are subsets of `prompt`
    and `completion` respectively, as in OpenAI's usage object.

    `estimated`: some counts are local counts, not the server's (it sent no usage, or none
    that could be read: `unreadable` says why). `implausible`: what looks wrong in figures the
    server did send (kept as it said them); such usage is never priced.
    """

    prompt: int = 0
    completion: int = 0
    cached: int = 0
    reasoning: int = 0
    estimated: bool = False
    implausible: tuple[str, ...] = ()
    unreadable: str | None = None

    @property
    def total(self) -> int:
        return self.prompt + self.completion

    def __add__(self, other: Usage) -> Usage:
        return Usage(
            self.prompt + other.prompt,
            self.completion + other.completion,
            self.cached + other.cached,
            self.reasoning + other.reasoning,
            self.estimated or other.estimated,
            self.implausible + other.implausible,
            self.unreadable or other.unreadable,
        )

    def __bool__(self) -> bool:
        return bool(self.prompt or self.completion or self.estimated or self.implausible)

    def filled(self, prompt: int, completion: int) -> Usage:
        """These local counts in place of missing or unreadable ones, marked estimated."""
        return Usage(prompt, completion, estimated=True, unreadable=self.unreadable)

    @classmethod
    def read(
        cls,
        usage: Any,
        fields: tuple[tuple[str, str | None, str], ...],
        *,
        total_key: str | None = None,
    ) -> Usage | None:
        """Read a usage object whose counts sit where `fields` says: (our name, the object
        holding it or None for the top level, its key there), for each of prompt,
        completion, cached and reasoning. None when there is none. Counts that are not whole
        numbers (a string, a bool, 12.5, a holder that is not an object) make the whole object
        unreadable: an `estimated` Usage of zeros saying why, for the caller to count locally.
        A total (`total_key`) that is not prompt + completion is flagged `implausible`."""
        if usage is None or usage == {}:
            return None
        if type(usage) is not dict and not isinstance(usage, Mapping):  # a dict: no ABC check
            return cls.not_read(f"the server's usage is {_shown(usage)}, not an object")
        counts: dict[str, int] = {}
        for name, where, key in fields:
            holder: Any = usage if where is None else usage.get(where)
            if holder is None:
                holder = {}
            if type(holder) is not dict and not isinstance(holder, Mapping):
                return cls.not_read(f"the server's usage.{where} is {_shown(holder)}")
            value = holder.get(key)
            if value is None:
                counts[name] = 0
                continue
            number = _whole(value)
            if number is None:
                label = key if where is None else f"{where}.{key}"
                return cls.not_read(f"the server's usage.{label} is {_shown(value)}")
            counts[name] = number
        found = cls(
            counts.get("prompt", 0),
            counts.get("completion", 0),
            counts.get("cached", 0),
            counts.get("reasoning", 0),
        )
        total = None if total_key is None else _whole(usage.get(total_key))
        if total is not None and total != found.total:
            flag = f"{total_key} {total} ≠ prompt + completion ({found.total})"
            return replace(found, implausible=(flag,))
        return found

    @classmethod
    def not_read(cls, why: str) -> Usage:
        """Usage that must be counted locally: zeros, `estimated`, and why."""
        return cls(estimated=True, unreadable=why)

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "prompt": self.prompt,
            "completion": self.completion,
            "cached": self.cached,
            "reasoning": self.reasoning,
            "total": self.total,
        }
        if self.estimated:
            out["estimated"] = True
        if self.implausible:
            out["implausible"] = list(self.implausible)
        if self.unreadable:
            out["unreadable"] = self.unreadable
        return out


def _whole(value: Any) -> int | None:
    """An integer count from JSON: ints, and floats with an integral value (12.0)."""
    if type(value) is int:
        return value
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float) and math.isfinite(value) and value.is_integer():
        return int(value)
    return None


def _shown(value: Any) -> str:
    text = repr(value) if isinstance(value, str | int | float | bool) else type(value).__name__
    return text if len(text) <= 40 else text[:37] + "..."


@dataclass(frozen=True)
class StreamDelta:
    """A piece of a streamed reply, handed to the caller as it arrives."""

    choice: int
    text: str = ""
    refusal: str = ""
    # True on the first delta of a new attempt after an earlier attempt had shown text:
    # whoever displays the stream must say that the answer starts over.
    restart: bool = False


@quick_init
@dataclass(frozen=True)
class Choice:
    """One choice of a completion, whole (a finished stream is assembled into the same shape)."""

    index: int
    text: str | None
    finish_reason: str | None
    refusal: str | None = None
    # Tool calls in runner's neutral shape, whatever the wire API: {"id", "name", "arguments"},
    # the arguments as the JSON text the model wrote.
    tool_calls: tuple[dict[str, Any], ...] = ()


@quick_init
@dataclass(frozen=True)
class Completion:
    """A finished completion in runner's neutral shape, whatever wire API it came from: one
    HTTP request (one attempt)."""

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


@quick_init
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


@quick_init
@dataclass(frozen=True)
class Cost:
    """The cost of some usage. `usd` is None when the price is unknown: never 0 by default."""

    usd: Decimal | None
    source: str  # as Price.source, or "unknown"
    estimated: bool = False  # mock mode, or priced from local token counts
    reason: str | None = None  # why it is estimated (local counts) or unknown (implausible usage)

    @property
    def known(self) -> bool:
        return self.usd is not None

    def __str__(self) -> str:
        if self.usd is None:
            return "unknown"
        return f"${self.usd:.6f}"

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "usd": None if self.usd is None else float(self.usd),
            "source": self.source,
            "estimated": self.estimated,
        }
        if self.reason:
            out["reason"] = self.reason
        return out
