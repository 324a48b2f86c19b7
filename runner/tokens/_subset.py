"""Counting a few texts exactly without building the whole vocabulary.

Building tiktoken's encoder for o200k_base converts 200,000 ranks into its Rust core: about
200 ms of CPU, the largest part of a cold `runner exec`, to count a prompt of a few hundred
bytes. Yet encoding a text only ever looks up the rank of a *substring of that text*: the
regex cuts the text into pieces, a piece that is a token is looked up whole, and BPE looks up
the concatenations of adjacent parts of a piece. So an encoder built from every rank whose
first four bytes (or whole token, when shorter) occur in the text encodes that text to exactly
the same tokens as the full one: every rank it could look up is there, and a rank it lacks is
one it would never have asked for. Such a subset of a short prompt is a thousand or two ranks.

The ranks are kept on disk bucketed by a CRC-32 of those first four bytes (65,536 buckets, each
a marshalled dict; a bucket may hold several keys, and extra ranks never change a result). The
file is built once from the hash-checked rank file, holds a CRC-32 of its payload (a torn or
corrupt file is rebuilt, never trusted) and lives in runner's cache folder; without a cache
folder, or once a process has keyed much text (a data set of long rows) or grown a large subset,
the full encoder is built and used from then on (`runner.tokens._bpe.encoding`).

ASCII text needs no tiktoken encoder at all: runner.tokens._ascii cuts and merges it with the
loaded ranks, as tiktoken would, so a data set of distinct rows does not build one per row.
"""

from __future__ import annotations

import contextlib
import marshal
import os
import struct
import sys
import tempfile
import threading
import zlib
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from runner.caches import cache_dir
from runner.tokens import _ascii, _bpe

if TYPE_CHECKING:
    import tiktoken

__all__ = ["encode_text", "encoding_for_text"]

KEY = 4  # bytes of a token that choose its bucket
SLOTS = 1 << 16
_FORMAT = 2  # 2: a CRC-32 of the payload, not its sha256
_HEADER = struct.Struct(f"<{SLOTS + 1}I")  # bucket start offsets, then the end
_IN_PLACE = sys.byteorder == "little" and struct.calcsize("I") == 4
# Past these, a process has counted enough different text that the full encoder is cheaper.
MAX_SUBSET = 25_000  # ranks in one subset
MAX_CONVERTED = 50_000  # ranks handed to tiktoken over all subset builds
# Finding a text's keys costs about half a microsecond a byte: past this many bytes keyed, the
# full encoder (built once) is cheaper than going on. Texts seen before cost nothing.
MAX_KEYED_BYTES = 256_000
_KNOWN_TEXTS = 4096  # remembered texts (each shorter than _KNOWN_LENGTH) already covered
_KNOWN_LENGTH = 4096
_MEMO_PIECES = 65_536  # pieces of ASCII text remembered with their tokens

_states: dict[str, _State] = {}
_lock = threading.Lock()


_SINGLE_BYTES = [bytes([b]) for b in range(256)]


def _slot(key: bytes) -> int:
    return zlib.crc32(key) & (SLOTS - 1)


def _index_path(name: str) -> Path | None:
    folder = cache_dir()
    if folder is None:
        return None
    sha = _bpe.EXPECTED_SHA256[name][:16]
    return folder / "tokens" / f"{name}-{sha}-buckets-v{_FORMAT}.bin"


def build_index(ranks: dict[bytes, int]) -> bytes:
    """The bucket file's payload for these ranks (without its digest)."""
    buckets: list[dict[bytes, int]] = [{} for _ in range(SLOTS)]
    for token, rank in ranks.items():
        buckets[_slot(token[:KEY])][token] = rank
    chunks = [marshal.dumps(bucket) for bucket in buckets]
    offsets = [0]
    for chunk in chunks:
        offsets.append(offsets[-1] + len(chunk))
    return _HEADER.pack(*offsets) + b"".join(chunks)


# The file is runner's own, rebuilt from the hash-checked rank file and replaced atomically:
# its checksum is there to catch a torn or damaged copy, which a CRC-32 does (at a tenth of a
# sha256's cost: 1 ms against 13 ms for the 4 MB o200k file here, paid by every process that
# counts tokens). Like the sha256 before it, it is no defence against someone who can write the
# cache folder: they could write the rank file's replacement and its checksum alike.
DIGEST_SIZE = 4


