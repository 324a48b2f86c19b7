"""Prompt specs: YAML -> positioned values -> JSON Schema and semantic checks -> a frozen
`PromptSpec`, with every problem of a file reported as `file:line:col: message`.

This is the only module that imports yaml. It reads files but never the network, the
environment or the current directory; jsonschema work goes through runner.schemas and
Jinja2 work through runner.templating.
"""

from __future__ import annotations

import difflib
import functools
import hashlib
import json
import os
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

import yaml

from .errors import ConfigError, InputsInvalid, Problem, SpecError, TemplateError
from .records import Message
from .schemas import (
    SchemaValidator,
    check_schema,
    compile_validator,
    json_pointer,
    packaged_schema,
    strict_mode_issues,
    value_kind,
)
from .templating import Locate, Template, compile_template

__all__ = [
    "BreakerConfig",
    "LedgerConfig",
    "MessageTemplate",
    "OutputConfig",
    "ProjectConfig",
    "PromptSpec",
    "ProviderConfig",
    "RateConfig",
    "RetryConfig",
    "TestCase",
    "check_paths",
    "find_root",
    "load_project_config",
    "load_spec",
    "load_vars_file",
    "parse_duration",
    "parse_var_args",
]

SPEC_SCHEMA = "prompt-spec.schema.json"
CONFIG_SCHEMA = "runner-config.schema.json"
MAX_FILE_BYTES = 4 * 1024 * 1024
MAX_NODES = 100_000  # after alias expansion: a "billion laughs" document stops here
MAX_DEPTH = 64
_HINTS = {"duration": "use e.g. 250ms, 30s, 2m, 1h, or a number of seconds"}
_RETRY_KINDS = ("rate_limit", "server_error", "timeout", "connection", "invalid_output")
_DURATION = re.compile(r"^(\d+(?:\.\d+)?)(ms|s|m|h)$")
_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0}
# Keys that look like parameters but have a field of their own in a spec.
_NOT_PARAMS = {
    "messages": "write the conversation under the top-level 'messages'",
    "model": "use the top-level 'model'",
    "stream": "use the top-level 'stream'",
    "stream_options": "runner sets stream_options itself",
    "tools": "use the top-level 'tools'",
    "tool_choice": "use the top-level 'tool_choice'",
    "response_format": "use 'output' (schema, strict)",
    "functions": "use the top-level 'tools' (functions is deprecated)",
    "function_call": "use the top-level 'tool_choice' (function_call is deprecated)",
}
_SECRET_HEADERS = {"authorization", "api-key", "x-api-key", "proxy-authorization", "cookie"}


# --- values -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class ProviderConfig:
    """Where requests go. None means "the OPENAI_* environment variables, else OpenAI"."""

    base_url: str | None = None
    api_key_env: str = "OPENAI_API_KEY"
    organization: str | None = None
    project: str | None = None
    headers: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class OutputConfig:
    """The output schema every reply must satisfy, resolved and checked."""

    schema: dict[str, Any]
    schema_path: Path | None
    strict: bool = True
    repair: bool = False
    name: str = "output"


@dataclass(frozen=True)
class RetryConfig:
    """One retry budget for every kind of failure. Durations are in seconds."""

    attempts: int = 3
    initial: float = 1.0
    max: float = 20.0
    multiplier: float = 2.0
    jitter: bool = True
    on: frozenset[str] = frozenset(_RETRY_KINDS)
    max_retry_after: float = 60.0


@dataclass(frozen=True)
class RateConfig:
    rpm: int | None = None
    tpm: int | None = None
    concurrency: int = 8


@dataclass(frozen=True)
class BreakerConfig:
    failures: int = 5
    cooldown: float = 60.0


@dataclass(frozen=True)
class LedgerConfig:
    """`content: false` keeps messages, variables and outputs out of the ledger."""

    content: bool = True


@dataclass(frozen=True)
class TestCase:
    """One `tests:` entry. `expect` holds the assertions as written; `line` is where it starts."""

    __test__ = False  # not a pytest class, whatever its name

    name: str
    vars: Mapping[str, Any]
    expect: tuple[dict[str, Any], ...]
    line: int
    description: str | None = None


@dataclass(frozen=True)
class _Part:
    data: Mapping[str, Any]  # the part as written
    text: Template | None = None  # type text: its text
    url: Template | None = None  # type image_url: its url


@dataclass(frozen=True)
class MessageTemplate:
    """One message of a spec: its role, its content template(s) and the fields passed as written
    (tool_calls, tool_call_id, function_call, refusal)."""

    role: str
    content: Template | tuple[_Part, ...] | None
    name: str | None
    extra: Mapping[str, Any]
    pointer: str
    line: int

    @property
    def variables(self) -> frozenset[str]:
        if isinstance(self.content, Template):
            return self.content.variables
        found: set[str] = set()
        for part in self.content or ():
            for template in (part.text, part.url):
                if template is not None:
                    found |= template.variables
        return frozenset(found)

    def render(self, vars: Mapping[str, Any]) -> Message:
        """The message as the API takes it, its templates rendered with `vars`."""
        message: Message = {"role": self.role}
        if isinstance(self.content, Template):
            message["content"] = self.content.render(vars)
        elif self.content is None:
            message["content"] = None
        else:
            message["content"] = [_render_part(part, vars) for part in self.content]
        if self.name is not None:
            message["name"] = self.name
        message.update(_copy(self.extra))
        return message


def _render_part(part: _Part, vars: Mapping[str, Any]) -> dict[str, Any]:
    data: dict[str, Any] = _copy(part.data)
    if part.text is not None:
        data["text"] = part.text.render(vars)
    if part.url is not None:
        data["image_url"] = {**data["image_url"], "url": part.url.render(vars)}
    return data


