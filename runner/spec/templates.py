"""Sandboxed Jinja2 templates: compile once, list the variables they use, render strictly.

This is the only module that imports jinja2, and it knows nothing about specs: the caller says
where a template came from (`origin`, and how template lines map to file positions) so that
every error comes out as a positioned `runner.errors.TemplateError`.
"""

from __future__ import annotations

import functools
import re
import traceback
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

import jinja2
import jinja2.exceptions
import jinja2.meta
import jinja2.nodes
import jinja2.sandbox

from runner.errors import MAX_LISTED, Problem, TemplateError
from runner.spec.sandbox import ENV as _ENV
from runner.spec.sandbox import (
    MAX_OUTPUT,
    NotPrintable,
    OverBudget,
    _printable,  # the `finalize` of {{ }}: jinja2's and the fast path's
    add_budget,
)
from runner.spec.sandbox import render as _render

__all__ = ["Locate", "Template", "compile_template"]

# Maps a 1-based line of the template to a 1-based (line, column) in the file it came from.
Locate = Callable[[int], tuple[int, int]]

_FILENAME = "<runner template>"


def _default_locate(line: int) -> tuple[int, int]:
    return line, 1


@dataclass(frozen=True)
class Template:
    """A compiled template. `variables` are the names it reads from the render variables."""

    source: str = field(repr=False)
    origin: str  # which template, e.g. the JSON pointer /messages/1/content
    file: str
    variables: frozenset[str]
    _compiled: jinja2.Template | None = field(repr=False, compare=False)
    _locate: Locate = field(repr=False, compare=False)
    _first_use: Mapping[str, int] = field(repr=False, compare=False)
    # Literal text and variable names, when that is all the template is (see `_plain_parts`).
    _parts: tuple[str | _Var, ...] | None = field(default=None, repr=False, compare=False)

    def position(self, template_line: int) -> tuple[int, int]:
        """The (line, column) in the file of a 1-based template line."""
        return self._locate(max(template_line, 1))

    def line_of(self, name: str) -> int:
        """The 1-based template line where a variable is first read (1 if unknown)."""
        return self._first_use.get(name, 1)

    def render(self, vars: Mapping[str, Any]) -> str:
        """Render with `vars`; variable values are data and are never rendered themselves.
        Rendering has a budget (runner.spec.sandbox): past it, a TemplateError at the line
        where it ran out."""
        if self._compiled is None:
            return self.source
        missing = sorted(self.variables - vars.keys())
        if missing:
            names = ", ".join(repr(n) for n in missing[:MAX_LISTED])
            if len(missing) > MAX_LISTED:  # a person reads the first ones; count the rest
                names += f", ... and {len(missing) - MAX_LISTED} more"
            noun = "variable" if len(missing) == 1 else "variables"
            line = min(self._first_use.get(n, 1) for n in missing)
            raise self._error(f"undefined {noun} {names}", line, names=missing)
        if self._parts is not None:
            text = _render_parts(self._parts, vars)
            if text is not None:
                return text
        try:
            return _render(self._compiled, vars)
        except OverBudget as exc:
            raise self._error(f"rendering stopped: {exc}", _line_of(exc)) from exc
        except NotPrintable as exc:
            message = (
                f"cannot put {exc} into the prompt: only text, numbers, booleans, null "
                "and lists or mappings of them can be printed"
            )
            raise self._error(message, _line_of(exc)) from exc
        except jinja2.exceptions.SecurityError as exc:
            raise self._error(f"unsafe operation refused: {exc}", _line_of(exc)) from exc
        except jinja2.UndefinedError as exc:
            raise self._error(f"undefined value: {exc.message}", _line_of(exc)) from exc
        except jinja2.TemplateError as exc:
            raise self._error(f"cannot render: {exc}", _line_of(exc)) from exc
        except Exception as exc:
            # Templates come from users: whatever fails inside one (a filter given the wrong
            # type, a division by zero) is their error to fix, reported where it happened.
            message = f"cannot render: {type(exc).__name__}: {exc}"
            raise self._error(message, _line_of(exc)) from exc

    def _error(self, message: str, line: int, names: list[str] | None = None) -> TemplateError:
        return _template_error(self.file, self.origin, self._locate, message, line, names)


@dataclass(frozen=True)
class _Var:
    name: str


def _plain_parts(
    tree: jinja2.nodes.Template, variables: frozenset[str]
) -> tuple[str | _Var, ...] | None:
    """The template as literal text and `{{ name }}` outputs, when it is nothing more (most
    prompts): such a template renders as jinja2 renders it, `str(finalize(value))` for each
    name, without building jinja2's context and generator for it (10 us or so a render)."""
    if len(tree.body) != 1 or type(tree.body[0]) is not jinja2.nodes.Output:
        return None
    parts: list[str | _Var] = []
    for node in tree.body[0].nodes:
        if type(node) is jinja2.nodes.TemplateData:
            parts.append(node.data)
        elif type(node) is jinja2.nodes.Name and node.ctx == "load" and node.name in variables:
            parts.append(_Var(node.name))
        else:
            return None
    return tuple(parts)


def _render_parts(parts: tuple[str | _Var, ...], vars: Mapping[str, Any]) -> str | None:
    """`parts` rendered, or None for jinja2 to render instead: any error (its message and
    line are jinja2's to give) and a text past the budget."""
    try:
        text = "".join(
            [part if isinstance(part, str) else str(_printable(vars[part.name])) for part in parts]
        )
    except Exception:
        return None
    return text if len(text) <= MAX_OUTPUT else None


