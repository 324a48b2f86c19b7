"""genai-prices' bundled database, read for runner: find a model (by the provider behind a base
URL), read its rates back where the price is linear, and turn what runner needs of a model
into a plan that runner.pricing._cache keeps on disk. The only module importing genai_prices.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from runner.pricing._cache import Plan, PlannedPrice, Unplannable

if TYPE_CHECKING:
    from genai_prices.types import ModelInfo, ModelPrice, Provider

__all__ = ["Entry", "find_in_database", "linear_rates", "plan_of", "rate"]

_OPENAI_HOST = "api.openai.com"


@dataclass(frozen=True)
class Entry:
    """A model found in genai-prices, and how it was found."""

    provider: Provider
    model: ModelInfo
    source: str


def find_in_database(model: str, base_url: str | None) -> Entry | None:
    """Find `model` in genai-prices for the provider behind `base_url` (OpenAI by default)."""
    from urllib.parse import urlsplit

    import genai_prices
    from genai_prices.data_snapshot import get_snapshot

    snapshot = get_snapshot()
    source = f"genai-prices {genai_prices.__version__}"
    provider_id: str | None = "openai"
    if base_url is not None and urlsplit(base_url).hostname != _OPENAI_HOST:
        try:
            provider_id = snapshot.find_provider(None, None, base_url).id
        except LookupError:
            # An unknown server (a proxy, a local server): trust the model name alone.
            provider_id, source = None, f"{source} (matched by model name)"
    try:
        provider, info = snapshot.find_provider_model(model, None, provider_id, None)
    except LookupError:
        return None
    return Entry(provider=provider, model=info, source=source)


def linear_rates(prices: ModelPrice) -> tuple[Decimal, Decimal, Decimal] | None:
    """The per-million rates for (uncached input, cached input, output), read back from
    genai-prices itself, when the price is linear in those counts; None otherwise."""
    from genai_prices import Usage as GUsage
    from genai_prices.types import TieredPrices

    if any(isinstance(value, TieredPrices) for value in vars(prices).values()):
        return None
    million = 1_000_000

    def total(**counts: int) -> Decimal:
        return Decimal(prices.calc_price(GUsage(**counts))["total_price"])

    try:
        if total() != 0:  # a per-request fee
            return None
        rate_in = total(input_tokens=million)
        rate_cached = total(input_tokens=million, cache_read_tokens=million)
        rate_out = total(output_tokens=million)
    except ValueError:
        return None
    return rate_in, rate_cached, rate_out


def rate(value: Any) -> Decimal | None:
    if value is None:
        return None
    if isinstance(value, Decimal):
        return value
    base = getattr(value, "base", None)  # TieredPrices: the price below the first tier
    return base if isinstance(base, Decimal) else None


def plan_of(entry: Entry | None) -> Plan:
    """The plan of a model found in genai-prices (None: not found)."""
    from genai_prices.types import StartDateConstraint, TimeOfDateConstraint

    if entry is None:
        return Plan(found=False)
    info = entry.model
    listed = info.prices
    conditional = isinstance(listed, list)
    pairs = (
        [(p.constraint, p.prices) for p in listed] if isinstance(listed, list) else [(None, listed)]
    )
    planned = []
    for constraint, prices in pairs:
        extra: dict[str, Any] = {}
        if isinstance(constraint, StartDateConstraint):
            extra["start_date"] = constraint.start_date
        elif isinstance(constraint, TimeOfDateConstraint):
            extra["start_time"] = _utc_time(constraint.start_time)
            extra["end_time"] = _utc_time(constraint.end_time)
        elif constraint is not None:  # a constraint this plan cannot evaluate: no plan
            raise Unplannable(type(constraint).__name__)
        shown = tuple(
            rate(getattr(prices, name, None))
            for name in ("input_mtok", "output_mtok", "cache_read_mtok")
        )
        planned.append(PlannedPrice(shown, linear_rates(prices), **extra))  # type: ignore[arg-type]
    return Plan(
        found=True,
        source=entry.source,
        context_window=info.context_window,
        conditional=conditional,
        prices=tuple(planned),
    )


def _utc_time(value: time) -> time:
    if value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return datetime.combine(date(1970, 1, 1), value).astimezone(UTC).timetz()
