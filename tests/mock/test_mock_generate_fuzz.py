"""Random schemas of OpenAI's strict subset into the mock's generator: every answer validates
(checked by python-jsonschema with formats), or the generator refuses the schema with a
ValueError — it never hangs and never answers with an invalid value."""

from __future__ import annotations

from random import Random
from typing import Any

import jsonschema
from hypothesis import given, settings
from hypothesis import strategies as st

from runner.mock import generate_instance
from runner.schema import strict_mode_issues

NAMES = st.text(alphabet="abcdefghijklmnopqrstuvwxyz_", min_size=1, max_size=10)
FORMATS = ["date-time", "date", "time", "email", "uuid", "hostname", "ipv4", "ipv6", "duration"]
PATTERNS = [r"^[A-Z]{3}$", r"^\d{2}-\d{4}$", r"^(yes|no)$", r"^[a-z]+@[a-z]+\.com$"]


def _strings() -> st.SearchStrategy[dict[str, Any]]:
    bounded = st.tuples(st.integers(0, 8), st.integers(0, 8)).map(
        lambda b: {"type": "string", "minLength": min(b), "maxLength": max(b)}
    )
    return st.one_of(
        st.just({"type": "string"}),
        bounded,
        st.sampled_from(FORMATS).map(lambda f: {"type": "string", "format": f}),
        st.sampled_from(PATTERNS).map(lambda p: {"type": "string", "pattern": p}),
        st.lists(NAMES, min_size=1, max_size=4, unique=True).map(lambda e: {"enum": e}),
    )


def _numbers() -> st.SearchStrategy[dict[str, Any]]:
    return st.one_of(
        st.tuples(st.integers(-1000, 1000), st.integers(0, 1000)).map(
            lambda b: {"type": "integer", "minimum": b[0], "maximum": b[0] + b[1]}
        ),
        st.just({"type": "number"}),
        st.integers(1, 10).map(lambda m: {"type": "integer", "multipleOf": m}),
        st.just({"type": "boolean"}),
        st.just({"type": ["string", "null"]}),
    )


def _objects(children: st.SearchStrategy[dict[str, Any]]) -> st.SearchStrategy[dict[str, Any]]:
    return st.dictionaries(NAMES, children, min_size=1, max_size=5).map(
        lambda props: {
            "type": "object",
            "properties": props,
            "required": sorted(props),
            "additionalProperties": False,
        }
    )


SCHEMAS = st.recursive(
    _strings() | _numbers(),
    lambda inner: (
        _objects(inner)
        | st.tuples(inner, st.integers(0, 3), st.integers(0, 3)).map(
            lambda t: {
                "type": "array",
                "items": t[0],
                "minItems": min(t[1:]),
                "maxItems": max(t[1:]),
            }
        )
    ),
    max_leaves=12,
)
ROOTS = _objects(SCHEMAS)


@settings(max_examples=120, deadline=None)
@given(schema=ROOTS, seed=st.integers(0, 2**32))
def test_answers_validate(schema: dict[str, Any], seed: int) -> None:
    assert strict_mode_issues(schema) == []  # the strategy stays inside the strict subset
    try:
        value = generate_instance(schema, Random(seed))
    except ValueError:
        return  # refused, said so: allowed
    jsonschema.validate(
        value, schema, format_checker=jsonschema.Draft202012Validator.FORMAT_CHECKER
    )
