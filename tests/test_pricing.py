"""runner.pricing: genai-prices' bundled database plus user overrides; unknown is never 0.

Database figures (USD per million tokens, genai-prices' bundled data): gpt-4o-mini 0.15 input,
0.075 cached input, 0.60 output; gpt-4o 2.50 / 1.25 / 10; gpt-4o-2024-05-13 5 / - / 15;
o3-mini 1.10 / 0.55 / 4.40; o3 10 / 0.50 / 40 before 2025-06-10 and 2 / 0.50 / 8 from then;
groq llama-3.1-8b-instant 0.05 / - / 0.08; fine-tuned gpt-4o-mini-2024-07-18 0.30 / - / 1.20.
"""

from __future__ import annotations

import socket
import subprocess
import sys
from datetime import UTC, datetime
from decimal import Decimal
from importlib.metadata import version
from typing import Any

import genai_prices
import pytest
from genai_prices.data_snapshot import get_snapshot

from runner.pricing import PriceBook, _database
from runner.types import Cost, Price, Usage

DB = f"genai-prices {version('genai-prices')}"
BY_NAME = f"{DB} (matched by model name)"
USAGE = Usage(prompt=1000, completion=100, cached=200)


@pytest.fixture(scope="module")
def book() -> PriceBook:
    return PriceBook()


# --- database prices ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("model", "usage", "usd"),
    [
        # 800 * 0.15 + 200 * 0.075 + 100 * 0.60 = 195 USD per million tokens
        ("gpt-4o-mini", USAGE, "0.000195"),
        # dated snapshot of the same model: same entry in genai-prices
        ("gpt-4o-mini-2024-07-18", USAGE, "0.000195"),
        # 800 * 2.5 + 200 * 1.25 + 100 * 10 = 3250
        ("gpt-4o", USAGE, "0.00325"),
        # an older snapshot with its own, higher price and no cache discount: 1000 * 5 + 100 * 15
        ("gpt-4o-2024-05-13", USAGE, "0.0065"),
        # reasoning tokens are inside completion tokens: 1000 * 1.1 + 500 * 4.4
        ("o3-mini", Usage(prompt=1000, completion=500, reasoning=400), "0.0033"),
        ("o3-mini", Usage(prompt=1000, completion=500, reasoning=0), "0.0033"),
        # OpenAI's real fine-tuned model names: 1000 * 0.30 + 100 * 1.20
        ("ft:gpt-4o-mini-2024-07-18:my-org:custom:abc123", USAGE, "0.00042"),
        ("gpt-4o-mini", Usage(), "0"),
        # more cached than prompt tokens is not believed beyond the prompt: 100 * 0.075
        ("gpt-4o-mini", Usage(prompt=100, cached=500), "0.0000075"),
    ],
)
def test_database_costs(book: PriceBook, model: str, usage: Usage, usd: str) -> None:
    cost = book.cost(usage, model)
    assert cost == Cost(usd=Decimal(usd), source=DB, estimated=False)


def test_cost_agrees_with_calc_price(book: PriceBook) -> None:
    expected = genai_prices.calc_price(
        genai_prices.Usage(input_tokens=1000, cache_read_tokens=200, output_tokens=100),
        "gpt-4o-mini",
        provider_id="openai",
    ).total_price
    assert expected == Decimal("0.000195")
    assert book.cost(USAGE, "gpt-4o-mini").usd == expected


def test_every_database_price_is_computed_as_genai_prices_does() -> None:
    """The fast path (linear prices) and the calc_price path give the same Decimal everywhere."""
    book = PriceBook()
    at = datetime(2025, 9, 1, tzinfo=UTC)
    checked = 0
    for provider in get_snapshot().providers:
        for model in provider.models:
            entry = _database.Entry(provider=provider, model=model, source=DB)
            for prompt, cached, completion in [(1000, 200, 100), (300_000, 250_000, 12_345)]:
                usage = genai_prices.Usage(
                    input_tokens=prompt, cache_read_tokens=cached, output_tokens=completion
                )
                try:
                    expected = model.calc_price(usage, provider, genai_request_timestamp=at)
                except ValueError:
                    continue  # genai-prices itself cannot price this usage for this model
                got = book._database_cost(entry, prompt, cached, completion, at)
                assert got == expected.total_price, (provider.id, model.id)
                checked += 1
    assert checked > 1000


