"""What the Session hands a call: `CallParts`, everything resolved (settings, the preflight, the
answering backend, the endpoint's guard, the ledger, prices, an optional spending budget),
`ChatBackend`, what answers a call (the HTTP client or a replay), and `AttemptBudget`, what a
caller with a cost cap (a data-set run) hands in so that each attempt reserves its worst case
before it is sent. A call needs nothing else and never reaches back.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from runner.engine.results import Preflight
    from runner.ledger.line import LedgerRecord, SpecRef
    from runner.ledger.store import Ledger
    from runner.policy.guards import Guard
    from runner.pricing import PriceBook
    from runner.providers import ModelClient
    from runner.settings import Settings
    from runner.spec.model import PromptSpec
    from runner.types import Completion, Cost, StreamDelta, Usage

__all__ = ["AttemptBudget", "CallParts", "ChatBackend", "Route"]


class ChatBackend(Protocol):
    """What answers a call: runner.providers.ModelClient, or runner.ledger.replay.ReplayClient."""

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


class AttemptBudget(Protocol):
    """A cost cap that every attempt of a call must fit in (runner.engine.budget's CostBudget
    hands one per row). Attempts of one call run one after the other: `reserve` is asked before each
    attempt is sent (and before it waits for the rate limiter), `settle` after it ended."""

    def reserve(self, attempt: int, worst_usd: Decimal | None) -> None:
        """Set `worst_usd` aside for this attempt (None: its worst case is unknown), or raise
        runner.errors.BudgetExceeded: the attempt is then not sent and the call ends with it."""
        ...

    def settle(self, attempt: int, cost_usd: Decimal | None) -> None:
        """What the attempt reserved really cost (None: unknown, the reservation stays)."""
        ...


@dataclass  # built on every call: a frozen __init__ costs about seven times as much
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
    budget: AttemptBudget | None = None
    # The output mode this endpoint turned out to need (with why: "refused" or "ignored"),
    # learned by an earlier call of the run under `output.mode: auto`; and where to tell a
    # new one. Later calls start there: a data set falls back once, not once per row.
    learned_mode: tuple[str, str] | None = None
    learn_mode: Callable[[str, str], None] | None = None
    # The spec's place in git as its lines record it (runner.ledger.gitref), found once per
    # spec by the Session; a copy goes into each line.
    spec_ref: SpecRef | None = None


@dataclass
class Route:
    """A spec's ledger, output-mode memory, client and guard, as a Session's calls of it use
    them (found once per spec; the client and guard when a call is first sent)."""

    spec: PromptSpec
    ledger: Ledger
    endpoint: tuple[str, str, str]
    learn: Callable[[str, str], None]
    sender: tuple[ModelClient, Guard] | None = None
    ref: SpecRef | None = None  # the spec's place in git, on its first call
