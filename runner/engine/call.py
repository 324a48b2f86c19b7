"""One call of a spec, end to end: render -> count -> preflight (context window, worst-case
cost) -> guards -> client under the retry policy -> output checks -> price -> one ledger line,
whatever happened. It never prints; the Session (runner.engine.session) owns the shared resources.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from runner import settings as settings_mod
from runner.engine.answer import completion_values, max_output_tokens, repair_body
from runner.engine.results import Preflight, Result
from runner.errors import ConfigError, OutputError, OutputInvalid, RunnerError
from runner.types import LEDGER_VERSION, Attempt, Completion, Cost, StreamDelta, Usage

if TYPE_CHECKING:
    from runner.engine.session import Session
    from runner.pricing import PriceBook
    from runner.spec.model import PromptSpec

__all__ = ["Call", "preflight"]


def preflight(
    spec: PromptSpec,
    vars: Mapping[str, Any],
    s: settings_mod.Settings,
    pricebook: PriceBook,
) -> Preflight:
    """Render the request exactly as it will be sent, count it, and bound its cost."""
    from runner.client import build_body, response_format_for
    from runner.tokens import count_messages

    prepared = spec.prepare_vars(vars)
    messages = spec.render(prepared)
    response_format = None
    if spec.output is not None:
        response_format = response_format_for(
            spec.output.schema, name=spec.output.name, strict=spec.output.strict
        )
    body = build_body(
        s.model,
        messages,
        params=spec.params,
        response_format=response_format,
        tools=list(spec.tools) or None,
        tool_choice=spec.tool_choice,
        stream=s.stream,
    )
    prompt_tokens = count_messages(
        messages, s.model, tools=list(spec.tools) or None, tool_choice=spec.tool_choice
    )
    window = pricebook.context_window(s.model, base_url=None if s.mock else s.base_url)
    max_out = max_output_tokens(spec.params)
    n = int(spec.params.get("n") or 1)
    if window is not None and prompt_tokens + (max_out or 0) > window:
        room = window - prompt_tokens
        hint = (
            f"lower max_tokens to at most {room}"
            if room > 0
            else "shorten the prompt or its variables"
        )
        raise ConfigError(
            f"{spec.path}: the prompt needs {prompt_tokens} tokens"
            + (f" + {max_out} output tokens" if max_out else "")
            + f", more than the {window}-token context window of {s.model}; {hint}"
        )
    worst_out = max_out if max_out is not None else (window - prompt_tokens if window else None)
    if worst_out is None:
        max_cost = Cost(None, "unknown: set max_tokens to bound the cost")
    else:
        max_cost = pricebook.cost(
            Usage(prompt=prompt_tokens, completion=worst_out * n),
            s.model,
            base_url=None if s.mock else s.base_url,
        )
    return Preflight(s.model, prepared, messages, body, prompt_tokens, max_out, window, max_cost)


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
        session: Session,
        spec: PromptSpec,
        s: settings_mod.Settings,
        *,
        case: str | None,
        row: str | None,
        on_delta: Callable[[StreamDelta], None] | None,
    ) -> None:
        self.session = session
        self.spec = spec
        self.s = s
        self.case = case
        self.row = row
        self.on_delta = on_delta
        self.shown = False  # a streamed delta reached the caller: a retry must say it restarts
        self.limiter_waits: dict[int, float] = {}
        self.pre: Preflight | None = None

    async def execute(self, vars: dict[str, Any]) -> Result:
        from runner.ledger.store import request_fingerprint
        from runner.policy.retry import call_with_retry

        spec, s = self.spec, self.s
        # User errors (bad vars, a prompt that cannot fit, no key) stop here: no call, no line.
        self.pre = pre = self.session.preflight(spec, vars)
        client = self.session.client(s, spec)
        fingerprint = request_fingerprint(pre.body, known=self.session.static_parts(spec, pre))
        guard = self.session.guards.for_endpoint(
            "mock" if s.mock else s.base_url,
            s.model,
            rpm=spec.rate.rpm,
            tpm=spec.rate.tpm,
            concurrency=spec.rate.concurrency,
            failures=spec.breaker.failures,
            cooldown=spec.breaker.cooldown,
        )
        n = int(spec.params.get("n") or 1)
        reservation = pre.prompt_tokens + (pre.max_output_tokens or 0) * n
        state: dict[str, Any] = {"body": pre.body}

        async def attempt(number: int) -> _Reply:
            body = state["body"]

            async def send() -> Completion:
                if s.stream:
                    return await client.stream(
                        body, timeout=spec.timeout, on_delta=self._delta_sink(number)
                    )
                return await client.complete(body, timeout=spec.timeout)

            def admitted(wait: float) -> None:
                self.limiter_waits[number] = wait

            completion, waited = await guard.run(send, tokens=reservation, on_admit=admitted)
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
            self._write(ts, fingerprint, exc.attempts, started, error=exc)
            raise
        except (asyncio.CancelledError, KeyboardInterrupt) as exc:
            # Tokens may already be spent: an interrupted call still gets its line.
            self._write(ts, fingerprint, [], started, interrupted=exc)
            raise
        attempts = self._with_limiter_waits(attempts)
        record, usage, cost, latency = self._write(ts, fingerprint, attempts, started, reply=reply)
        c = reply.completion
        return Result(
            value=reply.value,
            text=c.text,
            usage=usage,
            cost=cost,
            attempts=tuple(attempts),
            latency_ms=latency,
            request_id=c.request_id,
            model=s.model,
            served_model=c.model,
            finish_reason=c.choices[0].finish_reason if c.choices else None,
            ttft_ms=c.ttft_ms,
            ledger_id=record["id"],
            mock=s.mock,
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

    def _cost(self, attempts: list[Attempt]) -> Cost:
        """Price every attempt that consumed tokens; unknown if any of them cannot be priced."""
        book = self.session.pricebook
        base_url = None if self.s.mock else self.s.base_url
        total = Decimal(0)
        source = None
        for a in attempts:
            if not a.usage:
                continue
            cost = book.cost(a.usage, self.s.model, base_url=base_url, estimated=self.s.mock)
            if cost.usd is None:
                return Cost(None, cost.source, estimated=self.s.mock)
            total += cost.usd
            source = cost.source
        if source is None:  # nothing consumed: price it anyway to learn the source
            probe = book.cost(Usage(), self.s.model, base_url=base_url, estimated=self.s.mock)
            if probe.usd is None:
                return probe
            source = probe.source
        return Cost(total, source, estimated=self.s.mock)

    def _write(
        self,
        ts: datetime,
        fingerprint: str,
        attempts: list[Attempt],
        started: float,
        *,
        reply: _Reply | None = None,
        error: RunnerError | None = None,
        interrupted: BaseException | None = None,
    ) -> tuple[dict[str, Any], Usage, Cost, float]:
        """Build this call's ledger line, append it, and count it in the session's stats."""
        from runner.ledger.gitref import spec_ref
        from runner.ledger.store import new_id, utc_timestamp, without_content

        spec, s, pre = self.spec, self.s, self.pre
        assert pre is not None
        content = s.ledger_content
        usage = _sum_usage(attempts)
        cost = self._cost(attempts)
        latency_ms = (time.perf_counter() - started) * 1000
        status = "ok"
        output: dict[str, Any] | None = None
        error_info: dict[str, Any] | None = None
        served = None
        request_id = None
        ttft = None
        if reply is not None:
            c = reply.completion
            served, request_id, ttft = c.model, c.request_id, c.ttft_ms
            output = {"text": c.text, "json": reply.value if spec.output is not None else None}
            first = c.choices[0] if c.choices else None
            if first is not None:
                output["finish_reason"] = first.finish_reason
                if first.tool_calls or first.function_call:
                    output["tool_calls"] = reply.value
            if len(reply.values) > 1:
                output["choices"] = list(reply.values)
        elif error is not None:
            status = "invalid_output" if isinstance(error, OutputInvalid) else "error"
            error_info = {"kind": error.kind, "type": type(error).__name__}
            error_info["message"] = error.message
            http_status = getattr(error, "status", None)
            if http_status is not None:
                error_info["status"] = http_status
            if isinstance(error, OutputInvalid):
                error_info["errors"] = error.errors
            if isinstance(error, OutputError):
                output = {"text": error.text, "json": None}
                request_id = error.request_id
            else:
                request_id = getattr(error, "request_id", None)
        else:
            status = "error"
            kind = "interrupted"
            error_info = {"kind": kind, "type": type(interrupted).__name__}
            error_info["message"] = "the call was interrupted before it finished"
        if request_id is None:
            for a in reversed(attempts):
                if a.request_id:
                    request_id = a.request_id
                    break
        record: dict[str, Any] = {
            "v": LEDGER_VERSION,
            "id": new_id(),
            "ts": utc_timestamp(ts),
            "spec": spec_ref(spec.path, sha256=spec.sha256, name=spec.name),
            "request_sha256": fingerprint,
            "case": self.case,
            "row": self.row,
            "model": s.model,
            "served_model": served,
            "params": dict(spec.params),
            "vars": pre.vars,
            "messages": pre.messages,
            "status": status,
            "output": output,
            "error": error_info,
            "attempts": [a.to_dict() for a in attempts],
            "usage": {**usage.to_dict(), "estimated_prompt": pre.prompt_tokens},
            "cost": cost.to_dict(),
            "latency_ms": round(latency_ms, 1),
            "ttft_ms": None if ttft is None else round(ttft, 1),
            "request_id": request_id,
            "mock": s.mock,
        }
        if not content:
            record = without_content(record)
            if isinstance(error, OutputInvalid):  # its message quotes the reply
                record["error"]["message"] = (
                    f"the reply does not match the output schema ({len(error.errors)} errors)"
                )
        self.session.ledger(s.ledger_path).append(record)
        self.session.stats.add(usage, cost, latency_ms, ok=status == "ok")
        return record, usage, cost, latency_ms


def _sum_usage(attempts: list[Attempt]) -> Usage:
    total = Usage()
    for a in attempts:
        if a.usage:
            total = total + a.usage
    return total