@pytest.mark.parametrize(
    ("at", "usd"),
    [
        (datetime(2025, 1, 1, tzinfo=UTC), "0.014"),  # 1000 * 10 + 100 * 40
        (datetime(2025, 7, 1, tzinfo=UTC), "0.0028"),  # 1000 * 2 + 100 * 8
        (datetime(2025, 7, 1), "0.0028"),  # naive: taken as UTC
    ],
)
def test_prices_in_force_at_the_time(book: PriceBook, at: datetime, usd: str) -> None:
    assert book.cost(Usage(prompt=1000, completion=100), "o3", at=at).usd == Decimal(usd)


def test_unknown_model_is_unknown_never_zero(book: PriceBook) -> None:
    cost = book.cost(USAGE, "my-local-model")
    assert cost == Cost(usd=None, source="unknown", estimated=False)
    assert str(cost) == "unknown"
    assert not cost.known
    assert cost.to_dict() == {"usd": None, "source": "unknown", "estimated": False}
    assert book.price("my-local-model") is None
    # a fine-tune name genai-prices has no pattern for
    assert book.cost(USAGE, "ft:gpt-4o-mini:my-org::abc123").usd is None


def test_estimated_is_passed_through(book: PriceBook) -> None:
    assert book.cost(USAGE, "gpt-4o-mini", estimated=True) == Cost(
        usd=Decimal("0.000195"), source=DB, estimated=True
    )
    assert book.cost(USAGE, "nope", estimated=True) == Cost(None, "unknown", estimated=True)


def test_cost_to_dict(book: PriceBook) -> None:
    assert book.cost(USAGE, "gpt-4o-mini").to_dict() == {
        "usd": 0.000195,
        "source": DB,
        "estimated": False,
    }
    assert str(book.cost(USAGE, "gpt-4o-mini")) == "$0.000195"


@pytest.mark.parametrize(
    ("model", "base_url", "usd", "source"),
    [
        ("gpt-4o-mini", None, "0.000195", DB),
        ("gpt-4o-mini", "https://api.openai.com/v1", "0.000195", DB),
        ("gpt-4o-mini", "https://api.openai.com/v1/", "0.000195", DB),
        # a server genai-prices knows: its own price list (1000 * 0.05 + 100 * 0.08)
        ("llama-3.1-8b-instant", "https://api.groq.com/openai/v1", "0.000058", DB),
        # a server it does not know (proxy, local server): the model name alone decides
        ("gpt-4o-mini", "http://localhost:8000/v1", "0.000195", BY_NAME),
        ("my-local-model", "http://localhost:8000/v1", None, "unknown"),
        # a known server without that model: unknown, not another provider's price
        ("gpt-4o-mini", "https://api.groq.com/openai/v1", None, "unknown"),
    ],
)
def test_provider_from_base_url(
    book: PriceBook, model: str, base_url: str | None, usd: str | None, source: str
) -> None:
    cost = book.cost(USAGE, model, base_url=base_url)
    assert cost.usd == (None if usd is None else Decimal(usd))
    assert cost.source == source


def test_price_from_the_database(book: PriceBook) -> None:
    assert book.price("gpt-4o-mini") == Price(
        model="gpt-4o-mini",
        input=Decimal("0.15"),
        output=Decimal("0.6"),
        cached_input=Decimal("0.075"),
        source=DB,
        context_window=128000,
    )
    price = book.price("gpt-4o-2024-05-13")
    assert price is not None and price.cached_input is None  # cached tokens billed as input


# --- overrides --------------------------------------------------------------------------------

OVERRIDES: dict[str, dict[str, Any]] = {
    "ft:gpt-4o-mini:*": {"input": "0.30", "output": 1.2, "cached_input": "0.15"},
    "ft:gpt-4o-mini:acme::special": {"input": 1, "output": 2},
    "my-vllm-*": {"input": 0, "output": 0, "context_window": 32768},
    "my-*": {"input": 9, "output": 9},
    "gpt-4o-mini": {"input": "0.10", "output": "0.40"},
}


