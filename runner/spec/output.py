"""A spec's `output:` block: the schema inline or in a JSON file inside the repository (parsed
once per version of the file), checked against its meta-schema and OpenAI's strict mode.

It reads schema files but never YAML, and reports into the spec's `Doc`; it never fetches a
schema or follows a path outside the root it is given.
"""

from __future__ import annotations

import functools
import json
import re
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from runner.schema.strict import strict_mode_issues
from runner.schema.validator import check_schema
from runner.schema.wording import value_kind
from runner.spec.model import OutputConfig, copy_json
from runner.spec.yamldoc import MAX_DEPTH

if TYPE_CHECKING:
    from runner.spec.yamldoc import Doc

__all__ = ["check_output"]


def check_output(doc: Doc, spec: Mapping[str, Any], path: Path, root: Path) -> OutputConfig | None:
    """Resolve and check the output schema of the spec at `path`; None when there is none or
    it cannot be used (the reason is in `doc.problems`)."""
    output = spec.get("output")
    if not isinstance(output, dict):
        return None
    value = output.get("schema")
    strict = output.get("strict", OutputConfig.strict) is not False
    if isinstance(value, str):
        loaded = _load_schema_file(doc, path, root, value)
        if loaded is None:
            return None
        schema, schema_path = loaded
    elif isinstance(value, dict):
        schema, schema_path = value, None
    else:
        return None
    meta = check_schema(schema)
    # Strict mode's rules bind only a schema sent as json_schema.
    sent_as_schema = output.get("mode", OutputConfig.mode) in ("json_schema", "auto")
    for issue in meta or (strict_mode_issues(schema) if strict and sent_as_schema else []):
        if schema_path is None:  # inline: point at the offending node itself
            doc.problem("/output/schema" + issue.pointer, f"output.schema: {issue}")
        else:
            doc.problem("/output/schema", f"output.schema: {value}: {issue}")
    name = output.get("name")
    if not isinstance(name, str):
        base = str(spec.get("name") or path.stem)
        name = re.sub(r"[^a-zA-Z0-9_-]", "_", base)[:64] or "output"
    repair = output.get("repair", OutputConfig.repair) is True
    mode = str(output.get("mode") or OutputConfig.mode)
    return OutputConfig(schema, schema_path, strict, repair, name, mode)


def _load_schema_file(
    doc: Doc, path: Path, root: Path, value: str
) -> tuple[dict[str, Any], Path] | None:
    if Path(value).is_absolute():
        doc.problem(
            "/output/schema",
            f"output.schema: {value} is an absolute path; give a path relative to the spec",
        )
        return None
    target = (path.parent / value).resolve()
    if not target.is_relative_to(root):
        doc.problem("/output/schema", f"output.schema: {value} {_outside(root)}")
        return None
    try:
        schema = _read_json_schema(target)
    except FileNotFoundError:
        doc.problem("/output/schema", f"output.schema: {value} does not exist")
        return None
    except ValueError as exc:
        doc.problem("/output/schema", f"output.schema: {value}: {exc}")
        return None
    except OSError as exc:
        reason = exc.strerror or str(exc)
        doc.problem("/output/schema", f"output.schema: cannot read {value}: {reason}")
        return None
    return copy_json(schema), target  # the parsed file is cached: hand out a copy


def _outside(root: Path) -> str:
    """Why a schema path past `root` is refused, and what to do, for the way `root` was found
    (see runner.spec.load.project_root): a git work tree, a project folder, or neither."""
    if (root / ".git").exists():
        return (
            f"leads outside the repository ({root}, the spec's git work tree); keep schemas "
            "inside it"
        )
    markers = [name for name in ("runner.yaml", "pyproject.toml") if (root / name).is_file()]
    if markers:
        return (
            f"leads outside the project ({root}, the folder that holds {markers[0]}); keep "
            "schemas inside it"
        )
    return (
        f"leads outside {root}, the only folder a schema may come from here: the spec is in no "
        "git repository and no folder above it holds a runner.yaml or pyproject.toml. Mark the "
        "project's top folder (`git init` there, or a runner.yaml: `runner init` writes one), "
        "or keep the schema beside the spec"
    )


@functools.lru_cache(maxsize=256)
def _read_json_cached(path: Path, mtime_ns: int, size: int) -> dict[str, Any]:
    text = path.read_text(encoding="utf-8")
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ValueError(
            f"not valid JSON: {exc.msg} (line {exc.lineno}, column {exc.colno})"
        ) from exc
    except RecursionError as exc:
        raise ValueError(f"nested more than {MAX_DEPTH} levels deep") from exc
    if not isinstance(data, dict):
        raise ValueError(f"must hold a JSON object (a schema), not {value_kind(data)}")
    if _depth(data) > MAX_DEPTH:  # the checks that follow recurse: keep them in bounds
        raise ValueError(f"nested more than {MAX_DEPTH} levels deep")
    return data


def _depth(value: Any) -> int:
    """How deeply a JSON value nests (iteratively, so any depth can be measured)."""
    deepest, stack = 0, [(value, 1)]
    while stack:
        node, level = stack.pop()
        deepest = max(deepest, level)
        children = (
            node.values() if isinstance(node, dict) else node if isinstance(node, list) else ()
        )
        stack.extend((child, level + 1) for child in children)
    return deepest


def _read_json_schema(path: Path) -> dict[str, Any]:
    """A schema file's JSON object, parsed once per version of the file (shared: not mutated)."""
    stat = path.stat()
    try:
        return _read_json_cached(path, stat.st_mtime_ns, stat.st_size)
    except UnicodeDecodeError as exc:
        raise ValueError("not UTF-8 text") from exc
