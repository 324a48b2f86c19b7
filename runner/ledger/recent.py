"""The latest calls of one or more ledgers, newest first, for `runner log` and the report's
per-call section. Each ledger is read from its end (reading.read_records_newest_first), so the
answer costs what it holds, not the size of the file. It never prints and never writes.
"""

from __future__ import annotations

import fnmatch
import os
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from runner.errors import ConfigError
from runner.ledger.reading import read_records_newest_first

__all__ = ["STATUSES", "CallFilter", "find_call", "latest_calls"]

# What --status takes: a line's own status, or `failed` for any that is not ok.
STATUSES = ("ok", "error", "invalid_output", "failed")
ID_LENGTH = 26  # a ULID


@dataclass(frozen=True)
class CallFilter:
    """Which calls to keep: `spec` is a spec's name or its recorded path (a glob with * ? [),
    `model` the model asked for, `status` one of STATUSES; `since`/`until` bound `ts`."""

    spec: str | None = None
    model: str | None = None
    status: str | None = None
    since: datetime | None = None
    until: datetime | None = None

    def __post_init__(self) -> None:
        if self.status is not None and self.status not in STATUSES:
            raise ValueError(f"status must be one of {', '.join(STATUSES)}")

    def keeps(self, record: dict[str, Any]) -> bool:
        if self.spec is not None and not _spec_matches(self.spec, record.get("spec")):
            return False
        if self.model is not None and record.get("model") != self.model:
            return False
        if self.status is not None:
            status = record.get("status")
            if status != self.status and not (self.status == "failed" and status != "ok"):
                return False
        if self.since is not None or self.until is not None:
            when = _when(record.get("ts"))
            if when is None:
                return False
            if self.since is not None and when < self.since:
                return False
            if self.until is not None and when >= self.until:
                return False
        return True


def is_call(record: dict[str, Any]) -> bool:
    """A line of a call (not, say, a line of the batch state file that a glob also matched)."""
    return isinstance(record.get("id"), str) and isinstance(record.get("status"), str)


def latest_calls(
    paths: Sequence[str | os.PathLike[str]],
    *,
    limit: int,
    where: CallFilter | None = None,
    warn: Callable[[str], None] | None = None,
) -> list[dict[str, Any]]:
    """The `limit` latest calls of `paths` that `where` keeps, newest first (by `ts`, then
    `id`). Each file is read backwards only until it has given `limit` of them."""
    if limit < 1:
        return []
    where = where or CallFilter()
    found: list[dict[str, Any]] = []
    for path in paths:
        kept = 0
        for record in _calls(path, warn):
            if where.keeps(record):
                found.append(record)
                kept += 1
                if kept == limit:
                    break
    found.sort(key=_newest, reverse=True)
    return found[:limit]


def find_call(
    paths: Sequence[str | os.PathLike[str]],
    call_id: str,
    *,
    warn: Callable[[str], None] | None = None,
) -> dict[str, Any] | None:
    """The call with this id (or the one call whose id starts with it), newest line first;
    None when there is none. A prefix that several calls share is a ConfigError naming them."""
    wanted = call_id.strip().upper()  # ULIDs are Crockford base32: case does not matter
    if not wanted:
        raise ConfigError("a call id is needed (the `id` of a ledger line)")
    if len(wanted) >= ID_LENGTH:
        for path in paths:
            for record in _calls(path, warn):
                if str(record["id"]).upper() == wanted:
                    return record
        return None
    matches: dict[str, dict[str, Any]] = {}
    for path in paths:
        for record in _calls(path, warn):
            key = str(record["id"]).upper()
            if key.startswith(wanted):
                matches.setdefault(key, record)
    if len(matches) > 1:
        ids = sorted(matches, reverse=True)
        more = f" and {len(ids) - 5} more" if len(ids) > 5 else ""
        raise ConfigError(
            f"{call_id}: {len(ids)} calls have an id starting so: {', '.join(ids[:5])}{more}; "
            "give more of the id"
        )
    return next(iter(matches.values()), None)


def _calls(
    path: str | os.PathLike[str], warn: Callable[[str], None] | None
) -> Iterator[dict[str, Any]]:
    records: Iterable[dict[str, Any]] = read_records_newest_first(path, warn=warn)
    return (record for record in records if is_call(record))


def _newest(record: dict[str, Any]) -> tuple[str, str]:
    ts = record.get("ts")
    return (ts if isinstance(ts, str) else "", str(record.get("id")))


def _spec_matches(pattern: str, spec: Any) -> bool:
    if not isinstance(spec, dict):
        return False
    names = [v for v in (spec.get("name"), spec.get("path")) if isinstance(v, str)]
    if any(c in pattern for c in "*?["):
        return any(fnmatch.fnmatchcase(name, pattern) for name in names)
    given = pattern.removeprefix("./")
    return given in names or any(name.endswith("/" + given) for name in names)


def _when(value: Any) -> datetime | None:
    if not isinstance(value, str):
        return None
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return moment.replace(tzinfo=None) if moment.tzinfo is not None else moment
