"""runner.spec.templates: a template of literal text and `{{ name }}` outputs renders without
jinja2's machinery, and must give exactly what jinja2 gives: the same text, or the same
TemplateError (message and position) for a value that cannot be printed or a text too long."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from runner.errors import TemplateError
from runner.spec.sandbox import MAX_OUTPUT
from runner.spec.templates import Template, compile_template


def _both(template: Template, variables: dict[str, Any]) -> tuple[Any, Any]:
    """What the template renders (or raises) with its fast path, and with jinja2 alone."""
    assert template._parts is not None, template.source
    slow = dataclasses.replace(template, _parts=None)
    outcomes = []
    for which in (template, slow):
        try:
            outcomes.append(which.render(variables))
        except TemplateError as exc:
            outcomes.append((type(exc), str(exc), [p.line for p in exc.problems]))
    return outcomes[0], outcomes[1]


_NAMES = st.sampled_from(["city", "name", "x", "long_name_2"])
_TEXT = st.text(
    alphabet=st.characters(blacklist_characters="{}#%", codec="utf-8"), max_size=12
) | st.sampled_from(["\n", "\n\n", " ", "\t", "é ü", "line one\nline two\n"])
_OUTPUT = _NAMES.flatmap(
    lambda n: st.sampled_from(
        [f"{{{{ {n} }}}}", f"{{{{{n}}}}}", f"{{{{- {n} }}}}", f"{{{{ {n} -}}}}"]
    )
)
_SOURCE = st.lists(_TEXT | _OUTPUT, min_size=1, max_size=8).map("".join).filter(lambda s: "{{" in s)
_VALUE = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats()
    | st.text(max_size=20)
    | st.sampled_from([object(), b"bytes", {1, 2}, 1 + 2j]),
    lambda inner: (
        st.lists(inner, max_size=3)
        | st.dictionaries(st.text(max_size=4), inner, max_size=3)
        | st.tuples(inner)
    ),
    max_leaves=6,
)


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(source=_SOURCE, values=st.dictionaries(_NAMES, _VALUE))
def test_it_renders_or_fails_exactly_as_jinja2(source: str, values: dict[str, Any]) -> None:
    template = compile_template(source, origin="/messages/0/content", file="spec.yaml")
    variables = {name: values.get(name, "filler") for name in template.variables}
    fast, slow = _both(template, variables)
    assert fast == slow


def test_a_text_past_the_budget_is_refused_as_jinja2_refuses_it() -> None:
    template = compile_template("a\nb {{ x }} c", origin="/messages/1/content")
    fast, slow = _both(template, {"x": "y" * MAX_OUTPUT})
    assert fast == slow and isinstance(fast, tuple)


def test_a_value_that_cannot_be_printed_is_placed_on_its_line() -> None:
    template = compile_template("first line\nsecond {{ x }}\n", origin="/messages/0/content")
    fast, slow = _both(template, {"x": object()})
    assert fast == slow
    assert isinstance(fast, tuple) and fast[2] == [2]


@pytest.mark.parametrize(
    "source",
    [
        "{{ x | upper }}",
        "{{ x.y }}",
        "{{ x ~ 'a' }}",
        "{% if x %}a{% endif %}",
        "{% for i in x %}{{ i }}{% endfor %}",
        "{{ 'const' }}",
        "{{ range }}",  # a global, not a variable
    ],
)
def test_anything_more_than_names_is_left_to_jinja2(source: str) -> None:
    assert compile_template(source, origin="t")._parts is None


def test_the_example_prompt_takes_the_fast_path() -> None:
    template = compile_template(
        "Tell me about {{ city }}: its country, its population and its best-known landmarks.\n",
        origin="/messages/1/content",
    )
    assert template._parts is not None
    assert template.render({"city": "Paris"}).startswith("Tell me about Paris: its country")
