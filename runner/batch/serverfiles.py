"""The server's files of an ended batch, read against the local record of its rows: each result
line (output and error files) indexed by custom_id as a file offset (never held whole, so a huge
file costs memory per row, not per byte), each request of the server's copy of the input
checked against the fingerprint this machine sent. Every disagreement is counted in a
CollectSummary: duplicate results (the first is kept), unknown row ids, unreadable lines (not
JSON, no custom_id, past the line cap), and changed requests. Lone surrogates (valid JSON that
no UTF-8 can carry) are replaced by U+FFFD, so the answer around them is kept.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any, Protocol, cast

from runner.ledger.reading import iter_lines, open_for_reading

if TYPE_CHECKING:
    from runner.ledger.fingerprint import Fingerprinter

__all__ = ["Results", "Tally", "index_input", "index_results", "parse_line"]


class Tally(Protocol):
    """Where disagreements are counted (a CollectSummary)."""

    mismatches: Counter[str]
    unknown_ids: list[str]


def _lines(f: IO[bytes], on_long: Any) -> Iterator[tuple[int, bytes]]:
    """(offset, line) of every non-blank line; a line past the ledger's line cap is read past
    and reported to `on_long`."""
    for _, raw in iter_lines(cast("Any", f), on_long=on_long):
        if raw.strip():
            yield f.tell() - len(raw), raw


def parse_line(raw: bytes) -> dict[str, Any] | None:
    """A result or input line as a JSON object with a string custom_id, lone surrogates
    replaced; None when it is not one."""
    try:
        value = json.loads(raw)
    except (ValueError, RecursionError):
        return None
    if not isinstance(value, dict) or not isinstance(value.get("custom_id"), str):
        return None
    if b"\\ud" in raw or b"\\uD" in raw:
        value = _scrubbed(value)
    return cast("dict[str, Any]", value)


def _scrubbed(value: Any) -> Any:
    """`value` with every lone surrogate (valid JSON, but no UTF-8 can carry it) replaced by
    U+FFFD, so the answer around it is recorded and printed rather than lost."""
    if isinstance(value, str):
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            return "".join("\ufffd" if 0xD800 <= ord(c) <= 0xDFFF else c for c in value)
        return value
    if isinstance(value, list):
        return [_scrubbed(v) for v in value]
    if isinstance(value, dict):
        return {_scrubbed(k): _scrubbed(v) for k, v in value.items()}
    return value


@dataclass
class Results:
    """Where each known row's result line is (file, offset), the first one only."""

    at: dict[str, tuple[int, int]] = field(default_factory=dict)
    files: list[IO[bytes]] = field(default_factory=list)

    def read(self, key: str) -> dict[str, Any] | None:
        found = self.at.get(key)
        if found is None:
            return None
        f = self.files[found[0]]
        f.seek(found[1])
        return parse_line(f.readline())


def index_results(paths: Sequence[Path], keys: Mapping[str, Any], summary: Tally) -> Results:
    """Index the output and error files by custom_id, counting every line that is unreadable,
    names a row the local record does not have, or repeats one (the first is kept)."""
    results = Results()

    def too_long(_number: int) -> None:
        summary.mismatches["unreadable"] += 1

    for path in paths:
        f = open_for_reading(path, what="batch result file")
        assert f is not None
        results.files.append(f)
        for offset, raw in _lines(f, too_long):
            line = parse_line(raw)
            if line is None:
                summary.mismatches["unreadable"] += 1
                continue
            key = line["custom_id"]
            if key not in keys:
                _unknown(summary, key)
            elif key in results.at:
                summary.mismatches["duplicate"] += 1
            else:
                results.at[key] = (len(results.files) - 1, offset)
    return results


def _unknown(summary: Tally, key: str) -> None:
    if key not in summary.unknown_ids:
        summary.unknown_ids.append(key)
        summary.mismatches["unknown"] += 1


def index_input(
    path: Path | None,
    keys: Mapping[str, str | None],
    summary: Tally,
    fingerprint: Fingerprinter,
) -> tuple[dict[str, int], dict[str, str], IO[bytes] | None]:
    """The offset of each row's request in the server's copy of the input, when its
    fingerprint is the one sent (or the local record has none); the fingerprint the server
    holds instead for rows whose request changed."""
    if path is None:
        return {}, {}, None
    f = open_for_reading(path, what="batch input file")
    assert f is not None
    at: dict[str, int] = {}
    changed: dict[str, str] = {}

    def too_long(_number: int) -> None:
        summary.mismatches["unreadable"] += 1

    for offset, raw in _lines(f, too_long):
        line = parse_line(raw)
        body = None if line is None else line.get("body")
        if line is None or not isinstance(body, dict):
            summary.mismatches["unreadable"] += 1
            continue
        key = line["custom_id"]
        if key not in keys:
            _unknown(summary, key)
            continue
        if key in at or key in changed:
            summary.mismatches["duplicate"] += 1
            continue
        sent = keys[key]
        held = fingerprint(body)
        if sent is None or held == sent:
            at[key] = offset
        else:
            changed[key] = held
    return at, changed, f
