"""runner.pricing._cache: what runner reads of a model from genai-prices, kept on disk so that a
later process prices without importing genai-prices. The plan must price exactly as genai-prices
does for every model and every date it lists, and a bad cache file is never trusted."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from pathlib import Path

import pytest
from genai_prices.data_snapshot import get_snapshot
from genai_prices.types import StartDateConstraint, TimeOfDateConstraint

from runner.pricing import PriceBook, _cache, _database
from runner.types import Usage

USAGES = [(1_234, 200, 567), (0, 0, 0), (1_000_000, 1_000_000, 0), (7, 0, 1)]
NOW = datetime.now(tz=UTC)


def _moments(model: object) -> list[datetime]:
    """Every date and time of day at which the model's price may change, either side of it."""
    found = [NOW, datetime(2023, 1, 1, 12, tzinfo=UTC)]
    prices = getattr(model, "prices", None)
    for conditional in prices if isinstance(prices, list) else []:
        c = conditional.constraint
        if isinstance(c, StartDateConstraint):
            start = datetime.combine(c.start_date, time(0), tzinfo=UTC)
            found += [start, start - timedelta(seconds=1), start + timedelta(hours=13)]
        elif isinstance(c, TimeOfDateConstraint):
            for t in (c.start_time, c.end_time):
                at = datetime.combine(NOW.date(), t.replace(tzinfo=t.tzinfo or UTC)).astimezone(UTC)
                found += [at, at - timedelta(seconds=1), at + timedelta(minutes=30)]
    return found


def _all_entries() -> list[_database.Entry]:
    snapshot = get_snapshot()
    return [
        _database.Entry(provider=p, model=m, source="genai-prices test")
        for p in snapshot.providers
        for m in p.models
    ]


