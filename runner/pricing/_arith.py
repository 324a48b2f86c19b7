"""The arithmetic of prices: `Rates` (three per-million rates priced at once), the linear sum
genai-prices itself makes, and the small conversions PriceBook needs (a request time, usage
counts, a price renamed or given a context window)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal

from runner.types import Price, Usage

__all__ = [
    "BATCH_SHARE",
    "MILLION",
    "Rates",
    "counts",
    "halved",
    "linear_usd",
    "renamed",
    "timestamp",
    "with_window",
]

MILLION = Decimal(1_000_000)
BATCH_SHARE = Decimal("0.5")  # OpenAI's Batch API discount, where no batch price is listed


@dataclass(frozen=True)
class Rates:
    """A model's price as three rates in USD per million tokens, to price token sums at once
    (`runner report --price-as`): uncached input, cached input (the input rate when the model
    lists no cached price) and output. `exact` is False for a price that is not linear in the
    tokens (tiers, a fee per request): its base rates are given, and costs are estimates."""

    model: str
    input: Decimal
    cached_input: Decimal
    output: Decimal
    source: str
    cached_listed: bool
    exact: bool = True

    def cost(self, uncached: Decimal, cached: Decimal, completion: Decimal) -> Decimal:
        """What these token counts cost (counts may be fractions: re-counted estimates)."""
        return (
            uncached * self.input + cached * self.cached_input + completion * self.output
        ) / MILLION


def linear_usd(
    rates: tuple[Decimal, Decimal, Decimal], prompt: int, cached: int, completion: int
) -> Decimal:
    """The same terms that genai-prices sums for a linear price (unpriced ones left out, so the
    Decimal keeps the exponent genai-prices would give it)."""
    counts = (prompt - cached, cached, completion)
    if rates[1] == rates[0]:  # cached input is not discounted: one input term
        counts = (prompt, 0, completion)
    usd = Decimal(0)
    for rate_, count in zip(rates, counts, strict=True):
        if rate_:
            usd += rate_ * count / MILLION
    return usd


def timestamp(at: datetime | None) -> datetime:
    if at is None:
        return datetime.now(tz=UTC)
    if not isinstance(at, datetime):
        raise TypeError(f"at must be a datetime, not {type(at).__name__}")
    return at if at.tzinfo is not None else at.replace(tzinfo=UTC)


def counts(usage: Usage) -> tuple[int, int, int]:
    if type(usage) is Usage:  # the usual case, checked at once: plain non-negative ints
        prompt, completion, cached, reasoning = (
            usage.prompt,
            usage.completion,
            usage.cached,
            usage.reasoning,
        )
        if (
            type(prompt) is int
            and type(completion) is int
            and type(cached) is int
            and type(reasoning) is int
            and prompt >= 0
            and completion >= 0
            and cached >= 0
            and reasoning >= 0
        ):
            return prompt, min(cached, prompt), completion
    if not isinstance(usage, Usage):
        raise TypeError(f"usage must be a runner.types.Usage, not {type(usage).__name__}")
    for name in ("prompt", "completion", "cached", "reasoning"):
        value = getattr(usage, name)
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise ValueError(f"usage.{name} must be a non-negative integer, not {value!r}")
    # Cached tokens are a subset of prompt tokens; a server that says otherwise is not
    # believed beyond the prompt.
    return usage.prompt, min(usage.cached, usage.prompt), usage.completion


def halved(rates: Rates) -> Rates:
    """The Batch API's price where no batch price is listed: half the live one."""
    return Rates(
        rates.model,
        rates.input * BATCH_SHARE,
        rates.cached_input * BATCH_SHARE,
        rates.output * BATCH_SHARE,
        f"{rates.source}, batch (50%)",
        rates.cached_listed,
        rates.exact,
    )


def with_window(price: Price, window: int) -> Price:
    return Price(
        model=price.model,
        input=price.input,
        output=price.output,
        cached_input=price.cached_input,
        source=price.source,
        context_window=window,
    )


def renamed(price: Price, model: str) -> Price:
    return Price(
        model=model,
        input=price.input,
        output=price.output,
        cached_input=price.cached_input,
        source=price.source,
        context_window=price.context_window,
    )
