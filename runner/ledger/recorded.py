"""What answers a call from a recorded ledger line instead of the network, shared by
runner.ledger.replay (`runner test --replay`) and runner.ledger.cache (`--cache`): a ledger read
once into an index of file offsets (`Recorded`), the line turned back into a completion
(`ReplayedCompletion`, whose `origin` says which line), and `ReplayClient`, which answers
through the same `complete`/`stream` interface as runner.providers.ModelClient.
"""

from __future__ import annotations

import json
import os
import warnings
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from runner.errors import ConfigError, LedgerError, NotRecorded, RunnerWarning
from runner.interrupts import interruptible
from runner.ledger.encoding import MAX_LINE_BYTES, loads_text
from runner.ledger.fingerprint import request_fingerprint
from runner.ledger.reading import iter_lines, open_for_reading
from runner.types import Choice, Completion, Cost, StreamDelta, Usage

__all__ = [
    "Recorded",
    "ReplayClient",
    "ReplayOrigin",
    "ReplayedCompletion",
    "has_content",
    "warn_once",
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


class Recorded:
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


class ReplayClient:
    """Answers requests from recorded lines: no network, no key. Bound to one request and line
    (`client_for`), it answers that request with that line; unbound (`ReplaySource.client`), a
    request's first recorded answer. A request it cannot answer raises NotRecorded."""

    def __init__(
        self,
        source: Recorded,
        *,
        fingerprint: str | None = None,
        offset: int | None = None,
    ) -> None:
        self.source = source
        self._fingerprint = fingerprint
        self._offset = offset
        self._answered = False

    def _answer(self, body: Mapping[str, Any]) -> ReplayedCompletion:
        if self._fingerprint is not None and self._offset is not None:
            if self._answered:  # a retry: the recorded answer would come back unchanged
                raise NotRecorded(
                    f"the answer recorded in {self.source.path} was not usable, and asking "
                    "again would give it again; run without the recorded answer to send it",
                    fingerprint=self._fingerprint,
                )
            self._answered = True
            answer: ReplayedCompletion = self.source._answer_line(
                body, self._fingerprint, self._offset
            )
            return answer
        answer_of = getattr(self.source, "answer", None)
        if answer_of is None:
            raise TypeError("an unbound ReplayClient needs a ReplaySource")
        found: ReplayedCompletion = answer_of(body)
        return found

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


def warn_once(message: str) -> None:
    """The default warning of an index: a RunnerWarning (the CLI prints it once)."""
    warnings.warn(message, RunnerWarning, stacklevel=3)


def has_content(record: Mapping[str, Any]) -> bool:
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
