"""The `judge:` expectation of a test case: where the judge spec is (relative to the spec that
names it, else to the project root) and whether its output schema gives a verdict (a boolean
`pass` and a string `reason`, both required). It reads the judge's file and output schema but
never runs it: runner.testing.judge does.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from runner.errors import SpecError
from runner.spec.output import check_output
from runner.spec.yamldoc import load_document

__all__ = ["judge_path", "verdict_problem"]


def judge_path(spec_path: Path, value: str, root: Path) -> Path | None:
    """The judge spec a case names: `value` relative to the spec's folder, else to `root`;
    None when neither exists or the path leads outside `root`."""
    if Path(value).is_absolute():
        return None
    for base in (spec_path.parent, root):
        target = (base / value).resolve()
        if target.is_file() and target.is_relative_to(root.resolve()):
            return target
    return None


def verdict_problem(spec_path: Path, value: str, root: Path) -> str | None:
    """Why the judge a case names cannot give a verdict, or None when it can."""
    target = judge_path(spec_path, value, root)
    if target is None:
        return (
            f"{value} is not a spec file inside the project (a path relative to this spec, or "
            "to the project root)"
        )
    try:
        doc, _ = load_document(str(target), target, "a spec")
    except SpecError as exc:
        return f"{value} cannot be read: {exc.problems[0].message if exc.problems else exc}"
    if not isinstance(doc.value, dict):
        return f"{value} is not a spec"
    output = check_output(doc, doc.value, target, root.resolve())
    if output is None:
        return (
            f"{value} has no usable output schema; a judge's output must have a boolean "
            "'pass' and a string 'reason'"
        )
    missing = _verdict_fields_missing(output.schema)
    if missing:
        return (
            f"{value}: its output schema must have a required boolean 'pass' and a required "
            f"string 'reason' ({'; '.join(missing)})"
        )
    return None


def _verdict_fields_missing(schema: Mapping[str, Any]) -> list[str]:
    properties = schema.get("properties")
    properties = properties if isinstance(properties, dict) else {}
    required = schema.get("required")
    required = required if isinstance(required, list) else []
    missing = []
    for name, kind in (("pass", "boolean"), ("reason", "string")):
        prop = properties.get(name)
        if not isinstance(prop, dict):
            missing.append(f"no '{name}' property")
        elif prop.get("type") != kind:
            missing.append(f"'{name}' is not of type {kind}")
        elif name not in required:
            missing.append(f"'{name}' is not required")
    return missing
