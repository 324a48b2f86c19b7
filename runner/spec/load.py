"""Prompt specs from files: `load_spec` reads the YAML (runner.spec.yamldoc), checks it
(runner.spec.check) and builds a frozen `PromptSpec` (runner.spec.model), with every problem of a
file reported as `file:line:col: message`; also `check_paths`, --var values and runner.yaml.

It reads files but never the network, the environment or the current directory; it imports
neither yaml nor jsonschema (runner.spec.yamldoc and runner.schema.validator own them).
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from runner.errors import ConfigError, Problem, SpecError
from runner.schema.validator import compile_validator, packaged_schema
from runner.schema.wording import nearest, value_kind
from runner.spec.check import CheckedSpec, check_spec, schema_problems
from runner.spec.model import (
    TIMEOUT_DEFAULT,
    BreakerConfig,
    BudgetConfig,
    LedgerConfig,
    MessageTemplate,
    Part,
    PromptSpec,
    ProviderConfig,
    RateConfig,
    RetryConfig,
    Variant,
    duration_or,
)
from runner.spec.values import json_value_issues, surrogate_problem
from runner.spec.yamldoc import (
    as_dict,
    as_list,
    load_document,
    ordered_problems,
    parse_yaml,
    read_bytes,
)

if TYPE_CHECKING:
    from runner.spec.templates import Template

__all__ = [
    "ProjectConfig",
    "check_paths",
    "find_root",
    "load_project_config",
    "load_spec",
    "load_vars_file",
    "parse_var_args",
    "spec_from_data",
]

T = TypeVar("T")

CONFIG_SCHEMA = "runner-config.schema.json"
PROJECT_CONFIG_NAMES = ("runner.yaml", "runner.yml")


# --- one spec ---------------------------------------------------------------------------------


def find_root(start: Path) -> Path | None:
    """The git work tree that contains `start` (a directory), found by walking up for `.git`."""
    here = start.resolve()
    for folder in (here, *here.parents):
        if (folder / ".git").exists():
            return folder
    return None


PROJECT_MARKERS = ("runner.yaml", "pyproject.toml")


def project_root(folder: Path) -> Path:
    """The folder a spec in `folder` belongs to: its git work tree; outside git, the nearest
    folder up that holds a runner.yaml or pyproject.toml (a copy of a project without .git);
    else `folder` itself."""
    found = find_root(folder)
    if found is not None:
        return found
    here = folder.resolve()
    for candidate in (here, *here.parents):
        if any((candidate / marker).is_file() for marker in PROJECT_MARKERS):
            return candidate
    return here


def load_spec(
    path: str | os.PathLike[str], *, root: Path | None = None, case_vars_fatal: bool = True
) -> PromptSpec:
    """Load and check a spec. Raise SpecError carrying every problem of the file.

    `root` bounds where an output schema path may lead. By default it is the spec's project
    folder (`project_root`): never the current directory, so a spec loads the same from
    wherever it is run. With `case_vars_fatal=False` (`runner test`), a test case whose vars
    break `inputs` does not stop the load: that case fails alone when it runs, with the same
    reason."""
    file = os.fspath(path)
    spec_path = Path(file)
    doc, data = load_document(file, spec_path, "a spec")
    bound = (root or project_root(spec_path.resolve().parent)).resolve()
    checked = check_spec(doc, spec_path, bound)
    if not case_vars_fatal:
        doc.problems[:] = [p for p in doc.problems if not _case_vars_problem(p)]
    if doc.problems:
        raise SpecError(ordered_problems(doc.problems))
    return _build(doc.value, spec_path, hashlib.sha256(data).hexdigest(), checked, doc.positions)


def spec_from_data(data: Mapping[str, Any], *, path: Path) -> PromptSpec:
    """A spec built in memory (as `runner probe` builds its own), checked exactly as a file's
    would be. `path` names it in messages and in the ledger; nothing is read from it, and an
    output schema must be inline. Raise SpecError carrying every problem."""
    text = json.dumps(data, ensure_ascii=False, indent=1).encode()  # JSON is YAML
    doc = parse_yaml(str(path), text)
    if not doc.problems and not isinstance(doc.value, dict):
        raise TypeError("spec_from_data needs a mapping")
    checked = check_spec(doc, path, path.parent)
    if doc.problems:
        raise SpecError(ordered_problems(doc.problems))
    return _build(doc.value, path, hashlib.sha256(text).hexdigest(), checked, doc.positions)


# Where runner.spec.testcases reports a case's vars that break `inputs` (or lack a variable).
_CASE_VARS_POINTER = re.compile(r"/tests/\d+(/vars(/.*)?)?")


def _case_vars_problem(problem: Problem) -> bool:
    return bool(_CASE_VARS_POINTER.fullmatch(problem.pointer)) and problem.message.startswith(
        "test '"
    )


def _build(
    spec: dict[str, Any],
    path: Path,
    sha256: str,
    checked: CheckedSpec,
    positions: Mapping[str, tuple[int, int]],
) -> PromptSpec:
    """The PromptSpec of a spec that passed every check."""
    provider = as_dict(spec.get("provider"))
    retry = as_dict(spec.get("retry"))
    backoff = as_dict(retry.get("backoff"))
    rate = as_dict(spec.get("rate"))
    breaker = as_dict(spec.get("breaker"))
    messages = tuple(
        _message(checked, positions, i, m)
        for i, m in enumerate(spec["messages"])
        if isinstance(m, dict)
    )
    variables = frozenset().union(*(m.variables for m in messages))
    return PromptSpec(
        path=path,
        name=str(spec.get("name") or path.stem),
        description=spec.get("description"),
        model=spec["model"],
        provider=_given(
            ProviderConfig,
            base_url=provider.get("base_url"),
            api_key_env=provider.get("api_key_env"),
            api=provider.get("api"),
            organization=provider.get("organization"),
            project=provider.get("project"),
            headers=dict(as_dict(provider.get("headers"))),
        ),
        params=dict(as_dict(spec.get("params"))),
        inputs=spec.get("inputs"),
        messages=messages,
        output=checked.output,
        tools=tuple(as_list(spec.get("tools"))),
        tool_choice=spec.get("tool_choice"),
        stream=spec.get("stream") is True,
        timeout=duration_or(spec.get("timeout"), TIMEOUT_DEFAULT) or TIMEOUT_DEFAULT,
        deadline=duration_or(spec.get("deadline"), None),
        retry=_given(
            RetryConfig,
            attempts=retry.get("attempts"),
            initial=duration_or(backoff.get("initial"), None),
            max=duration_or(backoff.get("max"), None),
            multiplier=None if backoff.get("multiplier") is None else float(backoff["multiplier"]),
            jitter=backoff.get("jitter"),
            on=None if retry.get("on") is None else frozenset(retry["on"]),
            max_retry_after=duration_or(retry.get("max_retry_after"), None),
        ),
        rate=_given(
            RateConfig,
            rpm=rate.get("rpm"),
            tpm=rate.get("tpm"),
            concurrency=rate.get("concurrency"),
        ),
        breaker=_given(
            BreakerConfig,
            failures=breaker.get("failures"),
            cooldown=duration_or(breaker.get("cooldown"), None),
        ),
        ledger=_given(LedgerConfig, content=as_dict(spec.get("ledger")).get("content")),
        tests=checked.tests,
        sha256=sha256,
        variables=variables,
        positions=dict(positions),
        budget=BudgetConfig(as_dict(spec.get("budget")).get("max_cost_usd")),
        variants=tuple(
            Variant.named(v.get("model"), as_dict(v.get("params")), v.get("name"))
            for v in map(as_dict, as_list(spec.get("variants")))
        ),
    )


def _given(cls: Callable[..., T], **values: Any) -> T:
    """Build a config dataclass from the values the spec gave; the rest are its defaults (the
    spec schema's, applied in one place: the dataclass)."""
    return cls(**{key: value for key, value in values.items() if value is not None})


def _message(
    checked: CheckedSpec, positions: Mapping[str, tuple[int, int]], i: int, data: dict[str, Any]
) -> MessageTemplate:
    at = f"/messages/{i}"
    content = data.get("content")
    body: Template | tuple[Part, ...] | None
    if isinstance(content, str):
        body = checked.templates[f"{at}/content"]
    elif isinstance(content, list):
        body = tuple(
            Part(
                part,
                checked.templates.get(f"{at}/content/{j}/text"),
                checked.templates.get(f"{at}/content/{j}/image_url/url"),
            )
            for j, part in enumerate(content)
        )
    else:
        body = None
    extra = {k: v for k, v in data.items() if k not in ("role", "content", "name")}
    line = nearest(positions, at)[0]
    return MessageTemplate(data["role"], body, data.get("name"), extra, at, line)


# --- many files -------------------------------------------------------------------------------


def check_paths(
    paths: Sequence[str | os.PathLike[str]], *, root: Path | None = None
) -> list[Problem]:
    """Check spec files, and every *.yaml / *.yml under directories (hidden ones skipped);
    files named runner.yaml or runner.yml are checked as the project configuration.
    Return every problem found."""
    problems: list[Problem] = []
    for given in paths:
        name = os.fspath(given)
        path = Path(name)
        if path.is_dir():
            files = _spec_files(name)
            if not files:
                problems.append(Problem(name, 0, 0, "no spec files (*.yaml, *.yml) here"))
        elif path.exists():
            files = [name]
        else:
            problems.append(Problem(name, 0, 0, "no such file or directory"))
            continue
        for file in files:
            try:
                if Path(file).name in PROJECT_CONFIG_NAMES:
                    load_project_config(file)
                else:
                    load_spec(file, root=root)
            except SpecError as exc:
                problems.extend(exc.problems)
    return problems


def _spec_files(directory: str) -> list[str]:
    found: list[str] = []
    for folder, dirs, files in os.walk(directory):
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        found.extend(
            os.path.join(folder, f)
            for f in sorted(files)
            if f.endswith((".yaml", ".yml")) and not f.startswith(".")
        )
    return found


# --- variables from the command line ----------------------------------------------------------


def parse_var_args(args: Sequence[str]) -> dict[str, Any]:
    """Read `--var` values: `k=v` gives the string v, `k:=JSON` a typed value (httpie's
    convention). Later values win."""
    result: dict[str, Any] = {}
    for arg in args:
        key, sep, value = arg.partition("=")
        typed = key.endswith(":")
        key = key[:-1] if typed else key
        if surrogate_problem(key) is not None:
            raise ConfigError(
                f"--var {_shown(key)}: the name has {surrogate_problem(key)}; nothing was sent"
            )
        if not sep or not key.strip() or key != key.strip():
            raise ConfigError(f"--var {arg!r}: expected KEY=VALUE or KEY:=JSON")
        if typed:
            try:
                result[key] = json.loads(value, parse_constant=_no_constant)
            except json.JSONDecodeError as exc:
                raise ConfigError(
                    f"--var {key}: the value after ':=' is not JSON ({exc.msg} at column "
                    f"{exc.colno}); use {key}=... for a plain string"
                ) from exc
            except (ValueError, RecursionError) as exc:  # NaN, 5000-digit numbers, deep nesting
                raise ConfigError(
                    f"--var {key}: the value after ':=' cannot be used: {_why_not(exc)}; "
                    f"use {key}=... for a plain string"
                ) from exc
        else:
            result[key] = value
        issues = json_value_issues({key: result[key]})
        if issues:
            raise ConfigError(
                f"--var {key}: a value JSON cannot carry ({issues[0]}); nothing was sent"
            )
    return result


def _shown(text: str) -> str:
    """A text with lone surrogates, fit to print."""
    return text.encode("utf-8", "backslashreplace").decode("utf-8")


def _checked_vars(file: str, value: dict[str, Any]) -> dict[str, Any]:
    """A vars file's mapping, refused when a value cannot be carried as JSON (it names it)."""
    issues = json_value_issues(value)
    if issues:
        lines = "\n".join(f"  {issue}" for issue in issues)
        raise ConfigError(
            f"--vars-file {file}: values JSON cannot carry (nothing was sent):\n{lines}"
        )
    return value


def _no_constant(name: str) -> Any:
    """json.loads accepts NaN and Infinity, which JSON does not have: refuse them."""
    raise ValueError(f"{name} is not a JSON number (JSON has no NaN or infinity)")


def _why_not(exc: BaseException) -> str:
    if isinstance(exc, RecursionError):
        return "it is nested too deeply"
    text = str(exc)
    if "integer string conversion" in text:
        return "a number has too many digits"
    return text


def load_vars_file(path: str | os.PathLike[str]) -> dict[str, Any]:
    """Read a --vars-file: a mapping in a .yaml, .yml or .json file."""
    file = os.fspath(path)
    suffix = Path(file).suffix.lower()
    if suffix not in (".yaml", ".yml", ".json"):
        raise ConfigError(f"--vars-file {file}: expected a .yaml, .yml or .json file")
    try:
        if suffix == ".json":
            return _checked_vars(file, _json_vars(file))
        doc, _ = load_document(file, Path(file), "a vars file")
    except SpecError as exc:
        raise ConfigError(f"--vars-file {exc.message}") from exc
    return _checked_vars(file, dict(doc.value))


def _json_vars(file: str) -> dict[str, Any]:
    data = read_bytes(file, Path(file))
    try:
        value = json.loads(data.decode("utf-8-sig"), parse_constant=_no_constant)
    except UnicodeDecodeError as exc:
        raise ConfigError(f"--vars-file {file}: not UTF-8 text") from exc
    except json.JSONDecodeError as exc:
        raise ConfigError(
            f"--vars-file {file}:{exc.lineno}:{exc.colno}: invalid JSON: {exc.msg}"
        ) from exc
    except (ValueError, RecursionError) as exc:  # NaN, 5000-digit numbers, deep nesting
        raise ConfigError(f"--vars-file {file}: cannot be used: {_why_not(exc)}") from exc
    if not isinstance(value, dict):
        raise ConfigError(f"--vars-file {file}: must hold a mapping, not {value_kind(value)}")
    return value


# --- the project configuration (runner.yaml) --------------------------------------------------


@dataclass(frozen=True)
class ProjectConfig:
    """runner.yaml. `prices` maps model names or fnmatch globs, in file order, to
    `{input, output, cached_input?, context_window?}`: USD per million tokens as Decimal
    (only the keys the file sets), the context window as an int."""

    path: Path | None = None
    prices: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)


def _decimal(value: Any) -> Decimal:
    # repr of a float is its shortest round-trip text: 0.15 stays 0.15, not 0.1499999...
    return Decimal(repr(value)) if isinstance(value, float) else Decimal(value)


def load_project_config(path: str | os.PathLike[str]) -> ProjectConfig:
    """Load runner.yaml. Raise SpecError with every problem of the file."""
    file = os.fspath(path)
    doc, _ = load_document(file, Path(file), "runner.yaml")
    schema_problems(doc, compile_validator(packaged_schema(CONFIG_SCHEMA)), spec=False)
    if doc.problems:
        raise SpecError(ordered_problems(doc.problems))
    prices = {
        str(model): {k: v if k == "context_window" else _decimal(v) for k, v in entry.items()}
        for model, entry in as_dict(doc.value.get("prices")).items()
    }
    return ProjectConfig(Path(file), prices)
