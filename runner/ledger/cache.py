"""`--cache` (runner exec, data sets, runner test): `CacheSource` reads a ledger (the run's own,
or `--cache-from`) once for the latest `ok` answer per request fingerprint, and answers a call
whose request has one from that line, through runner.ledger.recorded's client. The key is the
request fingerprint alone (request_sha256: the body's model, messages, parameters, output
format and tools), with mock and real answers kept apart.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from runner.ledger.encoding import utc_timestamp
from runner.ledger.recorded import Recorded, ReplayClient, has_content, warn_once

__all__ = ["CacheSource"]


class CacheSource(Recorded):
    """`--cache`: a ledger (the run's own, or `--cache-from`) read once for the latest `ok`
    answer with its content per request fingerprint, kept apart for mock and real calls (a mock
    answer never answers a real call), and not older than `max_age` seconds. Lines that were
    themselves answered from a recorded line are left out: the answer's own line is named."""

    what = "cache ledger"
    reason = "cache"

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        max_age: float | None = None,
        now: datetime | None = None,
        warn: Callable[[str], None] | None = None,
        missing_ok: bool = True,
    ) -> None:
        # The run's own ledger may not exist yet (nothing cached); a ledger named by
        # --cache-from must (missing_ok=False: a ConfigError).
        super().__init__(path, missing_ok=missing_ok)
        self.max_age = max_age
        cutoff = None
        if max_age is not None:
            try:
                cutoff = utc_timestamp((now or datetime.now(UTC)) - timedelta(seconds=max_age))
            except OverflowError:  # older than the calendar: everything is young enough
                cutoff = None
        self._cutoff = cutoff  # ISO timestamps of one format sort as strings
        self._latest: dict[tuple[str, bool], int] = {}  # (request_sha256, mock) -> offset
        self._index(warn or warn_once)

    def __len__(self) -> int:
        return len(self._latest)

    def _wanted(self, raw: bytes) -> bool:
        return b'"ok"' in raw  # a line without it has no status ok: not parsed

    def _add(self, record: dict[str, Any], offset: int) -> None:
        fingerprint = record.get("request_sha256")
        ts = record.get("ts")
        if (
            record.get("status") != "ok"
            or not isinstance(fingerprint, str)
            or record.get("replayed") is not None
            or not has_content(record)
            or (self._cutoff is not None and not (isinstance(ts, str) and ts >= self._cutoff))
        ):
            return
        self._latest[(fingerprint, record.get("mock") is True)] = offset

    def lookup(self, fingerprint: str, *, mock: bool) -> ReplayClient | None:
        """A client answering this request from its latest cached line, or None (a miss)."""
        offset = self._latest.get((fingerprint, mock))
        return None if offset is None else self.client_for(fingerprint, offset)
