"""One call of a spec, end to end: guards -> client under the retry policy -> output checks ->
price -> one ledger line, whatever happened. It is handed everything it needs (settings, the
preflight, client, guard, ledger, prices) and never reaches back into the Session that made it;
it never prints.
"""

from __future__ import annotations

import asyncio
import time
import warnings
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any

from runner.engine.answer import completion_values, repair_messages
from runner.engine.callstate import CallState
from runner.engine.modes import fall_back, learned_start
from runner.engine.parts import CallParts
from runner.engine.results import Result
from runner.engine.spend import Spending
from runner.engine.usage import UsageCheck, completion_texts
from runner.errors import (
    InternalError,
    LedgerError,
    OutputInvalid,
    OutputModeUnsupported,
    OutputSchemaIgnored,
    ProviderError,
    RunnerError,
    RunnerWarning,
)
from runner.ledger.encoding import encode_line
from runner.ledger.gitref import spec_ref
from runner.ledger.line import Asked, LedgerRecord, Outcome, Recording, build_line, minimal_line
from runner.ledger.recorded import ReplayedCompletion, ReplayOrigin
from runner.policy.retry import call_with_retry
from runner.providers import wire_api
from runner.types import Attempt, Completion, Cost, StreamDelta, Usage

__all__ = ["Call"]


_NO_USAGE = Usage()
_NOT_PRICED = Cost(None, "unknown", reason="not priced: runner failed")


