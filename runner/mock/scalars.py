"""Leaf values for the mock server's schema generator: numbers inside bounds and multiples,
strings by pattern, format or a plausible word for the property's name, and filler prose. Every
random choice comes from the caller's `random.Random`; nothing here walks objects or arrays.
"""

from __future__ import annotations

import math
import re
import uuid
from collections.abc import Callable, Mapping
from random import Random
from typing import Any

from runner.mock.regex import pattern_sample

__all__ = ["MAX_STRING", "number_value", "prose", "singular", "string_value"]

MAX_STRING = 100_000  # the longest string the mock server makes; a longer minLength is refused


# --- numbers ----------------------------------------------------------------------------------

_NUMBER_HINTS: dict[str, tuple[float, float, int]] = {  # low, high, decimals
    "population": (10_000, 20_000_000, 0),
    "inhabitants": (10_000, 20_000_000, 0),
    "age": (18, 90, 0),
    "year": (1950, 2025, 0),
    "founded": (1200, 2020, 0),
    "price": (1, 500, 2),
    "cost": (1, 500, 2),
    "amount": (1, 500, 2),
    "total": (10, 2000, 2),
    "salary": (30_000, 150_000, 0),
    "latitude": (-90, 90, 4),
    "lat": (-90, 90, 4),
    "longitude": (-180, 180, 4),
    "lng": (-180, 180, 4),
    "lon": (-180, 180, 4),
    "rating": (1, 5, 1),
    "stars": (1, 5, 0),
    "score": (0, 100, 0),
    "percent": (0, 100, 1),
    "percentage": (0, 100, 1),
    "confidence": (0, 1, 2),
    "probability": (0, 1, 2),
    "count": (1, 20, 0),
    "quantity": (1, 20, 0),
    "area": (10, 1000, 1),
    "elevation": (0, 3000, 0),
    "altitude": (0, 3000, 0),
    "height": (1, 300, 1),
    "temperature": (-10, 35, 1),
    "minutes": (1, 120, 0),
    "seconds": (1, 3600, 0),
    "page": (1, 400, 0),
}


def number_value(schema: Mapping[str, Any], integer: bool, hint: str, rng: Random) -> int | float:
    """Return a number within the schema's bounds and multipleOf, plausible for `hint` when the
    bounds allow; ValueError when no number fits."""
    lo, lo_open = _bound(schema, "minimum", "exclusiveMinimum", max)
    hi, hi_open = _bound(schema, "maximum", "exclusiveMaximum", min)
    plo, phi, decimals = _hint_for(hint, _NUMBER_HINTS) or (0, 100 if integer else 1000, 2)
    if integer:
        decimals = 0
        lo = None if lo is None else (math.floor(lo) + 1 if lo_open else math.ceil(lo))
        hi = None if hi is None else (math.ceil(hi) - 1 if hi_open else math.floor(hi))
        lo_open = hi_open = False
    a = plo if lo is None else max(lo, plo)
    b = phi if hi is None else min(hi, phi)
    if a > b:  # the plausible range misses the bounds: fall back to the bounds
        a = lo if lo is not None else b - 100
        b = hi if hi is not None else a + 100
    if lo is not None and hi is not None and (lo > hi or (lo == hi and (lo_open or hi_open))):
        raise ValueError(f"no number lies between {lo} and {hi}")

    def ok(v: float) -> bool:
        above = lo is None or (v > lo if lo_open else v >= lo)
        below = hi is None or (v < hi if hi_open else v <= hi)
        return above and below

    step = schema.get("multipleOf")
    if step is not None:
        return _multiple(float(a), float(b), step, integer, ok, rng)
    if integer:
        return rng.randint(int(a), int(b))
    raw = rng.uniform(a, b)
    for candidate in (round(raw, decimals), raw, (a + b) / 2):
        if ok(candidate):
            return candidate
    raise ValueError(f"no number lies between {lo} and {hi}")


def _bound(
    schema: Mapping[str, Any],
    inclusive: str,
    exclusive: str,
    tighter: Callable[[float, float], float],
) -> tuple[float | None, bool]:
    value = schema.get(inclusive)
    excl = schema.get(exclusive)
    if isinstance(excl, bool):  # draft-04 style: a flag on the inclusive bound
        return value, excl and value is not None
    if excl is None:
        return value, False
    if value is None or tighter(value, excl) == excl:
        return excl, True
    return value, False


