"""runner.tokens._subset: a text is encoded by an encoder built from the ranks its substrings
could need, and must come out exactly as the full encoder encodes it: the same tokens, for any
text, in both encodings. A damaged bucket file is never trusted, and a process that has counted
a lot of different text switches to the full encoder."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from _token_cache import fresh_state
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from runner import tokens
from runner.tokens import _bpe, _subset

ROOT = Path(__file__).resolve().parent.parent
NAMES = ["o200k_base", "cl100k_base"]


def _same(name: str, text: str, state: _subset._State) -> None:
    encoder = state.encoder_for(text)
    assert encoder is not None
    full = _bpe.encoding(name)
    ours, theirs = _bpe.encode(encoder, text), _bpe.encode(full, text)
    assert ours == theirs, (name, text[:80])
    assert len(state.ranks) < _bpe.RANK_COUNT[name]


_TEXT = st.lists(
    st.text(alphabet=st.characters(codec="utf-8"), max_size=12)
    | st.text(alphabet="ab \n\t'0é", max_size=12)
    | st.characters(min_codepoint=0xD800, max_codepoint=0xDFFF)  # lone surrogates
    | st.sampled_from([" ", "  ", "\n", "\r\n", "\t", "'s", "'LL", "<|endoftext|>", "1234567"]),
    max_size=20,
).map("".join)


@pytest.mark.parametrize("name", NAMES)
@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(text=_TEXT)
def test_any_text_encodes_to_the_same_tokens_as_with_the_full_encoder(name: str, text: str) -> None:
    _same(name, text, fresh_state(name))


@pytest.mark.parametrize("name", NAMES)
def test_every_doc_and_spec_of_the_repository_encodes_the_same(name: str) -> None:
    files = sorted((ROOT / "docs").glob("*.md")) + sorted((ROOT / "prompts").glob("*.yaml"))
    assert len(files) > 5
    text = "\n".join(path.read_text(encoding="utf-8") for path in files)
    state = fresh_state(name)  # one state growing over many texts, as in a long run
    for start in range(0, len(text), 2_000):
        chunk = text[start : start + 2_000]
        _same(name, chunk, fresh_state(name))
        encoder = state.encoder_for(chunk)
        if encoder is None:  # grown past the limits: the full encoder takes over from here
            break
        assert _bpe.encode(encoder, chunk) == _bpe.encode(_bpe.encoding(name), chunk)


@pytest.mark.parametrize(
    "text",
    [
        "a\ud800b",  # a lone surrogate: tiktoken encodes U+FFFD in its place
        "x" + " " * 300 + "y",
        "\u00e9\u0301\U0001f600 mixed script \u4f60\u597d\u3002",
        "<|endoftext|><|endofprompt|> plain text",
        "",
    ],
)
def test_awkward_texts_encode_the_same(text: str) -> None:
    for name in NAMES:
        _same(name, text, fresh_state(name))


def test_long_whitespace_runs_take_the_same_cut_path(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(_bpe, "LONG_RUN", 5)
    _same(
        "o200k_base",
        "a" + " " * 40 + "b\n" + "\t" * 9 + "c" + " " * 7,
        fresh_state("o200k_base"),
    )


def _bucket_file(cache: Path) -> Path:
    [path] = (cache / "tokens").glob("o200k_base-*-buckets-v*.bin")
    return path


def test_the_first_process_counts_with_the_full_encoder_and_the_next_with_a_subset(
    clean: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert tokens.count_text("tiktoken is great!", "gpt-4o") == 6
    assert _bpe.loaded("o200k_base") is not None  # no bucket file yet: the full one
    assert _bucket_file(clean).stat().st_size > 1_000_000
    monkeypatch.setattr(_bpe, "_encodings", {})  # a new process
    assert tokens.count_text("tiktoken is great!", "gpt-4o") == 6
    assert tokens.count_messages([{"role": "user", "content": "Hi there"}], "gpt-4o") == 9
    assert _bpe.loaded("o200k_base") is None  # counted without building the full encoder
    assert 0 < len(_subset._states["o200k_base"].ranks) < 5_000


@pytest.mark.parametrize(
    "damage",
    [
        lambda blob: blob[: len(blob) // 2],
        lambda blob: blob[:40] + bytes([blob[40] ^ 1]) + blob[41:],
        lambda blob: b"",
        lambda blob: bytes(4) + blob[4:],  # the CRC-32 zeroed
        lambda blob: blob[:4] + bytes(20) + blob[24:],  # the first offsets zeroed
    ],
    ids=["torn", "flipped", "empty", "checksum", "header"],
)
def test_a_damaged_bucket_file_is_never_trusted_and_is_rebuilt(
    clean: Path, monkeypatch: pytest.MonkeyPatch, damage: object
) -> None:
    tokens.count_text("x", "gpt-4o")
    path = _bucket_file(clean)
    good = path.read_bytes()
    path.write_bytes(damage(good))  # type: ignore[operator]
    monkeypatch.setattr(_bpe, "_encodings", {})
    assert tokens.count_text("tiktoken is great!", "gpt-4o") == 6
    assert path.read_bytes() == good


def test_a_signed_bucket_file_with_a_bad_offset_falls_back_to_the_full_encoder(
    clean: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    tokens.count_text("x", "gpt-4o")
    path = _bucket_file(clean)
    payload = bytearray(path.read_bytes()[_subset.DIGEST_SIZE :])
    payload[4 * 100 : 4 * 101] = (2**32 - 1).to_bytes(4, "little")  # one offset points away
    path.write_bytes(_subset._digest(payload) + bytes(payload))
    monkeypatch.setattr(_bpe, "_encodings", {})
    text = "".join(chr(c) for c in range(32, 2000))
    assert tokens.count_text(text, "gpt-4o") == len(_bpe.encoding("o200k_base").encode(text))


def test_no_cache_folder_means_the_full_encoder(
    clean: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("RUNNER_CACHE_DIR", "")
    assert tokens.count_text("tiktoken is great!", "gpt-4o") == 6
    assert _bpe.loaded("o200k_base") is not None


def test_a_process_that_counts_much_different_text_switches_to_the_full_encoder(
    clean: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    tokens.count_text("x", "gpt-4o")
    monkeypatch.setattr(_bpe, "_encodings", {})
    texts = [p.read_text(encoding="utf-8") for p in sorted((ROOT / "docs").glob("*.md"))]
    full = None
    for text in texts:
        ours = tokens.count_text(text, "gpt-4o")
        full = _bpe.loaded("o200k_base")
        if full is not None:
            assert ours == len(full.encode_ordinary(text))
    assert full is not None
    assert "o200k_base" not in _subset._states
    state_free = tokens.count_text("after the switch", "gpt-4o")
    assert state_free == len(full.encode_ordinary("after the switch"))


def test_a_cold_process_counts_a_prompt_without_building_the_full_encoder(tmp_path: Path) -> None:
    env = {**os.environ, "RUNNER_CACHE_DIR": str(tmp_path)}
    script = (
        "from runner import tokens\n"
        "from runner.tokens import _bpe\n"
        "n = tokens.count_messages([{'role': 'system', 'content': 'Be brief.'},"
        " {'role': 'user', 'content': 'Tell me about Paris.'}], 'gpt-4o-mini')\n"
        "print(n, _bpe.loaded('o200k_base') is not None)\n"
    )
    first = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True)
    second = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True)
    assert first.returncode == 0 and second.returncode == 0, first.stderr + second.stderr
    assert first.stdout.split() == [second.stdout.split()[0], "True"]
    assert second.stdout.split()[1] == "False"


def test_a_text_counted_before_is_not_keyed_again_and_still_counts_exactly() -> None:
    state = fresh_state("o200k_base")
    system = "You are a precise geography assistant. Answer with facts only."
    first = state.encoder_for(system)
    keyed = state.keyed
    for city in ["Paris", "Lima", "Osaka", "Nairobi"]:
        state.encoder_for(f"Tell me about {city}.")
        again = state.encoder_for(system)  # every row repeats the system prompt
        assert again is not None and again is state.encoder
        assert _bpe.encode(again, system) == _bpe.encode(_bpe.encoding("o200k_base"), system)
    assert first is not None
    assert state.keyed == keyed + sum(
        len(f"Tell me about {c}.") for c in ["Paris", "Lima", "Osaka", "Nairobi"]
    )


def test_a_request_builds_its_subset_once_not_once_per_text(
    second_process: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    builds: list[int] = []
    real = _subset._State._encoder_for

    def counted(self: _subset._State, data: bytes) -> object:
        before = len(self.ranks)
        found = real(self, data)
        builds.append(len(self.ranks) - before)
        return found

    monkeypatch.setattr(_subset._State, "_encoder_for", counted)
    messages = [
        {"role": "system", "content": "You answer in one word, in Quechua if you can."},
        {"role": "user", "content": "Where is Machu Picchu? ¿Dónde está?", "name": "ana"},
    ]
    counted_here = tokens.count_messages(messages, "gpt-4o")
    assert [n for n in builds if n] == [builds[0]] and builds[0] > 0  # one build, first
    monkeypatch.setattr(_subset._State, "_encoder_for", real)
    monkeypatch.setattr(_subset, "_states", {})
    full = _bpe.encoding("o200k_base")
    assert _bpe.loaded("o200k_base") is full
    tokens._COUNTS.clear()
    assert tokens.count_messages(messages, "gpt-4o") == counted_here  # as the full encoder


def test_priming_keys_no_text_twice_not_even_a_long_one(second_process: Path) -> None:
    long = "a long document line, " * 300  # past what priming can mark as covered
    messages = [
        {"role": "system", "content": "Summarise."},
        {"role": "user", "content": long},
    ]
    counted = tokens.count_messages(messages, "gpt-4o")
    texts = ["system", "Summarise.", "user", long]
    keyed_once = sum(len(t.encode()) for t in texts) + len(texts)  # separators included
    assert _subset._states["o200k_base"].keyed <= keyed_once
    assert counted == tokens.count_messages(messages, "gpt-4o")