def test_override_costs() -> None:
    book = PriceBook(OVERRIDES, overrides_source="config/runner.yaml")
    source = "override: config/runner.yaml"
    # glob: 800 * 0.30 + 200 * 0.15 + 100 * 1.20 = 390
    assert book.cost(USAGE, "ft:gpt-4o-mini:acme::abc") == Cost(Decimal("0.00039"), source)
    # exact beats glob; no cached_input: cached billed as input: 1000 * 1 + 100 * 2
    assert book.cost(USAGE, "ft:gpt-4o-mini:acme::special") == Cost(Decimal("0.0012"), source)
    # first matching glob, in the order given
    assert book.cost(USAGE, "my-vllm-llama") == Cost(Decimal("0"), source)
    assert book.cost(USAGE, "my-other") == Cost(Decimal("0.0099"), source)
    # override beats the database: 1000 * 0.10 + 100 * 0.40 (no cached rate: billed as input)
    assert book.cost(USAGE, "gpt-4o-mini") == Cost(Decimal("0.00014"), source)
    # the override applies whatever the server
    assert book.cost(USAGE, "my-vllm-llama", base_url="http://localhost:8000/v1") == Cost(
        Decimal("0"), source
    )
    assert book.cost(USAGE, "nothing-matches", base_url="http://localhost:8000/v1") == Cost(
        None, "unknown"
    )


def test_default_override_source() -> None:
    book = PriceBook({"m": {"input": 1, "output": 1}})
    assert book.cost(Usage(prompt=1), "m").source == "override: runner.yaml"


def test_override_price_and_context_window() -> None:
    book = PriceBook(OVERRIDES)
    assert book.price("ft:gpt-4o-mini:acme::abc") == Price(
        model="ft:gpt-4o-mini:acme::abc",
        input=Decimal("0.30"),
        output=Decimal("1.2"),
        cached_input=Decimal("0.15"),
        source="override: runner.yaml",
        context_window=None,
    )
    assert book.context_window("my-vllm-llama") == 32768
    assert book.price("my-vllm-llama") is not None
    # an override without a window keeps the database's
    assert book.context_window("gpt-4o-mini") == 128000
    price = book.price("gpt-4o-mini")
    assert price is not None and price.context_window == 128000
    assert price.input == Decimal("0.10") and price.source == "override: runner.yaml"


@pytest.mark.parametrize(
    ("model", "base_url", "window"),
    [
        ("gpt-4o-mini", None, 128000),
        ("gpt-4.1", None, 1000000),
        ("o3-mini", None, 200000),
        ("gpt-4", None, 8192),
        ("my-local-model", None, None),
        ("gpt-4o-mini", "http://localhost:8000/v1", 128000),
        ("my-local-model", "http://localhost:8000/v1", None),
    ],
)
def test_database_context_windows(
    book: PriceBook, model: str, base_url: str | None, window: int | None
) -> None:
    assert book.context_window(model, base_url=base_url) == window


def test_overrides_accept_numbers_and_decimal_strings() -> None:
    book = PriceBook(
        {
            "a": {"input": 0.1, "output": "0.2"},
            "b": {"input": Decimal("0.1"), "output": 2, "cached_input": None},
            "c": {"input": " 1.5 ", "output": "1e-1", "context_window": None},
        }
    )
    assert book.cost(Usage(prompt=1_000_000, completion=1_000_000), "a").usd == Decimal("0.3")
    assert book.cost(Usage(prompt=1_000_000), "b").usd == Decimal("0.1")
    assert book.cost(Usage(prompt=1_000_000, completion=1_000_000), "c").usd == Decimal("1.6")


BAD_NUMBER = "expected a non-negative number (USD per million tokens), not"


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ([], "prices: expected a mapping, not list"),
        ("gpt-4o: 1", "prices: expected a mapping, not str"),
        ({"m": 5}, "prices.m: expected a mapping, not int"),
        ({"m": None}, "prices.m: expected a mapping, not NoneType"),
        ({"m": {}}, "prices.m: missing input (USD per million tokens)"),
        ({"m": {"input": 1}}, "prices.m: missing output (USD per million tokens)"),
        ({"m": {"input": None, "output": 1}}, "prices.m: missing input (USD per million tokens)"),
        ({"m": {"input": -1, "output": 1}}, f"prices.m.input: {BAD_NUMBER} -1"),
        ({"m": {"input": 1, "output": "abc"}}, f"prices.m.output: {BAD_NUMBER} 'abc'"),
        ({"m": {"input": True, "output": 1}}, f"prices.m.input: {BAD_NUMBER} True"),
        ({"m": {"input": float("nan"), "output": 1}}, f"prices.m.input: {BAD_NUMBER} nan"),
        ({"m": {"input": "inf", "output": 1}}, f"prices.m.input: {BAD_NUMBER} 'inf'"),
        ({"m": {"input": "NaN", "output": 1}}, f"prices.m.input: {BAD_NUMBER} 'NaN'"),
        ({"m": {"input": [1], "output": 1}}, f"prices.m.input: {BAD_NUMBER} [1]"),
        (
            {"m": {"input": 1, "output": 1, "cached_input": "-0.5"}},
            f"prices.m.cached_input: {BAD_NUMBER} '-0.5'",
        ),
        (
            {"m": {"input": 1, "output": 2, "currency": "EUR"}},
            "prices.m: unknown key currency (allowed: cached_input, context_window, input, output)",
        ),
        (
            {"m": {"input": 1, "output": 1, "context_window": 0}},
            "prices.m.context_window: expected a positive integer, not 0",
        ),
        (
            {"m": {"input": 1, "output": 1, "context_window": "128k"}},
            "prices.m.context_window: expected a positive integer, not '128k'",
        ),
        (
            {"m": {"input": 1, "output": 1, "context_window": True}},
            "prices.m.context_window: expected a positive integer, not True",
        ),
        (
            {"": {"input": 1, "output": 1}},
            "prices: a model name must be a non-empty string, not ''",
        ),
        ({1: {"input": 1, "output": 1}}, "prices: a model name must be a non-empty string, not 1"),
    ],
)
def test_malformed_overrides(overrides: Any, message: str) -> None:
    with pytest.raises(ValueError) as info:
        PriceBook(overrides)
    assert str(info.value) == message


