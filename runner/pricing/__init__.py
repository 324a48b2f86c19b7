"""Prices and costs: genai-prices' bundled database (runner.pricing._database) plus the user's
overrides (`runner.yaml` -> `prices:`, runner.pricing._overrides). What it read of a model is
kept on disk (runner.pricing._cache), so that a later process prices linear prices without
importing genai-prices; tiered prices and batch books always ask genai-prices. It never
fetches prices over the network, and a price it does not know is `None` / "unknown", never 0. A
book made with `batch=True` prices the Batch API: genai-prices' own batch price where it has
one, else 50% of the live one.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from datetime import datetime
from decimal import Decimal
from fnmatch import fnmatchcase
from typing import TYPE_CHECKING, Any

from runner.pricing import _cache
from runner.pricing._arith import BATCH_SHARE as _BATCH_SHARE
from runner.pricing._arith import MILLION as _MILLION
from runner.pricing._arith import Rates
from runner.pricing._arith import counts as _counts
from runner.pricing._arith import halved as _halved
from runner.pricing._arith import linear_usd as _linear_usd
from runner.pricing._arith import renamed as _renamed
from runner.pricing._arith import timestamp as _timestamp
from runner.pricing._arith import with_window as _with_window
from runner.pricing._cache import Plan, Unplannable
from runner.pricing._database import Entry, find_in_database, linear_rates, plan_of, rate
from runner.pricing._overrides import check_mapping, parse_override
from runner.types import Attempt, Cost, Price, Usage

if TYPE_CHECKING:
    from genai_prices.types import ModelPrice

__all__ = ["PriceBook", "Rates"]

_log = logging.getLogger(__name__)

_GLOB_CHARS = frozenset("*?[")
_UNKNOWN = "unknown"
_IMPLAUSIBLE = "not priced: the server's usage is implausible (see usage.implausible)"
_ESTIMATED = "priced from local token counts: the server reported no usable usage"
_BATCH_CONTEXT = {"processing": "batch"}  # genai-prices' price variant for batch requests


class PriceBook:
    """Prices per model: user overrides first, then genai-prices' bundled database.

    `overrides` maps a model name or an fnmatch glob (`ft:gpt-4o-mini:*`) to `{input, output,
    cached_input?, context_window?}`, prices in USD per million tokens. Exact names win over
    globs; among globs the first one that matches, in the order given, wins.

    `batch=True` prices requests sent through the Batch API: genai-prices' batch price variant
    when the model has one (`cost.source` "genai-prices 0.2.3, batch price"), else half the live
    price ("..., batch (50%)"), overrides included.
    """

    def __init__(
        self,
        overrides: Mapping[str, Mapping[str, Any]] | None = None,
        *,
        overrides_source: str = "runner.yaml",
        batch: bool = False,
    ) -> None:
        self.batch = batch
        self._given = (overrides, overrides_source)
        self._source = f"override: {overrides_source}"
        self._exact: dict[str, Price] = {}
        self._globs: list[tuple[str, Price]] = []
        for name, entry in check_mapping(overrides, "prices").items():
            price = parse_override(name, entry, self._source)
            if _GLOB_CHARS.intersection(name):
                self._globs.append((name, price))
            else:
                self._exact[name] = price
        self._override_cache: dict[str, Price | None] = {}
        self._entries: dict[tuple[str, str | None], Entry | None] = {}
        self._plans: dict[tuple[str, str | None], Plan | None] = {}
        # ModelPrice -> its three per-million rates when the price is linear in the token
        # counts (no tiers, no per-request fee); None sends the cost through calc_price.
        self._linear: dict[int, tuple[ModelPrice, tuple[Decimal, Decimal, Decimal] | None]] = {}
        # (id of the live ModelPrice, day) -> (that price, its batch variant or None)
        self._batch_variant: dict[tuple[int, Any], tuple[ModelPrice, ModelPrice | None]] = {}

    def for_batch(self) -> PriceBook:
        """The same prices (overrides included) for requests sent through the Batch API."""
        return PriceBook(self._given[0], overrides_source=self._given[1], batch=True)

    # --- lookups ---------------------------------------------------------------------------------

    def price(
        self, model: str, *, base_url: str | None = None, at: datetime | None = None
    ) -> Price | None:
        """Return what `model` costs per million tokens, or None when the price is unknown.

        For database prices with tiers (long-context surcharges), the base tier is shown.
        """
        override = self._override(model)
        if override is not None:
            if override.context_window is None:
                window = self._database_window(model, base_url)
                if window is not None:
                    return _with_window(override, window)
            return override
        plan = self._plan(model, base_url)
        if plan is not None:
            if not plan.found:
                return None
            rate_in, rate_out, rate_cached = plan.at(_timestamp(at)).shown
            source, window = plan.source, plan.context_window
        else:
            entry = self._entry(model, base_url)
            if entry is None:
                return None
            prices = entry.model.get_prices(_timestamp(at))
            rate_in = rate(getattr(prices, "input_mtok", None))
            rate_out = rate(getattr(prices, "output_mtok", None))
            rate_cached = rate(getattr(prices, "cache_read_mtok", None))
            source, window = entry.source, entry.model.context_window
        if rate_in is None and rate_out is None:
            return None
        return Price(
            model=model,
            input=rate_in or Decimal(0),
            output=rate_out or Decimal(0),
            cached_input=rate_cached,
            source=source,
            context_window=window,
        )

    def rates(
        self, model: str, *, base_url: str | None = None, at: datetime | None = None
    ) -> Rates | None:
        """`model`'s price as three linear rates (see Rates), or None when it is unknown. A
        batch book gives the batch price: genai-prices' batch variant when the model has one,
        else half the live price."""
        override = self._override(model)
        if override is not None:
            cached = override.input if override.cached_input is None else override.cached_input
            found = Rates(
                model,
                override.input,
                cached,
                override.output,
                override.source,
                override.cached_input is not None,
            )
            return _halved(found) if self.batch else found
        entry = self._entry(model, base_url)
        if entry is None:
            return None
        when = _timestamp(at)
        prices, variant = self._prices(entry, when)
        linear = self._linear.get(id(prices))
        if linear is None or linear[0] is not prices:
            linear = self._linear[id(prices)] = (prices, linear_rates(prices))
        exact = linear[1] is not None
        if linear[1] is not None:
            rate_in, rate_cached, rate_out = linear[1]
        else:  # tiers or a per-request fee: the base tier, as `price` shows it
            rate_in = rate(getattr(prices, "input_mtok", None)) or Decimal(0)
            rate_out = rate(getattr(prices, "output_mtok", None)) or Decimal(0)
            rate_cached = rate(getattr(prices, "cache_read_mtok", None)) or rate_in
        source = entry.source + (", batch price" if variant else "")
        found = Rates(model, rate_in, rate_cached, rate_out, source, rate_cached != rate_in, exact)
        return _halved(found) if self.batch and not variant else found

    def context_window(self, model: str, *, base_url: str | None = None) -> int | None:
        """Return the model's context window in tokens (override first), or None if unknown."""
        override = self._override(model)
        if override is not None and override.context_window is not None:
            return override.context_window
        return self._database_window(model, base_url)

    def cost_of_attempts(
        self,
        attempts: Sequence[Attempt],
        model: str,
        *,
        base_url: str | None = None,
        estimated: bool = False,
    ) -> Cost:
        """What a call cost: every attempt that consumed tokens, priced and summed; unknown if
        any of them cannot be priced or has implausible usage; estimated (with a reason) if
        any attempt's usage is a local count. With nothing consumed, $0 from a known price."""
        if len(attempts) == 1 and not estimated:  # nearly every call: one attempt, reported
            usage = attempts[0].usage
            if usage and not usage.implausible and not usage.estimated:
                one = self.cost(usage, model, base_url=base_url)
                if one.usd is None:
                    return one
                return Cost(Decimal(0) + one.usd, one.source)  # as the sum below writes it
        used = [a.usage for a in attempts if a.usage]
        if any(u.implausible for u in used):
            probe = self.cost(Usage(), model, base_url=base_url, estimated=estimated)
            return Cost(None, probe.source, estimated=estimated, reason=_IMPLAUSIBLE)
        reason = _ESTIMATED if any(u.estimated for u in used) else None
        estimated = estimated or reason is not None
        total = Decimal(0)
        source = None
        for attempt in attempts:
            if not attempt.usage:
                continue
            cost = self.cost(attempt.usage, model, base_url=base_url, estimated=estimated)
            if cost.usd is None:
                return Cost(None, cost.source, estimated=estimated, reason=reason)
            total += cost.usd
            source = cost.source
        if source is None:  # nothing consumed: price it anyway to learn the source
            probe = self.cost(Usage(), model, base_url=base_url, estimated=estimated)
            if probe.usd is None:
                return probe
            source = probe.source
        return Cost(total, source, estimated=estimated, reason=reason)

    def cost(
        self,
        usage: Usage,
        model: str,
        *,
        base_url: str | None = None,
        estimated: bool = False,
        at: datetime | None = None,
    ) -> Cost:
        """Return what `usage` cost; `usd` is None (shown as "unknown") when the price is unknown.

        Cached tokens are part of the prompt tokens and reasoning tokens part of the completion
        tokens (OpenAI's usage object), so neither is added twice. `at` picks the price in force
        at that time (UTC when naive; now by default).
        """
        prompt, cached, completion = _counts(usage)
        override = self._override(model)
        if override is not None:
            cached_rate = override.input if override.cached_input is None else override.cached_input
            usd = (
                (prompt - cached) * override.input
                + cached * cached_rate
                + completion * override.output
            ) / _MILLION
            if self.batch:
                return Cost(usd * _BATCH_SHARE, f"{override.source}, batch (50%)", estimated)
            return Cost(usd=usd, source=override.source, estimated=estimated)
        when = _timestamp(at) if at is not None else None  # now, when a price depends on it
        if not self.batch:
            plan = self._plan(model, base_url)
            if plan is not None:
                if not plan.found:
                    return Cost(usd=None, source=_UNKNOWN, estimated=estimated)
                if plan.conditional and when is None:
                    when = _timestamp(None)
                rates = (plan.at(when) if when is not None else plan.prices[0]).linear
                if rates is not None:
                    usd = _linear_usd(rates, prompt, cached, completion)
                    return Cost(usd=usd, source=plan.source, estimated=estimated)
        if when is None:
            when = _timestamp(None)
        entry = self._entry(model, base_url)
        if entry is None:
            return Cost(usd=None, source=_UNKNOWN, estimated=estimated)
        prices, variant = self._prices(entry, when)
        known = self._database_cost(
            entry, prompt, cached, completion, when, prices=prices, variant=variant
        )
        if known is None:
            return Cost(usd=None, source=_UNKNOWN, estimated=estimated)
        if not self.batch:
            return Cost(usd=known, source=entry.source, estimated=estimated)
        if variant:
            return Cost(known, f"{entry.source}, batch price", estimated)
        return Cost(known * _BATCH_SHARE, f"{entry.source}, batch (50%)", estimated)

    # --- overrides -------------------------------------------------------------------------------

    def _override(self, model: str) -> Price | None:
        try:
            return self._override_cache[model]
        except KeyError:
            pass
        if not isinstance(model, str):
            raise TypeError(f"model must be a string, not {type(model).__name__}")
        found = self._exact.get(model)
        if found is None:
            found = next((p for pattern, p in self._globs if fnmatchcase(model, pattern)), None)
        if found is not None and found.model != model:
            found = _renamed(found, model)
        self._override_cache[model] = found
        return found

    # --- the database ----------------------------------------------------------------------------

    def _entry(self, model: str, base_url: str | None) -> Entry | None:
        key = (model, base_url)
        try:
            return self._entries[key]
        except KeyError:
            pass
        entry = find_in_database(model, base_url)
        self._entries[key] = entry
        return entry

    def _plan(self, model: str, base_url: str | None) -> Plan | None:
        """What runner needs of the model, from the disk cache or else from genai-prices (then
        cached); None when no plan can hold it (the caller asks genai-prices)."""
        key = (model, base_url)
        try:
            return self._plans[key]
        except KeyError:
            pass
        database = _cache.database_key()
        plan = None if database is None else _cache.load(database, model, base_url)
        if plan is None:
            try:
                plan = plan_of(self._entry(model, base_url))
            except Unplannable:
                plan = None
            else:
                if database is not None:
                    _cache.store(database, model, base_url, plan)
        self._plans[key] = plan
        return plan

    def _database_window(self, model: str, base_url: str | None) -> int | None:
        plan = self._plan(model, base_url)
        if plan is not None:
            return plan.context_window if plan.found else None
        entry = self._entry(model, base_url)
        return None if entry is None else entry.model.context_window

    def _prices(self, entry: Entry, at: datetime) -> tuple[ModelPrice, bool]:
        """The model's price at `at`, and whether it is genai-prices' batch variant (only for a
        batch book whose model has one in force)."""
        standard = entry.model.get_prices(at)
        if not self.batch:
            return standard, False
        key = (id(standard), at.date())
        found = self._batch_variant.get(key)
        if found is None or found[0] is not standard:
            variant = None
            for v in entry.model.price_variants or ():
                if v.when == _BATCH_CONTEXT and (v.constraint is None or v.constraint.active(at)):
                    variant = entry.model.get_prices(at, _BATCH_CONTEXT)
                    break
            found = self._batch_variant[key] = (standard, variant)
        return (standard, False) if found[1] is None else (found[1], True)

    def _database_cost(
        self,
        entry: Entry,
        prompt: int,
        cached: int,
        completion: int,
        at: datetime,
        *,
        prices: ModelPrice | None = None,
        variant: bool = False,
    ) -> Decimal | None:
        """The cost at `prices` (the live price at `at` by default); `variant` says they are
        genai-prices' batch variant, so its own calculation gets the same context."""
        if prices is None:
            prices = entry.model.get_prices(at)
        linear = self._linear.get(id(prices))
        if linear is None or linear[0] is not prices:
            linear = (prices, linear_rates(prices))
            self._linear[id(prices)] = linear
        rates = linear[1]
        if rates is not None:
            return _linear_usd(rates, prompt, cached, completion)
        from genai_prices import Usage as GUsage

        usage = GUsage(input_tokens=prompt, cache_read_tokens=cached, output_tokens=completion)
        try:
            # What genai_prices.calc_price() does once it has found the provider and model.
            calc = entry.model.calc_price(
                usage,
                entry.provider,
                genai_request_timestamp=at,
                price_context=_BATCH_CONTEXT if variant else None,
            )
        except ValueError as exc:
            _log.warning("genai-prices cannot price %s: %s", entry.model.id, exc)
            return None
        return calc.total_price
