"""Answers from a recorded ledger instead of the network: `ReplaySource` for `runner test --replay`
(a ledger read once into an index of file offsets: request_sha256 -> every `ok` answer in file
order, so that a request asked N times in a run (`--repeat N`) gets the N recorded answers in
order; spec, case and variant -> the latest line and the latest `ok` line), `CacheSource` for
`--cache` (request_sha256 -> the latest `ok` answer within a maximum age), and `ReplayClient`,
which answers a request with the recorded reply, usage and cost, through the same
`complete`/`stream` interface as runner.providers.ModelClient.
"""

from __future__ import annotations

import json
import os
import warnings
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

from runner.errors import ConfigError, LedgerError, NotRecorded, RunnerWarning
from runner.interrupts import interruptible
from runner.ledger.encoding import (
    MAX_LINE_BYTES,
    loads_text,
    request_fingerprint,
    utc_timestamp,
)
from runner.ledger.store import iter_lines, open_for_reading
from runner.types import Choice, Completion, Cost, StreamDelta, Usage

__all__ = [
    "CacheSource",
    "ReplayClient",
    "ReplayOrigin",
    "ReplaySource",
    "ReplayedCompletion",
]


@dataclass(frozen=True)
class ReplayOrigin:
    """Where a replayed answer comes from, and what the recorded call consumed."""

    source: str  # the ledger's path
    id: str  # the recorded line's id
    cost: Cost  # the recorded cost: a replay is never re-priced
    latency_ms: float  # the recorded call's latency
    mock: bool  # the recorded call was answered by the mock server
    reason: str | None = None  # "cache" for --cache; None for runner test --replay

    def to_dict(self) -> dict[str, str]:
        """The ledger line's `replayed` field."""
        found = {"from": self.source, "id": self.id}
        if self.reason is not None:
            found["reason"] = self.reason
        return found


@dataclass(frozen=True)
class ReplayedCompletion(Completion):
    """A completion rebuilt from a ledger line; `origin` says which one."""

    origin: ReplayOrigin | None = None