def _digest(payload: bytes | bytearray | memoryview) -> bytes:
    return zlib.crc32(payload).to_bytes(DIGEST_SIZE, "big")


def _read_index(path: Path) -> memoryview | None:
    try:
        blob = path.read_bytes()
    except OSError:
        return None
    # A view, not a copy: a cold process pays for every fresh page of 4 MB it touches.
    digest, payload = blob[:DIGEST_SIZE], memoryview(blob)[DIGEST_SIZE:]
    if len(payload) < _HEADER.size or _digest(payload) != digest:
        return None
    return payload


def _write_index(path: Path, payload: bytes) -> None:
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".buckets-", suffix=".tmp")
        try:
            with os.fdopen(fd, "wb") as f:
                f.write(_digest(payload) + payload)
            os.replace(tmp, path)  # readers see the old file or the whole new one
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            raise
    except OSError:
        return  # a read-only home or a full disk: no cache, the full encoder is used


class _State:
    """One encoding's subset so far: the buckets loaded, their ranks, the encoder built."""

    def __init__(self, name: str, payload: bytes | memoryview) -> None:
        self.name = name
        self.payload = payload
        # Read in place where the machine's own order is the file's (65,537 offsets: unpacked,
        # as many int objects).
        self.offsets: Sequence[int] = (
            memoryview(payload)[: _HEADER.size].cast("I")
            if _IN_PLACE
            else _HEADER.unpack_from(payload)
        )
        self.loaded: set[int] = set()
        self.ranks: dict[bytes, int] = {}
        self.encoder: tiktoken.Encoding | None = None
        self.converted = 0
        self.keyed = 0
        self.known: set[str] = set()
        self.pieces: dict[str, tuple[int, ...]] = {}  # an ASCII piece -> its tokens

    def encoder_for(self, text: str) -> tiktoken.Encoding | None:
        """An encoder exact for `text`, or None when the full one should be built instead."""
        if self.encoder is not None and text in self.known:
            return self.encoder  # ranks only ever grow: what covered it still does
        encoder = self._encoder_for(_utf8(text))
        if encoder is not None and len(text) < _KNOWN_LENGTH and len(self.known) < _KNOWN_TEXTS:
            self.known.add(text)
        return encoder

    def _encoder_for(self, data: bytes) -> tiktoken.Encoding | None:
        self.keyed += len(data)
        if self.keyed > MAX_KEYED_BYTES:
            return None
        # Every key a substring can have: its first KEY bytes, or all of it when shorter.
        keys = {data[i : i + k] for k in range(1, KEY + 1) for i in range(len(data))}
        if self.encoder is None:  # every single byte in every encoder: no text can miss one
            keys.update(_SINGLE_BYTES)
        slots = {_slot(k) for k in keys} - self.loaded
        if not slots and self.encoder is not None:
            return self.encoder
        if not self._load(slots):
            return None  # a damaged offset table: the full encoder decides
        if len(self.ranks) > MAX_SUBSET or self.converted + len(self.ranks) > MAX_CONVERTED:
            return None
        import tiktoken

        self.encoder = tiktoken.Encoding(
            name=self.name,
            pat_str=_bpe.PAT_STR[self.name],
            mergeable_ranks=self.ranks,
            special_tokens=dict(_bpe.SPECIAL_TOKENS[self.name]),
        )
        self.converted += len(self.ranks)
        return self.encoder

    def _load(self, slots: set[int]) -> bool:
        """Add the ranks of these buckets; False when the offset table is damaged."""
        base = _HEADER.size
        for slot in slots - self.loaded:
            start, end = self.offsets[slot], self.offsets[slot + 1]
            if end < start or base + end > len(self.payload):
                return False
            self.ranks.update(marshal.loads(self.payload[base + start : base + end]))
            self.loaded.add(slot)
        return True

    def ascii_tokens(self, text: str) -> list[int] | None:
        """The tokens of an ASCII text, cut and merged by runner.tokens._ascii with the ranks
        of its new pieces loaded (a piece seen before is remembered); None when tiktoken is to
        encode it instead: a piece longer than _ascii.MAX_PIECE, the keying budget spent, a
        damaged bucket file."""
        split = _ascii.SPLIT.get(self.name)
        if split is None:
            return None
        memo = self.pieces
        tokens: list[int] = []
        for piece in split.findall(text):
            found = memo.get(piece)
            if found is None:
                if len(piece) > _ascii.MAX_PIECE:
                    return None
                data = piece.encode("ascii")
                self.keyed += len(data)
                if self.keyed > MAX_KEYED_BYTES:
                    return None
                # Every substring BPE can look up starts with one of these keys.
                keys = {data[i : i + k] for k in range(1, KEY + 1) for i in range(len(data))}
                if not self._load({_slot(key) for key in keys}):
                    return None
                found = tuple(_ascii.merge(data, self.ranks))
                if len(memo) < _MEMO_PIECES:
                    memo[piece] = found
            tokens += found
        return tokens


