"""The Jinja2 sandbox templates render in, with a budget: a template is user input, so its
rendering must end quickly and stay small whatever it is written to do.

Bounds, per render of one template (`Budget`):
- steps: every loop iteration and every call counts (a macro call fifty); past `MAX_STEPS`
  rendering stops, so two nested `range(100000)` loops (10^10 iterations) fail in about a
  second;
- time: past `MAX_SECONDS` of wall-clock time, checked at every step;
- size: the rendered text stops at `MAX_OUTPUT` characters, and no operation may build a
  string or list longer than that (`~`, `+`, `*`, `join`, `replace`, `format`, `%`, `indent`,
  ...); a width or count argument above `MAX_ARGUMENT` is refused before anything is built;
- the sandbox's own `range` stays capped at 100,000 items, and powers at exponent 1000.

A template past a bound raises `OverBudget` from inside its own frame, so the caller can name
the template line where it happened. This module knows nothing about specs or files.
"""

from __future__ import annotations

import contextvars
import functools
import operator
import re
import time
from collections.abc import Callable, Generator, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, cast

import jinja2
import jinja2.exceptions
import jinja2.nodes
import jinja2.sandbox

__all__ = [
    "ENV",
    "MAX_ARGUMENT",
    "MAX_OUTPUT",
    "MAX_SECONDS",
    "MAX_STEPS",
    "Budget",
    "OverBudget",
    "add_budget",
    "render",
]

MAX_STEPS = 1_000_000
MAX_SECONDS = 5.0
MAX_OUTPUT = 16 * 1024 * 1024  # characters: four times a 1M-token context's worth of text
MAX_ARGUMENT = 1_000_000  # widths, indents, counts
_MAX_EXPONENT = 1_000
_MACRO_COST = 50
_LOOP_FILTER = "runner_budgeted_loop"
_CONCAT_FILTER = "runner_budgeted_concat"


class OverBudget(Exception):
    """A template went past one of the bounds of its render."""


@dataclass
class Budget:
    """What one render may still spend."""

    steps: int = MAX_STEPS
    deadline: float = field(default_factory=lambda: time.monotonic() + MAX_SECONDS)

    def step(self, cost: int = 1) -> None:
        self.steps -= cost
        if self.steps < 0:
            raise OverBudget(
                f"the template ran more than {MAX_STEPS:,} loop iterations and calls; "
                "loop over less"
            )
        if self.steps % 64 < cost and time.monotonic() > self.deadline:
            raise OverBudget(f"the template took longer than {MAX_SECONDS:g} s to render")


CURRENT: contextvars.ContextVar[Budget | None] = contextvars.ContextVar(
    "runner_template_budget", default=None
)


def _step(cost: int = 1) -> None:
    budget = CURRENT.get()
    if budget is not None:
        budget.step(cost)


def _sized(value: Any, what: str) -> Any:
    if isinstance(value, str | list | tuple) and len(value) > MAX_OUTPUT:
        raise OverBudget(f"{what} would be longer than {MAX_OUTPUT:,} items")
    return value


def _argument(value: Any) -> None:
    if isinstance(value, int) and not isinstance(value, bool) and abs(value) > MAX_ARGUMENT:
        raise OverBudget(f"the argument {value} is larger than {MAX_ARGUMENT:,}")


# --- loops and `~`: rewritten at compile time to pass through the budget -------------------------


def _loop(iterable: Iterable[Any]) -> Iterator[Any]:
    for item in iterable:
        _step()
        yield item


def _concat(parts: list[Any]) -> str:
    texts = [str(p) for p in parts]
    if sum(map(len, texts)) > MAX_OUTPUT:
        raise OverBudget(f"the joined text would be longer than {MAX_OUTPUT:,} characters")
    return "".join(texts)


def add_budget(tree: jinja2.nodes.Template) -> None:
    """Rewrite a parsed template so that every loop iteration takes a step of the budget and
    every `~` checks the size of what it joins."""
    for loop in tree.find_all(jinja2.nodes.For):
        loop.iter = jinja2.nodes.Filter(loop.iter, _LOOP_FILTER, [], [], None, None)
    for concat in list(tree.find_all(jinja2.nodes.Concat)):
        joined = jinja2.nodes.Filter(
            jinja2.nodes.List(concat.nodes), _CONCAT_FILTER, [], [], None, None
        )
        concat.nodes = [joined]


