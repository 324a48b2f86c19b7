"""What the Session hands a call: `CallParts`, everything resolved (settings, the preflight, the
answering backend, the endpoint's guard, the ledger, prices), and `ChatBackend`, what answers a
call (the HTTP client or a replay). A call needs nothing else and never reaches back.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from runner.engine.results import Preflight
    from runner.ledger.line import LedgerRecord
    from runner.ledger.store import Ledger
    from runner.policy.guards import Guard
    from runner.pricing import PriceBook
    from runner.settings import Settings
    from runner.spec.model import PromptSpec
    from runner.types import Completion, Cost, StreamDelta, Usage

__all__ = ["CallParts", "ChatBackend"]


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
