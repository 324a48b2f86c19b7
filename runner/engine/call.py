"""One call of a spec, end to end: guards -> client under the retry policy -> output checks ->
price -> one ledger line, whatever happened. It is handed everything it needs (settings, the
preflight, client, guard, ledger, prices) and never reaches back into the Session that made it;
it never prints.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Protocol

from runner.engine.answer import completion_values, repair_body
from runner.engine.results import Preflight, Result
from runner.errors import OutputInvalid, RunnerError
from runner.ledger.gitref import spec_ref
from runner.ledger.line import LedgerRecord, build_line
from runner.ledger.replay import ReplayedCompletion, ReplayOrigin
from runner.policy.retry import call_with_retry
from runner.types import Attempt, Completion, Cost, StreamDelta, Usage

if TYPE_CHECKING:
    from runner.ledger.store import Ledger
    from runner.policy.guards import Guard
    from runner.pricing import PriceBook
    from runner.settings import Settings
    from runner.spec.model import PromptSpec

__all__ = ["Call", "CallParts", "ChatBackend"]


class ChatBackend(Protocol):
    """What answers a call: runner.client.ChatClient, or runner.ledger.replay.ReplayClient."""

    async def complete(
        self, body: Mapping[str, Any], *, timeout: float | None = None
    ) -> Completion: ...

    async def stream(
        self,
        body: Mapping[str, Any],
        *,
        timeout: float | None = None,
        on_delta: Callable[[StreamDelta], None] | None = None,
    ) -> Completion: ...


@dataclass(frozen=True)
class CallParts:
    """What the Session resolves for one call and hands over: the call needs nothing else."""

    spec: PromptSpec
    settings: Settings
    pre: Preflight
    fingerprint: str
    client: ChatBackend
    guard: Guard
    ledger: Ledger
    pricebook: PriceBook
    on_recorded: Callable[[LedgerRecord, Usage, Cost, float], None] | None = None


@dataclass(frozen=True)
class _Reply:
    """What one successful attempt produced: the completion and its checked value."""

    completion: Completion
    value: Any
    values: tuple[Any, ...]
    limiter_wait: float

    @property
    def usage(self) -> Usage | None:
        return self.completion.usage

    @property
    def request_id(self) -> str | None:
        return self.completion.request_id


class Call:
    """The state of one call while it runs: its request, attempts, and what it consumed."""

    def __init__(
        self,
        parts: CallParts,
        *,
        case: str | None,
        row: str | None,
        on_delta: Callable[[StreamDelta], None] | None,
        on_record: Callable[[LedgerRecord], None] | None = None,
    ) -> None:
        self.parts = parts
        self.on_record = on_record
        self.case = case
        self.row = row
        self.on_delta = on_delta
        self.shown = False  # a streamed delta reached the caller: a retry must say it restarts
        self.limiter_waits: dict[int, float] = {}

    async def execute(self) -> Result:
        parts = self.parts
        spec, settings, pre, client = parts.spec, parts.settings, parts.pre, parts.client
        n = int(spec.params.get("n") or 1)
        reservation = pre.prompt_tokens + (pre.max_output_tokens or 0) * n
        state: dict[str, Any] = {"body": pre.body}

        async def attempt(number: int) -> _Reply:
            body = state["body"]

            async def send() -> Completion:
                if settings.stream:
                    return await client.stream(
                        body, timeout=spec.timeout, on_delta=self._delta_sink(number)
                    )
                return await client.complete(body, timeout=spec.timeout)

            def admitted(wait: float) -> None:
                self.limiter_waits[number] = wait

            completion, waited = await parts.guard.run(send, tokens=reservation, on_admit=admitted)
            try:
                value, values = completion_values(completion, spec.output, spec.params)
            except OutputInvalid as exc:
                if spec.output is not None and spec.output.repair:
                    state["body"] = repair_body(pre.body, completion, exc)
                raise
            return _Reply(completion, value, values, waited)

        started = time.perf_counter()
        ts = datetime.now(UTC)
        try:
            reply, attempts = await call_with_retry(attempt, spec.retry, deadline=spec.deadline)
        except RunnerError as exc:
            exc.attempts = self._with_limiter_waits(exc.attempts)
            self._write(ts, exc.attempts, started, error=exc)
            raise
        except (asyncio.CancelledError, KeyboardInterrupt) as exc:
            # Tokens may already be spent: an interrupted call still gets its line.
            self._write(ts, [], started, interrupted=exc)
            raise
        attempts = self._with_limiter_waits(attempts)
        record, usage, cost, latency = self._write(ts, attempts, started, reply=reply)
        c = reply.completion
        return Result(
            value=reply.value,
            text=c.text,
            usage=usage,
            cost=cost,
            attempts=tuple(attempts),
            latency_ms=latency,
            request_id=c.request_id,
            model=settings.model,
            served_model=c.model,
            finish_reason=c.choices[0].finish_reason if c.choices else None,
            ttft_ms=c.ttft_ms,
            ledger_id=record["id"],
            mock=record["mock"],
            choices=reply.values,
        )

    # -- streaming display --

    def _delta_sink(self, number: int) -> Callable[[StreamDelta], None] | None:
        sink = self.on_delta
        if sink is None:
            return None
        first = True

        def deliver(delta: StreamDelta) -> None:
            nonlocal first
            if first and self.shown and number > 1:
                sink(StreamDelta(delta.choice, restart=True))
            first = False
            self.shown = True
            sink(delta)

        return deliver

    # -- figures and the ledger --

    def _with_limiter_waits(self, attempts: list[Attempt]) -> list[Attempt]:
        """Move the rate limiter's queueing from an attempt's latency to its wait."""
        out = []
        for a in attempts:
            wait = self.limiter_waits.get(a.number, 0.0)
            if wait:
                latency = max(0.0, a.latency_ms - wait * 1000)
                a = replace(a, waited_s=a.waited_s + wait, latency_ms=latency)
            out.append(a)
        return out

    def _write(
        self,
        ts: datetime,
        attempts: list[Attempt],
        started: float,
        *,
        reply: _Reply | None = None,
        error: RunnerError | None = None,
        interrupted: BaseException | None = None,
    ) -> tuple[LedgerRecord, Usage, Cost, float]:
        """Build this call's ledger line, append it, and report it to whoever counts."""
        parts = self.parts
        spec, settings, pre = parts.spec, parts.settings, parts.pre
        usage = _sum_usage(attempts)
        origin = _replayed(reply)
        if origin is not None:  # a replayed answer costs what the recorded call cost
            cost = origin.cost
        else:
            cost = parts.pricebook.cost_of_attempts(
                attempts,
                settings.model,
                base_url=None if settings.mock else settings.base_url,
                estimated=settings.mock,
            )
        latency_ms = (time.perf_counter() - started) * 1000
        record = build_line(
            ts=ts,
            spec=spec_ref(spec.path, sha256=spec.sha256, name=spec.name),
            fingerprint=parts.fingerprint,
            case=self.case,
            row=self.row,
            model=settings.model,
            params=spec.params,
            vars=pre.vars,
            messages=pre.messages,
            estimated_prompt=pre.prompt_tokens,
            attempts=attempts,
            usage=usage,
            cost=cost,
            latency_ms=latency_ms,
            mock=settings.mock if origin is None else origin.mock,
            content=settings.ledger_content,
            has_schema=spec.output is not None,
            completion=None if reply is None else reply.completion,
            value=None if reply is None else reply.value,
            values=() if reply is None else reply.values,
            error=error,
            interrupted=interrupted,
            replayed=None if origin is None else origin.to_dict(),
        )
        parts.ledger.append(record)
        if parts.on_recorded is not None:
            parts.on_recorded(record, usage, cost, latency_ms)
        if self.on_record is not None:
            self.on_record(record)
        return record, usage, cost, latency_ms


def _replayed(reply: _Reply | None) -> ReplayOrigin | None:
    completion = None if reply is None else reply.completion
    return completion.origin if isinstance(completion, ReplayedCompletion) else None


def _sum_usage(attempts: list[Attempt]) -> Usage:
    total = Usage()
    for a in attempts:
        if a.usage:
            total = total + a.usage
    return total
