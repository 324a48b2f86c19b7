"""Fuzzing the spec loader: random YAML documents and random mutations of the example specs go
in; what comes out is a PromptSpec or a SpecError whose every problem has a position — never
another exception, never a problem without a line and column."""

from __future__ import annotations

from pathlib import Path

import yaml
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from runner.errors import SpecError
from runner.spec import PromptSpec, load_spec

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = sorted((ROOT / "prompts").glob("*.yaml"))
FUZZ = settings(
    max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=12), inner, max_size=4)
    ),
    max_leaves=25,
)
spec_keys = st.sampled_from(
    ["name", "model", "params", "messages", "inputs", "output", "retry", "rate", "tools",
     "stream", "timeout", "deadline", "breaker", "tests", "provider", "ledger", "description"]
)  # fmt: skip


# Problems of the whole file, which have no line to point at.
WHOLE = {"the file is empty", "the file has no YAML content (only comments)"}


def load_or_problems(path: Path) -> PromptSpec | SpecError:
    try:
        return load_spec(path, root=path.parent)
    except SpecError as exc:
        assert exc.problems, "a SpecError must carry its problems"
        for problem in exc.problems:
            assert (problem.line >= 1 and problem.col >= 1) or problem.message in WHOLE, problem
            assert problem.file == str(path)
        return exc


@FUZZ
@given(doc=st.dictionaries(spec_keys | st.text(max_size=8), json_values, max_size=8))
@example(doc={"messages": [{"role": []}]})  # once a TypeError: a list looked up in a dict
@example(doc={"messages": [{"role": {"a": 1}, "content": "x"}]})
def test_random_documents(tmp_path_factory: object, doc: dict[str, object]) -> None:
    folder = Path(tmp_path_factory.mktemp("fuzz"))
    path = folder / "spec.yaml"
    path.write_text(yaml.safe_dump(doc, allow_unicode=True), encoding="utf-8")
    load_or_problems(path)


@FUZZ
@given(
    example=st.sampled_from(EXAMPLES),
    cuts=st.lists(
        st.tuples(st.integers(0, 10_000), st.integers(0, 40), st.text(max_size=6)), max_size=4
    ),
)
def test_mutated_examples(
    tmp_path_factory: object, example: Path, cuts: list[tuple[int, int, str]]
) -> None:
    """Bytes cut out of and pasted into the example specs: broken YAML, broken templates,
    broken schemas, half a key — each a positioned problem."""
    text = example.read_text(encoding="utf-8")
    for at, length, insert in cuts:
        at %= len(text) + 1
        text = text[:at] + insert + text[at + length :]
    folder = Path(tmp_path_factory.mktemp("fuzz"))
    (folder / "schemas").mkdir()
    for schema in (ROOT / "schemas").glob("*.json"):
        (folder / "schemas" / schema.name).write_bytes(schema.read_bytes())
    (folder / "prompts").mkdir()
    path = folder / "prompts" / example.name
    path.write_text(text, encoding="utf-8")
    try:
        load_spec(path, root=folder)
    except SpecError as exc:
        assert exc.problems
        # Every problem has a position; only "the file is empty" concerns the whole file.
        for problem in exc.problems:
            assert (problem.line >= 1 and problem.col >= 1) or problem.message in WHOLE, problem


def test_an_unmutated_example_loads() -> None:
    """The mutation test above starts from specs that load."""
    assert all(isinstance(load_spec(p), PromptSpec) for p in EXAMPLES)
