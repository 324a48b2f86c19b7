"""Resume: the row keys that already have an `ok` line in a ledger for the same spec content
(`spec.sha256`). The ledger is streamed, and only lines that could match (a cheap byte search
for the sha256 and `"status":"ok"`) are parsed, so a big ledger stays fast to read.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from runner.errors import LedgerError

__all__ = ["done_rows"]

_OK = b'"status":"ok"'


def done_rows(ledger: str | Path, spec_sha256: str) -> set[str]:
    """Keys of rows recorded `ok` for this spec content; an absent ledger has none."""
    name = os.fspath(ledger)
    needle = spec_sha256.encode("ascii")
    found: set[str] = set()
    try:
        with open(name, "rb") as f:
            for raw in f:
                if needle not in raw or _OK not in raw or b'"row":null' in raw:
                    continue
                try:
                    record = json.loads(raw)
                except (ValueError, RecursionError):
                    continue  # a torn line: it did not finish, so its row is not done
                if not isinstance(record, dict) or record.get("status") != "ok":
                    continue
                spec = record.get("spec")
                row = record.get("row")
                if isinstance(spec, dict) and spec.get("sha256") == spec_sha256 and row:
                    found.add(str(row))
    except FileNotFoundError:
        return found
    except IsADirectoryError:
        raise LedgerError(f"cannot read the ledger {name}: it is a directory") from None
    except OSError as exc:
        raise LedgerError(f"cannot read the ledger {name}: {exc.strerror}") from None
    return found
