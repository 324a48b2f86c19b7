"""The batch input files: every row rendered exactly as a live call would be (the Session's own
preflight, so the same body and request_sha256), written as Batch API JSONL lines and split into
parts that each stay within the API's limits, with each row's fingerprint (the local record
collect checks the server against) and the worst case of the whole batch at the batch price
(what a budget must allow before anything is uploaded). Nothing is sent here.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING, BinaryIO

from runner.errors import (
    BudgetExceeded,
    ConfigError,
    DatasetError,
    InputsInvalid,
    RunnerError,
    TemplateError,
)
from runner.ledger.fingerprint import Fingerprinter
from runner.providers import wire_api
from runner.types import Usage

if TYPE_CHECKING:
    from runner.engine.loop import Item
    from runner.engine.results import Preflight
    from runner.engine.session import Session
    from runner.pricing import PriceBook
    from runner.spec.model import PromptSpec

__all__ = [
    "DEFAULT_LIMITS",
    "BatchLimits",
    "BuiltInput",
    "InputPart",
    "build_input",
]

# Request fields a batch cannot carry: the Batch API answers whole, never streamed. Neither is
# part of request_sha256, so the fingerprint stays the live call's.
_TRANSPORT_FIELDS = ("stream", "stream_options")
# A row whose variables are bad fails alone (as in the live row loop): nothing is sent for it.
_ROW_ERRORS = (InputsInvalid, TemplateError)


@dataclass(frozen=True)
class BatchLimits:
    """What one batch may hold (OpenAI: 50,000 requests and 200 MB per input file)."""

    max_requests: int = 50_000
    max_bytes: int = 200 * 1024 * 1024

    def __post_init__(self) -> None:
        if self.max_requests < 1 or self.max_bytes < 1:
            raise ValueError("batch limits must be positive")


DEFAULT_LIMITS = BatchLimits()


@dataclass
class InputPart:
    """One input file: its path, the row keys in it (in order), each row's request
    fingerprint (in the same order) and its size."""

    path: Path
    rows: list[str] = field(default_factory=list)
    fingerprints: list[str] = field(default_factory=list)
    bytes: int = 0

    def local_rows(self) -> list[tuple[str, str | None]]:
        return list(zip(self.rows, self.fingerprints, strict=True))


@dataclass
class BuiltInput:
    """The input files of one data set, the model they ask, the rows left out for bad
    variables (with why), and the batch's worst case at the batch price: `max_cost_usd`, the
    sum over the rows sent, or None when some row's is unknown (`unbounded` says why)."""

    parts: list[InputPart]
    model: str
    endpoint: str  # the `url` of every line, and the batch's endpoint (the wire's)
    failed: list[tuple[Item, RunnerError]] = field(default_factory=list)
    max_cost_usd: Decimal | None = Decimal(0)
    unbounded: str | None = None

    @property
    def rows(self) -> int:
        return sum(len(p.rows) for p in self.parts)

    def check_budget(self, limit: Decimal | None) -> None:
        """Refuse, before anything is uploaded, a batch whose worst case could pass `limit`:
        BudgetExceeded, or ConfigError when some row's worst case is unknown."""
        if limit is None or not self.parts:
            return
        if self.max_cost_usd is None:
            raise ConfigError(
                f"a budget of ${limit} is set, but the worst-case cost of a row of {self.model} "
                f"is unknown ({self.unbounded}): set the spec's output token limit, or a price "
                "for the model in runner.yaml; nothing was uploaded"
            )
        if self.max_cost_usd > limit:
            raise BudgetExceeded(
                f"the batch could cost up to ${self.max_cost_usd:.6f} at the batch price "
                f"({self.rows} rows, each with every output token it allows), more than the "
                f"budget of ${limit}; nothing was uploaded. Raise the budget (--max-cost, or "
                "budget: max_cost_usd in the spec), lower the spec's output token limit, or send "
                "fewer rows"
            )


def batch_line(key: str, body: dict[str, object], endpoint: str) -> bytes:
    """One request of a batch input file, to `endpoint` (the wire's batch endpoint)."""
    sendable = {k: v for k, v in body.items() if k not in _TRANSPORT_FIELDS}
    line = {"custom_id": key, "method": "POST", "url": endpoint, "body": sendable}
    return json.dumps(line, ensure_ascii=False, separators=(",", ":")).encode() + b"\n"


def build_input(
    session: Session,
    spec: PromptSpec,
    items: Iterable[Item],
    directory: Path,
    *,
    limits: BatchLimits = DEFAULT_LIMITS,
) -> BuiltInput:
    """Render every item with the Session's preflight (the body a live call sends) and write the
    input files into `directory` (part-1.jsonl, ...).

    A row too large for any batch file, or a key seen twice (custom_id must be unique), is a
    DatasetError: the data set must change, and nothing has been sent.
    """
    settings = session.settings_for(spec)
    model = settings.model
    wire = wire_api(spec.provider.api)
    built = BuiltInput(parts=[], model=model, endpoint=wire.capabilities.batch_endpoint)
    book = session.pricebook.for_batch()
    base_url = None if settings.mock else settings.base_url
    n = spec.choices
    fingerprint = Fingerprinter(wire.static_keys)
    seen: set[str] = set()
    out: BinaryIO | None = None
    part: InputPart | None = None
    try:
        for item in items:
            if item.key in seen:
                raise DatasetError(
                    f"row {item.key!r} (line {item.line}): the key is used twice; a batch needs "
                    "a unique key per row (give each row its own `id`)",
                    line=item.line,
                )
            seen.add(item.key)
            try:
                pre = session.preflight(spec, item.vars)
            except _ROW_ERRORS as exc:
                built.failed.append((item, exc))
                continue
            line = batch_line(item.key, pre.body, built.endpoint)
            if len(line) > limits.max_bytes:
                raise DatasetError(
                    f"row {item.key!r} (line {item.line}): its request is {len(line):,} bytes, "
                    f"more than a batch input file may hold ({limits.max_bytes:,} bytes); "
                    "shorten it or run it live",
                    line=item.line,
                )
            if (
                part is None
                or len(part.rows) >= limits.max_requests
                or part.bytes + len(line) > limits.max_bytes
            ):
                if out is not None:
                    out.close()
                part = InputPart(directory / f"part-{len(built.parts) + 1}.jsonl")
                built.parts.append(part)
                out = part.path.open("wb")
            assert out is not None
            out.write(line)
            part.rows.append(item.key)
            part.fingerprints.append(fingerprint(pre.body))
            part.bytes += len(line)
            _add_worst_case(built, book, pre, n, base_url)
    finally:
        if out is not None:
            out.close()
    return built


def _add_worst_case(
    built: BuiltInput, book: PriceBook, pre: Preflight, n: int, base_url: str | None
) -> None:
    """Add one row's worst case at the batch price: its prompt and every output token it
    allows (a batch is never retried, so one attempt is the most it can use)."""
    if built.max_cost_usd is None:
        return
    allowed = pre.output_allowance(n)
    if allowed is None:
        built.max_cost_usd, built.unbounded = None, pre.max_cost.source
        return
    cost = book.cost(
        Usage(prompt=pre.prompt_tokens, completion=allowed), pre.model, base_url=base_url
    )
    if cost.usd is None:
        built.max_cost_usd, built.unbounded = None, cost.source
        return
    built.max_cost_usd += cost.usd