def test_a_plan_prices_every_listed_model_at_every_date_exactly_as_genai_prices(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("RUNNER_CACHE_DIR", str(tmp_path))
    entries = _all_entries()
    assert len(entries) > 500  # the whole database, not a sample
    checked = linear = 0
    for number, entry in enumerate(entries):
        plan = _database.plan_of(entry)
        # the plan as a later process reads it back from disk
        _cache.store("db", entry.model.id, str(number), plan)
        plan = _cache.load("db", entry.model.id, str(number))
        assert plan is not None and plan.found
        assert plan.context_window == entry.model.context_window
        for at in _moments(entry.model):
            prices = entry.model.get_prices(at)
            planned = plan.at(at)
            shown = tuple(
                _database.rate(getattr(prices, n, None))
                for n in ("input_mtok", "output_mtok", "cache_read_mtok")
            )
            assert planned.shown == shown, (entry.model.id, at)
            assert planned.linear == _database.linear_rates(prices), (entry.model.id, at)
            if planned.linear is None:
                continue
            linear += 1
            for prompt, cached, completion in USAGES:
                from genai_prices import Usage as GUsage

                theirs = prices.calc_price(
                    GUsage(input_tokens=prompt, cache_read_tokens=cached, output_tokens=completion)
                )["total_price"]
                book = PriceBook()
                book._plans[(entry.model.id, None)] = plan
                ours = book.cost(
                    Usage(prompt=prompt, cached=cached, completion=completion),
                    entry.model.id,
                    at=at,
                )
                assert ours.usd == theirs, (entry.model.id, at, prompt, cached, completion)
                checked += 1
    assert linear > 1000 and checked > 4000


def test_a_plan_evaluates_time_of_day_windows_that_cross_midnight() -> None:
    night = _cache.PlannedPrice(
        (Decimal(1), Decimal(2), None),
        None,
        start_time=time(22, 0, tzinfo=UTC),
        end_time=time(6, 0, tzinfo=UTC),
    )
    assert night.active(datetime(2026, 1, 1, 23, 0, tzinfo=UTC))
    assert night.active(datetime(2026, 1, 1, 5, 59, tzinfo=UTC))
    assert not night.active(datetime(2026, 1, 1, 6, 0, tzinfo=UTC))
    assert not night.active(datetime(2026, 1, 1, 12, 0, tzinfo=UTC))
    # another time zone is the same instant
    tokyo = datetime(2026, 1, 2, 8, 0, tzinfo=UTC).astimezone(
        __import__("zoneinfo").ZoneInfo("Asia/Tokyo")
    )  # 23:00 UTC
    assert night.active(tokyo - timedelta(hours=10))
    dated = _cache.PlannedPrice((None, None, None), None, start_date=date(2026, 3, 1))
    assert not dated.active(datetime(2026, 2, 28, 23, 59, tzinfo=UTC))
    assert dated.active(datetime(2026, 3, 1, 0, 0, tzinfo=UTC))


def test_an_unknown_model_is_cached_as_unknown_and_stays_unknown(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("RUNNER_CACHE_DIR", str(tmp_path))
    first = PriceBook().cost(Usage(prompt=10, completion=1), "no-such-model-zz")
    assert first.usd is None and first.source == "unknown"
    assert list((tmp_path / "prices").iterdir())
    again = PriceBook().cost(Usage(prompt=10, completion=1), "no-such-model-zz")
    assert again.usd is None and again.source == "unknown"
    assert PriceBook().price("no-such-model-zz") is None


def _only_cache_file(folder: Path) -> Path:
    files = list((folder / "prices").glob("*.json"))
    assert len(files) == 1
    return files[0]


@pytest.mark.parametrize("damage", ["torn", "flipped", "foreign key", "wrong types", "empty"])
def test_a_damaged_cache_file_is_never_trusted_and_is_rebuilt(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, damage: str
) -> None:
    monkeypatch.setenv("RUNNER_CACHE_DIR", str(tmp_path))
    usage = Usage(prompt=1000, completion=100, cached=200)
    truth = PriceBook().cost(usage, "gpt-4o-mini")
    path = _only_cache_file(tmp_path)
    blob = path.read_bytes()
    payload = json.loads(blob[64:])

    def signed(doc: object) -> bytes:
        import hashlib

        data = json.dumps(doc).encode()
        return hashlib.sha256(data).hexdigest().encode() + data

    if damage == "torn":
        path.write_bytes(blob[: len(blob) // 2])
    elif damage == "flipped":  # a rate changed without re-signing: 0.15 becomes 0.00
        path.write_bytes(blob.replace(b'"0.15"', b'"0.00"'))
    elif damage == "foreign key":  # a validly signed plan of another model under this name
        payload["key"][2] = "gpt-4o"
        payload["plan"]["prices"][0]["linear"] = ["9", "9", "9"]
        path.write_bytes(signed(payload))
    elif damage == "wrong types":
        payload["plan"]["prices"][0]["linear"] = [1, 2]
        path.write_bytes(signed(payload))
    else:
        path.write_bytes(b"")
    again = PriceBook().cost(usage, "gpt-4o-mini")
    assert again == truth and again.usd == Decimal("0.000195")
    assert path.read_bytes() == blob  # rebuilt from genai-prices


def test_a_read_only_or_disabled_cache_changes_nothing_but_speed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    usage = Usage(prompt=1000, completion=100, cached=200)
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    monkeypatch.setenv("RUNNER_CACHE_DIR", str(blocker / "cache"))
    assert PriceBook().cost(usage, "gpt-4o-mini").usd == Decimal("0.000195")
    monkeypatch.setenv("RUNNER_CACHE_DIR", "")
    assert PriceBook().cost(usage, "gpt-4o-mini").usd == Decimal("0.000195")


def test_another_database_never_reads_this_ones_plans(tmp_path: Path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setenv("RUNNER_CACHE_DIR", str(tmp_path))
    plan = _cache.Plan(found=False)
    _cache.store("genai-prices A", "gpt-4o-mini", None, plan)
    assert _cache.load("genai-prices A", "gpt-4o-mini", None) == plan
    assert _cache.load("genai-prices B", "gpt-4o-mini", None) is None
    assert _cache.load("genai-prices A", "gpt-4o-mini", "http://localhost:1/v1") is None


def test_the_database_key_follows_the_installed_data_file() -> None:
    key = _cache.database_key()
    assert key is not None
    path, size, mtime = key.split("\0")
    data = Path(path)
    assert data.name == "data.py" and data.parent.name == "genai_prices"
    st = data.stat()
    assert (int(size), int(mtime)) == (st.st_size, st.st_mtime_ns)


def test_a_process_with_a_warm_cache_prices_without_importing_genai_prices(
    tmp_path: Path,
) -> None:
    env = {**os.environ, "RUNNER_CACHE_DIR": str(tmp_path)}
    script = (
        "import sys\n"
        "from datetime import datetime, UTC\n"
        "from runner.pricing import PriceBook\n"
        "from runner.types import Usage\n"
        "book = PriceBook()\n"
        "at = datetime(2026, 1, 5, tzinfo=UTC)\n"
        "cost = book.cost(Usage(prompt=1000, completion=100, cached=200), 'gpt-4o-mini', at=at)\n"
        "price = book.price('gpt-4o-mini', at=at)\n"
        "window = book.context_window('gpt-4o-mini')\n"
        "print(cost.usd, cost.source, price.input, price.output, price.cached_input, window)\n"
        "print('genai_prices' in sys.modules)\n"
    )
    cold = subprocess.run(
        [sys.executable, "-c", script], env=env, capture_output=True, text=True, check=True
    )
    warm = subprocess.run(
        [sys.executable, "-c", script], env=env, capture_output=True, text=True, check=True
    )
    figures, imported = cold.stdout.splitlines()
    assert imported == "True"
    assert figures.startswith("0.000195 genai-prices ")
    again, imported = warm.stdout.splitlines()
    assert again == figures
    assert imported == "False"
