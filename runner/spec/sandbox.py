"""The Jinja2 sandbox templates render in, with a budget: a template is user input, so its
rendering must end quickly and stay small whatever it is written to do.

Bounds, per render of one template (`Budget`, kept in runner.spec.budget):
- steps: every loop iteration and every call counts (a macro call fifty); past `MAX_STEPS`
  rendering stops, so two nested `range(100000)` loops (10^10 iterations) fail in about a
  second;
- time: past `MAX_SECONDS` of wall-clock time, checked at every step;
- size: the rendered text stops at `MAX_OUTPUT` characters, and no operation may build a
  string or list longer than that (`~`, `+`, `*`, `join`, `replace`, `format`, `%`, `indent`,
  ...); a width or count argument above `MAX_ARGUMENT` is refused before anything is built;
- built: all the strings and lists one render builds add up to at most `MAX_BUILT` characters
  (or items), so a loop that keeps building big strings cannot fill the memory;
- integers: at most `MAX_INT_DIGITS` digits (Python's own limit for turning one into text):
  `*`, `**`, `+` and every method's result are checked, and a product or power that would be
  larger is refused before it is computed (a huge multiplication runs in C, deaf to signals);
- `|wordwrap` and `|urlize` (pure Python, 10-20 us a character) take at most
  `MAX_SLOW_INPUT` characters, so that one call cannot outrun the clock;
- lists: at most `MAX_ITEMS` items; the sandbox's own `range` stays capped at 100,000 items,
  and powers at exponent 1000;
- every call (filter, method, global) takes a step and is checked against the clock when it
  returns, and its result against the bounds above.

Jinja2's globals are `range`, `dict`, `namespace`, `cycler` and `joiner`; `lipsum` is removed
and so is the `random` filter: both make a different prompt at every render (and `lipsum` has
no bound of its own). Only data may become text (runner.spec.printable): a function, a class or
`self` is refused rather than printed as `<function ... at 0x...>`. Rendering is interruptible
(runner.interrupts): Ctrl-C or SIGTERM stops a long render at once.

A template past a bound raises `OverBudget` from inside its own frame, so the caller can name
the template line where it happened. This module knows nothing about specs or files.
"""

from __future__ import annotations

import functools
import operator
import re
from collections.abc import Callable, Generator, Iterable, Iterator, Mapping
from typing import Any, cast

import jinja2
import jinja2.exceptions
import jinja2.nodes
import jinja2.sandbox

from runner.interrupts import LateInterruptible
from runner.spec.budget import (
    CURRENT,
    MAX_ARGUMENT,
    MAX_BUILT,
    MAX_INT_DIGITS,
    MAX_ITEMS,
    MAX_OUTPUT,
    MAX_SECONDS,
    MAX_STEPS,
    SEQUENCES,
    TEXTS,
    Budget,
    OverBudget,
    check_argument,
    check_int,
    check_time,
    sized,
    step,
    too_long,
)
from runner.spec.printable import NotPrintable, check_printable

__all__ = [
    "ENV",
    "MAX_ARGUMENT",
    "MAX_BUILT",
    "MAX_INT_DIGITS",
    "MAX_ITEMS",
    "MAX_OUTPUT",
    "MAX_SECONDS",
    "MAX_SLOW_INPUT",
    "MAX_STEPS",
    "Budget",
    "NotPrintable",
    "OverBudget",
    "add_budget",
    "render",
]

MAX_SLOW_INPUT = 100_000  # characters given to |wordwrap or |urlize
_MAX_EXPONENT = 1_000
_MACRO_COST = 50
_LOOP_FILTER = "runner_budgeted_loop"
_CONCAT_FILTER = "runner_budgeted_concat"


def _printable(value: Any) -> Any:
    """The `finalize` of `{{ }}`: only data is printed (runner.spec.printable)."""
    check_printable(value)
    return value


# --- loops and `~`: rewritten at compile time to pass through the budget -------------------------


def _loop(iterable: Iterable[Any]) -> Iterator[Any]:
    for item in iterable:
        step()
        yield item


def _concat(parts: list[Any]) -> str:
    for part in parts:
        check_printable(part)
    texts = [str(p) for p in parts]
    if sum(map(len, texts)) > MAX_OUTPUT:
        raise OverBudget(f"the joined text would be longer than {MAX_OUTPUT:,} characters")
    return str(sized("".join(texts), "the joined text"))


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
            check_argument(value)


def _replaced_size(text: Any, old: Any, new: Any, count: int = -1) -> int:
    if not isinstance(old, TEXTS) or not isinstance(new, TEXTS):
        return len(text)  # the method refuses them itself
    try:
        hits = len(text) + 1 if not old else text.count(old)
    except TypeError:  # str and bytes mixed: the method refuses them itself
        return len(text)
    if count >= 0:
        hits = min(hits, count)
    return len(text) + hits * (len(new) - len(old))