def _multiple(
    a: float, b: float, step: float, integer: bool, ok: Callable[[float], bool], rng: Random
) -> int | float:
    if step <= 0:
        raise ValueError(f"multipleOf must be positive, not {step}")
    first, last = math.ceil(a / step), math.floor(b / step)
    if first > last:
        first, last = last, first
    # At most 200 candidates in order: a range of 10^24 multiples must not be listed.
    text = repr(float(step))
    decimals = 12 if "e" in text else len(text.split(".")[1])
    for k in [rng.randint(first, last) for _ in range(12)] + list(
        range(first, min(last, first + 199) + 1)
    ):
        value: int | float = round(k * step, decimals)
        if float(value).is_integer() and (integer or not isinstance(step, float)):
            value = int(value)
        elif integer:
            continue
        exact = value % step == 0 if not isinstance(step, float) else (value / step).is_integer()
        if exact and ok(value):
            return value
    raise ValueError(f"no multiple of {step} lies between {a} and {b}")


# --- strings ----------------------------------------------------------------------------------


def string_value(schema: Mapping[str, Any], hint: str, rng: Random) -> str:
    """Return a string for `schema`: by pattern, else by format, else a plausible word for
    `hint` fitted to minLength/maxLength; ValueError when none fits."""
    lo = int(schema.get("minLength", 0))
    if lo > MAX_STRING:
        raise ValueError(f"minLength {lo} is more than the mock server makes ({MAX_STRING:,})")
    hi = schema.get("maxLength")
    top = None if hi is None else int(hi)
    if top is not None and lo > top:
        raise ValueError(f"minLength {lo} is above maxLength {top}")
    pattern = schema.get("pattern")
    fmt = schema.get("format")
    if pattern is not None:
        for _ in range(40):
            text = pattern_sample(pattern, rng)
            if lo <= len(text) and (top is None or len(text) <= top):
                return text
        raise ValueError(
            f"cannot make a string of {lo} to {top} characters matching pattern {pattern!r}"
        )
    maker = _FORMATS.get(fmt) if isinstance(fmt, str) else None
    if maker is not None:
        return maker(rng)
    return _fit(_plausible_text(hint, rng), lo, top, rng)


def _fit(text: str, lo: int, hi: int | None, rng: Random) -> str:
    words = [text]
    size = len(text)
    while size < lo:
        word = rng.choice(_WORDS)
        words.append(word)
        size += len(word) + 1
    text = " ".join(words)
    if hi is not None and len(text) > hi:
        text = text[:hi].rstrip() or text[:hi]
    if len(text) < lo:  # rstrip went below the minimum
        text = text.ljust(lo, "x")
    return text


def _split(words: str) -> list[str]:
    return words.split()


_FIRST: list[str] = _split("Ada Alan Grace Linus Margaret Tim Barbara Dennis Katherine")
_LAST: list[str] = _split("Lovelace Turing Hopper Torvalds Hamilton Lee Liskov Ritchie")
_CITIES: list[str] = _split("Paris Lyon Berlin Madrid Lisbon Rome Vienna Oslo Tokyo Lima")
_COUNTRIES: list[str] = _split("France Germany Spain Portugal Italy Austria Norway Japan")
_LANDMARKS = ["Eiffel Tower", "Louvre Museum", "Brandenburg Gate", "Colosseum", "Belem Tower"]
_WORDS: list[str] = _split(
    "river bridge market garden harbor museum tower square street forest valley island mountain "
    "library station theater castle village canal park lake coast window lantern meadow orchard "
    "copper silver amber quiet bright early gentle steady rapid careful simple modern ancient "
    "northern eastern warm calm clear open broad narrow golden green blue red stone glass wooden "
    "builds keeps shows holds draws carries follows opens links guides joins frames marks "
    "season evening morning journey story record signal pattern measure answer detail sample"
)


def _two(rng: Random, lo: int, hi: int) -> str:
    return f"{rng.randint(lo, hi):02d}"


def _date(rng: Random) -> str:
    return f"{rng.randint(2000, 2030)}-{_two(rng, 1, 12)}-{_two(rng, 1, 28)}"


def _time(rng: Random) -> str:
    return f"{_two(rng, 0, 23)}:{_two(rng, 0, 59)}:{_two(rng, 0, 59)}Z"