def _state(name: str) -> _State | None:
    state = _states.get(name)
    if state is not None:
        return state
    path = _index_path(name)
    if path is None:
        return None
    payload = _read_index(path)
    if payload is None:
        # The first process on this machine (or after a damaged file): it counts with the full
        # encoder, and writes the bucket file for the processes after it.
        _write_index(path, build_index(_bpe.ranks_of(name)))
        return None
    state = _states[name] = _State(name, payload)
    return state


def _utf8(text: str) -> bytes:
    """The bytes tiktoken encodes for `text` (a lone surrogate becomes U+FFFD, as it does)."""
    try:
        return text.encode("utf-8")
    except UnicodeEncodeError:
        fixed = text.encode("utf-16", "surrogatepass").decode("utf-16", "replace")
        return fixed.encode("utf-8", "replace") + text.encode("utf-8", "replace")


def encoding_for_text(name: str, text: str) -> tiktoken.Encoding:
    """An encoder that encodes `text` exactly as the full `name` encoder does: the full one
    when it is built (or no bucket file can be had), else a subset holding every rank the text
    could need."""
    full = _bpe.loaded(name)
    if full is not None:
        return full
    with _lock:
        state = _state(name)
        encoder = None if state is None else state.encoder_for(text)
        if encoder is not None:
            return encoder
        _states.pop(name, None)  # grown large, or no bucket file: the full one from now on
    return _bpe.encoding(name)


def encode_text(name: str, text: str) -> list[int]:
    """The tokens of `text`, exactly as the full `name` encoder encodes it (`encode_ordinary`):
    by the full encoder once built; an ASCII text by runner.tokens._ascii on the subset's ranks,
    with no tiktoken encoder built; any other text by a subset encoder (`encoding_for_text`)."""
    full = _bpe.loaded(name)
    if full is not None:
        return _bpe.encode(full, text)
    if text.isascii():
        with _lock:
            state = _state(name)
            tokens = None if state is None else state.ascii_tokens(text)
        if tokens is not None:
            return tokens
        if state is None:  # no bucket file (this call may have written it): the full one
            return _bpe.encode(_bpe.encoding(name), text)
    return _bpe.encode(encoding_for_text(name, text), text)


def prime(name: str, texts: list[str]) -> None:
    """Make the subset cover every one of `texts` with at most one build. A request's texts
    are encoded one at a time, and each that needs ranks not loaded yet rebuilds the encoder
    (7-8 ms each here: tiktoken compiles its pattern every time): a two-message prompt built
    it four times."""
    texts = [text for text in texts if not text.isascii()]  # _ascii encodes those
    if len(texts) < 2 or _bpe.loaded(name) is not None:
        return
    with _lock:
        state = _state(name)
        if state is not None:
            _prime(state, texts)
            return
    _bpe.encoding(name)  # no bucket file (yet): the full encoder, as encoding_for_text does


def _prime(state: _State, texts: list[str]) -> None:
    # Only texts it can then mark as covered: any other would be keyed here and again when
    # encoded (a long prompt twice, and the keying budget spent twice as fast).
    if len(state.known) + len(texts) > _KNOWN_TEXTS:
        return
    new = [text for text in texts if len(text) < _KNOWN_LENGTH and text not in state.known]
    if len(new) < 2:
        return  # one text: encoding it builds at most once anyway
    # Keys spanning the separator are extra ranks: they never change a result.
    if state._encoder_for(b"\n".join(_utf8(text) for text in new)) is None:
        return  # grown large: the next encode switches to the full encoder
    state.known.update(new)
