"""Tests for runner.ledger.gitref: the spec's path, commit and dirty flag, with real git repos."""

from __future__ import annotations

import hashlib
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from runner.ledger import gitref as gitinfo
from runner.ledger.gitref import spec_ref

SPEC_TEXT = b"name: city\nmodel: gpt-4o-mini\n"


def git(root: Path, *args: str) -> None:
    subprocess.run(
        [
            "git",
            "-C",
            str(root),
            "-c",
            "user.name=t",
            "-c",
            "user.email=t@example.com",
            "-c",
            "commit.gpgsign=false",
            *args,
        ],
        check=True,
        capture_output=True,
    )


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


@pytest.fixture(autouse=True)
def _fresh_git_cache() -> Iterator[None]:
    gitinfo._git_info.cache_clear()
    yield
    gitinfo._git_info.cache_clear()


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    root = tmp_path / "repo"
    (root / "prompts").mkdir(parents=True)
    git(root, "init", "-q")
    (root / "prompts" / "city.yaml").write_bytes(SPEC_TEXT)
    git(root, "add", ".")
    git(root, "commit", "-qm", "spec")
    return root


def head(root: Path) -> str:
    out = subprocess.run(["git", "-C", str(root), "rev-parse", "HEAD"], capture_output=True)
    return out.stdout.decode().strip()


def test_spec_ref_clean_file(repo: Path) -> None:
    ref = spec_ref(repo / "prompts" / "city.yaml", sha256=sha(SPEC_TEXT), name="city")
    assert ref == {
        "path": "prompts/city.yaml",
        "name": "city",
        "sha256": sha(SPEC_TEXT),
        "commit": head(repo),
        "dirty": False,
    }


