"""Answers from a recorded ledger, for `runner test --replay`: `ReplaySource` reads a ledger once
(request_sha256 -> the latest `ok` line; spec name and case -> the latest line and the latest
`ok` line, kept as file offsets) and `ReplayClient` answers a request with the recorded reply,
usage and cost, through the same `complete`/`stream` interface as runner.providers.ModelClient.
"""

from __future__ import annotations

import json
import os
import warnings
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from runner.errors import ConfigError, LedgerError, NotRecorded, RunnerWarning
from runner.interrupts import interruptible
from runner.ledger.encoding import MAX_LINE_BYTES, loads_text, request_fingerprint
from runner.ledger.store import iter_lines, open_for_reading
from runner.types import Choice, Completion, Cost, StreamDelta, Usage

__all__ = ["ReplayClient", "ReplayOrigin", "ReplaySource", "ReplayedCompletion"]


@dataclass(frozen=True)
class ReplayOrigin:
    """Where a replayed answer comes from, and what the recorded call consumed."""

    source: str  # the replay ledger's path
    id: str  # the recorded line's id
    cost: Cost  # the recorded cost: a replay is never re-priced
    latency_ms: float  # the recorded call's latency
    mock: bool  # the recorded call was answered by the mock server

    def to_dict(self) -> dict[str, str]:
        """The ledger line's `replayed` field."""
        return {"from": self.source, "id": self.id}


@dataclass(frozen=True)
class ReplayedCompletion(Completion):
    """A completion rebuilt from a ledger line; `origin` says which one."""

    origin: ReplayOrigin | None = None


class ReplaySource:
    """One replay ledger, indexed by streaming it once. Only a regular file is read (a device
    or a pipe is a ConfigError), lines longer than MAX_LINE_BYTES are read past, never held,
    and torn or unreadable lines are skipped with one warning for the whole file. Records are
    re-read from the file by offset when asked for, so the index stays small whatever the
    ledger's size."""

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        record_missing: bool = False,
        warn: Callable[[str], None] | None = None,
    ) -> None:
        self.path = os.fspath(path)
        self.record_missing = record_missing
        self._by_request: dict[str, int] = {}  # request_sha256 -> latest ok line
        self._by_case: dict[tuple[str, str], int] = {}  # (spec name, case) -> latest line
        self._ok_by_case: dict[tuple[str, str], int] = {}  # (spec name, case) -> latest ok line
        self._index(warn or _warn)
        self.client = ReplayClient(self)

    def __len__(self) -> int:
        return len(self._by_request)

    def _index(self, warn: Callable[[str], None]) -> None:
        try:
            f = open_for_reading(self.path, what="replay ledger", missing_ok=self.record_missing)
        except LedgerError as exc:
            raise ConfigError(exc.message) from None
        if f is None:  # a first recording: everything is missing
            return
        skipped: list[int] = []
        long: list[int] = []
        try:
            with f, interruptible():
                offset = 0
                for number, raw in iter_lines(f, on_long=long.append):
                    here = offset
                    offset = f.tell()
                    if not raw.strip():
                        continue
                    record = _parse(raw)
                    if record is None:
                        skipped.append(number)
                        continue
                    self._add(record, here)
        except OSError as exc:
            raise ConfigError(f"cannot read the replay ledger {self.path}: {exc.strerror}") from exc
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

    def _add(self, record: dict[str, Any], offset: int) -> None:
        spec = record.get("spec")
        name = spec.get("name") if isinstance(spec, dict) else None
        case = record.get("case")
        ok = record.get("status") == "ok"
        fingerprint = record.get("request_sha256")
        if ok and isinstance(fingerprint, str):
            self._by_request[fingerprint] = offset
        if isinstance(name, str) and isinstance(case, str):
            self._by_case[(name, case)] = offset
            if ok:
                self._ok_by_case[(name, case)] = offset

    def _read(self, offset: int) -> dict[str, Any]:
        try:
            f = open_for_reading(self.path, what="replay ledger")
        except LedgerError as exc:
            raise ConfigError(exc.message) from None
        assert f is not None
        with f:
            f.seek(offset)
            record = _parse(f.readline(MAX_LINE_BYTES + 1))
        if record is None:  # the file was rewritten under us: append-only was broken
            raise ConfigError(f"the replay ledger {self.path} changed while it was read")
        return record

    # -- lookups --

    def recorded(self, fingerprint: str) -> dict[str, Any] | None:
        """The latest `ok` line for this request fingerprint, if any."""
        offset = self._by_request.get(fingerprint)
        return None if offset is None else self._read(offset)

    def can_answer(self, fingerprint: str) -> bool:
        """Whether a request is recorded with its content (so that it can be replayed)."""
        record = self.recorded(fingerprint)
        return record is not None and _has_content(record)

    def latest_for(self, spec_name: str, case: str, *, ok: bool = False) -> dict[str, Any] | None:
        """The latest line of this spec and case (only `ok` lines with ok=True), if any."""
        offset = (self._ok_by_case if ok else self._by_case).get((spec_name, case))
        return None if offset is None else self._read(offset)

    def answer(self, body: Mapping[str, Any]) -> ReplayedCompletion:
        """The recorded completion for this request body, or NotRecorded."""
        fingerprint = request_fingerprint(body)
        record = self.recorded(fingerprint)
        if record is None or not _has_content(record):
            raise self.answer_error(fingerprint)
        return self._completion(record)

    def answer_error(
        self,
        fingerprint: str,
        messages: Sequence[Mapping[str, Any]] = (),
        params: Mapping[str, Any] | None = None,
    ) -> NotRecorded:
        """Why this request cannot be answered: not recorded, or recorded without content.
        `messages` and `params` (the model and the spec's params, as a ledger line keeps
        them) are the request as it is now, for a diff against the recorded one."""
        record = self.recorded(fingerprint)
        if record is None:
            message = (
                "request changed since it was recorded (no ok line with request_sha256 "
                f"{fingerprint[:12]}... in {self.path})"
            )
        else:
            message = (
                f"the recorded line {record.get('id')} in {self.path} kept no content "
                "(ledger: {content: false}), so it cannot be replayed; record the baseline "
                "with RUNNER_LEDGER_CONTENT=1"
            )
        return NotRecorded(message, fingerprint=fingerprint, messages=messages, params=params)

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
            latency_ms=float(record.get("latency_ms") or 0.0),
            mock=bool(record.get("mock")),
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


class ReplayClient:
    """Answers requests from a ReplaySource: no network, no key. A request that is not recorded
    raises NotRecorded."""

    def __init__(self, source: ReplaySource) -> None:
        self.source = source

    async def complete(
        self, body: Mapping[str, Any], *, timeout: float | None = None
    ) -> ReplayedCompletion:
        return self.source.answer(body)

    async def stream(
        self,
        body: Mapping[str, Any],
        *,
        timeout: float | None = None,
        on_delta: Callable[[StreamDelta], None] | None = None,
    ) -> ReplayedCompletion:
        completion = self.source.answer(body)
        if on_delta is not None:
            for choice in completion.choices:
                if choice.text:
                    on_delta(StreamDelta(choice.index, text=choice.text))
        return completion

    async def aclose(self) -> None:
        return None


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
