"""What a template may turn into text: strings, numbers, booleans, null, and lists or mappings
of them. Anything else (a function, a method, a class, a generator, `self`, a namespace, bytes)
would put a Python repr such as `<function ... at 0x7f...>` into a prompt, so it is refused.

The sandbox (runner.spec.sandbox) calls `check_printable` wherever a value becomes text: `{{ }}`
output, `~`, the filters that make text of their input, `%`, `str.format` and `join`. This module
knows nothing about jinja2 beyond the names of its objects.
"""

from __future__ import annotations

import types
from typing import Any

__all__ = ["NotPrintable", "check_printable", "describe"]

_SCALARS = (str, int, float, type(None))  # bool is an int; Markup is a str
_MAX_WALK = 1_000_000  # items looked at in one value (the sandbox caps lists far below this)


class NotPrintable(Exception):
    """A value that is not data was about to be turned into text."""


_KINDS: tuple[tuple[tuple[type, ...], str], ...] = (
    ((types.FunctionType, types.BuiltinFunctionType, types.LambdaType), "a function"),
    ((types.MethodType, types.BuiltinMethodType, types.MethodWrapperType), "a method"),
    ((type,), "a class"),
    ((types.ModuleType,), "a module"),
    ((types.GeneratorType,), "a generator (add |list to print its items)"),
    ((range,), "a range (add |list to print its numbers)"),
    ((bytes, bytearray), "bytes (add .decode() to print text)"),
)
_JINJA = {
    "TemplateReference": "the template itself (self)",
    "LoopContext": "the loop object",
    "Namespace": "a namespace (print one of its attributes)",
    "Cycler": "a cycler (print .current or .next())",
    "Joiner": "a joiner (call it)",
    "Macro": "a macro (call it)",
    "Undefined": "an undefined value",
}


def describe(value: Any) -> str:
    """A few words for the kind of a value that cannot be printed (never its repr)."""
    for kinds, words in _KINDS:
        if isinstance(value, kinds):
            return words
    for cls in type(value).__mro__:
        if cls.__name__ in _JINJA:
            return _JINJA[cls.__name__]
    if isinstance(value, type({}.keys()) | type({}.values()) | type({}.items())):
        return "a dict view (add |list to print its items)"
    if isinstance(value, tuple):  # a named tuple, such as a |groupby group
        return f"a {type(value).__name__} (print its fields)"
    if callable(value):
        return "a function"
    return f"a Python object ({type(value).__name__})"


def check_printable(value: Any) -> None:
    """Raise NotPrintable unless `value` is text, a number, a boolean, null, or a list, tuple
    or mapping (exactly those types) made of such values."""
    stack, seen = [value], 0
    while stack:
        item = stack.pop()
        seen += 1
        if isinstance(item, _SCALARS) or seen > _MAX_WALK:
            continue
        kind = type(item)
        if any(cls.__name__ == "Undefined" for cls in kind.__mro__):
            str(item)  # a strict undefined value raises its own error, naming the variable
            raise NotPrintable(describe(item))
        if kind is list or kind is tuple:
            stack.extend(item)
        elif kind is dict:
            stack.extend(item.keys())
            stack.extend(item.values())
        else:
            raise NotPrintable(describe(item))
