"""Shared test fixtures. Every test runs with RUNNER_*/OPENAI_* variables stripped (but for
RUNNER_CACHE_DIR, a folder of the run's own) and the current directory in a temporary folder,
so nothing leaks in from the developer's shell or into their home."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
DATA = Path(__file__).resolve().parent / "data"


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--update-golden",
        action="store_true",
        default=False,
        help="rewrite golden files under tests/data/golden instead of comparing with them",
    )


@pytest.fixture(scope="session")
def _cache_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One cache folder for the whole run (the tokenizer's parsed ranks), never ~/.cache."""
    return tmp_path_factory.mktemp("runner-cache")


@pytest.fixture(autouse=True)
def _clean_environ(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, _cache_dir: Path) -> None:
    from runner import redact

    redact.forget()  # a key remembered by an earlier case must not mask this one's output
    for key in list(os.environ):
        if key.startswith(("RUNNER_", "OPENAI_")):
            monkeypatch.delenv(key)
    monkeypatch.setenv("RUNNER_CACHE_DIR", str(_cache_dir))
    monkeypatch.setenv("NO_COLOR", "1")
    monkeypatch.chdir(tmp_path)


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    """The current directory (tmp_path, from _clean_environ) as a git work tree: the spec tests
    use it where a path must stay inside the repository. test_gitinfo has a `repo` of its own."""
    (tmp_path / ".git").mkdir()
    return tmp_path


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
def update_golden(request: pytest.FixtureRequest) -> bool:
    return bool(request.config.getoption("--update-golden"))
