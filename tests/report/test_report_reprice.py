"""`runner report --price-as MODEL[,MODEL...]`: the recorded traffic priced on other models.

Every expected figure comes from genai-prices' own `calc_price` (never a number written here,
which would break with the next price update): the same tokenizer reuses the recorded counts
exactly; another tokenizer re-counts the recorded content; a call without content is scaled by a
ratio and marked estimated; cached and batch traffic keep their discount on the other model;
`--by` groups as usual; an unknown model is exit 2 before any ledger is read."""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from _report_lines import record, write_lines
from click.testing import CliRunner, Result
from genai_prices import Usage, calc_price

from runner.tokens import count_messages, count_text

BATCH = {"processing": "batch"}


def run(*args: str) -> Result:
    from runner.cli import cli

    return CliRunner().invoke(cli, ["report", *args], env={}, catch_exceptions=False)


def expected(
    model: str, prompt: int, cached: int, completion: int, *, batch: bool = False
) -> Decimal:
    """What genai-prices charges `model` for these counts (its input count includes the cached
    tokens; a model without a cached price charges them as input)."""
    found = calc_price(
        Usage(input_tokens=prompt, cache_read_tokens=cached, output_tokens=completion),
        model_ref=model,
        provider_id="openai",
        price_context=BATCH if batch else None,
    )
    return Decimal(found.total_price)


def priced(path: Path, *models: str, by: str = "model") -> tuple[list[dict[str, Any]], Result]:
    result = run("--ledger", str(path), "--by", by, "--format", "json", "--price-as", *models)
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout), result


def close(got: float, want: Decimal) -> bool:
    return abs(Decimal(str(got)) - want) <= Decimal("1e-10")


def usage(prompt: int, completion: int, cached: int = 0) -> dict[str, int]:
    return {"prompt": prompt, "completion": completion, "cached": cached}


def test_the_same_tokenizer_reuses_the_recorded_counts_exactly(tmp_path: Path) -> None:
    lines = [
        record(1, usage=usage(1000, 300, cached=200)),
        record(2, usage=usage(4000, 50)),
    ]
    path = write_lines(tmp_path / "l.jsonl", lines)
    (group,), result = priced(path, "gpt-4o,gpt-4.1-mini")
    for model in ("gpt-4o", "gpt-4.1-mini"):
        figures = group["priced_as"][model]
        want = expected(model, 1000, 200, 300) + expected(model, 4000, 0, 50)
        assert close(figures["cost_usd"], want), (model, figures, want)
        assert figures["estimated"] is False
        assert (figures["exact_calls"], figures["recounted_calls"]) == (2, 0)
    assert "2 calls on the same tokenizer: counts reused exactly" in result.stderr


def test_cached_and_batch_traffic_keep_their_discount_on_the_other_model(tmp_path: Path) -> None:
    lines = [
        record(1, usage=usage(1000, 300, cached=600)),
        record(2, usage=usage(1000, 300, cached=600), batch_id="batch_abc"),
    ]
    path = write_lines(tmp_path / "l.jsonl", lines)
    # gpt-4.1-mini lists a cached price and a batch price; gpt-3.5-turbo lists no cached price
    # (its cached tokens are input tokens) but a batch price.
    (group,), _ = priced(path, "gpt-4.1-mini", "--price-as", "gpt-3.5-turbo")
    for model in ("gpt-4.1-mini", "gpt-3.5-turbo"):
        want = expected(model, 1000, 600, 300) + expected(model, 1000, 600, 300, batch=True)
        assert close(group["priced_as"][model]["cost_usd"], want), model
    cheaper = expected("gpt-4.1-mini", 1000, 600, 300)
    assert cheaper < expected("gpt-4.1-mini", 1000, 0, 300)  # the cached discount is real
    assert expected("gpt-4.1-mini", 1000, 600, 300, batch=True) < cheaper


def _content_line(n: int, model: str, text: str, reply: str, **over: Any) -> dict[str, Any]:
    """A line whose usage is what `model`'s tokenizer counts for its content."""
    messages = [
        {"role": "system", "content": "You answer briefly."},
        {"role": "user", "content": text},
    ]
    counted = usage(count_messages(messages, model), count_text(reply, model))
    return record(
        n,
        model=model,
        messages=messages,
        output={"text": reply, "json": None},
        usage=counted,
        **over,
    )


def test_another_tokenizer_re_counts_the_recorded_content(tmp_path: Path) -> None:
    text = "Grüße aus München! Ünïcödé, emoji 🎉🎉 and code: def f(x): return x ** 2 # done"
    reply = "Schöne Grüße zurück 👋 — 12345 67890 ∑∫√"
    path = write_lines(tmp_path / "l.jsonl", [_content_line(1, "gpt-4-turbo", text, reply)])
    (group,), result = priced(path, "gpt-4o")
    messages = [
        {"role": "system", "content": "You answer briefly."},
        {"role": "user", "content": text},
    ]
    prompt = count_messages(messages, "gpt-4o")
    assert prompt != count_messages(messages, "gpt-4-turbo")  # the tokenizers differ here
    want = expected("gpt-4o", prompt, 0, count_text(reply, "gpt-4o"))
    figures = group["priced_as"]["gpt-4o"]
    assert close(figures["cost_usd"], want), (figures, want)
    assert (figures["recounted_calls"], figures["scaled_calls"]) == (1, 0)
    assert figures["estimated"] is False
    assert "1 call re-counted from their recorded content" in result.stderr


