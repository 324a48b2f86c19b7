"""runner.spec.templates: sandboxed, strict Jinja2 templates with positioned errors."""

from __future__ import annotations

from typing import Any

import pytest

from runner.errors import Problem, TemplateError
from runner.spec.templates import compile_template


def _offset(line: int) -> tuple[int, int]:
    """Pretend the template starts on line 10 of its file, indented by 4."""
    return 9 + line, 5


def _compile(source: str) -> Any:
    return compile_template(source, origin="/messages/0/content", file="s.yaml", locate=_offset)


def test_variables_are_the_names_read_from_outside() -> None:
    template = _compile(
        "{% set greeting = 'Hi' %}{{ greeting }} {{ user.name }}"
        "{% for item in items %}{{ item }}{{ loop.index }}{% endfor %}{{ range(2)|list }}"
    )
    assert template.variables == frozenset({"user", "items"})


def test_render_keeps_trailing_newlines_and_does_not_escape() -> None:
    template = _compile("<b>{{ city }}</b>\n")
    assert template.render({"city": "A & B"}) == "<b>A & B</b>\n"


def test_variable_values_are_data_never_templates() -> None:
    template = _compile("Say {{ text }}")
    assert template.render({"text": "{{ 7 * 7 }}{% raw %}"}) == "Say {{ 7 * 7 }}{% raw %}"


def test_a_literal_needs_no_compiling() -> None:
    template = _compile("Plain text, no variables.")
    assert template.variables == frozenset()
    assert template.render({}) == "Plain text, no variables."


def test_undefined_variables_name_every_one_and_the_first_line() -> None:
    template = _compile("a\n{{ b }}\n{{ c }} {{ b }}")
    with pytest.raises(TemplateError) as info:
        template.render({})
    err = info.value
    assert err.names == ["b", "c"]
    assert err.template == "/messages/0/content"
    assert err.problems == [
        Problem(
            "s.yaml",
            11,
            5,
            "template /messages/0/content: undefined variables 'b', 'c'",
            "/messages/0/content",
        )
    ]
    assert err.exit_code == 2
    assert template.line_of("c") == 3


def test_undefined_attribute_points_at_its_line() -> None:
    template = _compile("ok\n\n{{ user.nmae }}")
    with pytest.raises(TemplateError) as info:
        template.render({"user": {"name": "x"}})
    assert str(info.value) == (
        "s.yaml:12:5: template /messages/0/content: undefined value: "
        "'dict object' has no attribute 'nmae'"
    )


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        (
            "x\n{% for %}",
            "s.yaml:11:5: template /messages/0/content: syntax error: Expected an "
            "expression, got 'end of statement block'",
        ),
        ("{{ a }", "s.yaml:10:5: template /messages/0/content: syntax error: unexpected '}'"),
        (
            "{% if a %}",
            "s.yaml:10:5: template /messages/0/content: syntax error: Unexpected end "
            "of template. Jinja was looking for the following tags: 'elif' or 'else' "
            "or 'endif'. The innermost block that needs to be closed is 'if'.",
        ),
        (
            "{{ a|nosuchfilter }}",
            "s.yaml:10:5: template /messages/0/content: No filter named 'nosuchfilter'.",
        ),
    ],
)
def test_syntax_errors_are_found_at_compile_time(source: str, expected: str) -> None:
    with pytest.raises(TemplateError) as info:
        _compile(source)
    assert str(info.value) == expected


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        (
            "{{ ().__class__.__base__.__subclasses__() }}",
            "access to '__class__', '__base__' and '__subclasses__' is not allowed",
        ),
        ("{{ x['__globals__'] }}", "access to '__globals__' is not allowed"),
        ("{{ x|attr('__class__') }}", "access to '__class__' is not allowed"),
        ("{{ x._private }}", "access to '_private' is not allowed"),
        (
            "line\n{{ cycler.__init__.__globals__.os }}",
            "access to '__init__' and '__globals__' is not allowed",
        ),
    ],
)
def test_private_access_is_refused_before_anything_runs(source: str, expected: str) -> None:
    with pytest.raises(TemplateError) as info:
        _compile(source)
    [problem] = info.value.problems
    assert problem.message == (
        f"template /messages/0/content: {expected} (names starting with '_' are private)"
    )
    assert problem.line == 9 + source.count("\n") + 1


class _Spy:
    """Records whether a template ever touched it."""

    touched = False

    def __getattr__(self, name: str) -> Any:
        _Spy.touched = True
        raise AttributeError(name)


def test_refused_templates_never_render() -> None:
    with pytest.raises(TemplateError):
        _compile("{{ spy.__class__ }}").render({"spy": _Spy()})
    assert not _Spy.touched


@pytest.mark.parametrize(
    ("source", "vars", "expected"),
    [
        ("{{ x|attr(name) }}", {"x": 1, "name": "__class__"}, "unsafe operation refused: "),
        ("{{ items.append(4) }}", {"items": [1]}, "unsafe operation refused: "),
        (
            "{{ 'a' * 100000000 }}",
            {},
            "unsafe operation refused: the repeated sequence would be too long",
        ),
        (
            "{{ [0] * n }}",
            {"n": 10**9},
            "unsafe operation refused: the repeated sequence would be too long",
        ),
        ("{{ 2 ** 100000 }}", {}, "unsafe operation refused: exponent 100000 is too large"),
        ("{{ range(10**9)|list }}", {}, "cannot render: OverflowError: Range too big."),
        ("{{ a / b }}", {"a": 1, "b": 0}, "cannot render: ZeroDivisionError: division by zero"),
    ],
)
def test_the_sandbox_refuses_at_render_time(source: str, vars: Any, expected: str) -> None:
    before = repr(vars)
    with pytest.raises(TemplateError) as info:
        _compile(source).render(vars)
    assert info.value.problems[0].message.startswith(f"template /messages/0/content: {expected}")
    assert repr(vars) == before  # the caller's data is never changed


def test_small_products_and_powers_still_work() -> None:
    template = _compile("{{ 'ab' * 2 }} {{ 3 * 'x' }} {{ [1] * 2 }} {{ 2 ** 10 }} {{ 2 * 3 }}")
    assert template.render({}) == "abab xxx [1, 1] 1024 6"


def test_default_locate_uses_template_lines() -> None:
    template = compile_template("a\n{{ b }}", origin="/x")
    with pytest.raises(TemplateError) as info:
        template.render({})
    assert str(info.value) == ":2:1: template /x: undefined variable 'b'"
    assert template.position(0) == (1, 1)
