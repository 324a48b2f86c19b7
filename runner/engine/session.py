"""The Python API: `load`, `run`, `arun` and `Session`, which shares clients, rate limiters,
circuit breakers, prices and ledgers across calls. The Session resolves everything one call
needs and hands it to runner.engine.call; it never prints and never builds a request itself.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from runner import settings as settings_mod
from runner.engine.call import Call
from runner.engine.parts import CallParts, Route
from runner.engine.preflight import preflight, render_request
from runner.engine.results import Preflight, Result, SessionStats
from runner.errors import ConfigError
from runner.interrupts import new_event_loop
from runner.ledger.fingerprint import Fingerprinter
from runner.ledger.gitref import spec_ref
from runner.providers import ModelClient, wire_api
from runner.types import StreamDelta

if TYPE_CHECKING:
    from runner.engine.parts import AttemptBudget, ChatBackend
    from runner.ledger.cache import CacheSource
    from runner.ledger.line import LedgerRecord
    from runner.ledger.replay import ReplaySource
    from runner.ledger.store import Ledger
    from runner.policy.guards import Guard, Guards
    from runner.pricing import PriceBook
    from runner.spec.model import PromptSpec
    from runner.types import Attempt, Cost, Usage

__all__ = ["Preflight", "Result", "Session", "SessionStats", "arun", "load", "run"]

T = TypeVar("T")
MOCK_BASE_URL = "http://mock.runner.invalid/v1"
# Request parts that depend on the spec alone (never on variables or the attempt).


def load(path: str | Path) -> PromptSpec:
    """Load and validate a spec file (SpecError lists every problem)."""
    from runner.spec.load import load_spec

    return load_spec(path)


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
        base_url: str | None = None,
        prices: Mapping[str, Mapping[str, Any]] | None = None,
        prices_source: str = "runner.yaml",
        environ: Mapping[str, str] | None = None,
        transport: Any = None,
        replay: ReplaySource | None = None,
        cache: CacheSource | None = None,
    ) -> None:
        self._environ = dict(environ) if environ is not None else settings_mod.snapshot_environ()
        flags: dict[str, Any] = {}
        for key, value in (
            ("ledger", ledger),
            ("mock", mock),
            ("model", model),
            ("stream", stream),
            ("ledger_content", ledger_content),
            ("base_url", base_url),
        ):
            if value is not None:
                flags[key] = value
        self._flags = flags
        self._prices = prices
        self._prices_source = prices_source
        self._transport = transport  # tests inject an httpx2 transport here
        # `runner test --replay`: recorded requests are answered from this ledger (no network,
        # no limiter); the others fail before sending, or are sent when it records missing ones.
        self._replay = replay
        # `--cache`: a request with an ok line in this ledger is answered from it (no key, no
        # network), marked `replayed: {from, id, reason: cache}`.
        self._cache = cache
        self._warned_sample = False
        self._clients: dict[tuple[Any, ...], ModelClient] = {}
        # The output mode each endpoint (base URL, model, wire API) turned out to need under
        # `output.mode: auto`, and why: learned once, used by every later call of the session.
        self._modes: dict[tuple[str, str, str], tuple[str, str]] = {}
        self._ledgers: dict[Path, Ledger] = {}
        self._guards: Guards | None = None
        self._pricebook: PriceBook | None = None
        self._mock_app: Any = None
        self._runner: asyncio.Runner | None = None
        self._settings: dict[int, tuple[PromptSpec, settings_mod.Settings]] = {}
        self._fingerprints: dict[int, tuple[PromptSpec, Fingerprinter]] = {}
        self._routes: dict[int, Route] = {}
        self.stats = SessionStats()

    # -- public API --

    def settings_for(self, spec: PromptSpec) -> settings_mod.Settings:
        # Flags and environment are fixed for the session's life, so one resolve per spec.
        found = self._settings.get(id(spec))
        if found is None or found[0] is not spec:
            found = (spec, settings_mod.resolve(self._flags, self._environ, spec))
            self._settings[id(spec)] = found
        return found[1]

    def _fingerprint(self, spec: PromptSpec, body: Mapping[str, Any]) -> str:
        """The request fingerprint of one of this spec's bodies, by the spec's own
        Fingerprinter: what its calls share (model, parameters, output format) is written
        once, not on every call."""
        found = self._fingerprints.get(id(spec))
        if found is None or found[0] is not spec:
            fingerprinter = Fingerprinter(wire_api(spec.provider.api).static_keys)
            found = self._fingerprints[id(spec)] = (spec, fingerprinter)
        return found[1](body)

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
        on_record: Callable[[LedgerRecord], None] | None = None,
        on_retry: Callable[[Attempt, BaseException, float], None] | None = None,
        budget: AttemptBudget | None = None,
    ) -> Result:
        """Run one call; write its ledger line (also handed to `on_record`); raise the
        hierarchy's error if it failed. `on_retry(failed attempt, its error, wait in seconds)`
        is called before each wait for another attempt (the CLI says what it waits for).
        `budget`, when given, is asked to reserve each attempt's worst case before it is sent
        (runner.engine.budget's CostBudget); an attempt it refuses ends the call with
        BudgetExceeded."""
        parts = self.call_parts(spec, vars, budget=budget)
        call = Call(
            parts, case=case, row=row, on_delta=on_delta, on_record=on_record, on_retry=on_retry
        )
        return await call.execute()

    def request_fingerprint(self, spec: PromptSpec, vars: Mapping[str, Any] | None = None) -> str:
        """The `request_sha256` a call with these variables would be recorded with (rendered,
        not counted; nothing sent). InputsInvalid or TemplateError when it cannot render."""
        settings = self.settings_for(spec)
        _, _, body = render_request(spec, vars or {}, settings)
        return self._fingerprint(spec, body)

    def call_parts(
        self,
        spec: PromptSpec,
        vars: Mapping[str, Any] | None = None,
        *,
        budget: AttemptBudget | None = None,
    ) -> CallParts:
        """Everything one call needs, resolved: settings, the preflight (user errors stop here:
        bad variables, a prompt that cannot fit, no key — no call, no line), the client, the
        endpoint's guard, the ledger (checked writable: LedgerUnavailable, nothing sent) and
        prices."""
        settings = self.settings_for(spec)
        pre = preflight(spec, vars or {}, settings, self.pricebook)
        fingerprint = self._fingerprint(spec, pre.body)
        client: ChatBackend | None = None
        if self._replay is not None:
            client = _replayed(self._replay, fingerprint, pre)
            if client is not None:
                guard = self.guards.for_endpoint("replay:" + self._replay.path, settings.model)
        elif self._cache is not None:
            client = self._cache.lookup(fingerprint, mock=settings.mock)
            if client is not None:
                guard = self.guards.for_endpoint("cache:" + self._cache.path, settings.model)
                self._warn_one_sample(spec)
        route = self._routes.get(id(spec))
        if route is None or route.spec is not spec:
            route = self._routes[id(spec)] = self._route(spec, settings, pre.api)
        if client is None:
            if route.sender is None:  # made on first use: a replayed run needs no key
                route.sender = self._sender(spec, settings)
            client, guard = route.sender
        if route.ref is None:  # a relative path is taken from the directory of the first call
            route.ref = spec_ref(spec.path, sha256=spec.sha256, name=spec.name)
        ledger = route.ledger
        ledger.check_writable()  # a line that cannot be written is found before paying for it
        return CallParts(
            spec=spec,
            settings=settings,
            pre=pre,
            fingerprint=fingerprint,
            client=client,
            guard=guard,
            ledger=ledger,
            pricebook=self.pricebook,
            on_recorded=self._count,
            budget=budget,
            learned_mode=self._modes.get(route.endpoint),
            learn_mode=route.learn,
            spec_ref=route.ref,
        )

    def _route(self, spec: PromptSpec, settings: settings_mod.Settings, api: str) -> Route:
        """Where this spec's calls go: the same on every call of the session (its settings are
        resolved once), so found once per spec rather than per call."""
        endpoint = ("mock" if settings.mock else settings.base_url, settings.model, api)

        def learn(mode: str, why: str) -> None:
            self._modes[endpoint] = (mode, why)

        return Route(spec, self.ledger(settings.ledger_path), endpoint, learn)

    def _sender(
        self, spec: PromptSpec, settings: settings_mod.Settings
    ) -> tuple[ModelClient, Guard]:
        """The client that sends this spec's calls, and the guard of its endpoint."""
        # rpm and tpm are the account's limits: the in-process mock is no account, and pacing
        # it would only slow mock runs and tests (300 rows at rpm 500: 36 s). The concurrency
        # bound and the breaker still apply.
        client = self.client(settings, spec)
        guard = self.guards.for_endpoint(
            "mock" if settings.mock else settings.base_url,
            settings.model,
            rpm=None if settings.mock else spec.rate.rpm,
            tpm=None if settings.mock else spec.rate.tpm,
            concurrency=spec.rate.concurrency,
            failures=spec.breaker.failures,
            cooldown=spec.breaker.cooldown,
        )
        return client, guard

    def _count(self, record: LedgerRecord, usage: Usage, cost: Cost, latency_ms: float) -> None:
        self.stats.add(
            usage, cost, latency_ms, ok=record["status"] == "ok", replayed="replayed" in record
        )

    def _warn_one_sample(self, spec: PromptSpec) -> None:
        """Once per session: a cached answer to a sampled request (temperature above 0, or
        not set: the server's default samples) is one draw reused, not a fresh one."""
        temperature = spec.params.get("temperature")
        if self._warned_sample or (isinstance(temperature, int | float) and temperature <= 0):
            return
        self._warned_sample = True
        import warnings

        from runner.errors import RunnerWarning

        said = "not set (the server samples)" if temperature is None else f"{temperature:g}"
        warnings.warn(
            f"--cache: {spec.name} runs at temperature {said}: each cached answer is one "
            "recorded sample reused, not a new one (--no-cache, or temperature 0, to sample)",
            RunnerWarning,
            stacklevel=3,
        )

    def run(
        self,
        spec: PromptSpec,
        vars: Mapping[str, Any] | None = None,
        *,
        case: str | None = None,
        row: str | None = None,
        on_delta: Callable[[StreamDelta], None] | None = None,
        on_retry: Callable[[Attempt, BaseException, float], None] | None = None,
        on_record: Callable[[LedgerRecord], None] | None = None,
    ) -> Result:
        """Synchronous `arun` on the session's private event loop."""
        return self.run_sync(
            self.arun(
                spec,
                vars,
                case=case,
                row=row,
                on_delta=on_delta,
                on_retry=on_retry,
                on_record=on_record,
            )
        )

    def run_sync(self, coroutine: Coroutine[Any, Any, T]) -> T:
        """Run a coroutine on the session's private event loop (where its clients live), from
        synchronous code: what `run` does for one call, and runner.dataset for many."""
        if self._runner is None:
            self._runner = asyncio.Runner(loop_factory=new_event_loop)
        return self._runner.run(coroutine)

    async def aclose(self) -> None:
        self._routes = {}
        clients, self._clients = list(self._clients.values()), {}
        for client in clients:
            await client.aclose()
        for ledger in self._ledgers.values():
            ledger.close()
        self._ledgers = {}

    def close(self) -> None:
        self._routes = {}
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
            from runner.pricing import PriceBook

            self._pricebook = PriceBook(self._prices, overrides_source=self._prices_source)
        return self._pricebook

    @property
    def guards(self) -> Guards:
        if self._guards is None:
            from runner.policy.guards import Guards

            self._guards = Guards()
        return self._guards

    def ledger(self, path: Path) -> Ledger:
        found = self._ledgers.get(path)
        if found is None:
            from runner.ledger.store import Ledger

            found = self._ledgers[path] = Ledger(path)
        return found

    def client(self, settings: settings_mod.Settings, spec: PromptSpec) -> ModelClient:
        wire = wire_api(spec.provider.api)
        if settings.mock:
            key: tuple[Any, ...] = ("mock", wire, tuple(sorted(settings.headers.items())))
        else:
            key = (
                wire,
                settings.base_url,
                settings.api_key,
                settings.organization,
                settings.project,
                tuple(sorted(settings.headers.items())),
            )
        found = self._clients.get(key)
        if found is not None:
            return found
        pool = max(spec.rate.concurrency or 1, 8)
        if settings.mock:
            if self._mock_app is None:
                from runner.mock import create_app

                self._mock_app = create_app()
            found = ModelClient(
                wire,
                base_url=MOCK_BASE_URL,
                api_key=None,
                headers=settings.headers,
                asgi_app=self._mock_app,
                max_connections=pool,
                environ={},
            )
        else:
            if not settings.api_key and settings.is_openai:
                raise ConfigError(
                    f"no API key: set {settings.api_key_env} (or name another variable in the "
                    "spec's provider.api_key_env), or run with --mock (RUNNER_MOCK=1) to use the "
                    "built-in mock server"
                )
            found = ModelClient(
                wire,
                base_url=settings.base_url,
                api_key=settings.api_key,
                organization=settings.organization,
                project=settings.project,
                headers=settings.headers,
                max_connections=pool,
                transport=self._transport,
                environ={},
            )
        self._clients[key] = found
        return found


def _replayed(replay: ReplaySource, fingerprint: str, pre: Preflight) -> ChatBackend | None:
    """The client that answers this request from the replay ledger: its k-th call in the run
    gets its k-th recorded answer. None when it is to be sent and recorded (--record-missing);
    a request it cannot answer otherwise raises NotRecorded (nothing sent, no line)."""
    index = replay.claim(fingerprint)
    if replay.can_answer(fingerprint, index):
        return replay.replay_client(fingerprint, index)
    if replay.record_missing:
        return None
    params = {"model": pre.model, **(pre.request.params if pre.request is not None else {})}
    raise replay.answer_error(fingerprint, pre.messages, params, index=index)


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