def _template_error(
    file: str, origin: str, locate: Locate, message: str, line: int, names: list[str] | None
) -> TemplateError:
    at_line, col = locate(max(line, 1))
    text = f"template {origin}: {message}" if origin else f"template: {message}"
    problem = Problem(file, at_line, col, text, origin)
    return TemplateError([problem], template=origin, names=names or ())


def _line_of(exc: BaseException) -> int:
    """The template line where a render error happened (jinja2 rewrites tracebacks so that
    template frames carry the template's own line numbers)."""
    line = 1
    for frame in traceback.extract_tb(exc.__traceback__):
        if frame.filename == _FILENAME and frame.lineno:
            line = frame.lineno
    return line


def _private_access(tree: jinja2.nodes.Template) -> Iterator[tuple[str, int]]:
    """Attribute or item access to a `_`-prefixed name: the road to Python internals."""
    for node in tree.find_all((jinja2.nodes.Getattr, jinja2.nodes.Getitem)):
        if isinstance(node, jinja2.nodes.Getattr):
            name: Any = node.attr
        elif isinstance(node, jinja2.nodes.Getitem) and isinstance(node.arg, jinja2.nodes.Const):
            name = node.arg.value
        else:
            continue
        if isinstance(name, str) and name.startswith("_"):
            yield name, node.lineno or 1
    for call in tree.find_all(jinja2.nodes.Filter):
        # `|attr("__class__")` reaches the same place by another road.
        if call.name == "attr" and call.args and isinstance(call.args[0], jinja2.nodes.Const):
            value = call.args[0].value
            if isinstance(value, str) and value.startswith("_"):
                yield value, call.lineno or 1


# Jinja2 globals runner removes, and why (the sandbox module says more).
_REMOVED = {
    "lipsum": "lipsum() is not available in runner's templates: its random text would make a "
    "different prompt at every render",
}


def _removed_calls(tree: jinja2.nodes.Template) -> Iterator[tuple[str, int]]:
    """Calls of a global that runner removed (a variable of the same name is still allowed)."""
    for call in tree.find_all(jinja2.nodes.Call):
        if isinstance(call.node, jinja2.nodes.Name) and call.node.name in _REMOVED:
            yield _REMOVED[call.node.name], call.lineno or 1


def _first_uses(tree: jinja2.nodes.Template, names: frozenset[str]) -> dict[str, int]:
    first: dict[str, int] = {}
    for node in tree.find_all(jinja2.nodes.Name):
        if node.ctx == "load" and node.name in names:
            line = node.lineno or 1
            first[node.name] = min(first.get(node.name, line), line)
    return first


def _join(names: list[str]) -> str:
    return names[0] if len(names) == 1 else f"{', '.join(names[:-1])} and {names[-1]}"


_Compiled = tuple[
    jinja2.Template,
    frozenset[str],
    dict[str, int],
    tuple[tuple[str, int], ...],
    tuple[str | _Var, ...] | None,
]


@functools.lru_cache(maxsize=1024)
def _compile(source: str) -> _Compiled:
    """Parse, check and compile one source (shared by every template with the same text).

    Returns the template, its variables, their first lines and the static problems found
    as (message, line) pairs; raises jinja2.TemplateSyntaxError on a syntax error."""
    tree = _ENV.parse(source)
    lines = source.splitlines()
    found = sorted(
        set(_private_access(tree)),
        key=lambda hit: (hit[1], lines[hit[1] - 1].find(hit[0]) if hit[1] <= len(lines) else 0),
    )
    by_line: dict[int, list[str]] = {}
    for name, line in found:
        by_line.setdefault(line, []).append(repr(name))
    refused = tuple(
        (f"access to {_join(names)} is not allowed (names starting with '_' are private)", line)
        for line, names in by_line.items()
    ) + tuple(sorted(set(_removed_calls(tree)), key=lambda hit: hit[1]))
    variables = frozenset(jinja2.meta.find_undeclared_variables(tree)) - _ENV.globals.keys()
    add_budget(tree)
    parts = _plain_parts(tree, variables)
    code = _ENV.compile(tree, filename=_FILENAME)
    # Flat globals: jinja's default, a ChainMap over the environment's globals, is copied key by
    # key at every render; the sandbox's globals never change after import.
    compiled = _ENV.template_class.from_code(_ENV, code, dict(_ENV.make_globals(None)), None)
    return compiled, variables, _first_uses(tree, variables), refused, parts


def compile_template(
    source: str, *, origin: str, file: str = "", locate: Locate | None = None
) -> Template:
    """Compile a template, refusing syntax errors and access to private attributes before
    anything runs. Raise TemplateError with every problem found, positioned by `locate`."""
    where = locate or _default_locate
    if "{" not in source:  # no Jinja2 syntax at all: a literal, nothing to compile
        return Template(source, origin, file, frozenset(), None, where, {})
    try:
        compiled, variables, first_use, refused, parts = _compile(source)
    except jinja2.TemplateSyntaxError as exc:
        # An unknown filter or test is found while compiling, not parsing: not a syntax error.
        kind = "" if isinstance(exc, jinja2.exceptions.TemplateAssertionError) else "syntax error: "
        message = f"{kind}{exc.message}"
        raise _template_error(file, origin, where, message, exc.lineno or 1, None) from exc
    except ValueError as exc:  # a number literal past Python's 4300 digits, found by the lexer
        message = f"syntax error: {exc}".split(";")[0]
        long_number = re.search(r"\d{4301}", source)
        line = source.count("\n", 0, long_number.start()) + 1 if long_number else 1
        raise _template_error(file, origin, where, message, line, None) from exc
    if refused:
        problems = [
            _template_error(file, origin, where, message, line, None).problems[0]
            for message, line in refused
        ]
        raise TemplateError(problems, template=origin)
    return Template(source, origin, file, variables, compiled, where, first_use, parts)
