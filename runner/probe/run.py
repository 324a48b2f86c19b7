"""A probe, in order: GET /models (which also finds whether the server answers at all, and picks
a model when none is named), /files and /batches; then the model calls, one spec each, through
the Session (so each is one request and one ledger line, with its cost, whether it succeeds or
not); then the GET that asks about a model that cannot exist. `planned_requests` lists the
same requests without sending any (`--dry-run`). It never prints: `on_step` hears of each
request before it goes.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING

from runner.engine.results import Result
from runner.engine.session import MOCK_BASE_URL
from runner.errors import HTTPStatusFailure, OutputError, ProviderError
from runner.probe.findings import CAPABILITIES, PlannedRequest, ProbeReport
from runner.probe.specs import DEFAULT_MODEL, JSON_TOKENS, UNKNOWN_MODEL, probe_specs
from runner.probe.suggest import suggestions
from runner.probe.verdicts import (
    Outcome,
    error_shape_finding,
    listing_finding,
    n_finding,
    output_finding,
    rate_limit_finding,
    responses_finding,
    stream_finding,
    tools_finding,
)
from runner.providers import wire_api
from runner.providers.probe import BATCHES, FILES, MODELS, Listing, get_listing, model_path
from runner.redact import redact_url

if TYPE_CHECKING:
    from runner.engine.session import Session
    from runner.spec.model import PromptSpec

__all__ = ["OnStep", "planned_requests", "run_probe"]

# Told of each request before it is sent: the capability and what is sent, in words.
OnStep = Callable[[str, str], None]
# The GETs, by capability, in the order they are sent (the last one after the model calls).
_LISTINGS = {"models": MODELS, "files": FILES, "batches": BATCHES}
# The model calls whose warnings are the point of the probe (one choice for n = 2; a model
# that cannot exist), not news for the user.
_EXPECTED_WARNINGS = ("n", "error_shape")


def _sent(api: str) -> dict[str, str]:
    """What each capability's requests are, in words, below the base URL."""
    path = wire_api(api).capabilities.path
    return {
        "json_schema": f"POST {path}: a strict schema, output.mode json_schema",
        "json_object": f"POST {path}: output.mode json_object",
        "stream_usage": f"POST {path}: streamed, usage asked for",
        "n": f"POST {path}: n 2" if wire_api(api).capabilities.choices else "nothing",
        "tools": f"POST {path}: one tool, a call required",
        "responses": f"POST {wire_api('responses').capabilities.path}: a short request",
        "files": f"GET {FILES}",
        "batches": f"GET {BATCHES}",
        "models": f"GET {MODELS}",
        "error_shape": f"POST {path}: model {UNKNOWN_MODEL}; GET {model_path(UNKNOWN_MODEL)}",
        "rate_limit_headers": "(every reply above)",
    }