class _Recorded:
    """A ledger read once, streaming, for its lines' offsets. Only a regular file is read (a
    device or a pipe is a ConfigError), lines longer than MAX_LINE_BYTES are read past, never
    held, and torn or unreadable lines are skipped with one warning for the whole file.
    Records are re-read from the file by offset when asked for, so the index stays small
    whatever the ledger's size."""

    what = "replay ledger"
    reason: str | None = None

    def __init__(self, path: str | os.PathLike[str], *, missing_ok: bool) -> None:
        self.path = os.fspath(path)
        self._missing_ok = missing_ok

    def _index(self, warn: Callable[[str], None]) -> None:
        try:
            f = open_for_reading(self.path, what=self.what, missing_ok=self._missing_ok)
        except LedgerError as exc:
            raise ConfigError(exc.message) from None
        if f is None:  # nothing recorded yet
            return
        skipped: list[int] = []
        long: list[int] = []
        try:
            with f, interruptible():
                offset = 0
                for number, raw in iter_lines(f, on_long=long.append):
                    here = offset
                    offset = f.tell()
                    if not raw.strip() or not self._wanted(raw):
                        continue
                    record = _parse(raw)
                    if record is None:
                        skipped.append(number)
                        continue
                    self._add(record, here)
        except OSError as exc:
            raise ConfigError(f"cannot read the {self.what} {self.path}: {exc.strerror}") from exc
        if long:
            warn(
                f"{self.path}: {len(long)} line{'s' if len(long) != 1 else ''} longer than "
                f"{MAX_LINE_BYTES:,} bytes skipped (line {_numbers(long)})"
            )
        if skipped:
            warn(
                f"{self.path}: {len(skipped)} torn or unreadable line"
                f"{'s' if len(skipped) != 1 else ''} skipped (line {_numbers(skipped)})"
            )

    def _wanted(self, raw: bytes) -> bool:
        """Whether a line may matter, judged on its bytes before it is parsed."""
        return True

    def _add(self, record: dict[str, Any], offset: int) -> None:
        raise NotImplementedError

    def _read(self, offset: int) -> dict[str, Any]:
        try:
            f = open_for_reading(self.path, what=self.what)
        except LedgerError as exc:
            raise ConfigError(exc.message) from None
        assert f is not None
        with f:
            f.seek(offset)
            record = _parse(f.readline(MAX_LINE_BYTES + 1))
        if record is None:  # the file was rewritten under us: append-only was broken
            raise ConfigError(f"the {self.what} {self.path} changed while it was read")
        return record

    def _completion(self, record: Mapping[str, Any]) -> ReplayedCompletion:
        output = record.get("output") or {}
        usage = Usage.read(record.get("usage") or {}, _LEDGER_USAGE)
        cost = record.get("cost") or {}
        usd = cost.get("usd")
        origin = ReplayOrigin(
            source=self.path,
            id=str(record.get("id")),
            cost=Cost(
                None if usd is None else Decimal(str(usd)),
                str(cost.get("source") or "unknown"),
                estimated=bool(cost.get("estimated")),
            ),
            latency_ms=_float(record.get("latency_ms")),
            mock=bool(record.get("mock")),
            reason=self.reason,
        )
        model = record.get("served_model") or record.get("model")
        request_id = record.get("request_id")
        return ReplayedCompletion(
            id=f"replay-{origin.id}",
            model=model if isinstance(model, str) else "",
            choices=_choices(output),
            usage=usage,
            request_id=request_id if isinstance(request_id, str) else None,
            origin=origin,
        )

    def client_for(self, fingerprint: str, offset: int) -> ReplayClient:
        """A client that answers this request (and no other) with the line at `offset`."""
        return ReplayClient(self, fingerprint=fingerprint, offset=offset)

    def _answer_line(self, body: Mapping[str, Any], fingerprint: str, offset: int) -> Any:
        if request_fingerprint(body) != fingerprint:  # a re-ask: it was never recorded
            raise NotRecorded(
                f"a re-ask of a request answered from {self.path} cannot be answered from it",
                fingerprint=request_fingerprint(body),
            )
        return self._completion(self._read(offset))


class ReplaySource(_Recorded):
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
        self._index(warn or _warn)
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
        return record is not None and _has_content(record)

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
        if record is None or not _has_content(record):
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


class CacheSource(_Recorded):
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
    ) -> None:
        super().__init__(path, missing_ok=True)
        self.max_age = max_age
        cutoff = None
        if max_age is not None:
            from datetime import UTC, timedelta

            try:
                cutoff = utc_timestamp((now or datetime.now(UTC)) - timedelta(seconds=max_age))
            except OverflowError:  # older than the calendar: everything is young enough
                cutoff = None
        self._cutoff = cutoff  # ISO timestamps of one format sort as strings
        self._latest: dict[tuple[str, bool], int] = {}  # (request_sha256, mock) -> offset
        self._index(warn or _warn)

    def __len__(self) -> int:
        return len(self._latest)

    def _wanted(self, raw: bytes) -> bool:
        return b'"status":"ok"' in raw  # how runner writes it; other lines cannot answer

    def _add(self, record: dict[str, Any], offset: int) -> None:
        fingerprint = record.get("request_sha256")
        ts = record.get("ts")
        if (
            record.get("status") != "ok"
            or not isinstance(fingerprint, str)
            or record.get("replayed") is not None
            or not _has_content(record)
            or (self._cutoff is not None and not (isinstance(ts, str) and ts >= self._cutoff))
        ):
            return
        self._latest[(fingerprint, record.get("mock") is True)] = offset

    def lookup(self, fingerprint: str, *, mock: bool) -> ReplayClient | None:
        """A client answering this request from its latest cached line, or None (a miss)."""
        offset = self._latest.get((fingerprint, mock))
        return None if offset is None else self.client_for(fingerprint, offset)


