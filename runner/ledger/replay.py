"""Answers from a recorded ledger, for `runner test --replay`: `ReplaySource` reads a ledger once
into an index of file offsets (request_sha256 -> every `ok` answer in file order, so that a
request asked N times in a run (`--repeat N`) gets its N recorded answers in order; spec, case
and variant -> the latest line and the latest `ok` line). The client that answers from it, and
what it answers with, are runner.ledger.recorded's (re-exported here).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from runner.errors import NotRecorded
from runner.ledger.fingerprint import request_fingerprint
from runner.ledger.recorded import (
    Recorded,
    ReplayClient,
    ReplayedCompletion,
    ReplayOrigin,
    has_content,
    warn_once,
)

__all__ = ["ReplayClient", "ReplayOrigin", "ReplaySource", "ReplayedCompletion"]


class ReplaySource(Recorded):
    """One replay ledger (`runner test --replay`): every `ok` answer per request fingerprint,
    in file order, and the latest line per spec, case and variant. A run asks for answers
    through `claim`: the k-th call of a request in the run gets its k-th recorded answer."""

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        record_missing: bool = False,
        warn: Callable[[str], None] | None = None,
    ) -> None:
        super().__init__(path, missing_ok=record_missing)
        self.record_missing = record_missing
        # request_sha256 -> the offsets of its ok lines with an answer of their own (a line
        # that was itself replayed or answered from the cache repeats another one: left out)
        self._by_request: dict[str, list[int]] = {}
        self._by_case: dict[tuple[str, str, str | None], int] = {}  # -> latest line
        self._ok_by_case: dict[tuple[str, str, str | None], int] = {}  # -> latest ok line
        self._claims: dict[str, int] = {}  # request_sha256 -> calls of it in this run
        self._index(warn or warn_once)
        self.client = ReplayClient(self)

    def __len__(self) -> int:
        return len(self._by_request)

    def _add(self, record: dict[str, Any], offset: int) -> None:
        spec = record.get("spec")
        name = spec.get("name") if isinstance(spec, dict) else None
        case = record.get("case")
        variant = record.get("variant")
        key = (name, case, variant if isinstance(variant, str) else None)
        ok = record.get("status") == "ok"
        fingerprint = record.get("request_sha256")
        if ok and isinstance(fingerprint, str) and record.get("replayed") is None:
            self._by_request.setdefault(fingerprint, []).append(offset)
        if isinstance(name, str) and isinstance(case, str):
            self._by_case[key] = offset  # type: ignore[index]
            if ok:
                self._ok_by_case[key] = offset  # type: ignore[index]

    # -- lookups --

    def count(self, fingerprint: str) -> int:
        """How many answers are recorded for this request fingerprint."""
        return len(self._by_request.get(fingerprint, ()))

    def claim(self, fingerprint: str) -> int:
        """The index of this call among the calls of the same request in this run (0 for the
        first): the recorded answer it is to get."""
        index = self._claims.get(fingerprint, 0)
        self._claims[fingerprint] = index + 1
        return index

    def recorded(self, fingerprint: str, index: int = 0) -> dict[str, Any] | None:
        """The `index`-th recorded `ok` line for this request fingerprint (in file order), if
        any."""
        found = self._by_request.get(fingerprint, ())
        return self._read(found[index]) if 0 <= index < len(found) else None

    def can_answer(self, fingerprint: str, index: int = 0) -> bool:
        """Whether a request's `index`-th answer is recorded with its content (so that it can
        be replayed)."""
        record = self.recorded(fingerprint, index)
        return record is not None and has_content(record)

    def replay_client(self, fingerprint: str, index: int) -> ReplayClient:
        """A client that answers this request with its `index`-th recorded answer."""
        return self.client_for(fingerprint, self._by_request[fingerprint][index])

    def latest_for(
        self, spec_name: str, case: str, *, ok: bool = False, variant: str | None = None
    ) -> dict[str, Any] | None:
        """The latest line of this spec, case and variant (only `ok` lines with ok=True)."""
        offset = (self._ok_by_case if ok else self._by_case).get((spec_name, case, variant))
        return None if offset is None else self._read(offset)

    def answer(self, body: Mapping[str, Any], index: int = 0) -> ReplayedCompletion:
        """The `index`-th recorded completion for this request body, or NotRecorded."""
        fingerprint = request_fingerprint(body)
        record = self.recorded(fingerprint, index)
        if record is None or not has_content(record):
            raise self.answer_error(fingerprint, index=index)
        return self._completion(record)

    def answer_error(
        self,
        fingerprint: str,
        messages: Sequence[Mapping[str, Any]] = (),
        params: Mapping[str, Any] | None = None,
        *,
        index: int = 0,
    ) -> NotRecorded:
        """Why this request's `index`-th answer cannot be given: not recorded, recorded fewer
        times, or recorded without content. `messages` and `params` (the model and the spec's
        params, as a ledger line keeps them) are the request as it is now, for a diff against
        the recorded one."""
        count = self.count(fingerprint)
        record = self.recorded(fingerprint, index)
        if count == 0:
            message = (
                "request changed since it was recorded (no ok line with request_sha256 "
                f"{fingerprint[:12]}... in {self.path})"
            )
        elif record is None:
            message = (
                f"the request is recorded {_times(count)} in {self.path}, and this is its call "
                f"number {index + 1} in the run (--repeat asks for each answer in turn); add "
                "--record-missing to record the missing answers"
            )
        else:
            message = (
                f"the recorded line {record.get('id')} in {self.path} kept no content "
                "(ledger: {content: false}), so it cannot be replayed; record the baseline "
                "with RUNNER_LEDGER_CONTENT=1"
            )
        return NotRecorded(
            message, fingerprint=fingerprint, messages=messages, params=params, recorded=count
        )


def _times(count: int) -> str:
    return {1: "once", 2: "twice"}.get(count, f"{count} times")