# --- bad arguments ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("usage", "error", "message"),
    [
        ({"prompt": 1}, TypeError, "usage must be a runner.types.Usage, not dict"),
        (Usage(prompt=-1), ValueError, "usage.prompt must be a non-negative integer, not -1"),
        (
            Usage(completion=1.5),  # type: ignore[arg-type]
            ValueError,
            "usage.completion must be a non-negative integer, not 1.5",
        ),
        (Usage(reasoning=-2), ValueError, "usage.reasoning must be a non-negative integer, not -2"),
    ],
)
def test_bad_usage(book: PriceBook, usage: Any, error: type[Exception], message: str) -> None:
    with pytest.raises(error) as info:
        book.cost(usage, "gpt-4o-mini")
    assert str(info.value) == message


def test_bad_model_and_time(book: PriceBook) -> None:
    with pytest.raises(TypeError, match="model must be a string, not NoneType"):
        book.cost(USAGE, None)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="at must be a datetime, not str"):
        book.cost(USAGE, "gpt-4o-mini", at="2025-01-01")  # type: ignore[arg-type]


# --- offline and lazy -------------------------------------------------------------------------


def test_pricing_never_touches_the_network(monkeypatch: pytest.MonkeyPatch) -> None:
    def forbidden(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError("a network call was attempted")

    monkeypatch.setattr(socket.socket, "connect", forbidden)
    monkeypatch.setattr(socket, "create_connection", forbidden)
    monkeypatch.setattr(genai_prices.UpdatePrices, "start", forbidden)
    book = PriceBook()
    assert book.cost(USAGE, "gpt-4o").usd == Decimal("0.00325")
    assert book.cost(USAGE, "gpt-5.4", at=datetime(2026, 1, 1, tzinfo=UTC)).known
    assert book.context_window("gpt-4o") == 128000


def test_import_is_cheap_and_loads_nothing() -> None:
    code = "import sys, runner.pricing; print('genai_prices' in sys.modules)"
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout
    assert out.strip() == "False"


def test_one_attempt_costs_what_the_general_sum_says() -> None:
    """cost_of_attempts takes a shorter road for a call of one attempt with reported usage:
    the same Cost as summing it with an attempt that consumed nothing (the general road)."""
    from hypothesis import given, settings
    from hypothesis import strategies as st

    from runner.types import Attempt

    book = PriceBook(overrides={"my-model": {"input": 0.3, "output": 1.2}})
    counts = st.integers(min_value=0, max_value=10**7)

    @settings(max_examples=200)
    @given(
        st.builds(
            Usage,
            counts,
            counts,
            counts,
            counts,
            st.booleans(),
            st.sampled_from([(), ("total 3 != 2",)]),
        ),
        st.sampled_from(["gpt-4o-mini", "gpt-4o", "o3-mini", "my-model", "no-such-model-xyz"]),
        st.booleans(),
    )
    def check(usage: Usage, model: str, estimated: bool) -> None:
        one = Attempt(number=1, outcome="ok", waited_s=0.0, latency_ms=1.0, usage=usage)
        idle = Attempt(number=2, outcome="ok", waited_s=0.0, latency_ms=1.0, usage=Usage())
        short = book.cost_of_attempts([one], model, estimated=estimated)
        general = book.cost_of_attempts([one, idle], model, estimated=estimated)
        assert short == general
        assert str(short.usd) == str(general.usd)

    check()
