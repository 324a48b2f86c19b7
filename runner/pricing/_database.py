"""genai-prices' bundled database, read for runner: find a model (by the provider behind a base
URL), and read its rates back where the price is linear. The only module importing genai_prices.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from genai_prices.types import ModelInfo, ModelPrice, Provider

__all__ = ["Entry", "find_in_database", "linear_rates", "rate"]

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
