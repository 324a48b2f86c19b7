"""`runner report --price-as MODEL[,MODEL...]`: the recorded traffic priced on other models,
beside what it cost. No DuckDB here (runner.report.query hands in rows); prices come from
runner.pricing, tokenizers from runner.tokens.

Per group of the report, the query gives token sums split by the recorded model and by batch or
not (one scan, with the report's own figures). For each target model and each recorded model:
- the same tokenizer: the recorded counts are priced as they are, exactly;
- another tokenizer, both known: each call with its content in the ledger is re-counted (its
  messages and reply, on both tokenizers; its recorded counts scaled by what the content weighs
  on each), and calls without content are scaled by the ratio measured on the others (else on
  a reference text), marked estimated with the ratio;
- a tokenizer runner does not know: the recorded counts, marked estimated (ratio 1).
Cached prompt tokens are priced at the target's cached rate when it lists one, batch calls at
its batch price (genai-prices' batch price, else half), as runner prices its own batch rows.
Calls whose usage was implausible are never priced; they are counted.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from runner.errors import ConfigError
from runner.pricing import PriceBook, Rates
from runner.tokens import count_messages, count_text, known_encoding

__all__ = ["Target", "Tokens", "Repricing", "price_set", "targets"]

# A paragraph of ordinary English prose, to measure one tokenizer against another when the
# ledger holds no content to measure on.
REFERENCE_TEXT = (
    "The committee met on Tuesday to review the quarterly figures. Revenue rose by 4.2 percent, "
    "driven mostly by the new subscription plans, while support costs fell after the help "
    "centre was rewritten. Two questions stayed open: whether to hire before the summer, and "
    "how to price the enterprise tier in Europe. The chair asked for a short written proposal "
    "on each, with numbers, before the next meeting on the 14th."
)


@dataclass(frozen=True)
class Target:
    """A model to price on: its live and batch rates and its tokenizer (None: unknown)."""

    model: str
    live: Rates
    batch: Rates
    encoding: str | None


def targets(models: Sequence[str], book: PriceBook) -> list[Target]:
    """The --price-as models, each with a known price; ConfigError (exit 2) for one without."""
    found = []
    batch_book = book.for_batch()
    for model in dict.fromkeys(models):
        live = book.rates(model)
        if live is None:
            raise ConfigError(
                f"--price-as {model}: no price known for this model (genai-prices has none under "
                "that name, nor does runner.yaml's prices:); check the name, or add a price "
                "override to runner.yaml"
            )
        batch = batch_book.rates(model)
        assert batch is not None  # a known live price has a batch price
        found.append(Target(model, live, batch, known_encoding(model)))
    return found


def price_set(by: Sequence[str]) -> tuple[str, ...]:
    """The grouping the prices need: the --by fields, then the recorded model and batch."""
    return (*by, *(("model",) if "model" not in by else ()), "_batch")


@dataclass
class Tokens:
    """Token counts to price (fractions once scaled), and the calls they come from."""

    uncached: Decimal = Decimal(0)
    cached: Decimal = Decimal(0)
    completion: Decimal = Decimal(0)
    calls: int = 0

    def add(self, uncached: Any, cached: Any, completion: Any, calls: int = 1) -> None:
        self.uncached += Decimal(uncached)
        self.cached += Decimal(cached)
        self.completion += Decimal(completion)
        self.calls += calls


@dataclass
class _Cell:
    """One group priced on one target, as it is summed."""

    usd: Decimal = Decimal(0)
    estimated: bool = False
    exact_calls: int = 0  # recorded counts reused as they are (same tokenizer)
    recounted_calls: int = 0  # re-counted from their content
    scaled_calls: int = 0  # scaled by a ratio: no content, or an unknown tokenizer
    unpriced_calls: int = 0  # implausible usage: never priced

    def to_dict(self) -> dict[str, Any]:
        return {
            "cost_usd": float(self.usd),
            "estimated": self.estimated,
            "exact_calls": self.exact_calls,
            "recounted_calls": self.recounted_calls,
            "scaled_calls": self.scaled_calls,
            "unpriced_calls": self.unpriced_calls,
        }


@dataclass
class _Ratio:
    """Tokens of the same content on the recorded model's tokenizer and on the target's."""

    source: int = 0
    target: int = 0

    def value(self) -> Decimal | None:
        return None if not self.source else Decimal(self.target) / Decimal(self.source)


@dataclass
class Repricing:
    """Prices the price set's rows (one per group, recorded model and batch) on every target.

    `need_recount()` names the recorded models whose calls must be re-counted for some target
    (another known tokenizer); `recount(rows)` takes those calls' content; `priced(key)` gives
    a group's figures per target."""

    by: tuple[str, ...]
    targets: list[Target]
    rows: list[dict[str, Any]]
    cells: dict[tuple[Any, ...], dict[str, _Cell]] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    _recounted: dict[tuple[Any, ...], Tokens] = field(default_factory=dict)  # + target
    _ratios: dict[tuple[str, str], tuple[_Ratio, _Ratio]] = field(default_factory=dict)
    _content_calls: dict[tuple[Any, ...], int] = field(default_factory=dict)
    _without_content: dict[tuple[Any, ...], Tokens] = field(default_factory=dict)
    _reference: set[tuple[str, str]] = field(default_factory=set)  # pairs measured on the text

    def need_recount(self) -> list[str]:
        """Recorded models with another known tokenizer than some target's."""
        models = {str(r["model"]) for r in self.rows if r["model"] is not None}
        return sorted(
            m
            for m in models
            if known_encoding(m) is not None
            and any(t.encoding not in (None, known_encoding(m)) for t in self.targets)
        )

    def recount(self, rows: Iterable[tuple[Any, ...]]) -> None:
        """Re-count calls from their content: each row is (the --by values..., model, batch,
        prompt, cached, completion, messages as JSON text or None, reply text or None). A call's
        recorded counts are scaled by what its content weighs on each tokenizer: when they are
        what runner counts on the recorded model (the usual case), that is the re-count."""
        width = len(self.by)
        counter = _Counter()
        # Per target encoding, the targets priced on it (each encoding counted once per call).
        encodings: dict[str, list[Target]] = {}
        for target in self.targets:
            if target.encoding is not None:
                encodings.setdefault(target.encoding, []).append(target)
        exact: dict[tuple[Any, ...], list[int]] = {}  # whole prompt and reply tokens, summed
        for row in rows:
            key = tuple(row[:width])
            model, batch = row[width], bool(row[width + 1])
            prompt, cached, completion, messages, text = row[width + 2 :]
            prompt, completion = int(prompt or 0), int(completion or 0)
            cached = min(int(cached or 0), prompt)
            listed = _messages(messages)
            if listed is None:  # no content: scaled later by the ratio measured on the others
                bare = self._without_content.setdefault((*key, model, batch), Tokens())
                bare.add(prompt - cached, cached, completion)
                continue
            src_encoding = counter.encoding(model)
            group = (*key, model, batch)
            self._content_calls[group] = self._content_calls.get(group, 0) + 1
            src_prompt = src_text = None
            for encoding, priced_on in encodings.items():
                if encoding == src_encoding:
                    continue
                if src_prompt is None:
                    src_prompt = counter.messages(listed, str(model))
                    src_text = counter.text(text, str(model)) if isinstance(text, str) else 0
                dst_prompt = counter.messages(listed, priced_on[0].model)
                dst_text = counter.text(text, priced_on[0].model) if src_text else 0
                ratios = self._ratios.setdefault(
                    (str(src_encoding), encoding), (_Ratio(), _Ratio())
                )
                ratios[0].source += src_prompt
                ratios[0].target += dst_prompt
                if src_text:
                    ratios[1].source += src_text
                    ratios[1].target += dst_text
                whole = cached == 0 and prompt == src_prompt and completion == src_text
                for target in priced_on:
                    if whole:  # the recorded counts are runner's: the re-count is whole tokens
                        sums = exact.setdefault((*group, target.model), [0, 0])
                        sums[0] += dst_prompt
                        sums[1] += dst_text
                        continue
                    prompt_ratio = Decimal(dst_prompt) / Decimal(src_prompt or 1)
                    completion_ratio = (
                        Decimal(dst_text) / Decimal(src_text or 1) if src_text else prompt_ratio
                    )
                    tally = self._recounted.setdefault((*group, target.model), Tokens())
                    tally.add(
                        (prompt - cached) * prompt_ratio,
                        cached * prompt_ratio,
                        completion * completion_ratio,
                    )
        for group_target, (uncached, completion_sum) in exact.items():
            tally = self._recounted.setdefault(group_target, Tokens())
            tally.add(uncached, 0, completion_sum, 0)

    def price(self) -> None:
        """Price every row on every target (after `recount`, when it was needed)."""
        used: dict[str, dict[str, int]] = {t.model: {} for t in self.targets}
        for row in self.rows:
            key = tuple(row[_column(f)] for f in self.by)
            model, batch = row["model"], bool(row["_batch"])
            src_encoding = None if model is None else known_encoding(str(model))
            calls = int(row["priced_calls"] or 0)
            recorded = Tokens(
                Decimal(int(row["priced_uncached"] or 0)),
                Decimal(int(row["priced_cached"] or 0)),
                Decimal(int(row["priced_completion"] or 0)),
                calls,
            )
            for target in self.targets:
                cell = self.cells.setdefault(key, {}).setdefault(target.model, _Cell())
                cell.unpriced_calls += int(row["implausible_calls"] or 0)
                if not calls:
                    continue
                rates = target.batch if batch else target.live
                cell.estimated |= bool(row["priced_estimated"]) or not rates.exact
                how = used[target.model]
                if src_encoding is not None and src_encoding == target.encoding:
                    cell.usd += _cost(rates, recorded)
                    cell.exact_calls += calls
                    how["exact"] = how.get("exact", 0) + calls
                    continue
                if src_encoding is None or target.encoding is None:
                    cell.usd += _cost(rates, recorded)  # ratio 1: the recorded counts
                    cell.scaled_calls += calls
                    cell.estimated = True
                    how["unknown"] = how.get("unknown", 0) + calls
                    continue
                tally = self._recounted.get((*key, model, batch, target.model), Tokens())
                content = self._content_calls.get((*key, model, batch), 0)
                cell.usd += _cost(rates, tally)
                cell.recounted_calls += content
                how["recounted"] = how.get("recounted", 0) + content
                bare = self._without_content.get((*key, model, batch))
                if bare is not None and bare.calls:  # scaled by the measured ratio
                    prompt_ratio, completion_ratio = self.ratio(str(model), target)
                    scaled = Tokens()
                    scaled.add(
                        bare.uncached * prompt_ratio,
                        bare.cached * prompt_ratio,
                        bare.completion * completion_ratio,
                        bare.calls,
                    )
                    cell.usd += _cost(rates, scaled)
                    cell.scaled_calls += bare.calls
                    cell.estimated = True
                    how["scaled"] = how.get("scaled", 0) + bare.calls
        self._explain(used)

    def ratio(self, model: str, target: Target) -> tuple[Decimal, Decimal]:
        """The prompt and reply ratios (target tokens per recorded token) between the recorded
        model's tokenizer and the target's: measured on the re-counted calls, else on
        REFERENCE_TEXT."""
        measured = self._ratios.get((str(known_encoding(model)), str(target.encoding)))
        if measured is not None and measured[0].value() is not None:
            prompt = measured[0].value() or Decimal(1)
            return prompt, measured[1].value() or prompt
        reference = Decimal(count_text(REFERENCE_TEXT, target.model)) / Decimal(
            count_text(REFERENCE_TEXT, model)
        )
        self._reference.add((str(known_encoding(model)), str(target.encoding)))
        return reference, reference

    def _explain(self, used: Mapping[str, Mapping[str, int]]) -> None:
        for target in self.targets:
            how = used[target.model]
            parts = []
            if how.get("exact"):
                parts.append(f"{_calls(how['exact'])} on the same tokenizer: counts reused exactly")
            if how.get("recounted"):
                parts.append(f"{_calls(how['recounted'])} re-counted from their recorded content")
            if how.get("scaled"):
                parts.append(
                    f"{_calls(how['scaled'])} without content estimated with the ratio "
                    + ", ".join(self._ratio_words(target))
                )
            if how.get("unknown"):
                parts.append(
                    f"{_calls(how['unknown'])} of a model whose tokenizer runner does not know "
                    "estimated on their recorded counts (ratio 1)"
                )
            if parts:
                self.notes.append(
                    f"--price-as {target.model} ({target.encoding or 'tokenizer unknown'}; "
                    f"{target.live.source}): " + "; ".join(parts)
                )

    def _ratio_words(self, target: Target) -> list[str]:
        words = []
        for (src, dst), (prompt, _) in sorted(self._ratios.items()):
            if dst == target.encoding and prompt.value() is not None:
                words.append(f"{prompt.value():.3f} ({src} to {dst}, measured on recorded content)")
        for src, dst in sorted(self._reference):
            if dst == target.encoding and (src, dst) not in self._ratios:
                words.append(f"of {src} to {dst} on a reference text (no content to measure)")
        return words

    def priced(self, key: tuple[Any, ...]) -> dict[str, dict[str, Any]]:
        """A group's figures per target (every target present, $0 when nothing to price)."""
        cells = self.cells.get(key, {})
        return {t.model: cells.get(t.model, _Cell()).to_dict() for t in self.targets}

    def total(self) -> dict[str, dict[str, Any]]:
        """Every group summed, per target."""
        out = {}
        for target in self.targets:
            cell = _Cell()
            for cells in self.cells.values():
                found = cells.get(target.model)
                if found is None:
                    continue
                cell.usd += found.usd
                cell.estimated |= found.estimated
                cell.exact_calls += found.exact_calls
                cell.recounted_calls += found.recounted_calls
                cell.scaled_calls += found.scaled_calls
                cell.unpriced_calls += found.unpriced_calls
            out[target.model] = cell.to_dict()
        return out


