"""YAML files read as JSON-shaped values, with the (line, column) of every node: YAML 1.2 core
scalars, plain data only (no tags, no merge keys), bounded size, nesting and alias expansion.

This is the only module that imports yaml. It reports what it cannot read as positioned
`Problem`s and knows nothing about what a spec must contain.
"""

from __future__ import annotations

import os
import re
import stat
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from runner.errors import Problem, SpecError
from runner.schema.wording import at_location, nearest

__all__ = [
    "MAX_DEPTH",
    "MAX_FILE_BYTES",
    "MAX_NODES",
    "Doc",
    "as_dict",
    "as_list",
    "load_document",
    "ordered_problems",
    "parse_yaml",
    "read_bytes",
]

MAX_FILE_BYTES = 4 * 1024 * 1024
MAX_NODES = 100_000  # after alias expansion: a "billion laughs" document stops here
MAX_DEPTH = 64

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
class Doc:
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
        """The position of a node, or of its nearest ancestor."""
        return nearest(self.positions, pointer)

    def locator(self, pointer: str) -> Callable[[int], tuple[int, int]]:
        """Map the lines of the template at `pointer` to file positions (see _template_lines)."""
        node = self.scalars.get(pointer)
        if node is None:
            at = self.at(pointer)
            return lambda _line: at
        starts = _template_lines(node, self.lines)
        first, lines = node.start_mark, self.lines

        def locate(template_line: int) -> tuple[int, int]:
            line = starts[min(max(template_line, 1), len(starts)) - 1]
            if line == first.line:
                return line + 1, first.column + 1
            text = lines[line] if line < len(lines) else ""
            return line + 1, len(text) - len(text.lstrip()) + 1

        return locate


def _mark(node: yaml.Node) -> tuple[int, int]:
    return node.start_mark.line + 1, node.start_mark.column + 1


def _tag_name(tag: str) -> str:
    return "!!" + tag[len("tag:yaml.org,2002:") :] if tag.startswith("tag:yaml.org,2002:") else tag


def _tag_refused(tag: str) -> str:
    return (
        f"tag {_tag_name(tag)} is not allowed: a spec holds plain data (strings, numbers, "
        "true/false, null, lists and mappings)"
    )


def _byte_position(data: bytes, at: int) -> tuple[int, int]:
    """The 1-based line and column of a byte offset."""
    line = data.count(b"\n", 0, at) + 1
    return line, at - (data.rfind(b"\n", 0, at) + 1) + 1


def _read_text(doc: Doc, data: bytes) -> str | None:
    """Decode a file, or record why it is not a YAML text file."""
    if not data.strip():
        doc.problems.append(Problem(doc.file, 0, 0, "the file is empty"))
        return None
    nul = data.find(b"\x00")
    if nul >= 0:
        line, col = _byte_position(data, nul)
        message = "a binary file (a NUL byte), not a YAML text file"
        doc.problems.append(Problem(doc.file, line, col, message))
        return None
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line, col = _byte_position(data, exc.start)
        bad = data[exc.start : exc.start + 1].hex()
        message = f"not UTF-8 text (byte 0x{bad}); save the file as UTF-8"
        doc.problems.append(Problem(doc.file, line, col, message))
        return None


def _yaml_problem(doc: Doc, text: str, exc: yaml.YAMLError) -> None:
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


def parse_yaml(file: str, data: bytes) -> Doc:
    """Compose one YAML document and convert it; problems land in `doc.problems`."""
    doc = Doc(file, [])
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


def _convert(doc: Doc, node: yaml.Node, pointer: str, depth: int, active: set[int]) -> Any:
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
        doc.problem(pointer, at_location(pointer, f"nested more than {MAX_DEPTH} levels deep"))
        raise _Stop
    if id(node) in active:
        doc.problem(pointer, at_location(pointer, "a YAML alias that contains itself"))
        return None
    if node.tag not in (_SEQ, _MAP):
        doc.problem(pointer, at_location(pointer, _tag_refused(node.tag)))
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
    doc: Doc, node: yaml.MappingNode, pointer: str, depth: int, active: set[int]
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


def _key_text(doc: Doc, node: yaml.ScalarNode) -> str:
    # JSON keys are strings: `50256: -100` in logit_bias means the key "50256".
    if node.tag not in (_STR, _INT, _FLOAT, _BOOL, _NULL):
        line, col = _mark(node)
        doc.problems.append(Problem(doc.file, line, col, _tag_refused(node.tag)))
    return str(node.value)


def _scalar(doc: Doc, node: yaml.ScalarNode, pointer: str) -> Any:
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
        doc.problem(pointer, at_location(pointer, f"{text!r} is not a valid {_tag_name(tag)}"))
        return None
    doc.problem(pointer, at_location(pointer, _tag_refused(tag)))
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


# --- files ------------------------------------------------------------------------------------


def read_bytes(file: str, path: Path) -> bytes:
    """The bytes of a regular file no larger than MAX_FILE_BYTES; raise SpecError naming
    `file`. A device (/dev/zero), a pipe or a directory is refused before it is opened (a FIFO
    would block the open), and no more than MAX_FILE_BYTES + 1 bytes are ever read."""
    limit = MAX_FILE_BYTES // (1024 * 1024)
    try:
        if not path.exists():
            raise SpecError([Problem(file, 0, 0, "cannot read the file: no such file")])
        if not path.is_file():
            kind = "a directory" if path.is_dir() else "not a regular file (a device or a pipe)"
            raise SpecError([Problem(file, 0, 0, f"cannot read the file: it is {kind}")])
        with path.open("rb") as f:
            if not stat.S_ISREG(os.fstat(f.fileno()).st_mode):  # replaced since: refuse it
                raise SpecError([Problem(file, 0, 0, "cannot read the file: not a regular file")])
            data = f.read(MAX_FILE_BYTES + 1)
    except OSError as exc:
        reason = exc.strerror or str(exc)
        raise SpecError([Problem(file, 0, 0, f"cannot read the file: {reason}")]) from exc
    if len(data) > MAX_FILE_BYTES:
        raise SpecError([Problem(file, 0, 0, f"larger than {limit} MB: not a prompt spec?")])
    return data


def load_document(file: str, path: Path, what: str) -> tuple[Doc, bytes]:
    """Read and parse a YAML file that must hold a mapping (`what` names it in the message);
    raise SpecError with every problem found so far."""
    data = read_bytes(file, path)
    doc = parse_yaml(file, data)
    if not doc.problems and not isinstance(doc.value, dict):
        kind = "a list" if isinstance(doc.value, list) else "a single value"
        message = f"{what} must be a mapping of keys, not {kind}"
        doc.problems.append(Problem(file, 1, 1, message))
    if doc.problems:
        raise SpecError(ordered_problems(doc.problems))
    return doc, data


def ordered_problems(problems: Iterable[Problem]) -> list[Problem]:
    """Problems without repeats, in file order."""
    unique = dict.fromkeys(problems)
    return sorted(unique, key=lambda p: (p.line, p.col, p.message))


# --- reading values whose shape is not guaranteed ---------------------------------------------


def as_dict(value: Any) -> dict[str, Any]:
    """The value if it is a mapping, else an empty one (the schema check reports wrong shapes)."""
    return value if isinstance(value, dict) else {}


def as_list(value: Any) -> list[Any]:
    """The value if it is a list, else an empty one (the schema check reports wrong shapes)."""
    return value if isinstance(value, list) else []
