"""Hostile texts for the tokenizer: a long run of whitespace made tiktoken's Rust core panic
(pyo3_runtime.PanicException, a BaseException). Counting now never panics, and the count stays
exact: checked against an independent pre-tokenizer (the `regex` module running tiktoken's own
pattern, then tiktoken's single-piece BPE) on the hostile texts, and against the unsplit count
with the split threshold lowered to a few characters on ordinary texts."""

from __future__ import annotations

import time
from pathlib import Path
from unittest.mock import patch

import pytest
import regex
from click.testing import CliRunner
from hypothesis import given, settings
from hypothesis import strategies as st

from runner import tokens
from runner.cli import cli
from runner.errors import InputsInvalid
from runner.tokens import _bpe

ENCODINGS = ["o200k_base", "cl100k_base"]
MILLION = 1_000_000


def _reference(name: str, text: str) -> list[int]:
    enc = _bpe.encoding(name)
    pieces = regex.findall(_bpe.PAT_STR[name], text)
    assert "".join(pieces) == text
    return [t for piece in pieces for t in enc._encode_single_piece(piece)]


SHAPES = {
    "spaces": " {run}",
    "spaces then a letter": " {run}x",
    "letter, spaces, letter": "x {run}x",
    "spaces then punctuation": "a {run}!",
    "line break, spaces, letter": "\n {run}x",
    "tabs": "\t{run}x",
    "no-break spaces": "\u00a0{run}x",
    "ideographic spaces": "\u3000{run}",
    "vertical tabs": "\x0b{run}x",
    "mixed": " \t{run}y",
    "two runs": "a {run}b\n\n\t{run}c",
    "spaces, newline, spaces": " {run}\n {run}z",
}


def _text(shape: str, length: int) -> str:
    """The shape with each run (the character before `{run}`) repeated to `length`."""
    out, rest = "", SHAPES[shape]
    while "{run}" in rest:
        head, rest = rest.split("{run}", 1)
        out += head[:-1] + head[-1] * length
    return out + rest


@pytest.mark.parametrize(
    ("case", "name"),
    [("spaces then a letter", "o200k_base"), ("two runs", "cl100k_base")],
)
def test_a_million_spaces_count_exactly_without_a_panic(case: str, name: str) -> None:
    text = _text(case, MILLION)
    enc = _bpe.encoding(name)
    with pytest.raises(BaseException, match="StackOverflow"):  # what tiktoken alone does
        enc.encode_ordinary(text)
    started = time.perf_counter()
    got = _bpe.encode(enc, text)
    assert time.perf_counter() - started < 20
    assert got == _reference(name, text)


@pytest.mark.parametrize("name", ENCODINGS)
@pytest.mark.parametrize("case", sorted(SHAPES))
def test_every_shape_is_exact_when_cut(case: str, name: str) -> None:
    """Runs of 5,000 (which tiktoken still takes whole) cut at a threshold of 1,000."""
    text = _text(case, 5_000)
    enc = _bpe.encoding(name)
    with patch.object(_bpe, "LONG_RUN", 1_000):
        assert _bpe.encode(enc, text) == enc.encode_ordinary(text) == _reference(name, text)


def test_count_text_and_messages_take_a_million_spaces() -> None:
    text = "Summarise:" + " " * MILLION + "done"
    count = tokens.count_text(text, "gpt-4o")
    assert 7000 < count < 8000  # a token holds 128 spaces
    assert tokens.count_messages([{"role": "user", "content": text}], "gpt-4o") == count + 7
    cut = tokens.truncate(text, 3, "gpt-4o")
    assert text.startswith(cut) and tokens.count_text(cut, "gpt-4o") <= 3


_ALPHABET = st.sampled_from(
    [" ", "  ", "\t", "\n", "\r\n", "\u00a0", "\u3000", "\x0b", "a", "B", "é", "1", "23",
     "!", "/", "'s", "'T", ".", "中", "😀", "Hello", " world", "\u2028", "\x85"]
)  # fmt: skip


@settings(max_examples=300, deadline=None)
@given(
    parts=st.lists(st.tuples(_ALPHABET, st.integers(1, 12)), max_size=30),
    threshold=st.integers(2, 6),
    name=st.sampled_from(ENCODINGS),
)
def test_the_split_rule_is_exact_on_ordinary_text(
    parts: list[tuple[str, int]], threshold: int, name: str
) -> None:
    """With the threshold at a few characters, nearly every whitespace run is cut out: the
    tokens must equal tiktoken's unsplit encoding, token for token."""
    text = "".join(piece * times for piece, times in parts)
    enc = _bpe.encoding(name)
    with patch.object(_bpe, "LONG_RUN", threshold):
        assert _bpe.encode(enc, text) == enc.encode_ordinary(text)


def test_a_panic_that_escapes_the_core_becomes_a_runner_error() -> None:
    PanicException = type("PanicException", (BaseException,), {})  # noqa: N806

    def panics(text: str) -> list[int]:
        raise PanicException("called `Result::unwrap()` on an `Err` value")

    with pytest.raises(InputsInvalid, match="tiktoken's core failed on it"):
        _bpe._guarded(panics, "x")

    def interrupted(text: str) -> list[int]:
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):  # other BaseExceptions pass through untouched
        _bpe._guarded(interrupted, "x")


def test_exec_with_a_variable_of_a_million_spaces(tmp_path: Path) -> None:
    spec = tmp_path / "spaces.yaml"
    spec.write_text(
        "model: gpt-4o-mini\nmessages:\n  - {role: user, content: 'Echo {{ text }}!'}\n",
        encoding="utf-8",
    )
    (tmp_path / "vars.yaml").write_text(f"text: '{' ' * MILLION}'\n", encoding="utf-8")
    ledger = tmp_path / "ledger.jsonl"
    started = time.perf_counter()
    result = CliRunner().invoke(
        cli,
        ["exec", str(spec), "--mock", "--vars-file", str(tmp_path / "vars.yaml"),
         "--ledger", str(ledger)],
        catch_exceptions=False,
    )  # fmt: skip
    assert time.perf_counter() - started < 30
    assert result.exit_code == 0, result.output
    assert "Traceback" not in result.output
    assert len(ledger.read_text().splitlines()) == 1