def _calls(n: int) -> str:
    return f"{n:,} call" + ("" if n == 1 else "s")


def _cost(rates: Rates, tokens: Tokens) -> Decimal:
    return rates.cost(tokens.uncached, tokens.cached, tokens.completion).quantize(Decimal("1e-12"))


def _column(field: str) -> str:
    from runner.report.sql import column

    return column(field)


def _messages(value: Any) -> list[dict[str, Any]] | None:
    if not isinstance(value, str):
        return None
    try:
        listed = json.loads(value)
    except ValueError:
        return None
    if not isinstance(listed, list) or not listed:
        return None
    return [m for m in listed if isinstance(m, dict)] or None


class _Counter:
    """Token counts of message texts and replies, each text counted once per tokenizer (a
    system prompt shared by every call is counted once)."""

    def __init__(self) -> None:
        self._encodings: dict[str, str | None] = {}
        # Per model: the counts of the texts seen on its encoding (shared by the models of one
        # encoding), and the tokens a message costs beyond its texts.
        self._tables: dict[str, tuple[dict[str, int], int]] = {}
        self._by_encoding: dict[str, dict[str, int]] = {}

    def encoding(self, model: str) -> str | None:
        found = self._encodings.get(model, "?")
        if found == "?":
            found = self._encodings[model] = known_encoding(model)
        return found

    def _table(self, model: str) -> tuple[dict[str, int], int]:
        found = self._tables.get(model)
        if found is None:
            texts = self._by_encoding.setdefault(str(self.encoding(model)), {})
            framing = count_messages([{"role": ""}], model) - 3  # 3 for today's models
            found = self._tables[model] = (texts, framing)
        return found

    def text(self, text: str, model: str) -> int:
        texts = self._table(model)[0]
        found = texts.get(text)
        if found is None:
            if len(texts) > 200_000:
                texts.clear()
            found = texts[text] = count_text(text, model)
        return found

    def messages(self, messages: list[dict[str, Any]], model: str) -> int:
        """The prompt tokens of these messages as runner.tokens.count_messages counts them:
        each message's role and text, its framing, and 3 for the reply's start; a message with
        other fields or content that is not text is counted whole."""
        texts, framing = self._table(model)
        total = 3
        for message in messages:
            content, role = message.get("content"), message.get("role")
            if isinstance(content, str) and isinstance(role, str) and len(message) == 2:
                role_tokens = texts.get(role)
                if role_tokens is None:
                    role_tokens = self.text(role, model)
                content_tokens = texts.get(content)
                if content_tokens is None:
                    content_tokens = self.text(content, model)
                total += framing + role_tokens + content_tokens
            else:
                total += count_messages([message], model) - 3
        return total