_WIDTH_FILTERS = frozenset({"center", "indent", "batch", "slice"})
# Pure-Python filters slow enough (10-20 us a character) to pass the time budget in one call.
_SLOW_FILTERS = frozenset({"wordwrap", "urlize"})
_MAX_JSON_INDENT = 100


# The filters that make text of their input and arguments: those must be data.
_TEXT_FILTERS = frozenset(
    {
        "capitalize", "center", "e", "escape", "forceescape", "format", "indent", "lower",
        "pprint", "replace", "safe", "string", "striptags", "title", "trim", "truncate",
        "upper", "urlencode", "urlize", "wordcount", "wordwrap", "xmlattr",
    }
)  # fmt: skip


def _check_filter(name: str, values: list[Any], kwargs: dict[str, Any]) -> None:
    """Refuse a filter call that would build more than MAX_OUTPUT, before it builds anything,
    or make text of what is not data; `values[0]` (the filtered value) may be replaced by a
    list of its items."""
    if name in _WIDTH_FILTERS:
        for value in (*values[1:], *kwargs.values()):
            check_argument(value)
    if name in _TEXT_FILTERS:
        for value in (*values, *kwargs.values()):
            check_printable(value)
    text = values[0]
    if name in _SLOW_FILTERS and len(str(text)) > MAX_SLOW_INPUT:
        raise OverBudget(
            f"|{name} takes at most {MAX_SLOW_INPUT:,} characters (it is slow on long text)"
        )
    if name == "replace" and len(values) >= 3:
        if _replaced_size(str(text), str(values[1]), str(values[2])) > MAX_OUTPUT:
            raise too_long("replaced")
    elif name == "indent":
        width = kwargs.get("width", values[1] if len(values) > 1 else 4)
        size = len(width) if isinstance(width, str) else int(width)
        if (str(text).count("\n") + 1) * size > MAX_OUTPUT:
            raise too_long("indented")
    elif name == "format":
        _check_percent(str(text), tuple(values[1:]) or tuple(kwargs.values()))
    elif name == "join" and not isinstance(text, str):
        items = values[0] = list(text)
        sep = kwargs.get("d", values[1] if len(values) > 1 else "")
        for item in (*items, sep):
            check_printable(item)
        if sum(len(str(i)) for i in items) + len(str(sep)) * len(items) > MAX_OUTPUT:
            raise too_long("joined")
    elif name == "tojson":
        indent = kwargs.get("indent", values[1] if len(values) > 1 else None)
        if isinstance(indent, int) and indent > _MAX_JSON_INDENT:
            raise OverBudget(f"an indent of {indent} is larger than {_MAX_JSON_INDENT}")


def _bounded_filter(name: str, func: Callable[..., Any]) -> Callable[..., Any]:
    skip = 1 if getattr(func, "jinja_pass_arg", None) is not None else 0

    @functools.wraps(func)
    def bounded(*args: Any, **kwargs: Any) -> Any:
        step()
        head, values = args[:skip], list(args[skip:])
        if values:
            _check_filter(name, values, kwargs)
        result = sized(func(*head, *values, **kwargs), f"the result of |{name}")
        check_time()
        return result

    return bounded


_STR_WIDTHS = frozenset({"center", "ljust", "rjust", "zfill", "expandtabs"})


