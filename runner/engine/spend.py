"""The money side of one call under a caller's cost cap (runner.engine.parts.AttemptBudget):
each attempt reserves its own worst case before it is sent — its prompt as sent (a re-ask of
invalid output or an output-mode fall back sends more) plus all of max_tokens — and settles at
what it really cost once it ended. An attempt the budget refuses is not sent. No I/O.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from decimal import Decimal
from typing import Any, TypeVar

from runner.engine.parts import AttemptBudget, CallParts
from runner.engine.preflight import worst_cost
from runner.engine.usage import UsageCheck
from runner.errors import BudgetExceeded, CircuitOpen, HTTPStatusFailure
from runner.types import Usage

__all__ = ["Spending"]

T = TypeVar("T")


class Spending:
    """One call's attempts against `budget`. `refused` is the number of the attempt the budget
    refused (it was never sent), once that happened."""

    def __init__(self, parts: CallParts, budget: AttemptBudget, check: UsageCheck) -> None:
        self.parts = parts
        self.budget = budget
        self.check = check
        self.refused: int | None = None

    async def attempt(
        self,
        number: int,
        body: Mapping[str, Any],
        sent: Callable[[], int],
        run: Callable[[int], Awaitable[T]],
        usage_of: Callable[[T], Usage | None],
    ) -> T:
        """Reserve attempt `number`'s worst case, run it, settle at its cost. `sent()` is the
        number of the last attempt whose request went out."""
        try:
            self.budget.reserve(number, self.worst_usd(body))
        except BudgetExceeded:
            self.refused = number
            raise
        try:
            result = await run(number)
        except BaseException as exc:
            self.budget.settle(number, self.spent_usd(exc, sent() == number))
            raise
        self.budget.settle(number, self.price(usage_of(result)))
        return result

    def worst_usd(self, body: Mapping[str, Any]) -> Decimal | None:
        parts = self.parts
        prompt = self.check.prompt_count(body)
        return worst_cost(
            parts.spec, parts.settings, parts.pricebook, prompt, parts.pre.context_window
        ).usd

    def price(self, usage: Usage | None) -> Decimal | None:
        """What `usage` costs; None when unknown (no usage, implausible usage, no price)."""
        if usage is None or usage.implausible:
            return None
        settings = self.parts.settings
        return self.parts.pricebook.cost(
            usage,
            settings.model,
            base_url=None if settings.mock else settings.base_url,
            estimated=settings.mock,
        ).usd

    def spent_usd(self, exc: BaseException, went_out: bool) -> Decimal | None:
        """What a failed attempt cost: its usage when known; nothing when its request never
        went out or the server answered with an error status; else unknown."""
        usage = getattr(exc, "usage", None)
        if isinstance(usage, Usage):
            return self.price(usage)
        if not went_out or isinstance(exc, HTTPStatusFailure | CircuitOpen):
            return Decimal(0)
        return None
