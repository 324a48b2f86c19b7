"""PriceBook(batch=True): genai-prices' own batch price where it lists one, half the live price
otherwise (overrides included), each saying so in cost.source; unknown stays unknown."""

from __future__ import annotations

from decimal import Decimal

from runner.pricing import PriceBook
from runner.types import Usage

USAGE = Usage(prompt=1200, completion=300)


def test_the_listed_batch_price_is_used() -> None:
    live, batch = (
        PriceBook().cost(USAGE, "gpt-4o-mini"),
        PriceBook(batch=True).cost(USAGE, "gpt-4o-mini"),
    )
    assert batch.source == f"{live.source}, batch price"
    assert live.usd is not None and batch.usd == live.usd / 2  # gpt-4o-mini: exactly half


def test_cached_tokens_keep_their_listed_rate() -> None:
    # gpt-4.1-mini's batch variant halves input and output; cached input keeps its rate.
    usage = Usage(prompt=1000, completion=0, cached=1000)
    live = PriceBook().cost(usage, "gpt-4.1-mini").usd
    assert live is not None and PriceBook(batch=True).cost(usage, "gpt-4.1-mini").usd == live


def test_half_price_without_a_listed_batch_price() -> None:
    live = PriceBook().cost(USAGE, "gpt-3.5-turbo-16k")
    batch = PriceBook(batch=True).cost(USAGE, "gpt-3.5-turbo-16k")
    assert live.usd is not None and batch.usd == live.usd * Decimal("0.5")
    assert batch.source == f"{live.source}, batch (50%)"


def test_overrides_are_halved_and_kept_by_for_batch() -> None:
    book = PriceBook({"my-ft": {"input": 1, "output": 2}}, overrides_source="x/runner.yaml")
    cost = book.for_batch().cost(USAGE, "my-ft", estimated=True)
    assert cost.usd == Decimal("0.0009")  # (1200 * 1 + 300 * 2) / 1e6 / 2
    assert cost.source == "override: x/runner.yaml, batch (50%)" and cost.estimated
    assert book.cost(USAGE, "my-ft").usd == Decimal("0.0018")


def test_unknown_stays_unknown() -> None:
    cost = PriceBook(batch=True).cost(USAGE, "no-such-model")
    assert cost.usd is None and cost.source == "unknown"