def _check_method(obj: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> tuple[Any, ...]:
    """Bound the str and bytes methods that build more than they are given, and `int.to_bytes`;
    returns the arguments to call with (an iterable given to `join` is read once, here)."""
    owner = getattr(obj, "__self__", None)
    name = getattr(obj, "__name__", "")
    if isinstance(owner, int) and name == "to_bytes":
        for value in (*args[:1], kwargs.get("length")):
            check_argument(value)
        return args
    if not isinstance(owner, TEXTS):
        return args
    if name in _STR_WIDTHS:
        for value in (*args, *kwargs.values()):
            check_argument(value)
    if name == "expandtabs":
        size = int(args[0]) if args else int(kwargs.get("tabsize", 8))
        tabs = owner.count("\t") if isinstance(owner, str) else owner.count(b"\t")
        if tabs * size > MAX_OUTPUT:
            raise too_long("expanded")
    elif name == "replace" and len(args) >= 2:
        old, new = args[0], args[1]
        if _replaced_size(owner, old, new) > MAX_OUTPUT:
            raise too_long("replaced")
    elif name == "join" and args:
        parts = list(args[0])
        for part in parts if isinstance(owner, str) else ():
            check_printable(part)
        if (
            sum(len(p) if isinstance(p, TEXTS) else 1 for p in parts) + len(owner) * len(parts)
            > MAX_OUTPUT
        ):
            raise too_long("joined")
        return (parts, *args[1:])
    elif name == "translate" and args and isinstance(owner, str):
        table = args[0]
        if isinstance(table, dict):
            longest = max((len(v) for v in table.values() if isinstance(v, str)), default=1)
            if len(owner) * longest > MAX_OUTPUT:
                raise too_long("translated")
    return args


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

    intercepted_binops = frozenset({"*", "**", "+", "-", "%"})

    def call_binop(
        self, context: jinja2.runtime.Context, operator_: str, left: Any, right: Any
    ) -> Any:
        step()
        if operator_ == "**":
            if _is_int(right) and abs(right) > _MAX_EXPONENT:
                raise jinja2.exceptions.SecurityError(f"exponent {right} is too large")
            if _is_int(left) and _is_int(right) and right > 0:
                check_int(max(left.bit_length() - 1, 0) * right, "the power")
            return sized(operator.pow(left, right), "the power")
        if operator_ in ("+", "-"):
            both = isinstance(left, SEQUENCES) and isinstance(right, SEQUENCES)
            if both and len(left) + len(right) > MAX_OUTPUT:
                raise OverBudget(f"the sum would be longer than {MAX_OUTPUT:,} items")
            op = operator.add if operator_ == "+" else operator.sub
            return sized(op(left, right), "the sum" if operator_ == "+" else "the difference")
        if operator_ == "%":
            if isinstance(left, str):
                _check_percent(left, right)
                for value in right if isinstance(right, tuple) else (right,):
                    check_printable(value)
            return sized(operator.mod(left, right), "the formatted text")
        if _is_int(left) and _is_int(right):
            check_int(left.bit_length() + right.bit_length() - 1, "the product")
        for seq, times in ((left, right), (right, left)):
            repeats = isinstance(seq, SEQUENCES) and _is_int(times)
            if repeats and len(seq) * times > MAX_ARGUMENT:
                raise jinja2.exceptions.SecurityError("the repeated sequence would be too long")
        return sized(operator.mul(left, right), "the product")

    def call(
        __self,  # noqa: N805 - jinja2's own signature: positional names that cannot clash
        __context: jinja2.runtime.Context,
        __obj: Any,
        *args: Any,
        **kwargs: Any,
    ) -> Any:
        # A macro call costs about fifty loop iterations: charge it so (`f` calling itself
        # twice, 40 deep, stops as fast as nested loops do).
        step(_MACRO_COST if isinstance(__obj, jinja2.runtime.Macro) else 1)
        args = _check_method(__obj, args, kwargs)
        result = super().call(__context, __obj, *args, **kwargs)
        check_time()
        return sized(result, f"the result of {getattr(__obj, '__name__', 'a call')}()")

    def wrap_str_format(self, value: Any) -> Callable[..., str] | None:
        wrapper = super().wrap_str_format(value)
        if wrapper is None or not isinstance(value.__self__, str):
            return wrapper
        owner, is_map = value.__self__, value.__name__ == "format_map"
        vformat = _Formatter(self).vformat

        def bounded(*args: Any, **kwargs: Any) -> str:
            for given in (*args, *kwargs.values()):
                check_printable(given)
            if is_map:
                if len(args) != 1 or kwargs or not isinstance(args[0], dict):
                    return wrapper(*args, **kwargs)  # let it say what is wrong
                return str(sized(vformat(owner, (), args[0]), "the formatted text"))
            return str(sized(vformat(owner, args, kwargs), "the formatted text"))

        return bounded


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


ENV = _Sandbox(
    undefined=jinja2.StrictUndefined,
    autoescape=False,
    keep_trailing_newline=True,
    finalize=_printable,
)
# Random text has no place in a prompt: the request (and its fingerprint) would change at every
# render, and `lipsum` builds without a bound of its own.
del ENV.globals["lipsum"]
ENV.filters = {
    name: _bounded_filter(name, func) for name, func in ENV.filters.items() if name != "random"
}
ENV.filters[_LOOP_FILTER] = _loop
ENV.filters[_CONCAT_FILTER] = _concat


def render(template: jinja2.Template, variables: Mapping[str, Any]) -> str:
    """Render within a fresh Budget; OverBudget (raised inside the template's frame, so that
    the traceback names its line) when a bound is passed. A render that runs past
    LONG_SECONDS becomes interruptible (runner.interrupts) from then on."""
    late = LateInterruptible()
    token = CURRENT.set(Budget(on_long=late.arm))
    try:
        return _generate(template, variables)
    finally:
        CURRENT.reset(token)
        late.close()


def _generate(template: jinja2.Template, variables: Mapping[str, Any]) -> str:
    chunks = cast(Generator[str, None, None], template.generate(variables))
    parts, total = [], 0
    for chunk in chunks:
        total += len(chunk)
        if total > MAX_OUTPUT:
            chunks.throw(OverBudget(f"the rendered text is longer than {MAX_OUTPUT:,} characters"))
        parts.append(chunk)
    return "".join(parts)
