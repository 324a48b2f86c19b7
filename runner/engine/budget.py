"""The cost cap of many calls of one spec (a data-set run, a batch's rows rerun live). A row
starts only while the cost spent plus everything set aside for the calls in flight plus this
row's worst case stays within the cap; then each attempt of its call (a retry, a re-ask of
invalid output, an output-mode fall back) sets aside its own worst case before it is sent,
through the engine's AttemptBudget hook, and an attempt that does not fit ends its call with
BudgetExceeded. So the cap holds with retries, at any concurrency. A RowGate for
runner.engine.loop.run_items; it never prints.
"""

from __future__ import annotations

from decimal import Decimal
from typing import TYPE_CHECKING

from runner.engine.loop import ITEM_ERRORS, Item, ItemResult
from runner.errors import BudgetExceeded, ConfigError, RunnerError

if TYPE_CHECKING:
    from runner.engine.session import Session
    from runner.spec.model import PromptSpec

__all__ = ["CostBudget"]

_ADMITTED = 0  # the attempt number under which a row's admission holds its first worst case


class CostBudget:
    """Admits rows, and then each attempt of their calls, while
    `spent + set aside for the calls in flight + this attempt's worst case <= limit`."""

    def __init__(self, session: Session, spec: PromptSpec, limit: Decimal) -> None:
        self.limit = limit
        self.spent = Decimal(0)
        self.stopped = False  # True once a row or an attempt was refused
        self._session = session
        self._spec = spec
        # Row key -> attempt number -> what is set aside for it: the worst case until the
        # attempt ended, then what it really cost (when known).
        self._held: dict[str, dict[int, Decimal]] = {}

    @property
    def in_flight(self) -> Decimal:
        return sum((sum(h.values(), Decimal(0)) for h in self._held.values()), Decimal(0))

    def admit(self, item: Item) -> RunnerError | None:
        try:
            pre = self._session.preflight(self._spec, item.vars)
        except ITEM_ERRORS:
            return None  # the row fails on its own, before anything is sent
        worst = pre.max_cost.usd
        if worst is None:
            raise ConfigError(
                f"a budget of ${self.limit} is set, but the worst-case cost of a call of "
                f"{pre.model} is unknown ({pre.max_cost.source}): set params.max_tokens in the "
                "spec, or a price for the model in runner.yaml"
            )
        if self.spent + self.in_flight + worst > self.limit:
            self.stopped = True
            return BudgetExceeded(
                f"not run: the budget of ${self.limit} would be passed (spent ${self.spent:.6f}, "
                f"set aside for the calls in flight ${self.in_flight:.6f}, this row up to "
                f"${worst:.6f})"
            )
        self._held[item.key] = {_ADMITTED: worst}
        return None

    def attempt_budget(self, item: Item) -> _RowBudget:
        return _RowBudget(self, item.key)

    def release(self, item: Item, result: ItemResult) -> None:
        held = self._held.pop(item.key, {})
        if result.record is None:
            return  # nothing was sent
        cost = result_cost(result)
        # An unknown cost (no price, implausible usage) counts as everything set aside for it.
        self.spent += cost if cost is not None else sum(held.values(), Decimal(0))

    def reserve(self, key: str, attempt: int, worst: Decimal | None) -> None:
        held = self._held.setdefault(key, {})
        admitted = held.pop(_ADMITTED, Decimal(0))  # the first attempt takes over the row's
        if worst is None:
            held[_ADMITTED] = admitted
            self.stopped = True
            raise BudgetExceeded(
                f"attempt {attempt} not sent: its worst-case cost is unknown, so the budget of "
                f"${self.limit} cannot be kept"
            )
        if self.spent + self.in_flight + worst > self.limit:
            held[_ADMITTED] = admitted
            self.stopped = True
            raise BudgetExceeded(
                f"attempt {attempt} not sent: the budget of ${self.limit} would be passed "
                f"(spent ${self.spent:.6f}, set aside for the calls in flight "
                f"${self.in_flight:.6f}, this attempt up to ${worst:.6f})"
            )
        held[attempt] = worst

    def settle(self, key: str, attempt: int, cost: Decimal | None) -> None:
        held = self._held.get(key)
        if held is not None and attempt in held and cost is not None:
            held[attempt] = cost  # what it really cost, even above its worst case


class _RowBudget:
    """The engine's AttemptBudget for one row's call (runner.engine.parts)."""

    def __init__(self, budget: CostBudget, key: str) -> None:
        self._budget = budget
        self._key = key

    def reserve(self, attempt: int, worst_usd: Decimal | None) -> None:
        self._budget.reserve(self._key, attempt, worst_usd)

    def settle(self, attempt: int, cost_usd: Decimal | None) -> None:
        self._budget.settle(self._key, attempt, cost_usd)


def result_cost(result: ItemResult) -> Decimal | None:
    """What a finished row cost (None when unknown or nothing was sent)."""
    if result.result is not None:
        return result.result.cost.usd
    if result.record is not None:
        usd = result.record["cost"]["usd"]
        return None if usd is None else Decimal(str(usd))
    return None
