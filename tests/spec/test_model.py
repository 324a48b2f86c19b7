"""runner.spec.model: a loaded spec's values: preparing variables, rendering messages,
durations."""

from __future__ import annotations

from typing import Any

import pytest
from _spec_helpers import SPECS, write_file

from runner.errors import InputsInvalid, TemplateError
from runner.spec.load import load_spec

# --- rendering ------------------------------------------------------------------------------------


def test_full_spec_renders_exactly_what_the_api_takes() -> None:
    spec = load_spec(SPECS / "full.yaml")
    vars = spec.prepare_vars({"city": "Paris"})
    assert vars == {
        "city": "Paris",
        "style": {"tone": "neutral", "length": 3},  # defaults, also inside a defaulted object
        "image": "https://example.com/a.png",
    }
    assert spec.render(vars) == [
        {
            "role": "developer",
            "name": "setup",
            "content": "You describe cities.\nTone: neutral; length: 3 sentences.\n",
        },
        {
            "role": "user",
            "content": [
                {"type": "text", "text": "Describe Paris."},
                {
                    "type": "image_url",
                    "image_url": {"url": "https://example.com/a.png", "detail": "low"},
                },
            ],
        },
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [
                {
                    "id": "call_1",
                    "type": "function",
                    "function": {"name": "lookup", "arguments": '{"city": "Paris"}'},
                }
            ],
        },
        {"role": "tool", "tool_call_id": "call_1", "content": "population 2.1M"},
    ]


def test_render_names_undefined_variables() -> None:
    write_file("spec.yaml", "model: x\nmessages:\n  - {role: user, content: '{{ city }}'}\n")
    spec = load_spec("spec.yaml")
    with pytest.raises(TemplateError) as info:
        spec.render({})
    assert info.value.names == ["city"]
    assert (
        str(info.value) == "spec.yaml:3:27: template /messages/0/content: undefined variable 'city'"
    )


def test_variable_values_are_never_rendered() -> None:
    write_file("spec.yaml", "model: x\nmessages:\n  - {role: user, content: 'Q: {{ q }}'}\n")
    spec = load_spec("spec.yaml")
    payload = "{{ ().__class__.__base__.__subclasses__() }}"
    assert spec.render({"q": payload}) == [{"role": "user", "content": f"Q: {payload}"}]


# --- variables ------------------------------------------------------------------------------------


def _inputs_spec() -> Any:
    write_file(
        "spec.yaml",
        "model: x\ninputs:\n  type: object\n  properties:\n    city: {type: string, minLength: 1}\n"
        "    opts:\n      type: object\n      properties: {n: {type: integer, default: 2}}\n"
        "  required: [city]\n  additionalProperties: false\n"
        "messages:\n  - {role: user, content: '{{ city }}{{ opts }}'}\n",
    )
    return load_spec("spec.yaml")


def test_prepare_vars_applies_defaults_into_present_objects() -> None:
    spec = _inputs_spec()
    given = {"city": "Paris", "opts": {}}
    assert spec.prepare_vars(given) == {"city": "Paris", "opts": {"n": 2}}
    assert given == {"city": "Paris", "opts": {}}  # the caller's mapping is left alone
    assert spec.prepare_vars({"city": "Paris"}) == {"city": "Paris"}


def test_prepare_vars_reports_every_error() -> None:
    spec = _inputs_spec()
    with pytest.raises(InputsInvalid) as info:
        spec.prepare_vars({"city": "", "opts": {"n": "2"}, "extra": 1})
    assert info.value.errors == [
        "/city: must not be empty",
        "/extra: unknown key 'extra'",
        "/opts/n: expected an integer, got a string",
    ]
    assert str(info.value) == (
        "spec.yaml: the variables do not match the spec:\n  /city: must not be empty\n"
        "  /extra: unknown key 'extra'\n  /opts/n: expected an integer, got a string"
    )
    assert info.value.exit_code == 2


def test_without_inputs_every_template_variable_is_required() -> None:
    write_file("spec.yaml", "model: x\nmessages:\n  - {role: user, content: '{{ b }}{{ a }}'}\n")
    spec = load_spec("spec.yaml")
    assert spec.prepare_vars({"a": 1, "b": [2], "c": 3}) == {"a": 1, "b": [2], "c": 3}
    with pytest.raises(InputsInvalid) as info:
        spec.prepare_vars({"b": 1})
    assert info.value.errors == ["/: missing variable 'a' (used by the templates)"]