_FORMATS: dict[str, Callable[[Random], str]] = {
    "date-time": lambda r: f"{_date(r)}T{_time(r)}",
    "date": _date,
    "time": _time,
    "email": lambda r: f"{r.choice(_FIRST).lower()}.{r.choice(_LAST).lower()}@example.com",
    "uuid": lambda r: str(uuid.UUID(int=r.getrandbits(128), version=4)),
    "ipv4": lambda r: f"192.0.2.{r.randint(1, 254)}",
    "ipv6": lambda r: f"2001:db8::{r.randint(1, 0xFFFF):x}:{r.randint(1, 0xFFFF):x}",
    "hostname": lambda r: f"{r.choice(_WORDS)}.example.com",
    "duration": lambda r: f"P{r.randint(1, 30)}DT{r.randint(1, 23)}H{r.randint(1, 59)}M",
    "uri": lambda r: f"https://example.com/{r.choice(_WORDS)}",
    "url": lambda r: f"https://example.com/{r.choice(_WORDS)}",
}

_CATEGORIES: list[tuple[frozenset[str], Callable[[Random], str]]] = [
    (frozenset({"email", "mail"}), _FORMATS["email"]),
    (frozenset({"url", "website", "link", "homepage", "uri"}), _FORMATS["url"]),
    (frozenset({"uuid", "guid"}), _FORMATS["uuid"]),
    (frozenset({"date", "day", "birthday"}), _FORMATS["date"]),
    (frozenset({"country", "nation"}), lambda r: r.choice(_COUNTRIES)),
    (frozenset({"city", "capital", "town"}), lambda r: r.choice(_CITIES)),
    (frozenset({"landmark", "attraction", "sight", "monument"}), lambda r: r.choice(_LANDMARKS)),
    (frozenset({"language"}), lambda r: r.choice(["French", "German", "Spanish", "Japanese"])),
    (frozenset({"currency"}), lambda r: r.choice(["EUR", "USD", "JPY", "GBP", "NOK"])),
    (frozenset({"color", "colour"}), lambda r: r.choice(["red", "green", "blue", "amber"])),
    (frozenset({"phone", "telephone"}), lambda r: f"+1-555-{r.randint(1000, 9999)}"),
    (frozenset({"first", "given"}), lambda r: r.choice(_FIRST)),
    (frozenset({"last", "family", "surname"}), lambda r: r.choice(_LAST)),
    (
        frozenset({"name", "author", "person", "owner", "customer", "user", "manager", "mayor"}),
        lambda r: f"{r.choice(_FIRST)} {r.choice(_LAST)}",
    ),
    (frozenset({"id", "code", "sku", "ref", "key"}), lambda r: f"id-{r.randint(1000, 99999)}"),
    (
        frozenset({"title", "headline", "subject", "heading"}),
        lambda r: " ".join(w.capitalize() for w in r.sample(_WORDS, 3)),
    ),
    (
        frozenset({"tag", "keyword", "category", "label", "genre", "topic"}),
        lambda r: r.choice(_WORDS),
    ),
    (
        frozenset(
            _split(
                "description summary reason explanation answer text comment note content body "
                "message bio fact detail rationale"
            )
        ),
        lambda r: prose(r, sentences=1),
    ),
]


def _name_words(hint: str) -> list[str]:
    spaced = re.sub(r"([a-z0-9])([A-Z])", r"\1 \2", hint)
    return [singular(w) for w in re.split(r"[^A-Za-z0-9]+", spaced.lower()) if w]


def singular(word: str) -> str:
    """`word` without a plural ending (cities -> city), good enough for hints."""
    if word.endswith("ies") and len(word) > 4:
        return word[:-3] + "y"
    if word.endswith("s") and not word.endswith("ss") and len(word) > 3:
        return word[:-1]
    return word


def _hint_for(hint: str, table: Mapping[str, Any]) -> Any:
    for word in reversed(_name_words(hint)):
        if word in table:
            return table[word]
    return None


def _plausible_text(hint: str, rng: Random) -> str:
    words = set(_name_words(hint))
    for keys, maker in _CATEGORIES:
        if keys & words:
            return maker(rng)
    return " ".join(rng.sample(_WORDS, rng.randint(1, 3)))


def prose(rng: Random, *, sentences: int = 4, topic: str = "") -> str:
    """Return deterministic filler prose: sentences in paragraphs of two, opened by `topic`."""
    parts: list[str] = []
    if topic:
        words = topic.split()
        excerpt = " ".join(words[:12]) + (" ..." if len(words) > 12 else "")
        parts.append(f'Mock answer to "{excerpt}".')
    for i in range(sentences):
        words = [rng.choice(_WORDS) for _ in range(rng.randint(6, 14))]
        sentence = " ".join(words).capitalize() + "."
        if parts and i % 2 == 0 and i:
            parts.append("\n\n" + sentence)
        else:
            parts.append((" " if parts else "") + sentence)
    return "".join(parts)
