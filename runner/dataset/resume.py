"""Resume: which rows are done. A row is done when the ledger holds an `ok` line of the same
spec (by name) with its key and the very request it would send now (the same
`request_sha256`, as runner.engine.session records it), made in the same mode (a mock answer
does not count for a real run, nor a real one for a mock run). A row whose request changed
since its ok line (another --var, --model, row content, output schema or prompt) is not done:
it runs again, and is counted as changed. The scan collects the fingerprints of the spec's ok
lines per row; the data-set run compares each row's request with them as it reads the row.

The ledger is streamed with runner.ledger.reading's readers (a device or a FIFO is refused, an
over-long line is read past). A line runner wrote is read without parsing it whole (see
`_fast`); any other line is parsed with json.loads. The async scan yields to the event loop
every few thousand lines, so that a signal is honoured at once on a big ledger.
"""

from __future__ import annotations

import asyncio
import json
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from runner.ledger.reading import iter_lines, open_for_reading

__all__ = ["ResumeScan", "done_rows", "scan_ledger"]

# How runner writes a v1 line (runner.ledger.line builds it, runner.ledger.encoding writes it
# compactly, keys in this order): {"v":1,"id":..,"ts":..,"spec":{"path":..,"name":..,
# "sha256":..,..},"request_sha256":..,"case":..,"row":..,"model":.., ...,"status":..,
# "output":..,"error":..,"attempts":[..],"usage":{..},"cost":{..},...,"mock":..}.
# Inside a JSON string every `"` is escaped, so a key pattern such as `"row":` can only match
# a key. The first `"name":` is spec.name, the first `,"request_sha256":"` and `,"row":` are
# top-level (only plain strings and the spec object come before them); the last `,"error":`
# is the top-level error and the last `,"mock":` the top-level mock flag (the fields after
# them — attempts, usage, cost, output_mode, replayed, batch_id, content — hold no object with
# an `error` or `mock` key), and `error` is null exactly when the status is ok.
_V1 = b'{"v":1,"id":"'
_REQUEST = b',"request_sha256":"'
_ROW = b',"row":'
_MODEL = b',"model":'
_ERROR = b',"error":'
_OK_ERROR = b'null,"attempts":['
_MOCK = b',"mock":'
_FLAGS = {True: b"true", False: b"false"}
_YIELD_EVERY = 4096  # lines between two yields to the event loop


@dataclass
class ResumeScan:
    """What the ledger's ok lines of one spec (`spec_name`) in one mode say: `ok` maps each row
    key to the request fingerprints it has ok lines for. `state(row, fingerprint)` is then
    "done", "changed" (ok lines, but only of other requests) or "new"."""

    spec_name: str
    mock: bool
    ok: dict[str, set[str]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self._name = b'"name":' + json.dumps(self.spec_name, ensure_ascii=False).encode(
            "utf-8", "surrogatepass"
        )

    def state(self, row: str, fingerprint: str) -> str:
        found = self.ok.get(row)
        if not found:
            return "new"
        return "done" if fingerprint in found else "changed"

    def feed(self, line: bytes) -> None:
        if line.startswith(_V1) and line.endswith((b"}\n", b"}")):
            self._fast(line)
        else:
            self._parsed(line)  # another writer, another format, or a torn line

    def _fast(self, line: bytes) -> None:
        if self._name not in line:
            return  # another spec's line
        at = line.rfind(_MOCK)
        if at < 0:
            return self._parsed(line)
        if not line.startswith(_FLAGS[self.mock], at + len(_MOCK)):
            return  # the other mode
        at = line.rfind(_ERROR)
        if at < 0 or not line.startswith(_OK_ERROR, at + len(_ERROR)):
            return  # not ok
        at = line.find(_REQUEST)
        begin = line.find(_ROW, at)
        end = line.find(_MODEL, begin)
        if at < 0 or begin < 0 or end < 0 or line.find(self._name, 0, at) < 0:
            return self._parsed(line)
        start = at + len(_REQUEST)
        try:
            row = json.loads(line[begin + len(_ROW) : end])
        except ValueError:
            return self._parsed(line)
        self._add(row, line[start : start + 64].decode("ascii", "replace"))

    def _parsed(self, line: bytes) -> None:
        try:
            record = json.loads(line)
        except (ValueError, RecursionError):
            return  # a torn line: its call did not finish writing, so its row is not done
        if not isinstance(record, dict) or record.get("status") != "ok":
            return
        spec = record.get("spec")
        if record.get("mock") is not self.mock or not isinstance(spec, dict):
            return
        if spec.get("name") == self.spec_name:
            self._add(record.get("row"), record.get("request_sha256"))

    def _add(self, row: object, fingerprint: object) -> None:
        if isinstance(row, str) and row and isinstance(fingerprint, str):
            self.ok.setdefault(row, set()).add(fingerprint)


def done_rows(ledger: str | Path, spec_name: str, *, mock: bool = False) -> ResumeScan:
    """Scan `ledger` for the ok lines of this spec in this mode (an absent ledger has none).
    LedgerError for a ledger that is not a regular file."""
    scan = ResumeScan(spec_name, mock)
    f = open_for_reading(os.fspath(ledger), missing_ok=True)
    if f is None:
        return scan
    with f:
        for _, line in iter_lines(f):
            scan.feed(line)
    return scan


async def scan_ledger(
    ledger: str | Path,
    spec_name: str,
    *,
    mock: bool = False,
    stopped: Callable[[], bool] = lambda: False,
) -> ResumeScan:
    """`done_rows`, yielding to the event loop as it goes; it ends early once `stopped()`."""
    scan = ResumeScan(spec_name, mock)
    f = open_for_reading(os.fspath(ledger), missing_ok=True)
    if f is None:
        return scan
    with f:
        for number, line in iter_lines(f):
            scan.feed(line)
            if number % _YIELD_EVERY == 0:
                await asyncio.sleep(0)
                if stopped():
                    break
    return scan