def test_without_content_the_figure_is_an_estimate_with_the_ratio_used(tmp_path: Path) -> None:
    text, reply = "Grüße aus München! 🎉🎉 def f(x): return x ** 2", "Schöne Grüße zurück 👋"
    bare = record(2, model="gpt-4-turbo", usage=usage(500, 100))
    path = write_lines(tmp_path / "l.jsonl", [_content_line(1, "gpt-4-turbo", text, reply), bare])
    (group,), result = priced(path, "gpt-4o")
    figures = group["priced_as"]["gpt-4o"]
    assert figures["estimated"] is True
    assert (figures["recounted_calls"], figures["scaled_calls"]) == (1, 1)
    assert "1 call without content estimated with the ratio " in result.stderr
    assert "(cl100k_base to o200k_base, measured on recorded content)" in result.stderr
    # The table says so too.
    table = run("--ledger", str(path), "--by", "model", "--price-as", "gpt-4o")
    assert " est" in table.stdout.splitlines()[2]


def test_no_content_at_all_uses_a_reference_text_and_says_so(tmp_path: Path) -> None:
    path = write_lines(
        tmp_path / "l.jsonl", [record(1, model="gpt-4-turbo", usage=usage(500, 100))]
    )
    (group,), result = priced(path, "gpt-4o")
    assert group["priced_as"]["gpt-4o"]["estimated"] is True
    assert "of cl100k_base to o200k_base on a reference text" in result.stderr


def test_by_groups_the_repricing_as_usual(tmp_path: Path) -> None:
    lines = [
        record(1, usage=usage(1000, 100)),
        record(2, spec={"name": "haiku"}, usage=usage(200, 40)),
        record(3, spec={"name": "haiku"}, usage=usage(300, 60)),
    ]
    path = write_lines(tmp_path / "l.jsonl", lines)
    groups, _ = priced(path, "gpt-4.1-mini", by="spec")
    assert [g["spec"] for g in groups] == ["city", "haiku"]
    city, haiku = (g["priced_as"]["gpt-4.1-mini"]["cost_usd"] for g in groups)
    assert close(city, expected("gpt-4.1-mini", 1000, 0, 100))
    assert close(haiku, expected("gpt-4.1-mini", 200, 0, 40) + expected("gpt-4.1-mini", 300, 0, 60))
    # CSV: a cost and an estimated column per model.
    csv = run("--ledger", str(path), "--by", "spec", "--format", "csv", "--price-as", "gpt-4o")
    header = csv.stdout.splitlines()[0].split(",")
    assert header[-2:] == ["priced_as.gpt-4o.cost_usd", "priced_as.gpt-4o.estimated"]


def test_errors_and_replayed_lines_cost_nothing_on_the_other_model(tmp_path: Path) -> None:
    lines = [
        record(1, usage=usage(1000, 100)),
        record(2, status="rate_limit", usage=usage(0, 0)),
        record(3, usage=usage(1000, 100), replayed={"from": "b.jsonl", "id": "x"}),
    ]
    path = write_lines(tmp_path / "l.jsonl", lines)
    (group,), _ = priced(path, "gpt-4o")
    assert close(group["priced_as"]["gpt-4o"]["cost_usd"], expected("gpt-4o", 1000, 0, 100))


@pytest.mark.parametrize(
    "models", [("gpt-4o,no-such-model-xyz",), ("gpt-4o", "--price-as", "no-such-model-xyz")]
)
def test_an_unknown_model_is_exit_2_before_anything_is_read(
    tmp_path: Path, models: tuple[str, ...]
) -> None:
    path = write_lines(tmp_path / "l.jsonl", [record(1)])
    before = path.read_bytes()
    result = run("--ledger", str(path), "--price-as", *models)
    assert result.exit_code == 2
    assert "--price-as no-such-model-xyz: no price known for this model" in result.stderr
    assert result.stdout == "" and "Traceback" not in result.output
    assert path.read_bytes() == before


def test_price_as_needs_a_name_and_takes_no_sql(tmp_path: Path) -> None:
    path = write_lines(tmp_path / "l.jsonl", [record(1)])
    assert run("--ledger", str(path), "--price-as", " , ").exit_code == 2
    refused = run("--ledger", str(path), "--price-as", "gpt-4o", "--sql", "SELECT 1")
    assert refused.exit_code == 2 and "--price-as" in refused.stderr


@pytest.mark.parametrize("model", ["gpt-4-turbo", "gpt-4o", "gpt-3.5-turbo-0301"])
def test_the_re_count_is_runners_own_count(model: str) -> None:
    """The re-count's cache of texts counts a prompt as runner.tokens.count_messages does
    (roles, framing, a name field, a text equal to its role)."""
    from runner.report.reprice import _Counter

    messages = [
        {"role": "user", "content": "user"},
        {"role": "system", "content": "Héllo 🎉 wörld"},
        {"role": "user", "content": "x", "name": "bob"},
        {"role": "user", "content": [{"type": "text", "text": "parts"}]},
    ]
    counter = _Counter()
    assert counter.messages(messages, model) == count_messages(messages, model)
    assert counter.messages(messages, model) == count_messages(messages, model)  # cached