async def run_probe(
    session: Session, *, model: str | None, api: str, on_step: OnStep | None = None
) -> ProbeReport:
    """Probe the Session's server: `model` (None: the first the server lists, or
    DEFAULT_MODEL on OpenAI's API) on wire `api`. A server that cannot be reached at all
    raises (ConnectFailed, ReadTimedOut) before anything is recorded; ConfigError without a
    key for OpenAI's API; KeyboardInterrupt leaves the lines of the calls sent."""
    sent = _sent(api)

    def step(capability: str, what: str | None = None) -> None:
        if on_step is not None:
            on_step(capability, what or sent[capability])

    first = probe_specs(model or DEFAULT_MODEL, api)["responses"]
    settings = session.settings_for(first)
    client = session.client(settings, first)
    listings: dict[str, Listing] = {}
    step("models", f"GET {MODELS}")
    listings["models"] = await get_listing(client, MODELS)
    chosen = model or _listed_model(
        listings["models"], openai=settings.is_openai and not settings.mock
    )
    for capability in ("files", "batches"):
        step(capability)
        listings[capability] = await get_listing(client, _LISTINGS[capability])
    outcomes: dict[str, Outcome] = {}
    for capability, spec in probe_specs(chosen, api).items():
        step(capability, sent[capability].split(";")[0])
        with _quiet(capability in _EXPECTED_WARNINGS):
            outcomes[capability] = await _call(session, spec)
    unknown_path = model_path(UNKNOWN_MODEL)
    step("error_shape", f"GET {unknown_path}")
    unknown = await get_listing(client, unknown_path)

    headers, replies = _rate_headers([*listings.values(), unknown], outcomes.values())
    findings = {
        "json_schema": output_finding(
            "json_schema", outcomes["json_schema"], sent["json_schema"], JSON_TOKENS
        ),
        "json_object": output_finding(
            "json_object", outcomes["json_object"], sent["json_object"], JSON_TOKENS
        ),
        "stream_usage": stream_finding(outcomes["stream_usage"], sent["stream_usage"]),
        "n": n_finding(outcomes.get("n"), sent["n"]),
        "tools": tools_finding(outcomes["tools"], sent["tools"]),
        "responses": responses_finding(outcomes["responses"], sent["responses"]),
        "files": listing_finding("files", listings["files"], sent["files"], "file(s)"),
        "batches": listing_finding("batches", listings["batches"], sent["batches"], "batch(es)"),
        "models": listing_finding(
            "models", listings["models"], sent["models"], "model(s)", model=chosen
        ),
        "error_shape": error_shape_finding(outcomes["error_shape"], unknown, sent["error_shape"]),
        "rate_limit_headers": rate_limit_finding(headers, replies, sent["rate_limit_headers"]),
    }
    ordered = tuple(findings[c] for c in CAPABILITIES)
    return ProbeReport(
        base_url=redact_url(client.base_url),
        model=chosen,
        api=api,
        findings=ordered,
        suggestions=tuple(suggestions({f.capability: f.verdict for f in ordered}, api=api)),
    )


def planned_requests(session: Session, *, model: str | None, api: str) -> list[PlannedRequest]:
    """The requests a probe would send, in order, with the exact body of each model call;
    nothing is sent, no key is needed, no line is written. Without `model`, DEFAULT_MODEL
    stands for the model the server would be asked to list."""
    specs = probe_specs(model or DEFAULT_MODEL, api)
    settings = session.settings_for(specs["responses"])
    base = redact_url(MOCK_BASE_URL if settings.mock else settings.base_url)
    planned = [PlannedRequest(c, "GET", f"{base}{path}") for c, path in _LISTINGS.items()]
    for capability, spec in specs.items():
        with _quiet(True):  # the model that cannot exist is counted with a warning
            body = session.preflight(spec).body
        path = wire_api(spec.provider.api).capabilities.path
        planned.append(PlannedRequest(capability, "POST", f"{base}{path}", body))
    planned.append(PlannedRequest("error_shape", "GET", f"{base}{model_path(UNKNOWN_MODEL)}"))
    return planned


async def _call(session: Session, spec: PromptSpec) -> Outcome:
    """One model call; its failure is its outcome (the engine has written its line). Errors
    that stop before sending (a ledger that cannot be written) are raised."""
    try:
        return await session.arun(spec)
    except (ProviderError, OutputError) as exc:
        return exc


@contextmanager
def _quiet(quiet: bool) -> Iterator[None]:
    if not quiet:
        yield
        return
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        yield


def _listed_model(listing: Listing, *, openai: bool) -> str:
    """The model to probe when none is named: the first the server lists (not on OpenAI's
    API, which lists every model it has), else DEFAULT_MODEL."""
    if openai or not listing.ok or not listing.ids:
        return DEFAULT_MODEL
    return listing.ids[0]


def _rate_headers(listings: list[Listing], outcomes: Iterable[Outcome]) -> tuple[set[str], int]:
    """The x-ratelimit-* header names of every reply, and how many replies there were."""
    names: set[str] = set()
    replies = len(listings)
    for listing in listings:
        names.update(listing.rate_headers)
    for outcome in outcomes:
        if isinstance(outcome, HTTPStatusFailure):
            names.update(outcome.headers)
        elif isinstance(outcome, Result):
            names.update(outcome.rate_headers)
        elif not isinstance(outcome, OutputError):
            continue  # no reply: no connection, or a stream that broke
        replies += 1
    return {n for n in names if n.startswith("x-ratelimit-")}, replies