# --- filters and methods that can build far more than they are given ----------------------------

_PERCENT_WIDTH = re.compile(r"%[-#0 +]*(\*|\d+)?(?:\.(\*|\d+))?")


def _check_percent(fmt: str, args: Any) -> None:
    """`'%0999999999d' % 1` and `'%*d' % (10**9, 1)`: refuse widths above MAX_ARGUMENT."""
    for match in _PERCENT_WIDTH.finditer(fmt):
        for group in match.groups():
            if group and group != "*" and (len(group) > 7 or int(group) > MAX_ARGUMENT):
                raise OverBudget(f"the width {group} is larger than {MAX_ARGUMENT:,}")
    for value in args if isinstance(args, tuple) else (args,):
        if "*" in fmt:
            _argument(value)


def _replaced_size(text: str, old: str, new: str, count: int = -1) -> int:
    hits = len(text) + 1 if not old else text.count(old)
    if count >= 0:
        hits = min(hits, count)
    return len(text) + hits * (len(new) - len(old))


_WIDTH_FILTERS = frozenset({"center", "indent", "batch", "slice"})
_MAX_JSON_INDENT = 100


def _too_long(what: str) -> OverBudget:
    return OverBudget(f"the {what} text would be longer than {MAX_OUTPUT:,} characters")


def _check_filter(name: str, values: list[Any], kwargs: dict[str, Any]) -> None:
    """Refuse a filter call that would build more than MAX_OUTPUT, before it builds anything;
    `values[0]` (the filtered value) may be replaced by a list of its items."""
    if name in _WIDTH_FILTERS:
        for value in (*values[1:], *kwargs.values()):
            _argument(value)
    text = values[0]
    if name == "replace" and len(values) >= 3:
        if _replaced_size(str(text), str(values[1]), str(values[2])) > MAX_OUTPUT:
            raise _too_long("replaced")
    elif name == "indent":
        width = kwargs.get("width", values[1] if len(values) > 1 else 4)
        size = len(width) if isinstance(width, str) else int(width)
        if (str(text).count("\n") + 1) * size > MAX_OUTPUT:
            raise _too_long("indented")
    elif name == "format":
        _check_percent(str(text), tuple(values[1:]) or tuple(kwargs.values()))
    elif name == "join" and not isinstance(text, str):
        items = values[0] = list(text)
        sep = kwargs.get("d", values[1] if len(values) > 1 else "")
        if sum(len(str(i)) for i in items) + len(str(sep)) * len(items) > MAX_OUTPUT:
            raise _too_long("joined")
    elif name == "tojson":
        indent = kwargs.get("indent", values[1] if len(values) > 1 else None)
        if isinstance(indent, int) and indent > _MAX_JSON_INDENT:
            raise OverBudget(f"an indent of {indent} is larger than {_MAX_JSON_INDENT}")


def _bounded_filter(name: str, func: Callable[..., Any]) -> Callable[..., Any]:
    skip = 1 if getattr(func, "jinja_pass_arg", None) is not None else 0

    @functools.wraps(func)
    def bounded(*args: Any, **kwargs: Any) -> Any:
        _step()
        head, values = args[:skip], list(args[skip:])
        if values:
            _check_filter(name, values, kwargs)
        return _sized(func(*head, *values, **kwargs), f"the result of |{name}")

    return bounded


_STR_WIDTHS = frozenset({"center", "ljust", "rjust", "zfill", "expandtabs"})