class ReplayClient:
    """Answers requests from recorded lines: no network, no key. Bound to one request and line
    (`client_for`), it answers that request with that line; unbound (`ReplaySource.client`), a
    request's first recorded answer. A request it cannot answer raises NotRecorded."""

    def __init__(
        self,
        source: _Recorded,
        *,
        fingerprint: str | None = None,
        offset: int | None = None,
    ) -> None:
        self.source = source
        self._fingerprint = fingerprint
        self._offset = offset

    def _answer(self, body: Mapping[str, Any]) -> ReplayedCompletion:
        if self._fingerprint is not None and self._offset is not None:
            answer: ReplayedCompletion = self.source._answer_line(
                body, self._fingerprint, self._offset
            )
            return answer
        if not isinstance(self.source, ReplaySource):
            raise TypeError("an unbound ReplayClient needs a ReplaySource")
        return self.source.answer(body)

    async def complete(
        self, body: Mapping[str, Any], *, timeout: float | None = None
    ) -> ReplayedCompletion:
        return self._answer(body)

    async def stream(
        self,
        body: Mapping[str, Any],
        *,
        timeout: float | None = None,
        on_delta: Callable[[StreamDelta], None] | None = None,
    ) -> ReplayedCompletion:
        completion = self._answer(body)
        if on_delta is not None:
            for choice in completion.choices:
                if choice.text:
                    on_delta(StreamDelta(choice.index, text=choice.text))
        return completion

    async def aclose(self) -> None:
        return None


def _times(count: int) -> str:
    return {1: "once", 2: "twice"}.get(count, f"{count} times")


def _float(value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return 0.0
    return float(value)


# --- reading lines ------------------------------------------------------------------------------


def _numbers(numbers: list[int]) -> str:
    return ", ".join(str(n) for n in numbers[:5]) + (", ..." if len(numbers) > 5 else "")


def _parse(raw: bytes) -> dict[str, Any] | None:
    if not raw.endswith(b"\n"):
        return None  # a torn last line
    try:
        value = loads_text(raw)  # lone surrogates become U+FFFD, as in a reply
    except (ValueError, RecursionError):
        return None
    if not isinstance(value, dict) or type(value.get("v")) is not int:
        return None
    return value


def _warn(message: str) -> None:
    warnings.warn(message, RunnerWarning, stacklevel=3)


def _has_content(record: Mapping[str, Any]) -> bool:
    output = record.get("output")
    if record.get("content") is False or not isinstance(output, dict):
        return False
    return output.get("text") is not None or bool(output.get("tool_calls"))


# Where the ledger keeps each count of a call's usage (runner's own names).
_LEDGER_USAGE = (
    ("prompt", None, "prompt"),
    ("completion", None, "completion"),
    ("cached", None, "cached"),
    ("reasoning", None, "reasoning"),
)


def _choices(output: Mapping[str, Any]) -> tuple[Choice, ...]:
    # A baseline is a file anyone may have edited: each field is taken only in its shape.
    finish = output.get("finish_reason")
    finish = finish if isinstance(finish, str) else None
    text = output.get("text")
    text = text if isinstance(text, str) else None
    first = Choice(0, text, finish, tool_calls=_tool_calls(output.get("tool_calls")))
    others = output.get("choices")
    if not isinstance(others, list) or len(others) < 2:
        return (first,)
    rest = []
    for index, value in enumerate(others[1:], 1):
        if isinstance(value, list) and value and isinstance(value[0], dict) and "name" in value[0]:
            rest.append(Choice(index, None, finish, tool_calls=_tool_calls(value)))
        elif isinstance(value, str):
            rest.append(Choice(index, value, finish))
        else:
            rest.append(Choice(index, json.dumps(value, ensure_ascii=False), finish))
    return (first, *rest)


def _tool_calls(values: Any) -> tuple[dict[str, Any], ...]:
    """Tool calls in the neutral shape of a Completion, from the values the ledger keeps
    (name, parsed arguments, id)."""
    if not isinstance(values, list):
        return ()
    calls = []
    for value in values:
        if not isinstance(value, dict):
            continue
        arguments = value.get("arguments")
        text = arguments if isinstance(arguments, str) else json.dumps(arguments)
        call: dict[str, Any] = {"name": value.get("name"), "arguments": text}
        if value.get("id"):
            call["id"] = value["id"]
        calls.append(call)
    return tuple(calls)
