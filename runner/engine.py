"""One prompt end to end: render -> count -> preflight -> guards -> client under the retry
policy -> output schema -> price -> ledger. Also the Python API (`load`, `run`, `arun`,
`Session`). It never prints: callers get a `Result` or a RunnerError, and one ledger line per call.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING, Any

from . import settings as settings_mod
from .errors import (
    ConfigError,
    OutputError,
    OutputInvalid,
    OutputRefused,
    OutputTruncated,
    RunnerError,
)
from .records import LEDGER_VERSION, Attempt, Completion, Cost, Message, StreamDelta, Usage

if TYPE_CHECKING:
    from .client import ChatClient
    from .ledger import Ledger
    from .policy import Guards
    from .pricing import PriceBook
    from .spec import PromptSpec

__all__ = ["Preflight", "Result", "Session", "SessionStats", "arun", "load", "preflight", "run"]

MOCK_BASE_URL = "http://mock.runner.invalid/v1"


def load(path: str | Path) -> PromptSpec:
    """Load and validate a spec file (SpecError lists every problem)."""
    from .spec import load_spec

    return load_spec(path)


# --- results ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Result:
    """The outcome of one successful call."""

    value: Any  # parsed JSON with an output schema; tool calls for a tool call; else the text
    text: str | None
    usage: Usage  # summed over every attempt that consumed tokens
    cost: Cost
    attempts: tuple[Attempt, ...]
    latency_ms: float
    request_id: str | None
    model: str
    served_model: str | None
    finish_reason: str | None
    ttft_ms: float | None = None
    ledger_id: str | None = None
    mock: bool = False
    choices: tuple[Any, ...] = ()  # the value of every choice when n > 1

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "value": self.value,
            "text": self.text,
            "model": self.model,
            "served_model": self.served_model,
            "finish_reason": self.finish_reason,
            "usage": self.usage.to_dict(),
            "cost": self.cost.to_dict(),
            "attempts": [a.to_dict() for a in self.attempts],
            "latency_ms": round(self.latency_ms, 1),
            "ttft_ms": None if self.ttft_ms is None else round(self.ttft_ms, 1),
            "request_id": self.request_id,
            "ledger_id": self.ledger_id,
            "mock": self.mock,
        }
        if len(self.choices) > 1:
            out["choices"] = list(self.choices)
        return out


@dataclass(frozen=True)
class Preflight:
    """Everything known before sending: the exact request, its tokens and its worst-case cost."""

    model: str
    vars: dict[str, Any]  # after defaults from `inputs` were applied
    messages: list[Message]
    body: dict[str, Any]
    prompt_tokens: int
    max_output_tokens: int | None
    context_window: int | None
    max_cost: Cost

    def to_dict(self) -> dict[str, Any]:
        return {
            "model": self.model,
            "messages": self.messages,
            "prompt_tokens": self.prompt_tokens,
            "max_output_tokens": self.max_output_tokens,
            "context_window": self.context_window,
            "max_cost_usd": None if self.max_cost.usd is None else float(self.max_cost.usd),
            "price_source": self.max_cost.source,
        }


@dataclass
class SessionStats:
    """Usage across the calls of a Session (the original plan's usage tracker)."""

    calls: int = 0
    failures: int = 0
    usage: Usage = field(default_factory=Usage)
    cost_usd: Decimal = Decimal(0)
    unpriced_calls: int = 0  # calls whose cost is unknown: not counted in cost_usd
    latency_ms: float = 0.0

    @property
    def average_tokens(self) -> float:
        return self.usage.total / self.calls if self.calls else 0.0

    @property
    def average_latency_ms(self) -> float:
        return self.latency_ms / self.calls if self.calls else 0.0

    def to_dict(self) -> dict[str, Any]:
        return {
            "calls": self.calls,
            "failures": self.failures,
            "usage": self.usage.to_dict(),
            "average_tokens_per_call": round(self.average_tokens, 1),
            "average_latency_ms": round(self.average_latency_ms, 1),
            "cost_usd": float(self.cost_usd),
            "unpriced_calls": self.unpriced_calls,
        }

    def _add(self, usage: Usage, cost: Cost, latency_ms: float, ok: bool) -> None:
        self.calls += 1
        self.failures += 0 if ok else 1
        self.usage = self.usage + usage
        self.latency_ms += latency_ms
        if cost.usd is None:
            if usage:
                self.unpriced_calls += 1
        else:
            self.cost_usd += cost.usd


# --- the session ------------------------------------------------------------------------------


class Session:
    """Runs specs, sharing clients, rate limiters, breakers, prices and the ledger across calls.

    Use `await session.arun(spec, vars)` inside asyncio, or `session.run(spec, vars)` from
    synchronous code (it keeps one private event loop, so connections are reused).
    """

    def __init__(
        self,
        *,
        ledger: str | Path | None = None,
        mock: bool | None = None,
        model: str | None = None,
        stream: bool | None = None,
        ledger_content: bool | None = None,
        prices: Mapping[str, Mapping[str, Any]] | None = None,
        prices_source: str = "runner.yaml",
        environ: Mapping[str, str] | None = None,
        transport: Any = None,
    ) -> None:
        self._environ = dict(environ) if environ is not None else settings_mod.snapshot_environ()
        flags: dict[str, Any] = {}
        for key, value in (
            ("ledger", ledger),
            ("mock", mock),
            ("model", model),
            ("stream", stream),
            ("ledger_content", ledger_content),
        ):
            if value is not None:
                flags[key] = value
        self._flags = flags
        self._prices = prices
        self._prices_source = prices_source
        self._transport = transport  # tests inject an httpx2 transport here
        self._clients: dict[tuple[Any, ...], ChatClient] = {}
        self._ledgers: dict[Path, Ledger] = {}
        self._guards: Guards | None = None
        self._pricebook: PriceBook | None = None
        self._mock_app: Any = None
        self._runner: asyncio.Runner | None = None
        self._settings: dict[int, tuple[PromptSpec, settings_mod.Settings]] = {}
        self.stats = SessionStats()

    # -- public API --

    def settings_for(self, spec: PromptSpec) -> settings_mod.Settings:
        # Flags and environment are fixed for the session's life, so one resolve per spec.
        found = self._settings.get(id(spec))
        if found is None or found[0] is not spec:
            found = (spec, settings_mod.resolve(self._flags, self._environ, spec))
            self._settings[id(spec)] = found
        return found[1]

    def preflight(self, spec: PromptSpec, vars: Mapping[str, Any] | None = None) -> Preflight:
        """Render and count without sending anything (`runner render`, `exec --dry-run`)."""
        return preflight(spec, vars or {}, self.settings_for(spec), self.pricebook)

    async def arun(
        self,
        spec: PromptSpec,
        vars: Mapping[str, Any] | None = None,
        *,
        case: str | None = None,
        row: str | None = None,
        on_delta: Callable[[StreamDelta], None] | None = None,
    ) -> Result:
        """Run one call; write its ledger line; raise the hierarchy's error if it failed."""
        call = _Call(self, spec, self.settings_for(spec), case=case, row=row, on_delta=on_delta)
        return await call.execute(dict(vars or {}))

    def run(
        self,
        spec: PromptSpec,
        vars: Mapping[str, Any] | None = None,
        *,
        case: str | None = None,
        row: str | None = None,
        on_delta: Callable[[StreamDelta], None] | None = None,
    ) -> Result:
        """Synchronous `arun` on the session's private event loop."""
        if self._runner is None:
            self._runner = asyncio.Runner()
        return self._runner.run(self.arun(spec, vars, case=case, row=row, on_delta=on_delta))

    async def aclose(self) -> None:
        clients, self._clients = list(self._clients.values()), {}
        for client in clients:
            await client.aclose()
        for ledger in self._ledgers.values():
            ledger.close()
        self._ledgers = {}

    def close(self) -> None:
        if self._runner is not None:
            self._runner.run(self.aclose())
            self._runner.close()
            self._runner = None
        else:
            for ledger in self._ledgers.values():
                ledger.close()
            self._ledgers = {}

    async def __aenter__(self) -> Session:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    def __enter__(self) -> Session:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- shared resources --

    @property
    def pricebook(self) -> PriceBook:
        if self._pricebook is None:
            from .pricing import PriceBook

            self._pricebook = PriceBook(self._prices, overrides_source=self._prices_source)
        return self._pricebook

    @property
    def guards(self) -> Guards:
        if self._guards is None:
            from .policy import Guards

            self._guards = Guards()
        return self._guards

    def ledger(self, path: Path) -> Ledger:
        found = self._ledgers.get(path)
        if found is None:
            from .ledger import Ledger

            found = self._ledgers[path] = Ledger(path)
        return found

    def client(self, s: settings_mod.Settings, spec: PromptSpec) -> ChatClient:
        from .client import ChatClient

        if s.mock:
            key: tuple[Any, ...] = ("mock", tuple(sorted(s.headers.items())))
        else:
            key = (
                s.base_url,
                s.api_key,
                s.organization,
                s.project,
                tuple(sorted(s.headers.items())),
            )
        found = self._clients.get(key)
        if found is not None:
            return found
        pool = max(spec.rate.concurrency or 1, 8)
        if s.mock:
            if self._mock_app is None:
                from .mockserver import create_app

                self._mock_app = create_app()
            found = ChatClient(
                base_url=MOCK_BASE_URL,
                api_key=None,
                headers=s.headers,
                asgi_app=self._mock_app,
                max_connections=pool,
                environ={},
            )
        else:
            if not s.api_key and s.is_openai:
                raise ConfigError(
                    f"no API key: set {s.api_key_env} (or name another variable in the spec's "
                    "provider.api_key_env), or run with --mock (RUNNER_MOCK=1) to use the "
                    "built-in mock server"
                )
            found = ChatClient(
                base_url=s.base_url,
                api_key=s.api_key,
                organization=s.organization,
                project=s.project,
                headers=s.headers,
                max_connections=pool,
                transport=self._transport,
                environ={},
            )
        self._clients[key] = found
        return found


# --- preflight --------------------------------------------------------------------------------


def _max_output_tokens(params: Mapping[str, Any]) -> int | None:
    value = params.get("max_completion_tokens") or params.get("max_tokens")
    return int(value) if value else None


def preflight(
    spec: PromptSpec,
    vars: Mapping[str, Any],
    s: settings_mod.Settings,
    pricebook: PriceBook,
) -> Preflight:
    """Render the request exactly as it will be sent, count it, and bound its cost."""
    from .client import build_body, response_format_for
    from .tokens import count_messages

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
    max_out = _max_output_tokens(spec.params)
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


# --- one call ---------------------------------------------------------------------------------


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


class _Call:
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
        from .ledger import request_fingerprint
        from .policy import RetryPolicy, call_with_retry

        spec, s = self.spec, self.s
        # User errors (bad vars, a prompt that cannot fit, no key) stop here: no call, no line.
        self.pre = pre = self.session.preflight(spec, vars)
        client = self.session.client(s, spec)
        fingerprint = request_fingerprint(pre.body)
        policy = RetryPolicy(
            attempts=spec.retry.attempts,
            initial=spec.retry.initial,
            max=spec.retry.max,
            multiplier=spec.retry.multiplier,
            jitter=spec.retry.jitter,
            on=spec.retry.on,
            max_retry_after=spec.retry.max_retry_after,
        )
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
                value, values = self._check(completion)
            except OutputInvalid as exc:
                if spec.output is not None and spec.output.repair:
                    state["body"] = _repair_body(pre.body, completion, exc)
                raise
            return _Reply(completion, value, values, waited)

        started = time.perf_counter()
        ts = datetime.now(UTC)
        try:
            reply, attempts = await call_with_retry(attempt, policy, deadline=spec.deadline)
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

    # -- output checks --

    def _check(self, completion: Completion) -> tuple[Any, tuple[Any, ...]]:
        """Turn every choice into its value, or raise the OutputError that describes it."""
        values = tuple(self._choice_value(completion, i) for i in range(len(completion.choices)))
        if not values:
            raise OutputInvalid(
                "the reply has no choices",
                usage=completion.usage,
                request_id=completion.request_id,
            )
        return values[0], values

    def _choice_value(self, completion: Completion, index: int) -> Any:
        choice = completion.choices[index]
        where = f"choice {index}: " if len(completion.choices) > 1 else ""
        kw: dict[str, Any] = {
            "text": choice.text,
            "usage": completion.usage,
            "request_id": completion.request_id,
        }
        if choice.refusal:
            raise OutputRefused(
                f"{where}the model refused: {choice.refusal}", refusal=choice.refusal, **kw
            )
        calls = choice.tool_calls or (
            ({"function": choice.function_call},) if choice.function_call else ()
        )
        output = self.spec.output
        if choice.finish_reason == "length" and (calls or output is not None):
            # Cut JSON cannot be used; cut prose can, so text replies only report it.
            limit = _max_output_tokens(self.spec.params)
            raise OutputTruncated(
                f"{where}the reply stopped at the output token limit"
                + (f" (max_tokens {limit})" if limit else "")
                + " before its JSON was complete; raise max_tokens or ask for less",
                **kw,
            )
        if calls:
            return [_tool_call_value(call) for call in calls]
        if output is None:
            return choice.text
        text = choice.text or ""
        try:
            value = json.loads(text)
        except json.JSONDecodeError as exc:
            raise OutputInvalid(
                f"{where}the reply is not JSON ({exc.msg} at char {exc.pos})",
                errors=[f"/: not JSON: {exc.msg}"],
                **kw,
            ) from None
        from .schemas import compile_validator

        validator = compile_validator(output.schema)
        if not validator.is_valid(value):
            issues = [str(i) for i in validator.issues(value)]
            raise OutputInvalid(
                f"{where}the reply does not match the output schema: " + "; ".join(issues[:5]),
                errors=issues,
                **kw,
            )
        return value

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
        from .gitinfo import spec_ref
        from .ledger import new_id, utc_timestamp, without_content

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
        self.session.stats._add(usage, cost, latency_ms, ok=status == "ok")
        return record, usage, cost, latency_ms


def _sum_usage(attempts: list[Attempt]) -> Usage:
    total = Usage()
    for a in attempts:
        if a.usage:
            total = total + a.usage
    return total


def _tool_call_value(call: Mapping[str, Any]) -> dict[str, Any]:
    function = call.get("function") or {}
    raw = function.get("arguments") or ""
    try:
        arguments: Any = json.loads(raw) if raw else {}
    except ValueError:
        arguments = raw  # passed through as the model wrote it
    out: dict[str, Any] = {"name": function.get("name"), "arguments": arguments}
    if call.get("id"):
        out["id"] = call["id"]
    return out


def _repair_body(
    body: Mapping[str, Any], completion: Completion, exc: OutputInvalid
) -> dict[str, Any]:
    """Re-ask the model with its invalid answer and the validation errors (as instructor does)."""
    errors = "\n".join(f"- {e}" for e in exc.errors[:20])
    messages = list(body["messages"])
    messages.append({"role": "assistant", "content": completion.text or ""})
    messages.append(
        {
            "role": "user",
            "content": "Your reply did not match the required JSON schema:\n"
            f"{errors}\nReply again with only the corrected JSON.",
        }
    )
    return {**body, "messages": messages}


# --- module-level convenience -----------------------------------------------------------------


def _as_spec(spec: PromptSpec | str | Path) -> PromptSpec:
    if isinstance(spec, str | Path):
        return load(spec)
    return spec


async def arun(spec: PromptSpec | str | Path, /, **vars: Any) -> Result:
    """Run a spec once with these variables (a fresh Session; its ledger is the default one)."""
    async with Session() as session:
        return await session.arun(_as_spec(spec), vars)


def run(spec: PromptSpec | str | Path, /, **vars: Any) -> Result:
    """Synchronous `arun`."""
    with Session() as session:
        return session.run(_as_spec(spec), vars)