@dataclass  # not frozen: a frozen __init__ costs several times more, on every call
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
        on_retry: Callable[[Attempt, BaseException, float], None] | None = None,
    ) -> None:
        self.parts = parts
        spec, pre = parts.spec, parts.pre
        self.on_retry = on_retry
        self.on_record = on_record
        self.case = case
        self.row = row
        self.on_delta = on_delta
        # `auto` starts as json_schema, and falls back when the server refuses a mode.
        output = spec.output
        self.wire = wire_api(pre.api)
        self.state = CallState(
            body=pre.body,
            base=pre.body,
            request=pre.request,
            mode=None if output is None else output.mode.replace("auto", "json_schema"),
            messages=pre.messages,
        )
        # How this call's output mode came to differ from the spec's first one, if it did:
        # {from, to, why ("refused" or "ignored"), learned (from an earlier call of the run)}.
        self.fallback = learned_start(parts, self.wire, self.state)
        self.check = UsageCheck(parts.settings.model, pre, spec.choices)
        # What the limiter holds for each attempt: the prompt and all of max_tokens per choice.
        self.reservation = pre.prompt_tokens + (pre.max_output_tokens or 0) * spec.choices
        # The attempts' reservations under a caller's budget.
        self.spend = None if parts.budget is None else Spending(parts, parts.budget, self.check)

    async def execute(self) -> Result:
        """Send the call under the retry policy (falling back to another output mode when the
        server refuses one), write its one ledger line, and return its Result; on failure the
        line is written and the error raised, with every attempt."""
        started = time.perf_counter()
        ts = datetime.now(UTC)
        record: list[Attempt] = []  # the attempts of the mode being tried, as they happen
        try:
            reply, attempts = await self._answered(started, record)
        except RunnerError as exc:
            self._failed(exc, ts, started)
            raise
        except (asyncio.CancelledError, KeyboardInterrupt) as exc:
            # Tokens may already be spent: an interrupted call still gets its line, with every
            # attempt, the one in flight counted locally when its request had gone out.
            attempts = self._cut_short(self.state.numbered(record))
            try:
                self._write(
                    ts, attempts, started, interrupted=exc, partial=self.state.partial_text()
                )
            except LedgerError as lost:  # the interruption stays what the caller sees
                warnings.warn(f"{lost.message}\n{lost.unrecorded}", RunnerWarning, stacklevel=2)
            raise
        except Exception as exc:  # a bug outside the reply's checks (a guard, a callback...)
            error = InternalError(f"runner failed during the call ({type(exc).__name__}: {exc})")
            error.attempts = self._cut_short(self.state.numbered(record))
            self._write(ts, error.attempts, started, error=error)
            raise error from exc
        return self._result(reply, self.state.with_limiter_waits(attempts), ts, started)

    # -- the attempts --

    async def _answered(
        self, started: float, record: list[Attempt]
    ) -> tuple[_Reply, list[Attempt]]:
        """The reply and every attempt (numbered across output-mode fall backs); a failure is
        raised with every attempt."""
        spec, state = self.parts.spec, self.state
        while True:
            record.clear()
            try:
                reply, attempts = await call_with_retry(
                    self._attempt,
                    spec.retry,
                    deadline=_left(spec.deadline, started),
                    on_retry=self._retrying(),
                    record=record,
                )
                return reply, state.numbered(attempts)
            except OutputModeUnsupported as exc:
                self._fall_back(exc, "refused")
            except OutputSchemaIgnored as exc:
                self._fall_back(exc, "ignored")
            except RunnerError as exc:  # numbered after the modes the server refused
                exc.attempts = state.numbered(exc.attempts)
                raise

    def _fall_back(self, exc: RunnerError, why: str) -> None:
        """Go on in another output mode (runner.engine.modes.fall_back), or raise `exc`."""
        self.fallback = fall_back(self.parts, self.wire, self.state, exc, why, self.fallback)

    def _attempt(self, number: int) -> Awaitable[_Reply]:
        """Attempt `number` of the current mode, numbered across modes; under a budget, it
        reserves its worst case first and settles at its cost. (Not a coroutine, as `_send`:
        one frame less for every resume of the call by the network.)"""
        number += self.state.offset
        if self.spend is None:
            return self._attempt_once(number)
        return self.spend.attempt(
            number, self.state.body, self._last_sent, self._attempt_once, _usage
        )

    def _last_sent(self) -> int:
        return self.state.sent

    async def _attempt_once(self, number: int) -> _Reply:
        """Send the current body once under the guard, then check the reply for the spec."""
        body = self.state.body

        def admitted(wait: float) -> None:
            self.state.limiter_waits[number] = wait

        try:
            completion, waited = await self.parts.guard.run(
                lambda: self._send(number, body), tokens=self.reservation, on_admit=admitted
            )
        except ProviderError as exc:  # a stream that broke after text had arrived
            streamed = self.state.partial.get(number)
            if streamed and exc.usage is None and self.state.sent == number:
                exc.usage = self.check.recorded(None, body, list(streamed.values()))
            raise
        return self._checked(completion, body, waited)

    def _send(self, number: int, body: dict[str, Any]) -> Awaitable[Completion]:
        """The request of attempt `number`, as the guard awaits it once admitted."""
        settings, spec, client = self.parts.settings, self.parts.spec, self.parts.client
        self.state.sent, self.state.sent_body = number, body
        if settings.stream:
            return client.stream(
                body, timeout=spec.timeout, on_delta=self.state.delta_sink(number, self.on_delta)
            )
        return client.complete(body, timeout=spec.timeout)

    def _checked(self, completion: Completion, body: dict[str, Any], waited: float) -> _Reply:
        """The reply's usage (as reported, else counted) and its value for the spec. Invalid
        output under `repair` sets the re-ask as the next body; an unforeseen failure is
        InternalError (the call is still recorded)."""
        spec = self.parts.spec
        try:
            usage = self.check.recorded(completion.usage, body, completion_texts(completion))
            if usage is not completion.usage:  # counted locally, or flagged implausible
                completion = replace(completion, usage=usage)
            value, values = completion_values(
                completion, spec.output, self.parts.pre, mode=self.state.mode
            )
        except OutputInvalid as exc:
            if spec.output is not None and spec.output.repair:
                base = self.state.request
                self.state.body = self.wire.build_body(
                    base.with_messages(repair_messages(base.messages, completion, exc))
                )
            raise
        except RunnerError:
            raise
        except Exception as exc:  # a bug, or a reply no check foresaw: still recorded
            raise InternalError(
                f"runner failed on the reply ({type(exc).__name__}: {exc}); the call is "
                "recorded — please report this",
                usage=completion.usage,
                request_id=completion.request_id,
            ) from exc
        return _Reply(completion, value, values, waited)

    def _retrying(self) -> Callable[[Attempt, BaseException, float], None]:
        """Hand the caller each retry (the attempt that failed, why, the wait before the
        next), numbered across output-mode fall backs."""
        sink = self.on_retry

        def report(failed: Attempt, error: BaseException, wait: float) -> None:
            if sink is not None:
                sink(replace(failed, number=failed.number + self.state.offset), error, wait)

        return report

    # -- how the call ended --

    def _result(
        self, reply: _Reply, attempts: list[Attempt], ts: datetime, started: float
    ) -> Result:
        line, usage, cost, latency = self._write(ts, attempts, started, reply=reply)
        c = reply.completion
        origin = _replayed(reply)
        return Result(
            value=reply.value,
            text=c.text,
            usage=usage,
            cost=cost,
            attempts=tuple(attempts),
            latency_ms=latency,
            request_id=c.request_id,
            model=self.parts.settings.model,
            served_model=c.model,
            finish_reason=c.choices[0].finish_reason if c.choices else None,
            ttft_ms=c.ttft_ms,
            ledger_id=line["id"],
            mock=line["mock"],
            choices=reply.values,
            rate_headers=dict(c.rate_headers),
            replayed=None if origin is None else origin.to_dict(),
            recorded_latency_ms=None if origin is None else origin.latency_ms,
        )

    def _failed(self, exc: RunnerError, ts: datetime, started: float) -> None:
        """Write the line of a call that failed (unless the budget refused its first attempt:
        then nothing was sent); the caller raises `exc`."""
        exc.attempts = self.state.with_limiter_waits(exc.attempts)
        refused = None if self.spend is None else self.spend.refused
        if refused is not None:  # the budget refused an attempt: it was not sent
            exc.attempts = [a for a in exc.attempts if a.number != refused]
            if not exc.attempts:
                return  # nothing was sent at all: no line
        self._write(ts, exc.attempts, started, error=exc)

    def _cut_short(self, record: list[Attempt]) -> list[Attempt]:
        """The attempts of a call cut short; the last one, when its request had gone out,
        with its usage counted locally (what was sent, what had streamed in)."""
        attempts = self.state.with_limiter_waits(list(record))
        last = attempts[-1] if attempts else None
        cut = ("interrupted", "internal")
        if (
            last is not None
            and last.outcome in cut
            and last.usage is None
            and self.state.sent == last.number
        ):
            texts = self.state.partial.get(last.number, {}).values()
            usage = self.check.recorded(None, self.state.sent_body or {}, list(texts))
            attempts[-1] = replace(last, usage=usage)
        return attempts

    # -- the ledger line --

    def _price(self, attempts: list[Attempt]) -> Cost:
        settings = self.parts.settings
        return self.parts.pricebook.cost_of_attempts(
            attempts,
            settings.model,
            base_url=None if settings.mock else settings.base_url,
            estimated=settings.mock,
        )

    def _asked(self) -> Asked:
        """What this call asked, as its line records it (the messages and output mode of the
        mode that answered, or was tried last)."""
        spec, pre, ref = self.parts.spec, self.parts.pre, self.parts.spec_ref
        if ref is None:  # parts not made by a Session
            ref = spec_ref(spec.path, sha256=spec.sha256, name=spec.name)
        return Asked(
            spec=ref.copy(),
            fingerprint=self.parts.fingerprint,
            model=self.parts.settings.model,
            params=spec.params,
            vars=pre.vars,
            messages=self.state.messages,
            estimated_prompt=pre.prompt_tokens,
            output_mode=self.state.mode,
            output_fallback=self.fallback,
            api=self.parts.pre.api,
            case=self.case,
            row=self.row,
            variant=None if spec.variant is None else spec.variant.name,
        )

    def _write(
        self,
        ts: datetime,
        attempts: list[Attempt],
        started: float,
        *,
        reply: _Reply | None = None,
        error: RunnerError | None = None,
        interrupted: BaseException | None = None,
        partial: str | None = None,
    ) -> tuple[LedgerRecord, Usage, Cost, float]:
        """Build this call's ledger line, append it, and report it to whoever counts. If the
        full line cannot be built or encoded, a minimal one (kind `internal`) is written; if
        the ledger cannot take it, LedgerError carries the line."""
        parts = self.parts
        spec, settings = parts.spec, parts.settings
        latency_ms = (time.perf_counter() - started) * 1000
        origin = _replayed(reply)
        usage, cost = _NO_USAGE, _NOT_PRICED  # what the line says if building it fails
        try:
            usage = _sum_usage(attempts)
            # A replayed answer costs what the recorded call cost.
            cost = origin.cost if origin is not None else self._price(attempts)
            record = build_line(
                asked=self._asked(),
                outcome=Outcome(
                    ts=ts,
                    attempts=attempts,
                    usage=usage,
                    cost=cost,
                    latency_ms=latency_ms,
                    completion=None if reply is None else reply.completion,
                    value=None if reply is None else reply.value,
                    values=() if reply is None else reply.values,
                    error=error,
                    interrupted=interrupted,
                    partial_text=partial,
                    replayed=None if origin is None else origin.to_dict(),
                ),
                recording=Recording(
                    content=settings.ledger_content,
                    mock=settings.mock if origin is None else origin.mock,
                    has_schema=spec.output is not None,
                ),
            )
            line = encode_line(record)
        except Exception as exc:  # a bug in pricing or the line: record what is known
            outcome = "succeeded" if reply is not None else "failed" if error else "interrupted"
            record = minimal_line(
                ts=ts,
                spec=spec,
                fingerprint=parts.fingerprint,
                case=self.case,
                row=self.row,
                model=settings.model,
                attempts=attempts,
                usage=usage,
                cost=cost,
                latency_ms=latency_ms,
                mock=settings.mock,
                api=self.parts.pre.api,
                message=f"the call {outcome}, but its full line could not be built "
                f"({type(exc).__name__}: {exc})",
            )
            line = encode_line(record)
        try:
            parts.ledger.append_line(line)
        except LedgerError as exc:
            outcome = "succeeded" if reply is not None else "failed" if error else "was interrupted"
            raise LedgerError(
                f"the call was sent and {outcome}, but it was NOT recorded: {exc.message}",
                unrecorded=line.decode("utf-8").rstrip("\n"),
            ) from exc
        if usage.implausible:
            warnings.warn(
                "the server's usage looks implausible (" + "; ".join(usage.implausible) + "); "
                "recorded as the server said it, flagged, and not priced",
                RunnerWarning,
                stacklevel=2,
            )
        if parts.on_recorded is not None:
            parts.on_recorded(record, usage, cost, latency_ms)
        if self.on_record is not None:
            self.on_record(record)
        return record, usage, cost, latency_ms


def _usage(reply: _Reply) -> Usage | None:
    return reply.usage


def _replayed(reply: _Reply | None) -> ReplayOrigin | None:
    completion = None if reply is None else reply.completion
    return completion.origin if isinstance(completion, ReplayedCompletion) else None


def _left(deadline: float | None, started: float) -> float | None:
    """What is left of the call's deadline (a fall back must not restart it)."""
    if deadline is None:
        return None
    return max(0.001, deadline - (time.perf_counter() - started))


def _sum_usage(attempts: list[Attempt]) -> Usage:
    used = [a.usage for a in attempts if a.usage]
    if len(used) == 1:  # nearly every call: Usage() + u is u, field for field
        return used[0]
    total = Usage()
    for usage in used:
        total = total + usage
    return total
