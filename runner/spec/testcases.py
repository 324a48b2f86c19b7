"""A spec's `tests:` block: each case's variables against the spec's inputs (or its templates),
and each assertion's shape, giving the `TestCase`s a loaded spec carries.

It only checks what is written and reports into the spec's `Doc`; running the tests and
evaluating assertions belong elsewhere.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from runner.schema.validator import compile_validator
from runner.schema.wording import path_label, pointer_path
from runner.spec.judges import verdict_problem
from runner.spec.model import TestCase, apply_defaults, copy_json
from runner.spec.yamldoc import as_dict, as_list

if TYPE_CHECKING:
    from runner.spec.templates import Template
    from runner.spec.yamldoc import Doc

__all__ = ["check_tests"]

_PATH_CHECKS = (
    "equals",
    "not_equals",
    "min",
    "max",
    "min_items",
    "max_items",
    "contains",
    "matches",
    "one_of",
)
_PLAIN_CHECKS = (
    "schema_valid",
    "text_contains",
    "text_matches",
    "max_cost_usd",
    "max_tokens",
    "max_latency_ms",
    "judge",
)


def check_tests(
    doc: Doc,
    spec: Mapping[str, Any],
    templates: Mapping[str, Template],
    *,
    inputs_ok: bool,
    has_output: bool,
    path: Path | None = None,
    root: Path | None = None,
) -> tuple[TestCase, ...]:
    """Check the test cases of a spec and return them. `inputs_ok` says the inputs schema can
    check their variables; `has_output` that the spec has a usable output schema; `path` and
    `root` (the spec's file and the project) let a `judge:` be found and checked."""
    seen: dict[str, int] = {}
    cases: list[TestCase] = []
    for i, case in enumerate(as_list(spec.get("tests"))):
        if not isinstance(case, dict) or not isinstance(case.get("name"), str):
            continue
        name, at = case["name"], f"/tests/{i}"
        if name in seen:
            doc.problem(
                f"{at}/name",
                f"tests[{i}]: a second test named '{name}' (the first is tests[{seen[name]}])",
            )
        seen.setdefault(name, i)
        variables = case.get("vars", {})
        if isinstance(variables, dict):
            where = f"{at}/vars" if "vars" in case else at
            _check_case_vars(doc, spec, templates, inputs_ok, where, name, variables)
        expect = [a for a in as_list(case.get("expect")) if isinstance(a, dict)]
        for j, assertion in enumerate(as_list(case.get("expect"))):
            if isinstance(assertion, dict):
                _check_assertion(doc, f"{at}/expect/{j}", assertion, has_output)
                judge = assertion.get("judge")
                if isinstance(judge, str) and judge and path is not None and root is not None:
                    problem = verdict_problem(path, judge, root)
                    if problem is not None:
                        label = path_label(pointer_path(f"{at}/expect/{j}"))
                        doc.problem(f"{at}/expect/{j}/judge", f"{label}: judge {problem}")
        line = doc.at(at)[0]
        description = case.get("description")
        cases.append(
            TestCase(
                name,
                as_dict(variables),
                tuple(expect),
                line,
                description if isinstance(description, str) else None,
                case["skip"] if isinstance(case.get("skip"), str) else None,
                **_min_pass_rate(case),
            )
        )
    return tuple(cases)


def _check_case_vars(
    doc: Doc,
    spec: Mapping[str, Any],
    templates: Mapping[str, Template],
    inputs_ok: bool,
    at: str,
    name: str,
    variables: dict[str, Any],
) -> None:
    inputs = spec.get("inputs")
    if isinstance(inputs, dict):
        if not inputs_ok:
            return
        prepared = copy_json(variables)
        apply_defaults(inputs, prepared)
        for issue in compile_validator(inputs).explain(prepared):
            doc.problem(at + issue.pointer, f"test '{name}': the vars do not match inputs: {issue}")
        return
    used: frozenset[str] = frozenset().union(*(t.variables for t in templates.values()))
    missing = sorted(used - variables.keys())
    if missing:
        names = ", ".join(f"'{m}'" for m in missing)
        doc.problem(at, f"test '{name}': no value for {names} (used by the templates)")


def _check_assertion(doc: Doc, at: str, assertion: dict[str, Any], has_output: bool) -> None:
    checks = [k for k in _PATH_CHECKS if k in assertion]
    plain = [k for k in _PLAIN_CHECKS if k in assertion]
    label = path_label(pointer_path(at))
    if "path" in assertion:
        if len(checks) != 1 or plain:
            doc.problem(
                at,
                f"{label}: an assertion with 'path' needs exactly one of {', '.join(_PATH_CHECKS)}",
            )
    elif checks:
        doc.problem(at, f"{label}: '{checks[0]}' needs a 'path' to check")
    elif len(plain) != 1:
        doc.problem(
            at, f"{label}: an assertion checks one thing: one of {', '.join(_PLAIN_CHECKS)}"
        )
    if "schema_valid" in assertion and not has_output:
        doc.problem(f"{at}/schema_valid", f"{label}: schema_valid needs an output schema")


def _min_pass_rate(case: dict[str, Any]) -> dict[str, float]:
    """The case's min_pass_rate when it sets one (the schema checked it is within 0 and 1)."""
    value = case.get("min_pass_rate")
    if isinstance(value, bool) or not isinstance(value, int | float):
        return {}
    return {"min_pass_rate": float(value)}
