"""The budget of one template render: how many steps, seconds, characters, list items and
integer digits it may spend, and the checks every operation of the sandbox (runner.spec.sandbox)
makes against it. Past a bound, `OverBudget`. No jinja2 here: plain Python values only.
"""

from __future__ import annotations

import contextvars
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

__all__ = [
    "CURRENT",
    "LONG_SECONDS",
    "MAX_ARGUMENT",
    "MAX_BUILT",
    "MAX_INT_DIGITS",
    "MAX_ITEMS",
    "MAX_OUTPUT",
    "MAX_SECONDS",
    "MAX_STEPS",
    "SEQUENCES",
    "TEXTS",
    "Budget",
    "OverBudget",
    "check_argument",
    "check_int",
    "check_time",
    "sized",
    "step",
    "too_long",
]

MAX_STEPS = 1_000_000
# A render still running after this many seconds is long: `Budget.on_long` is called (once).
LONG_SECONDS = 0.01
MAX_SECONDS = 5.0
MAX_OUTPUT = 16 * 1024 * 1024  # characters: four times a 1M-token context's worth of text
MAX_ARGUMENT = 1_000_000  # widths, indents, counts
MAX_BUILT = 4 * MAX_OUTPUT  # characters (or items) built in all by one render
MAX_ITEMS = 1_000_000  # items of one list, tuple or mapping
MAX_INT_DIGITS = 4300  # Python's own limit for int <-> text (sys.int_info.default_max_str_digits)
_MAX_INT_BITS = math.ceil(MAX_INT_DIGITS * math.log2(10))


class OverBudget(Exception):
    """A template went past one of the bounds of its render."""


@dataclass
class Budget:
    """What one render may still spend."""

    steps: int = MAX_STEPS
    built: int = MAX_BUILT
    deadline: float = field(default_factory=lambda: time.monotonic() + MAX_SECONDS)
    # Called once, from the first check after LONG_SECONDS (the sandbox makes the render
    # interruptible then); it may raise, from inside the template's frame like OverBudget.
    on_long: Callable[[], None] | None = None

    def step(self, cost: int = 1) -> None:
        self.steps -= cost
        if self.steps < 0:
            raise OverBudget(
                f"the template ran more than {MAX_STEPS:,} loop iterations and calls; "
                "loop over less"
            )
        self.check_time()

    def check_time(self) -> None:
        now = time.monotonic()
        if now > self.deadline:
            raise OverBudget(f"the template took longer than {MAX_SECONDS:g} s to render")
        if self.on_long is not None and now > self.deadline - MAX_SECONDS + LONG_SECONDS:
            on_long, self.on_long = self.on_long, None
            on_long()

    def build(self, size: int) -> None:
        self.built -= size
        if self.built < 0:
            raise OverBudget(
                f"the template built more than {MAX_BUILT:,} characters in all; build less"
            )


CURRENT: contextvars.ContextVar[Budget | None] = contextvars.ContextVar(
    "runner_template_budget", default=None
)


def step(cost: int = 1) -> None:
    budget = CURRENT.get()
    if budget is not None:
        budget.step(cost)


TEXTS = (str, bytes, bytearray)
SEQUENCES = (str, bytes, bytearray, list, tuple)


def sized(value: Any, what: str) -> Any:
    """Check what an operation built against the bounds, and charge its size to the budget."""
    if isinstance(value, TEXTS):
        if len(value) > MAX_OUTPUT:
            raise OverBudget(f"{what} would be longer than {MAX_OUTPUT:,} characters")
    elif isinstance(value, list | tuple | dict):
        if len(value) > MAX_ITEMS:
            raise OverBudget(f"{what} would have more than {MAX_ITEMS:,} items")
    elif isinstance(value, int):
        check_int(value.bit_length(), what)
        return value
    else:
        return value
    budget = CURRENT.get()
    if budget is not None:
        budget.build(len(value))
    return value


def check_int(bits: int, what: str) -> None:
    if bits > _MAX_INT_BITS:
        raise OverBudget(f"{what} would have more than {MAX_INT_DIGITS:,} digits")


def check_time() -> None:
    budget = CURRENT.get()
    if budget is not None:
        budget.check_time()


def check_argument(value: Any) -> None:
    if isinstance(value, int) and not isinstance(value, bool) and abs(value) > MAX_ARGUMENT:
        raise OverBudget(f"the argument {value} is larger than {MAX_ARGUMENT:,}")


def too_long(what: str) -> OverBudget:
    return OverBudget(f"the {what} text would be longer than {MAX_OUTPUT:,} characters")
