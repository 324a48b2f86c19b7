"""json_value_issues checks a flat row of plain values without its walk: the answer must be the
walk's for every row, the rows it refuses included."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from runner.spec import values


class Text(str):
    pass


scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=6),
    st.sampled_from(["\ud800", "caf\u00e9", "x\udfff", Text("sub"), b"bytes", 1j, (1, 2)]),
)
keys = st.one_of(st.text(max_size=4), st.sampled_from(["\ud800", 3, None, Text("k")]))


def _walked(variables: Any, monkeypatch: pytest.MonkeyPatch) -> list[str]:
    with monkeypatch.context() as m:
        m.setattr(values, "_flat_and_plain", lambda _: False)
        return values.json_value_issues(variables)


@settings(max_examples=400, deadline=None)
@given(st.dictionaries(keys, scalars, max_size=5))
def test_the_fast_path_answers_as_the_walk(variables: dict[Any, Any]) -> None:
    with pytest.MonkeyPatch.context() as monkeypatch:
        assert values.json_value_issues(variables) == _walked(variables, monkeypatch)


@pytest.mark.parametrize(
    "bad",
    [float("nan"), float("inf"), 2**64, "\ud800", b"x", {1, 2}, 1j],
)
def test_a_row_with_a_value_json_cannot_carry_is_refused(bad: Any) -> None:
    assert values.json_value_issues({"city": "Paris", "bad": bad})


def test_a_plain_row_is_accepted() -> None:
    assert (
        values.json_value_issues({"city": "Paris", "n": 3, "x": 0.5, "ok": True, "no": None}) == []
    )