def _copy(value: Any) -> Any:
    """A deep copy of JSON-shaped data (cheaper than copy.deepcopy)."""
    if isinstance(value, Mapping):
        return {k: _copy(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_copy(v) for v in value]
    return value


@dataclass(frozen=True)
class PromptSpec:
    """A loaded, fully checked spec. Durations are seconds; `params` holds only what the
    file sets, named as the API names them."""

    path: Path
    name: str
    description: str | None
    model: str
    provider: ProviderConfig
    params: Mapping[str, Any]
    inputs: dict[str, Any] | None
    messages: tuple[MessageTemplate, ...]
    output: OutputConfig | None
    tools: tuple[dict[str, Any], ...]
    tool_choice: str | dict[str, Any] | None
    stream: bool
    timeout: float
    deadline: float | None
    retry: RetryConfig
    rate: RateConfig
    breaker: BreakerConfig
    ledger: LedgerConfig
    tests: tuple[TestCase, ...]
    sha256: str
    variables: frozenset[str]
    positions: Mapping[str, tuple[int, int]] = field(default_factory=dict, repr=False)

    def position(self, pointer: str) -> tuple[int, int]:
        """The (line, column) of the node at a JSON pointer, or of its nearest ancestor."""
        return _nearest(self.positions, pointer)

    def prepare_vars(self, vars: Mapping[str, Any]) -> dict[str, Any]:
        """Apply the `inputs` defaults, then check the variables against `inputs`.

        Without `inputs`, every variable the templates use is required. Raise InputsInvalid
        with one "pointer: problem" line per error."""
        prepared = _copy(vars)
        if self.inputs is None:
            missing = sorted(self.variables - prepared.keys())
            errors = [f"/: missing variable '{name}' (used by the templates)" for name in missing]
        else:
            _apply_defaults(self.inputs, prepared)
            errors = [str(i) for i in compile_validator(self.inputs).explain(prepared)]
        if errors:
            lines = "\n".join(f"  {e}" for e in errors)
            raise InputsInvalid(
                f"{self.path}: the variables do not match the spec:\n{lines}", errors
            )
        return dict(prepared)

    def render(self, vars: Mapping[str, Any]) -> list[Message]:
        """The messages exactly as sent to the API. Raise TemplateError (positioned at the
        template's line in the spec) when a template cannot render."""
        return [message.render(vars) for message in self.messages]


def _nearest(positions: Mapping[str, tuple[int, int]], pointer: str) -> tuple[int, int]:
    while True:
        if pointer in positions:
            return positions[pointer]
        if not pointer:
            return (1, 1)
        pointer = pointer.rsplit("/", 1)[0]


def _apply_defaults(schema: Any, value: Any) -> None:
    """Fill in `default`s of absent properties, recursively into objects that are present."""
    if not isinstance(schema, Mapping) or not isinstance(value, dict):
        return
    properties = schema.get("properties")
    if not isinstance(properties, Mapping):
        return
    for name, sub in properties.items():
        if not isinstance(sub, Mapping):
            continue
        if name not in value and "default" in sub:
            value[name] = _copy(sub["default"])
        if name in value:
            _apply_defaults(sub, value[name])


def parse_duration(value: str | float) -> float:
    """Seconds in a duration: a number of seconds, or "250ms", "30s", "2m", "1h"."""
    if isinstance(value, bool):
        raise ValueError(f"not a duration: {value!r}")
    if isinstance(value, int | float):
        return float(value)
    match = _DURATION.match(value.strip())
    if not match:
        raise ValueError(f"not a duration: {value!r} (use e.g. 250ms, 30s, 2m, 1h)")
    return float(match[1]) * _UNITS[match[2]]


# --- YAML with positions ----------------------------------------------------------------------

_BaseLoader: type[yaml.SafeLoader] = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


class _Loader(_BaseLoader):  # type: ignore[valid-type,misc]
    """Safe YAML with YAML 1.2's core rules for plain scalars: `no`, `on`, `1:20` and dates
    stay strings; `.inf` and `.nan` too, since JSON has no such numbers."""

    yaml_implicit_resolvers: dict[Any, Any] = {}


_STR = "tag:yaml.org,2002:str"
_INT = "tag:yaml.org,2002:int"
_FLOAT = "tag:yaml.org,2002:float"
_BOOL = "tag:yaml.org,2002:bool"
_NULL = "tag:yaml.org,2002:null"
_SEQ = "tag:yaml.org,2002:seq"
_MAP = "tag:yaml.org,2002:map"
_MERGE = "tag:yaml.org,2002:merge"

_Loader.add_implicit_resolver(
    _BOOL, re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"), list("tTfF")
)
_Loader.add_implicit_resolver(
    _INT, re.compile(r"^(?:[-+]?[0-9]+|0o[0-7]+|0x[0-9a-fA-F]+)$"), list("-+0123456789")
)
_Loader.add_implicit_resolver(
    _FLOAT,
    re.compile(r"^[-+]?(?:\.[0-9]+|[0-9]+(?:\.[0-9]*)?)(?:[eE][-+]?[0-9]+)?$"),
    list("-+.0123456789"),
)
_Loader.add_implicit_resolver(_NULL, re.compile(r"^(?:~|null|Null|NULL|)$"), ["~", "n", "N", ""])
_Loader.add_implicit_resolver(_MERGE, re.compile(r"^<<$"), ["<"])


# The line breaks of YAML 1.1, which libyaml follows (str.splitlines knows more).
_LINE_BREAKS = re.compile("\r\n|[\r\n\x85\u2028\u2029]")


class _Stop(Exception):
    """Ends the conversion of a document that cannot be read any further."""


@dataclass
class _Doc:
    """A YAML document turned into JSON-shaped values, with the position of every node."""

    file: str
    lines: list[str]
    value: Any = None
    positions: dict[str, tuple[int, int]] = field(default_factory=dict)
    keys: dict[str, tuple[int, int]] = field(default_factory=dict)
    scalars: dict[str, yaml.ScalarNode] = field(default_factory=dict)
    problems: list[Problem] = field(default_factory=list)
    nodes: int = 0

    def problem(self, pointer: str, message: str, *, key: bool = False) -> None:
        """Record a problem at a node (at its key, when `key` and the node has one)."""
        line, col = (key and self.keys.get(pointer)) or self.at(pointer)
        self.problems.append(Problem(self.file, line, col, message, pointer))

    def at(self, pointer: str) -> tuple[int, int]:
        return _nearest(self.positions, pointer)


def _mark(node: yaml.Node) -> tuple[int, int]:
    return node.start_mark.line + 1, node.start_mark.column + 1


def _tag_name(tag: str) -> str:
    return "!!" + tag[len("tag:yaml.org,2002:") :] if tag.startswith("tag:yaml.org,2002:") else tag


def _tag_refused(tag: str) -> str:
    return (
        f"tag {_tag_name(tag)} is not allowed: a spec holds plain data (strings, numbers, "
        "true/false, null, lists and mappings)"
    )


def _read_text(doc: _Doc, data: bytes) -> str | None:
    """Decode a file, or record why it is not a YAML text file."""
    if not data.strip():
        doc.problems.append(Problem(doc.file, 0, 0, "the file is empty"))
        return None
    if b"\x00" in data:
        doc.problems.append(Problem(doc.file, 0, 0, "a binary file, not a YAML text file"))
        return None
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        col = exc.start - (data.rfind(b"\n", 0, exc.start) + 1) + 1
        bad = data[exc.start : exc.start + 1].hex()
        message = f"not UTF-8 text (byte 0x{bad}); save the file as UTF-8"
        doc.problems.append(Problem(doc.file, line, col, message))
        return None


def _yaml_problem(doc: _Doc, text: str, exc: yaml.YAMLError) -> None:
    if isinstance(exc, yaml.MarkedYAMLError) and exc.problem_mark is not None:
        if exc.context == "expected a single document in the stream":
            line, col = exc.problem_mark.line + 1, exc.problem_mark.column + 1
            message = "a spec is one YAML document; remove the second one (after '---')"
            doc.problems.append(Problem(doc.file, line, col, message))
            return
        mark = exc.problem_mark
        what = f"{exc.context}: {exc.problem}" if exc.context else str(exc.problem)
        doc.problems.append(
            Problem(doc.file, mark.line + 1, mark.column + 1, f"invalid YAML: {what}")
        )
    elif isinstance(exc, yaml.reader.ReaderError):
        pos = min(max(exc.position, 0), len(text))
        line = text.count("\n", 0, pos) + 1
        col = pos - (text.rfind("\n", 0, pos) + 1) + 1
        message = f"invalid YAML: character #x{exc.character:04x} is not allowed ({exc.reason})"
        doc.problems.append(Problem(doc.file, line, col, message))
    else:
        doc.problems.append(Problem(doc.file, 1, 1, f"invalid YAML: {exc}"))


def _parse_yaml(file: str, data: bytes) -> _Doc:
    """Compose one YAML document and convert it; problems land in `doc.problems`."""
    doc = _Doc(file, [])
    text = _read_text(doc, data)
    if text is None:
        return doc
    doc.lines = _LINE_BREAKS.split(text)
    loader = _Loader(text)
    try:
        root = loader.get_single_node()
    except yaml.YAMLError as exc:
        _yaml_problem(doc, text, exc)
        return doc
    finally:
        loader.dispose()
    if root is None:
        doc.problems.append(Problem(file, 0, 0, "the file has no YAML content (only comments)"))
        return doc
    try:
        doc.value = _convert(doc, root, "", 0, set())
    except _Stop:
        doc.value = None
    return doc


def _convert(doc: _Doc, node: yaml.Node, pointer: str, depth: int, active: set[int]) -> Any:
    doc.nodes += 1
    if doc.nodes > MAX_NODES:
        # Point at the top-level entry whose value multiplies, not at some node deep inside.
        top = "/" + pointer.split("/")[1] if pointer else ""
        line, col = doc.keys.get(top) or _mark(node)
        message = (
            f"YAML aliases expand to more than {MAX_NODES} nodes "
            "(a 'billion laughs' document?); refusing to read further"
        )
        doc.problems.append(Problem(doc.file, line, col, message, top))
        raise _Stop
    doc.positions.setdefault(pointer, _mark(node))
    if isinstance(node, yaml.ScalarNode):
        doc.scalars[pointer] = node
        return _scalar(doc, node, pointer)
    if depth >= MAX_DEPTH:
        doc.problem(pointer, _say(pointer, f"nested more than {MAX_DEPTH} levels deep"))
        raise _Stop
    if id(node) in active:
        doc.problem(pointer, _say(pointer, "a YAML alias that contains itself"))
        return None
    if node.tag not in (_SEQ, _MAP):
        doc.problem(pointer, _say(pointer, _tag_refused(node.tag)))
        return None
    active.add(id(node))
    try:
        if isinstance(node, yaml.SequenceNode):
            return [
                _convert(doc, item, f"{pointer}/{i}", depth + 1, active)
                for i, item in enumerate(node.value)
            ]
        assert isinstance(node, yaml.MappingNode)
        return _mapping(doc, node, pointer, depth, active)
    finally:
        active.discard(id(node))


def _mapping(
    doc: _Doc, node: yaml.MappingNode, pointer: str, depth: int, active: set[int]
) -> dict[str, Any]:
    result: dict[str, Any] = {}
    seen: dict[str, tuple[int, int]] = {}
    for key_node, value_node in node.value:
        at = _mark(key_node)
        if key_node.tag == _MERGE:
            doc.problems.append(
                Problem(doc.file, *at, "merge keys ('<<') are not supported; write the keys out")
            )
            continue
        if not isinstance(key_node, yaml.ScalarNode):
            doc.problems.append(Problem(doc.file, *at, "a mapping key must be a plain value"))
            continue
        key = _key_text(doc, key_node)
        child = f"{pointer}/{key.replace('~', '~0').replace('/', '~1')}"
        if key in seen:
            first = seen[key][0]
            message = f"duplicate key '{key}' (first defined on line {first})"
            doc.problems.append(Problem(doc.file, *at, message, child))
            continue
        seen[key] = at
        doc.keys[child] = at
        result[key] = _convert(doc, value_node, child, depth + 1, active)
    return result


def _key_text(doc: _Doc, node: yaml.ScalarNode) -> str:
    # JSON keys are strings: `50256: -100` in logit_bias means the key "50256".
    if node.tag not in (_STR, _INT, _FLOAT, _BOOL, _NULL):
        line, col = _mark(node)
        doc.problems.append(Problem(doc.file, line, col, _tag_refused(node.tag)))
    return str(node.value)


def _scalar(doc: _Doc, node: yaml.ScalarNode, pointer: str) -> Any:
    text, tag = str(node.value), node.tag
    if tag == _STR:
        return text
    try:
        if tag == _NULL:
            return None
        if tag == _BOOL:
            return {"true": True, "false": False}[text.lower()]
        if tag == _INT:
            return _int(text)
        if tag == _FLOAT:
            number = float(text)
            if number in (float("inf"), float("-inf")) or number != number:
                raise ValueError(text)
            return number
    except (KeyError, ValueError):
        doc.problem(pointer, _say(pointer, f"{text!r} is not a valid {_tag_name(tag)}"))
        return None
    doc.problem(pointer, _say(pointer, _tag_refused(tag)))
    return None


def _int(text: str) -> int:
    body = text.lstrip("+-")
    sign = -1 if text.startswith("-") else 1
    if body.startswith("0o"):
        return sign * int(body[2:], 8)
    if body.startswith("0x"):
        return sign * int(body[2:], 16)
    return int(text, 10)


def _template_lines(node: yaml.ScalarNode, lines: list[str]) -> list[int]:
    """The 0-based file line on which each line of a scalar's value starts.

    A literal block (|) keeps its lines, starting on the line after its key. Every other style
    folds: lines run together and each empty line ends one, so a value line starts after each
    empty line (escaped newlines in double quotes have no line of their own)."""
    start, end = node.start_mark, node.end_mark
    block = node.style in ("|", ">")
    first = start.line + 1 if block else start.line
    last = max(end.line - (1 if block and end.column == 0 else 0), first)
    if node.style == "|":
        return list(range(first, last + 1))
    starts = [first]
    for number in range(first, last):
        if number < len(lines) and not lines[number].strip():
            starts.append(number + 1)
    return starts


# --- loading a spec ---------------------------------------------------------------------------


def _label(path: Iterable[str | int]) -> str:
    """A path as people write it: messages[1].content, params.temperature."""
    out = ""
    for step in path:
        out += f"[{step}]" if isinstance(step, int) else (f".{step}" if out else str(step))
    return out


def _path_of(pointer: str) -> tuple[str | int, ...]:
    steps: list[str | int] = []
    for raw in pointer.split("/")[1:]:
        part = raw.replace("~1", "/").replace("~0", "~")
        steps.append(int(part) if part.isdigit() else part)
    return tuple(steps)


def _say(pointer: str, message: str) -> str:
    label = _label(_path_of(pointer))
    return f"{label}: {message}" if label else message


def _read_bytes(file: str, path: Path) -> bytes:
    try:
        if not path.is_file():
            reason = "it is a directory" if path.is_dir() else "no such file"
            raise SpecError([Problem(file, 0, 0, f"cannot read the file: {reason}")])
        if path.stat().st_size > MAX_FILE_BYTES:
            limit = MAX_FILE_BYTES // (1024 * 1024)
            raise SpecError([Problem(file, 0, 0, f"larger than {limit} MB: not a prompt spec?")])
        return path.read_bytes()
    except OSError as exc:
        reason = exc.strerror or str(exc)
        raise SpecError([Problem(file, 0, 0, f"cannot read the file: {reason}")]) from exc


def _load_document(file: str, path: Path, what: str) -> tuple[_Doc, bytes]:
    data = _read_bytes(file, path)
    doc = _parse_yaml(file, data)
    if not doc.problems and not isinstance(doc.value, dict):
        kind = "a list" if isinstance(doc.value, list) else "a single value"
        message = f"{what} must be a mapping of keys, not {kind}"
        doc.problems.append(Problem(file, 1, 1, message))
    if doc.problems:
        raise SpecError(_ordered(doc.problems))
    return doc, data


def _ordered(problems: Iterable[Problem]) -> list[Problem]:
    unique = dict.fromkeys(problems)
    return sorted(unique, key=lambda p: (p.line, p.col, p.message))


@functools.cache
def _spec_validator() -> SchemaValidator:
    return compile_validator(packaged_schema(SPEC_SCHEMA))


@functools.cache
def _param_names() -> list[str]:
    return list(packaged_schema(SPEC_SCHEMA)["properties"]["params"]["properties"])


def _schema_problems(doc: _Doc, validator: SchemaValidator, *, spec: bool = True) -> None:
    """Report the document's schema violations; `spec` adds hints that only fit prompt specs."""
    for issue in validator.explain(doc.value, hints=_HINTS):
        if issue.validator in ("additionalProperties", "propertyNames"):
            parent, key = issue.path[:-1], issue.path[-1]
            message = issue.message
            if spec and issue.validator == "additionalProperties" and parent == ("params",):
                advice = _NOT_PARAMS.get(str(key))
                if advice:
                    message = f"'{key}' is not a parameter: {advice}"
            elif spec and issue.validator == "additionalProperties" and not parent:
                close = difflib.get_close_matches(str(key), _param_names(), n=1, cutoff=0.75)
                if close and "(" not in message:
                    message += f" (did you mean 'params.{close[0]}'?)"
            label = _label(parent)
            doc.problem(issue.pointer, f"{label}: {message}" if label else message, key=True)
        else:
            label = _label(issue.path)
            doc.problem(issue.pointer, f"{label}: {issue.message}" if label else issue.message)


def find_root(start: Path) -> Path | None:
    """The git work tree that contains `start` (a directory), found by walking up for `.git`."""
    here = start.resolve()
    for folder in (here, *here.parents):
        if (folder / ".git").exists():
            return folder
    return None


def load_spec(path: str | os.PathLike[str], *, root: Path | None = None) -> PromptSpec:
    """Load and check a spec. Raise SpecError carrying every problem of the file.

    `root` bounds where an output schema path may lead; by default it is the git work tree
    that contains the spec, or the spec's own directory outside git."""
    file = os.fspath(path)
    spec_path = Path(file)
    doc, data = _load_document(file, spec_path, "a spec")
    bound = (root or find_root(spec_path.parent) or spec_path.parent).resolve()
    checker = _Checker(doc, spec_path, bound)
    spec = checker.run(hashlib.sha256(data).hexdigest())
    if doc.problems or spec is None:
        raise SpecError(_ordered(doc.problems))
    return spec


_PATH_CHECKS = ("equals", "min_items", "max_items", "contains", "matches", "one_of")
_PLAIN_CHECKS = ("schema_valid", "text_contains", "max_cost_usd", "max_tokens", "max_latency_ms")
_ONLY_ON = {
    "tool_calls": "assistant",
    "function_call": "assistant",
    "refusal": "assistant",
    "tool_call_id": "tool",
}
_PART_TYPES = {
    "system": ("text",),
    "developer": ("text",),
    "user": ("text", "image_url", "input_audio", "file"),
    "assistant": ("text", "refusal"),
    "tool": ("text",),
    "function": (),
}
_PART_KEYS = ("text", "image_url", "input_audio", "file", "refusal")


def _dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


def _seconds(value: Any, default: float | None) -> float | None:
    try:
        return default if value is None else parse_duration(value)
    except (TypeError, ValueError):
        return default  # already reported by the schema check


class _Checker:
    """The checks beyond the JSON Schema, and the building of the PromptSpec. Every check
    reads the document defensively: the schema check has reported wrong shapes already."""

    def __init__(self, doc: _Doc, path: Path, root: Path) -> None:
        self.doc = doc
        self.path = path
        self.root = root
        self.spec: dict[str, Any] = doc.value
        self.templates: dict[str, Template] = {}
        self.inputs_ok = False

    def run(self, sha256: str) -> PromptSpec | None:
        _schema_problems(self.doc, _spec_validator())
        self.check_params()
        self.check_provider()
        self.check_inputs()
        self.compile_messages()
        self.check_messages()
        self.check_undeclared()
        output = self.check_output()
        self.check_tools()
        self.check_policy()
        tests = self.check_tests(output is not None)
        if self.doc.problems:
            return None
        return self.build(sha256, output, tests)

    # -- parameters, provider, policy ----------------------------------------------------------

    def check_params(self) -> None:
        params = _dict(self.spec.get("params"))
        if "max_tokens" in params and "max_completion_tokens" in params:
            self.doc.problem(
                "/params/max_completion_tokens",
                "params: set max_tokens or max_completion_tokens, not both",
                key=True,
            )
        if "top_logprobs" in params and params.get("logprobs") is not True:
            self.doc.problem(
                "/params/top_logprobs", "params: top_logprobs needs logprobs: true", key=True
            )
        if "parallel_tool_calls" in params and not self.spec.get("tools"):
            self.doc.problem(
                "/params/parallel_tool_calls",
                "params: parallel_tool_calls needs tools",
                key=True,
            )

    def check_provider(self) -> None:
        headers = _dict(_dict(self.spec.get("provider")).get("headers"))
        for name in headers:
            if str(name).lower() in _SECRET_HEADERS:
                self.doc.problem(
                    json_pointer(("provider", "headers", name)),
                    f"provider.headers: '{name}' would put a secret in the spec; name the "
                    "environment variable that holds the key in provider.api_key_env instead",
                    key=True,
                )

    def check_policy(self) -> None:
        for key in ("timeout", "deadline"):
            if key in self.spec and _seconds(self.spec[key], None) == 0:
                self.doc.problem(f"/{key}", f"{key} must be longer than 0")
        backoff = _dict(_dict(self.spec.get("retry")).get("backoff"))
        low, high = _seconds(backoff.get("initial"), 1.0), _seconds(backoff.get("max"), 20.0)
        if low is not None and high is not None and high < low:
            where = "/retry/backoff/max" if "max" in backoff else "/retry/backoff/initial"
            self.doc.problem(
                where, f"retry.backoff: max ({high:g}s) is shorter than initial ({low:g}s)"
            )

    # -- inputs and templates ------------------------------------------------------------------

    def check_inputs(self) -> None:
        inputs = self.spec.get("inputs")
        if not isinstance(inputs, dict):
            return
        issues = check_schema(inputs)
        for issue in issues:
            self.doc.problem("/inputs" + issue.pointer, f"inputs: {issue}")
        kind = inputs.get("type")
        if kind is not None and kind != "object":
            self.doc.problem(
                "/inputs/type",
                "inputs: the variables are named, so inputs must be an object schema "
                '("type": "object")',
            )
        self.inputs_ok = not issues and kind in (None, "object")

    def compile_messages(self) -> None:
        for i, message in enumerate(_list(self.spec.get("messages"))):
            if not isinstance(message, dict):
                continue
            content = message.get("content")
            if isinstance(content, str):
                self.compile(f"/messages/{i}/content", content)
            for j, part in enumerate(_list(content)):
                part = _dict(part)
                if isinstance(part.get("text"), str):
                    self.compile(f"/messages/{i}/content/{j}/text", part["text"])
                url = _dict(part.get("image_url")).get("url")
                if isinstance(url, str):
                    self.compile(f"/messages/{i}/content/{j}/image_url/url", url)

    def compile(self, pointer: str, source: str) -> None:
        try:
            self.templates[pointer] = compile_template(
                source, origin=pointer, file=self.doc.file, locate=self.locator(pointer)
            )
        except TemplateError as exc:
            self.doc.problems.extend(exc.problems)

    def locator(self, pointer: str) -> Locate:
        """Map template lines to file positions (see _template_lines)."""
        node = self.doc.scalars.get(pointer)
        if node is None:
            at = self.doc.at(pointer)
            return lambda _line: at
        starts = _template_lines(node, self.doc.lines)
        first, lines = node.start_mark, self.doc.lines

        def locate(template_line: int) -> tuple[int, int]:
            line = starts[min(max(template_line, 1), len(starts)) - 1]
            if line == first.line:
                return line + 1, first.column + 1
            text = lines[line] if line < len(lines) else ""
            return line + 1, len(text) - len(text.lstrip()) + 1

        return locate

    def check_undeclared(self) -> None:
        inputs = self.spec.get("inputs")
        if not isinstance(inputs, dict) or not self.inputs_ok:
            return
        declared = set(_dict(inputs.get("properties")))
        for pointer, template in self.templates.items():
            for name in sorted(template.variables - declared):
                line, col = template.position(template.line_of(name))
                message = (
                    f"template {pointer}: variable '{name}' is used but not declared in "
                    "inputs.properties"
                )
                self.doc.problems.append(Problem(self.doc.file, line, col, message, pointer))

    # -- messages -------------------------------------------------------------------------------

    def check_messages(self) -> None:
        call_ids: set[str] = set()
        for i, message in enumerate(_list(self.spec.get("messages"))):
            if not isinstance(message, dict) or message.get("role") not in _PART_TYPES:
                continue
            role, at = message["role"], f"/messages/{i}"
            for key, only in _ONLY_ON.items():
                if key in message and role != only:
                    self.doc.problem(
                        f"{at}/{key}",
                        f"{_say(at, '')}'{key}' is only allowed on {only} messages",
                        key=True,
                    )
            if role == "tool" and "name" in message:
                self.doc.problem(
                    f"{at}/name", f"{_say(at, '')}tool messages have no 'name'", key=True
                )
            self.check_content(at, role, message)
            for call in _list(message.get("tool_calls")):
                if isinstance(_dict(call).get("id"), str):
                    call_ids.add(call["id"])
            answered = message.get("tool_call_id")
            if role == "tool" and isinstance(answered, str) and answered not in call_ids:
                self.doc.problem(
                    f"{at}/tool_call_id",
                    f"{_say(at, '')}tool_call_id '{answered}' answers no tool call of an "
                    "earlier assistant message",
                )

    def check_content(self, at: str, role: str, message: dict[str, Any]) -> None:
        content = message.get("content")
        if content is None and "content" in message and role not in ("assistant", "function"):
            self.doc.problem(f"{at}/content", f"{_say(at, '')}content must not be null")
        calls = message.get("tool_calls") or message.get("function_call")
        if role == "assistant" and content is None and not calls:
            self.doc.problem(at, f"{_say(at, '')}an assistant message needs content or tool_calls")
        if not isinstance(content, list):
            return
        allowed = _PART_TYPES[role]
        if not allowed:
            self.doc.problem(f"{at}/content", f"{_say(at, '')}content must be a string")
            return
        for j, part in enumerate(content):
            kind = _dict(part).get("type")
            where = f"{at}/content/{j}"
            if kind in _PART_KEYS and kind not in allowed:
                self.doc.problem(
                    f"{where}/type",
                    f"{_say(where, '')}a {role} message cannot have a '{kind}' part "
                    f"(allowed: {', '.join(allowed)})",
                )
            for key in _dict(part):
                if key in _PART_KEYS and key != kind and kind in _PART_KEYS:
                    self.doc.problem(
                        f"{where}/{key}",
                        f"{_say(where, '')}'{key}' does not belong in a part of type '{kind}'",
                        key=True,
                    )

    # -- output schema ---------------------------------------------------------------------------

    def check_output(self) -> OutputConfig | None:
        output = self.spec.get("output")
        if not isinstance(output, dict):
            return None
        value, strict = output.get("schema"), output.get("strict", True) is not False
        if isinstance(value, str):
            loaded = self.load_schema_file(value)
            if loaded is None:
                return None
            schema, schema_path = loaded
        elif isinstance(value, dict):
            schema, schema_path = value, None
        else:
            return None
        meta = check_schema(schema)
        for issue in meta or (strict_mode_issues(schema) if strict else []):
            if schema_path is None:  # inline: point at the offending node itself
                self.doc.problem("/output/schema" + issue.pointer, f"output.schema: {issue}")
            else:
                self.doc.problem("/output/schema", f"output.schema: {value}: {issue}")
        name = output.get("name")
        if not isinstance(name, str):
            base = str(self.spec.get("name") or self.path.stem)
            name = re.sub(r"[^a-zA-Z0-9_-]", "_", base)[:64] or "output"
        repair = output.get("repair") is True
        return OutputConfig(schema, schema_path, strict, repair, name)

    def load_schema_file(self, value: str) -> tuple[dict[str, Any], Path] | None:
        if Path(value).is_absolute():
            self.doc.problem(
                "/output/schema",
                f"output.schema: {value} is an absolute path; give a path relative to the spec",
            )
            return None
        target = (self.path.parent / value).resolve()
        if not target.is_relative_to(self.root):
            self.doc.problem(
                "/output/schema",
                f"output.schema: {value} leads outside the repository ({self.root}); keep "
                "schemas inside it",
            )
            return None
        try:
            schema = _read_json_schema(target)
        except FileNotFoundError:
            self.doc.problem("/output/schema", f"output.schema: {value} does not exist")
            return None
        except ValueError as exc:
            self.doc.problem("/output/schema", f"output.schema: {value}: {exc}")
            return None
        except OSError as exc:
            reason = exc.strerror or str(exc)
            self.doc.problem("/output/schema", f"output.schema: cannot read {value}: {reason}")
            return None
        return _copy(schema), target  # the parsed file is cached: hand out a copy

    # -- tools ----------------------------------------------------------------------------------

    def check_tools(self) -> None:
        names: dict[str, set[str]] = {"function": set(), "custom": set()}
        for i, tool in enumerate(_list(self.spec.get("tools"))):
            kind = _dict(tool).get("type")
            body = _dict(_dict(tool).get(kind)) if kind in names else {}
            name = body.get("name")
            if isinstance(name, str) and isinstance(kind, str):
                if name in names[kind]:
                    self.doc.problem(
                        f"/tools/{i}/{kind}/name", f"tools[{i}]: a second tool named '{name}'"
                    )
                names[kind].add(name)
            if kind == "function" and isinstance(body.get("parameters"), dict):
                self.check_parameters(f"/tools/{i}/function/parameters", body)
        self.check_tool_choice(names)

    def check_parameters(self, at: str, function: dict[str, Any]) -> None:
        schema = function["parameters"]
        label = _label(_path_of(at))
        meta = check_schema(schema)
        for issue in meta:
            self.doc.problem(at + issue.pointer, f"{label}: {issue}")
        if schema.get("type", "object") != "object":
            self.doc.problem(f"{at}/type", f'{label}: must be an object schema ("type": "object")')
        elif function.get("strict") is True and not meta:
            for issue in strict_mode_issues(schema):
                self.doc.problem(at + issue.pointer, f"{label}: {issue}")

    def check_tool_choice(self, names: dict[str, set[str]]) -> None:
        if "tool_choice" not in self.spec:
            return
        choice = self.spec["tool_choice"]
        if not self.spec.get("tools"):
            self.doc.problem("/tool_choice", "tool_choice needs tools", key=True)
            return
        kind = _dict(choice).get("type")
        if kind not in names:
            return
        name = _dict(_dict(choice).get(kind)).get("name")
        if isinstance(name, str) and name not in names[kind]:
            close = difflib.get_close_matches(name, sorted(names[kind]), n=1, cutoff=0.6)
            hint = f" (did you mean '{close[0]}'?)" if close else ""
            self.doc.problem(
                f"/tool_choice/{kind}/name",
                f"tool_choice: no {kind} tool named '{name}' in tools{hint}",
            )

    # -- tests ----------------------------------------------------------------------------------

    def check_tests(self, has_output: bool) -> tuple[TestCase, ...]:
        seen: dict[str, int] = {}
        cases: list[TestCase] = []
        for i, case in enumerate(_list(self.spec.get("tests"))):
            if not isinstance(case, dict) or not isinstance(case.get("name"), str):
                continue
            name, at = case["name"], f"/tests/{i}"
            if name in seen:
                self.doc.problem(
                    f"{at}/name",
                    f"tests[{i}]: a second test named '{name}' (the first is tests[{seen[name]}])",
                )
            seen.setdefault(name, i)
            variables = case.get("vars", {})
            if isinstance(variables, dict):
                where = f"{at}/vars" if "vars" in case else at
                self.check_case_vars(where, name, variables)
            expect = [a for a in _list(case.get("expect")) if isinstance(a, dict)]
            for j, assertion in enumerate(_list(case.get("expect"))):
                if isinstance(assertion, dict):
                    self.check_assertion(f"{at}/expect/{j}", assertion, has_output)
            line = self.doc.at(at)[0]
            description = case.get("description")
            cases.append(
                TestCase(
                    name,
                    _dict(variables),
                    tuple(expect),
                    line,
                    description if isinstance(description, str) else None,
                )
            )
        return tuple(cases)

    def check_case_vars(self, at: str, name: str, variables: dict[str, Any]) -> None:
        inputs = self.spec.get("inputs")
        if isinstance(inputs, dict):
            if not self.inputs_ok:
                return
            prepared = _copy(variables)
            _apply_defaults(inputs, prepared)
            for issue in compile_validator(inputs).explain(prepared):
                self.doc.problem(
                    at + issue.pointer, f"test '{name}': the vars do not match inputs: {issue}"
                )
            return
        used: frozenset[str] = frozenset().union(*(t.variables for t in self.templates.values()))
        missing = sorted(used - variables.keys())
        if missing:
            names = ", ".join(f"'{m}'" for m in missing)
            self.doc.problem(at, f"test '{name}': no value for {names} (used by the templates)")

    def check_assertion(self, at: str, assertion: dict[str, Any], has_output: bool) -> None:
        checks = [k for k in _PATH_CHECKS if k in assertion]
        plain = [k for k in _PLAIN_CHECKS if k in assertion]
        label = _label(_path_of(at))
        if "path" in assertion:
            if len(checks) != 1 or plain:
                self.doc.problem(
                    at,
                    f"{label}: an assertion with 'path' needs exactly one of "
                    f"{', '.join(_PATH_CHECKS)}",
                )
        elif checks:
            self.doc.problem(at, f"{label}: '{checks[0]}' needs a 'path' to check")
        elif len(plain) != 1:
            self.doc.problem(
                at, f"{label}: an assertion checks one thing: one of {', '.join(_PLAIN_CHECKS)}"
            )
        if "schema_valid" in assertion and not has_output:
            self.doc.problem(f"{at}/schema_valid", f"{label}: schema_valid needs an output schema")

    # -- the result -----------------------------------------------------------------------------

    def build(
        self, sha256: str, output: OutputConfig | None, tests: tuple[TestCase, ...]
    ) -> PromptSpec:
        spec = self.spec
        provider = _dict(spec.get("provider"))
        retry = _dict(spec.get("retry"))
        backoff = _dict(retry.get("backoff"))
        rate = _dict(spec.get("rate"))
        breaker = _dict(spec.get("breaker"))
        messages = tuple(
            self.message(i, m) for i, m in enumerate(spec["messages"]) if isinstance(m, dict)
        )
        variables = frozenset().union(*(m.variables for m in messages))
        return PromptSpec(
            path=self.path,
            name=str(spec.get("name") or self.path.stem),
            description=spec.get("description"),
            model=spec["model"],
            provider=ProviderConfig(
                base_url=provider.get("base_url"),
                api_key_env=provider.get("api_key_env", "OPENAI_API_KEY"),
                organization=provider.get("organization"),
                project=provider.get("project"),
                headers=dict(_dict(provider.get("headers"))),
            ),
            params=dict(_dict(spec.get("params"))),
            inputs=spec.get("inputs"),
            messages=messages,
            output=output,
            tools=tuple(_list(spec.get("tools"))),
            tool_choice=spec.get("tool_choice"),
            stream=spec.get("stream") is True,
            timeout=_seconds(spec.get("timeout"), 120.0) or 120.0,
            deadline=_seconds(spec.get("deadline"), None),
            retry=RetryConfig(
                attempts=retry.get("attempts", 3),
                initial=_seconds(backoff.get("initial"), 1.0) or 0.0,
                max=_seconds(backoff.get("max"), 20.0) or 0.0,
                multiplier=float(backoff.get("multiplier", 2.0)),
                jitter=backoff.get("jitter", True) is not False,
                on=frozenset(retry.get("on", _RETRY_KINDS)),
                max_retry_after=_seconds(retry.get("max_retry_after"), 60.0) or 0.0,
            ),
            rate=RateConfig(rate.get("rpm"), rate.get("tpm"), rate.get("concurrency", 8)),
            breaker=BreakerConfig(
                breaker.get("failures", 5), _seconds(breaker.get("cooldown"), 60.0) or 0.0
            ),
            ledger=LedgerConfig(_dict(spec.get("ledger")).get("content", True) is not False),
            tests=tests,
            sha256=sha256,
            variables=variables,
            positions=dict(self.doc.positions),
        )

    def message(self, i: int, data: dict[str, Any]) -> MessageTemplate:
        at = f"/messages/{i}"
        content = data.get("content")
        body: Template | tuple[_Part, ...] | None
        if isinstance(content, str):
            body = self.templates[f"{at}/content"]
        elif isinstance(content, list):
            body = tuple(
                _Part(
                    part,
                    self.templates.get(f"{at}/content/{j}/text"),
                    self.templates.get(f"{at}/content/{j}/image_url/url"),
                )
                for j, part in enumerate(content)
            )
        else:
            body = None
        extra = {k: v for k, v in data.items() if k not in ("role", "content", "name")}
        line = self.doc.at(at)[0]
        return MessageTemplate(data["role"], body, data.get("name"), extra, at, line)


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


# --- many files -------------------------------------------------------------------------------

PROJECT_CONFIG_NAMES = ("runner.yaml", "runner.yml")


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
        if not sep or not key.strip() or key != key.strip():
            raise ConfigError(f"--var {arg!r}: expected KEY=VALUE or KEY:=JSON")
        if typed:
            try:
                result[key] = json.loads(value)
            except json.JSONDecodeError as exc:
                raise ConfigError(
                    f"--var {key}: the value after ':=' is not JSON ({exc.msg} at column "
                    f"{exc.colno}); use {key}=... for a plain string"
                ) from exc
        else:
            result[key] = value
    return result


def load_vars_file(path: str | os.PathLike[str]) -> dict[str, Any]:
    """Read a --vars-file: a mapping in a .yaml, .yml or .json file."""
    file = os.fspath(path)
    suffix = Path(file).suffix.lower()
    if suffix not in (".yaml", ".yml", ".json"):
        raise ConfigError(f"--vars-file {file}: expected a .yaml, .yml or .json file")
    try:
        if suffix == ".json":
            return _json_vars(file)
        doc, _ = _load_document(file, Path(file), "a vars file")
    except SpecError as exc:
        raise ConfigError(f"--vars-file {exc.message}") from exc
    return dict(doc.value)


def _json_vars(file: str) -> dict[str, Any]:
    data = _read_bytes(file, Path(file))
    try:
        value = json.loads(data.decode("utf-8-sig"))
    except UnicodeDecodeError as exc:
        raise ConfigError(f"--vars-file {file}: not UTF-8 text") from exc
    except json.JSONDecodeError as exc:
        raise ConfigError(
            f"--vars-file {file}:{exc.lineno}:{exc.colno}: invalid JSON: {exc.msg}"
        ) from exc
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
    doc, _ = _load_document(file, Path(file), "runner.yaml")
    _schema_problems(doc, compile_validator(packaged_schema(CONFIG_SCHEMA)), spec=False)
    if doc.problems:
        raise SpecError(_ordered(doc.problems))
    prices = {
        str(model): {k: v if k == "context_window" else _decimal(v) for k, v in entry.items()}
        for model, entry in _dict(doc.value.get("prices")).items()
    }
    return ProjectConfig(Path(file), prices)
