"""tiktoken's encoding of ASCII text, in Python: its split pattern and its BPE, on the ranks a
subset has loaded (runner.tokens._subset). A new text then costs microseconds a new word,
where building a tiktoken encoder for it costs milliseconds (7-8 ms here: tiktoken compiles its
pattern and converts every rank on each build), which a data set of distinct rows paid on
every row until the full encoder took over.

Why it is exact. tiktoken cuts a text with its pattern, then looks each piece up whole, and
runs BPE on a piece that is not a token. On ASCII text the patterns' Unicode classes are plain
ASCII sets: \\p{L} is [A-Za-z] (\\p{Lu} [A-Z], \\p{Ll} [a-z]; no ASCII character is Lt, Lm, Lo
or M), \\p{N} is [0-9], and \\s (Unicode White_Space) is [\\t\\n\\v\\f\\r ]: not \\x1c-\\x1f,
which Python's \\s would take. `$` is the end of the text (Python's `$` also matches before a
final newline: `\\Z` here). Python's `re` is a backtracking engine with the same leftmost-first
alternation, greedy and possessive quantifiers as fancy-regex, so it cuts the same pieces.
`merge` is tiktoken's `_byte_pair_merge`: merge the adjacent pair of lowest rank, the leftmost
one on a tie, until no pair is a token. tests/test_token_ascii.py checks both against the full
tiktoken encoder, token for token, on generated and real texts, in both encodings.
"""

from __future__ import annotations

import re

__all__ = ["MAX_PIECE", "SPLIT", "merge"]

_S = r"\t\n\x0b\x0c\r "  # Unicode White_Space within ASCII
_CONTRACTION = "(?i:'s|'t|'re|'ve|'m|'ll|'d)"

SPLIT: dict[str, re.Pattern[str]] = {
    "o200k_base": re.compile(
        "|".join(
            [
                rf"[^\r\nA-Za-z0-9]?[A-Z]*[a-z]+{_CONTRACTION}?",
                rf"[^\r\nA-Za-z0-9]?[A-Z]+[a-z]*{_CONTRACTION}?",
                r"[0-9]{1,3}",
                rf" ?[^{_S}A-Za-z0-9]+[\r\n/]*",
                rf"[{_S}]*[\r\n]+",
                rf"[{_S}]+(?![^{_S}])",
                rf"[{_S}]+",
            ]
        ),
        re.ASCII,
    ),
    "cl100k_base": re.compile(
        "|".join(
            [
                r"'(?i:[sdmt]|ll|ve|re)",
                r"[^\r\nA-Za-z0-9]?+[A-Za-z]++",
                r"[0-9]{1,3}+",
                rf" ?[^{_S}A-Za-z0-9]++[\r\n]*+",
                rf"[{_S}]++\Z",
                rf"[{_S}]*[\r\n]",
                rf"[{_S}]+(?![^{_S}])",
                rf"[{_S}]",
            ]
        ),
        re.ASCII,
    ),
}

# A longer piece (a run of spaces, a long word of symbols) is left to tiktoken: BPE here takes
# time quadratic in a piece's length.
MAX_PIECE = 64

_NONE = 1 << 62  # no rank: the pair is not a token


def merge(piece: bytes, ranks: dict[bytes, int]) -> list[int]:
    """The tokens of one piece, as tiktoken's byte-pair merge makes them. `ranks` must hold
    every token that is a substring of `piece` (a subset keyed by its substrings does)."""
    found = ranks.get(piece)
    if found is not None:
        return [found]
    get = ranks.get
    bounds = list(range(len(piece) + 1))  # the parts are piece[bounds[j]:bounds[j + 1]]
    # pair[j]: the rank of part j joined to part j + 1 (none for the last part)
    pair = [get(piece[j : j + 2], _NONE) for j in range(len(piece) - 1)]
    pair.append(_NONE)
    while True:
        lowest = min(pair)
        if lowest == _NONE:
            break
        i = pair.index(lowest)  # the leftmost of the lowest, as tiktoken picks
        del bounds[i + 1]
        del pair[i + 1]
        parts = len(pair)
        pair[i] = get(piece[bounds[i] : bounds[i + 2]], _NONE) if i + 2 <= parts else _NONE
        if i:
            pair[i - 1] = get(piece[bounds[i - 1] : bounds[i + 1]], _NONE)
    return [ranks[piece[bounds[j] : bounds[j + 1]]] for j in range(len(pair))]
