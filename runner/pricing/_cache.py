"""What runner reads from genai-prices for one model, kept on disk so that a later process prices
its calls without importing genai-prices (its pydantic types and database cost about 190 ms of
every cold start, more than anything else runner imports).

genai-prices stays the source of truth: a plan is built from its objects
(runner.pricing._database.plan_of), keyed by the database file it came from (path, size and
modification time, so an upgrade or reinstall starts afresh) and the model and base URL asked
for. A plan holds, for each of the model's
prices and the constraint that selects it (a start date, a time of day), the rates runner shows
and, where the price is linear in the token counts, the three rates runner prices with; a price
that is not linear (tiers, a per-request fee) is marked so and priced by genai-prices itself.
Batch prices are never planned (a batch book asks genai-prices).

A cache file holds a sha256 of its own payload: a torn, corrupt or foreign file is rebuilt, never
trusted. Any failure to read or write is only a slower start.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import json
import os
import tempfile
from dataclasses import dataclass
from datetime import UTC, date, datetime, time
from decimal import Decimal
from pathlib import Path
from typing import Any

from runner.caches import cache_dir

__all__ = ["Plan", "PlannedPrice", "Unplannable", "database_key", "load", "store"]

_FORMAT = 1
Rates = tuple[Decimal, Decimal, Decimal]


@dataclass(frozen=True)
class PlannedPrice:
    """One of a model's prices: what `PriceBook.price` shows, and its linear rates or None."""

    shown: tuple[Decimal | None, Decimal | None, Decimal | None]  # input, output, cached input
    linear: Rates | None
    start_date: date | None = None  # active from this UTC date on
    start_time: time | None = None  # active daily from start_time to end_time (UTC)
    end_time: time | None = None

    def active(self, at: datetime) -> bool:
        """genai-prices' StartDateConstraint / TimeOfDateConstraint.active, on UTC values."""
        at = at.astimezone(UTC) if at.tzinfo is not None else at.replace(tzinfo=UTC)
        if self.start_date is not None:
            return at.date() >= self.start_date
        if self.start_time is not None and self.end_time is not None:
            now = at.timetz()
            if self.end_time < self.start_time:
                return now >= self.start_time or now < self.end_time
            return self.start_time <= now < self.end_time
        return True


@dataclass(frozen=True)
class Plan:
    """A model as runner prices it, or `found=False` for a model genai-prices does not list."""

    found: bool
    source: str = ""
    context_window: int | None = None
    conditional: bool = False  # a list of prices tried last to first (genai-prices' order)
    prices: tuple[PlannedPrice, ...] = ()

    def at(self, when: datetime) -> PlannedPrice:
        """The price in force at `when`: genai-prices' ModelInfo.get_prices without a context."""
        if not self.conditional:
            return self.prices[0]
        for price in reversed(self.prices):
            if price.active(when):
                return price
        return self.prices[0]


class Unplannable(Exception):
    """A model whose prices a plan cannot hold (a constraint of an unknown kind)."""


# --- the disk cache ------------------------------------------------------------------------------


@functools.cache
def database_key() -> str | None:
    """Which genai-prices database is installed, without importing it: its data file's path,
    size and modification time. None when it cannot be found."""
    import importlib.util

    try:
        spec = importlib.util.find_spec("genai_prices")
    except (ImportError, ValueError):
        return None
    if spec is None or not spec.submodule_search_locations:
        return None
    data = Path(next(iter(spec.submodule_search_locations))) / "data.py"
    try:
        st = data.stat()
    except OSError:
        return None
    return f"{data.resolve()}\0{st.st_size}\0{st.st_mtime_ns}"


def _path(database: str, model: str, base_url: str | None) -> Path | None:
    folder = cache_dir()
    if folder is None:
        return None
    key = json.dumps([_FORMAT, database, model, base_url]).encode("utf-8", "surrogatepass")
    return folder / "prices" / f"{hashlib.sha256(key).hexdigest()[:40]}.json"


def load(database: str, model: str, base_url: str | None) -> Plan | None:
    """The cached plan, or None when there is none (or it cannot be trusted)."""
    path = _path(database, model, base_url)
    if path is None:
        return None
    try:
        blob = path.read_bytes()
    except OSError:
        return None
    digest, payload = blob[:64], blob[64:]
    if hashlib.sha256(payload).hexdigest().encode() != digest:
        return None
    try:
        doc = json.loads(payload)
        if doc["key"] != [_FORMAT, database, model, base_url]:
            return None  # a hash collision of the file name, however unlikely
        return _from_json(doc["plan"])
    except (ValueError, KeyError, TypeError, IndexError, ArithmeticError):
        return None


def store(database: str, model: str, base_url: str | None, plan: Plan) -> None:
    path = _path(database, model, base_url)
    if path is None:
        return
    doc = {"key": [_FORMAT, database, model, base_url], "plan": _to_json(plan)}
    payload = json.dumps(doc, separators=(",", ":")).encode("utf-8", "surrogatepass")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".price-", suffix=".tmp")
        try:
            with os.fdopen(fd, "wb") as f:
                f.write(hashlib.sha256(payload).hexdigest().encode() + payload)
            os.replace(tmp, path)  # readers see the old file or the whole new one
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            raise
    except OSError:
        return  # a read-only home or a full disk: no cache, nothing else changes


def _dec(value: Decimal | None) -> str | None:
    return None if value is None else str(value)


def _undec(value: Any) -> Decimal | None:
    if value is None:
        return None
    if not isinstance(value, str):
        raise TypeError("a rate is a string")
    return Decimal(value)


def _to_json(plan: Plan) -> dict[str, Any]:
    return {
        "found": plan.found,
        "source": plan.source,
        "context_window": plan.context_window,
        "conditional": plan.conditional,
        "prices": [
            {
                "shown": [_dec(v) for v in p.shown],
                "linear": None if p.linear is None else [str(v) for v in p.linear],
                "start_date": None if p.start_date is None else p.start_date.isoformat(),
                "start_time": None if p.start_time is None else p.start_time.isoformat(),
                "end_time": None if p.end_time is None else p.end_time.isoformat(),
            }
            for p in plan.prices
        ],
    }


def _from_json(doc: dict[str, Any]) -> Plan:
    prices = []
    for p in doc["prices"]:
        shown = tuple(_undec(v) for v in p["shown"])
        linear = p["linear"]
        rates = None if linear is None else tuple(Decimal(v) for v in linear)
        if len(shown) != 3 or (rates is not None and len(rates) != 3):
            raise ValueError("three rates")
        prices.append(
            PlannedPrice(
                shown,
                rates,
                start_date=None if p["start_date"] is None else date.fromisoformat(p["start_date"]),
                start_time=None if p["start_time"] is None else time.fromisoformat(p["start_time"]),
                end_time=None if p["end_time"] is None else time.fromisoformat(p["end_time"]),
            )
        )
    window = doc["context_window"]
    if window is not None and (isinstance(window, bool) or not isinstance(window, int)):
        raise TypeError("context_window")
    plan = Plan(
        found=bool(doc["found"]),
        source=str(doc["source"]),
        context_window=window,
        conditional=bool(doc["conditional"]),
        prices=tuple(prices),
    )
    if plan.found and not plan.prices:
        raise ValueError("a found model has prices")
    return plan