def test_spec_ref_relative_path_from_a_subdirectory(
    repo: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(repo / "prompts")
    ref = spec_ref(Path("city.yaml"), sha256=sha(SPEC_TEXT), name="city")
    assert (ref["path"], ref["dirty"]) == ("prompts/city.yaml", False)


def test_spec_ref_modified_file(repo: Path) -> None:
    spec = repo / "prompts" / "city.yaml"
    spec.write_bytes(SPEC_TEXT + b"description: changed\n")
    ref = spec_ref(spec, sha256=sha(spec.read_bytes()), name="city")
    assert (ref["commit"], ref["dirty"]) == (head(repo), True)


def test_spec_ref_file_changed_since_it_was_loaded(repo: Path) -> None:
    spec = repo / "prompts" / "city.yaml"
    ref = spec_ref(spec, sha256=sha(b"what was loaded"), name="city")
    assert ref["dirty"] is True


def test_spec_ref_untracked_file(repo: Path) -> None:
    spec = repo / "prompts" / "new.yaml"
    spec.write_bytes(SPEC_TEXT)
    ref = spec_ref(spec, sha256=sha(SPEC_TEXT), name="new")
    assert (ref["path"], ref["commit"], ref["dirty"]) == ("prompts/new.yaml", head(repo), True)


def test_spec_ref_repository_without_commits(tmp_path: Path) -> None:
    git(tmp_path, "init", "-q")
    (tmp_path / "s.yaml").write_bytes(SPEC_TEXT)
    ref = spec_ref(tmp_path / "s.yaml", sha256=sha(SPEC_TEXT), name="s")
    assert (ref["path"], ref["commit"], ref["dirty"]) == ("s.yaml", None, True)


def test_spec_ref_in_a_linked_worktree(repo: Path, tmp_path: Path) -> None:
    other = tmp_path / "wt"
    git(repo, "worktree", "add", "-q", str(other))
    assert (other / ".git").is_file()
    ref = spec_ref(other / "prompts" / "city.yaml", sha256=sha(SPEC_TEXT), name="city")
    assert (ref["path"], ref["commit"], ref["dirty"]) == ("prompts/city.yaml", head(repo), False)


@pytest.mark.parametrize(
    ("given", "expected"),
    [("s.yaml", "s.yaml"), ("./sub/../s.yaml", "./sub/../s.yaml"), (None, "absolute")],
)
def test_spec_ref_outside_git(tmp_path: Path, given: str | None, expected: str) -> None:
    (tmp_path / "sub").mkdir()
    (tmp_path / "s.yaml").write_bytes(SPEC_TEXT)
    path = given if given else tmp_path / "s.yaml"
    ref = spec_ref(path, sha256=sha(SPEC_TEXT), name="s")
    shown = str(tmp_path / "s.yaml") if expected == "absolute" else expected
    assert ref == {
        "path": shown,
        "name": "s",
        "sha256": sha(SPEC_TEXT),
        "commit": None,
        "dirty": None,
    }


def test_spec_ref_without_git_installed(repo: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def missing(*args: Any, **kwargs: Any) -> Any:
        raise FileNotFoundError(2, "No such file or directory: 'git'")

    monkeypatch.setattr(subprocess, "run", missing)
    ref = spec_ref(repo / "prompts" / "city.yaml", sha256=sha(SPEC_TEXT), name="city")
    assert (ref["path"], ref["commit"], ref["dirty"]) == ("prompts/city.yaml", None, None)


def test_spec_ref_with_git_timing_out(repo: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def hang(*args: Any, **kwargs: Any) -> Any:
        raise subprocess.TimeoutExpired(args[0], kwargs["timeout"])

    monkeypatch.setattr(subprocess, "run", hang)
    ref = spec_ref(repo / "prompts" / "city.yaml", sha256=sha(SPEC_TEXT), name="city")
    assert (ref["commit"], ref["dirty"]) == (None, None)


def test_spec_ref_with_a_broken_repository(tmp_path: Path) -> None:
    (tmp_path / ".git").write_text("gitdir: /nonexistent/place\n")
    (tmp_path / "s.yaml").write_bytes(SPEC_TEXT)
    ref = spec_ref(tmp_path / "s.yaml", sha256=sha(SPEC_TEXT), name="s")
    assert (ref["path"], ref["commit"], ref["dirty"]) == ("s.yaml", None, None)


def test_spec_ref_ignores_git_dir_from_a_hook_environment(
    repo: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    git(elsewhere, "init", "-q")
    expected = head(repo)
    monkeypatch.setenv("GIT_DIR", str(elsewhere / ".git"))
    ref = spec_ref(repo / "prompts" / "city.yaml", sha256=sha(SPEC_TEXT), name="city")
    assert (ref["commit"], ref["dirty"]) == (expected, False)


def test_spec_ref_runs_git_once_per_file_and_content(
    repo: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls: list[list[str]] = []
    real_run = subprocess.run

    def counting(args: list[str], **kwargs: Any) -> Any:
        calls.append(args)
        return real_run(args, **kwargs)

    monkeypatch.setattr(subprocess, "run", counting)
    spec = repo / "prompts" / "city.yaml"
    refs = [spec_ref(spec, sha256=sha(SPEC_TEXT), name="city") for _ in range(1000)]
    assert len(calls) == 1
    assert all(r == refs[0] for r in refs) and refs[0]["dirty"] is False
    spec_ref(spec, sha256=sha(b"edited"), name="city")  # new content: one more look
    assert len(calls) == 2


def test_spec_ref_of_a_spec_that_is_no_file(repo: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A spec built in memory (runner probe's) names a path that holds no file: git is not
    asked, and the line says nothing about a commit."""
    monkeypatch.chdir(repo)
    calls: list[Any] = []
    real = subprocess.run
    monkeypatch.setattr(subprocess, "run", lambda *a, **k: calls.append(a) or real(*a, **k))
    ref = spec_ref(Path("runner-probe/n.yaml"), sha256=sha(b"x"), name="probe.n")
    assert ref == {
        "path": "runner-probe/n.yaml",
        "name": "probe.n",
        "sha256": sha(b"x"),
        "commit": None,
        "dirty": None,
    }
    assert calls == []
