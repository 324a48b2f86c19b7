"""The cost cap of a data-set run: a row starts only while the cost spent plus the worst case
of every call in flight (the preflight's `max_cost`) stays within the cap. A gate for
runner.dataset.loop.run_items; it never prints.
"""

from __future__ import annotations

from decimal import Decimal
from typing import TYPE_CHECKING

from runner.dataset.loop import Item, ItemResult
from runner.errors import BudgetExceeded, ConfigError, InputsInvalid, RunnerError, TemplateError

if TYPE_CHECKING:
    from runner.engine.session import Session
    from runner.spec.model import PromptSpec

__all__ = ["CostBudget"]


class CostBudget:
    """Admits rows while `spent + worst cases in flight + this row's worst case <= limit`."""

    def __init__(self, session: Session, spec: PromptSpec, limit: Decimal) -> None:
        self.limit = limit
        self.spent = Decimal(0)
        self.stopped = False  # True once a row was refused
        self._session = session
        self._spec = spec
        self._in_flight: dict[str, Decimal] = {}

    @property
    def in_flight(self) -> Decimal:
        return sum(self._in_flight.values(), Decimal(0))

    def admit(self, item: Item) -> RunnerError | None:
        try:
            pre = self._session.preflight(self._spec, item.vars)
        except (InputsInvalid, TemplateError):
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
                f"worst case in flight ${self.in_flight:.6f}, this row up to ${worst:.6f})"
            )
        self._in_flight[item.key] = worst
        return None

    def release(self, item: Item, result: ItemResult) -> None:
        self._in_flight.pop(item.key, None)
        self.spent += result_cost(result) or Decimal(0)


def result_cost(result: ItemResult) -> Decimal | None:
    """What a finished row cost (None when unknown or nothing was sent)."""
    if result.result is not None:
        return result.result.cost.usd
    if result.record is not None:
        usd = result.record["cost"]["usd"]
        return None if usd is None else Decimal(str(usd))
    return None
