"""docs/architecture.md is the map of the code: every module under runner/ is named there, under
its family, and the repository's docs never send a reader to files outside the repository."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "runner"
DOC = (ROOT / "docs" / "architecture.md").read_text(encoding="utf-8")


def _section(family: str) -> str:
    """The part of the page about one subpackage: from its `### \\`family/\\`` heading on."""
    match = re.search(rf"^### `{family}/`.*?(?=^### |\Z)", DOC, flags=re.M | re.S)
    assert match, f"docs/architecture.md has no section for {family}/"
    return match.group(0)


MODULES = sorted(p.relative_to(PACKAGE) for p in PACKAGE.rglob("*.py"))


@pytest.mark.parametrize("module", MODULES, ids=str)
def test_every_module_is_on_the_architecture_page(module: Path) -> None:
    if len(module.parts) == 1:
        assert module.name in DOC, f"docs/architecture.md does not name runner/{module}"
        return
    family, name = module.parts[0], module.stem
    assert f"  {family}/ " in DOC, f"the tree in docs/architecture.md lacks {family}/"
    section = _section(family)  # a subpackage's __init__ is its section
    if len(module.parts) > 2:  # a package inside a family: named by its path in the family
        name = "/".join((*module.parts[1:-1], module.stem))
    if name != "__init__":
        assert f"`{name}`" in section, f"docs/architecture.md lacks {family}/{name}"


def test_the_check_can_fail() -> None:
    assert "`no_such_module`" not in _section("engine")


@pytest.mark.parametrize(
    "doc",
    sorted(p.relative_to(ROOT).as_posix() for p in [ROOT / "README.md", *ROOT.glob("docs/*.md")]),
)
def test_docs_stand_alone(doc: str) -> None:
    text = (ROOT / doc).read_text(encoding="utf-8")
    for outside in ("PRODUCT.md", "CONVENTIONS.md", "../shared"):
        assert outside not in text, f"{doc} points at {outside}, which users do not have"
