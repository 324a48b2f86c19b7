"""Resume: the row keys that already have an `ok` line in a ledger for the same spec content
(`spec.sha256`) and mode (a mock answer does not count for a real run). The ledger is
streamed; a line without the sha256 is passed over with a byte search, and a line with it is
read without parsing it whole (see `_ok_row`), so a big ledger stays fast to scan.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from runner.errors import LedgerError

__all__ = ["done_rows"]

# How runner writes a v1 line (runner.ledger.line builds it, runner.ledger.encoding writes it
# compactly, keys in this order): {"v":1,"id":..,"ts":..,"spec":{"path":..,"name":..,
# "sha256":..,..},"request_sha256":..,"case":..,"row":..,"model":.., ...,"status":..,
# "output":..,"error":..,"attempts":[..],"usage":{..},"cost":{..},...,"mock":..}.
# Inside a JSON string every `"` is escaped, so a key pattern such as `"row":` can only match
# a key. The first `"sha256":"` is spec.sha256 and the first `,"row":` the top-level row (only
# plain strings come before them); the last `,"error":` is the top-level error (the fields
# after it hold no object with an `error` key), and `error` is null exactly when the status is
# ok. Any line that does not look like this is parsed with json.loads instead.
_V1 = b'{"v":1,"id":"'
_SHA = b'"sha256":"'
_ROW = b',"row":'
_MODEL = b',"model":'
_ERROR = b',"error":'


def _endings(mock: bool) -> tuple[bytes, ...]:
    flag = b'"mock":true' if mock else b'"mock":false'
    ends = (flag + b"}", flag + b',"content":false}')
    return tuple(end + b"\n" for end in ends) + ends


_ENDS = {True: _endings(True), False: _endings(False)}
_ANY_END = _ENDS[True] + _ENDS[False]


def done_rows(ledger: str | Path, spec_sha256: str, *, mock: bool = False) -> set[str]:
    """Keys of rows recorded `ok` for this spec content, by mock calls when `mock` is true,
    else by real ones; an absent ledger has none."""
    name = os.fspath(ledger)
    needle = spec_sha256.encode("ascii")
    found: set[str] = set()
    try:
        with open(name, "rb") as f:
            for raw in f:
                if needle not in raw:
                    continue
                row = _ok_row(raw, needle, mock)
                if row is not None:
                    found.add(row)
    except FileNotFoundError:
        return found
    except IsADirectoryError:
        raise LedgerError(f"cannot read the ledger {name}: it is a directory") from None
    except OSError as exc:
        raise LedgerError(f"cannot read the ledger {name}: {exc.strerror}") from None
    return found


def _ok_row(raw: bytes, needle: bytes, mock: bool) -> str | None:
    """The row key of an ok line of this spec content and mode, else None."""
    line = raw  # no copy: the searches below never reach the newline
    if not line.startswith(_V1) or not line.endswith(_ANY_END):
        return _parsed_ok_row(line, needle, mock)  # another writer, format or a torn line
    if not line.endswith(_ENDS[mock]):
        return None
    at = line.find(_SHA)
    if at < 0 or line[at + len(_SHA) : at + len(_SHA) + len(needle) + 1] != needle + b'"':
        return None
    at = line.rfind(_ERROR)
    if at < 0 or not line.startswith(b'null,"attempts":[', at + len(_ERROR)):
        return None
    start = line.find(_ROW)
    end = line.find(_MODEL, start)
    if start < 0 or end < 0:
        return _parsed_ok_row(line, needle, mock)
    try:
        row = json.loads(line[start + len(_ROW) : end])
    except ValueError:
        return _parsed_ok_row(line, needle, mock)
    return row if isinstance(row, str) and row else None


def _parsed_ok_row(line: bytes, needle: bytes, mock: bool) -> str | None:
    """The slow, sure way: the whole line through json.loads."""
    try:
        record = json.loads(line)
    except (ValueError, RecursionError):
        return None  # a torn line: its call did not finish writing, so its row is not done
    if not isinstance(record, dict) or record.get("status") != "ok":
        return None
    if record.get("mock") is not mock:
        return None
    spec = record.get("spec")
    row = record.get("row")
    if not isinstance(spec, dict) or spec.get("sha256") != needle.decode("ascii"):
        return None
    return row if isinstance(row, str) and row else None