def _check_method(obj: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
    """Bound the str methods that build more than they are given."""
    owner = getattr(obj, "__self__", None)
    name = getattr(obj, "__name__", "")
    if not isinstance(owner, str):
        return
    if name in _STR_WIDTHS:
        for value in (*args, *kwargs.values()):
            _argument(value)
    if name == "expandtabs":
        size = int(args[0]) if args else int(kwargs.get("tabsize", 8))
        if owner.count("\t") * size > MAX_OUTPUT:
            raise _too_long("expanded")
    elif name == "replace" and len(args) >= 2:
        if _replaced_size(owner, str(args[0]), str(args[1])) > MAX_OUTPUT:
            raise _too_long("replaced")
    elif name == "join" and args:
        parts = list(args[0])
        if sum(len(str(p)) for p in parts) + len(owner) * len(parts) > MAX_OUTPUT:
            raise _too_long("joined")


class _Formatter(jinja2.sandbox.SandboxedFormatter):
    """`'{:>999999999}'.format(x)`: widths and precisions are checked once resolved."""

    def format_field(self, value: Any, format_spec: str) -> Any:
        for number in re.findall(r"\d+", format_spec[:64]):
            if len(number) > 7 or int(number) > MAX_ARGUMENT:
                raise OverBudget(f"the width {number} is larger than {MAX_ARGUMENT:,}")
        return super().format_field(value, format_spec)


class _Sandbox(jinja2.sandbox.ImmutableSandboxedEnvironment):
    """The sandbox plus the budget (ImmutableSandboxedEnvironment also keeps templates from
    changing the caller's lists and dicts)."""

    intercepted_binops = frozenset({"*", "**", "+", "%"})

    def call_binop(
        self, context: jinja2.runtime.Context, operator_: str, left: Any, right: Any
    ) -> Any:
        _step()
        if operator_ == "**":
            if isinstance(right, int) and abs(right) > _MAX_EXPONENT:
                raise jinja2.exceptions.SecurityError(f"exponent {right} is too large")
            return operator.pow(left, right)
        if operator_ == "+":
            sized = isinstance(left, str | list | tuple) and isinstance(right, str | list | tuple)
            if sized and len(left) + len(right) > MAX_OUTPUT:
                raise OverBudget(f"the sum would be longer than {MAX_OUTPUT:,} items")
            return operator.add(left, right)
        if operator_ == "%":
            if isinstance(left, str):
                _check_percent(left, right)
            return operator.mod(left, right)
        for seq, times in ((left, right), (right, left)):
            repeats = isinstance(seq, str | list | tuple) and isinstance(times, int)
            if repeats and len(seq) * times > MAX_ARGUMENT:
                raise jinja2.exceptions.SecurityError("the repeated sequence would be too long")
        return operator.mul(left, right)

    def call(
        __self,  # noqa: N805 - jinja2's own signature: positional names that cannot clash
        __context: jinja2.runtime.Context,
        __obj: Any,
        *args: Any,
        **kwargs: Any,
    ) -> Any:
        # A macro call costs about fifty loop iterations: charge it so (`f` calling itself
        # twice, 40 deep, stops as fast as nested loops do).
        _step(_MACRO_COST if isinstance(__obj, jinja2.runtime.Macro) else 1)
        _check_method(__obj, args, kwargs)
        return super().call(__context, __obj, *args, **kwargs)

    def wrap_str_format(self, value: Any) -> Callable[..., str] | None:
        wrapper = super().wrap_str_format(value)
        if wrapper is None or not isinstance(value.__self__, str):
            return wrapper
        owner, is_map = value.__self__, value.__name__ == "format_map"
        vformat = _Formatter(self).vformat

        def bounded(*args: Any, **kwargs: Any) -> str:
            if is_map:
                return wrapper(*args, **kwargs)
            return str(_sized(vformat(owner, args, kwargs), "the formatted text"))

        return bounded


ENV = _Sandbox(undefined=jinja2.StrictUndefined, autoescape=False, keep_trailing_newline=True)
ENV.filters = {name: _bounded_filter(name, func) for name, func in ENV.filters.items()}
ENV.filters[_LOOP_FILTER] = _loop
ENV.filters[_CONCAT_FILTER] = _concat


def render(template: jinja2.Template, variables: Mapping[str, Any]) -> str:
    """Render within a fresh Budget; OverBudget (raised inside the template's frame, so that
    the traceback names its line) when a bound is passed."""
    token = CURRENT.set(Budget())
    try:
        chunks = cast(Generator[str, None, None], template.generate(variables))
        parts, total = [], 0
        for chunk in chunks:
            total += len(chunk)
            if total > MAX_OUTPUT:
                chunks.throw(
                    OverBudget(f"the rendered text is longer than {MAX_OUTPUT:,} characters")
                )
            parts.append(chunk)
        return "".join(parts)
    finally:
        CURRENT.reset(token)
