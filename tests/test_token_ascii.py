"""runner.tokens._ascii: ASCII text is cut and merged in Python, on the ranks of a subset, to
exactly the tokens the full tiktoken encoder gives, in both encodings; and a run of distinct
ASCII rows builds no tiktoken encoder at all."""

from __future__ import annotations

import itertools
import string
from pathlib import Path

import pytest
from _token_cache import fresh_state
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from runner import tokens
from runner.tokens import _ascii, _bpe, _subset

ROOT = Path(__file__).resolve().parent.parent
NAMES = ["o200k_base", "cl100k_base"]
ASCII = "".join(chr(c) for c in range(128))


def _full(name: str, text: str) -> list[int]:
    return _bpe.encoding(name).encode_ordinary(text)


def _same(name: str, text: str, state: _subset._State) -> None:
    ours = state.ascii_tokens(text)
    assert ours is not None, text[:80]
    assert ours == _full(name, text), (name, text[:80])


# Weighted toward what the patterns treat apart: letters of both cases, digits, every kind of
# ASCII whitespace (and \x1c-\x1f, which Python's \s takes and Unicode's does not), apostrophe
# contractions, slashes after punctuation, line breaks.
_PIECE = (
    st.text(alphabet=ASCII, max_size=8)
    | st.text(alphabet="aZ 0'\n\r\t\x0b\x0c\x1c\x1f/.", max_size=10)
    | st.sampled_from(
        ["'s", "'S", "'ll", "'LL", "'Re", "'d", "'t", "'ve", "'m", "don't", "  ", "\r\n", " \n"]
    )
    | st.sampled_from(
        ["1234567", "3.14159", "HTTPServer", "camelCase", "x//y", "!!\n/", "<|endoftext|>"]
    )
)
_TEXT = st.lists(_PIECE, max_size=16).map("".join)


@pytest.mark.parametrize("name", NAMES)
@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(text=_TEXT)
def test_any_ascii_text_encodes_to_the_full_encoders_tokens(name: str, text: str) -> None:
    _same(name, text, fresh_state(name))


@pytest.mark.parametrize("name", NAMES)
def test_every_text_of_up_to_two_ascii_characters_encodes_the_same(name: str) -> None:
    state = fresh_state(name)  # one state: the piece memo is exercised too
    for a, b in itertools.product(ASCII, repeat=2):
        for text in (a + b, a + b + " ", a + b + "\n"):
            _same(name, text, state)


@pytest.mark.parametrize("name", NAMES)
def test_the_repositorys_docs_and_specs_encode_the_same(name: str) -> None:
    files = sorted((ROOT / "docs").glob("*.md")) + sorted((ROOT / "prompts").glob("*.yaml"))
    text = "\n".join(path.read_text(encoding="utf-8") for path in files)
    text = "".join(c for c in text if c.isascii())
    assert len(text) > 20_000
    state = fresh_state(name)
    checked = 0
    for start in range(0, len(text), 1_500):
        chunk = text[start : start + 1_500]
        ours = state.ascii_tokens(chunk)
        if ours is not None:  # None: a piece past MAX_PIECE (a rule of dashes), for tiktoken
            assert ours == _full(name, chunk), chunk[:80]
            checked += 1
    assert checked > len(text) // 1_500 // 2


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize(
    "text",
    [
        "",
        "a  \n",  # cl100k's `\s++$`: the end of the text (Python's `$` is also before a last \n)
        "x \n",
        " \n",
        "end with spaces   ",
        "\x1c\x1d\x1e\x1f between",  # not whitespace to tiktoken
        "tab\tvt\x0bff\x0ccr\rlf\n",
        "I'M SURE YOU'LL SEE IT'S FINE, DON'T WORRY",
        "1 12 123 1234 12345 123456789",
        "path/to//file/\n/x",
        "\r\n\r\n  indented\r\n",
        "a" * 64,  # a piece of MAX_PIECE bytes
    ],
)
def test_awkward_ascii_texts_encode_the_same(name: str, text: str) -> None:
    _same(name, text, fresh_state(name))


def test_a_piece_longer_than_max_piece_is_left_to_tiktoken_and_still_counts_exactly(
    second_process: Path,
) -> None:
    long = "x" + " " * 300 + "y" + "-" * 200
    assert fresh_state("o200k_base").ascii_tokens(long) is None
    counted = tokens.count_text(long, "gpt-4o")
    assert _bpe.loaded("o200k_base") is None  # a subset encoder did it
    assert counted == len(_full("o200k_base", long))


def test_the_split_cuts_every_character_into_exactly_one_piece() -> None:
    for name in NAMES:
        for text in [ASCII, ASCII[::-1], string.printable * 3]:
            assert "".join(_ascii.SPLIT[name].findall(text)) == text


def test_merge_is_tiktokens_byte_pair_merge() -> None:
    ranks = _bpe.ranks_of("o200k_base")
    full = _bpe.encoding("o200k_base")
    for piece in [b"antidisestablishment", b"aaaaaaaa", b"zzqx", b"Tokenization", b"!!!!"]:
        assert _ascii.merge(piece, ranks) == full._encode_single_piece(piece)


def test_a_piece_seen_before_is_not_keyed_again() -> None:
    state = fresh_state("o200k_base")
    system = "You are a precise geography assistant. Answer with facts only."
    state.ascii_tokens(system)
    keyed = state.keyed
    assert state.ascii_tokens(system) == _full("o200k_base", system)
    assert state.keyed == keyed
    state.ascii_tokens("Tell me about Osaka.")  # new pieces: " Osaka" only ("Tell", " me"...)
    assert keyed < state.keyed <= keyed + len("Tell me about Osaka.")


def test_distinct_ascii_rows_build_no_tiktoken_encoder(
    second_process: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    builds: list[int] = []
    real = _subset._State._encoder_for

    def counted(self: _subset._State, data: bytes) -> object:
        builds.append(len(data))
        return real(self, data)

    monkeypatch.setattr(_subset._State, "_encoder_for", counted)
    system = {"role": "system", "content": "You are a precise geography assistant."}
    counts = []
    for i in range(200):
        user = {"role": "user", "content": f"Row {i}: tell me about city number {i * 7919}."}
        counts.append(tokens.count_messages([system, user], "gpt-4o"))
    assert builds == []  # no tiktoken encoder built, not once per row, not once at all
    assert _bpe.loaded("o200k_base") is None
    monkeypatch.setattr(_subset, "_states", {})
    _bpe.encoding("o200k_base")
    tokens._COUNTS.clear()
    for i in (0, 57, 199):
        user = {"role": "user", "content": f"Row {i}: tell me about city number {i * 7919}."}
        assert tokens.count_messages([system, user], "gpt-4o") == counts[i]
