"""The token subset's state, for the tests of runner.tokens: a subset state over a freshly built
bucket payload (no file), a process-wide state emptied over a cache folder of the test's own
(`clean`), and a second process that finds the bucket file the first one wrote
(`second_process`)."""

from __future__ import annotations

import functools
from pathlib import Path

import pytest

from runner import tokens
from runner.tokens import _bpe, _subset


@functools.cache
def _payload(name: str) -> bytes:
    return _subset.build_index(_bpe.ranks_of(name))


def fresh_state(name: str) -> _subset._State:
    """A subset state with nothing loaded yet, over the whole bucket payload of `name`."""
    return _subset._State(name, _payload(name))


@pytest.fixture
def clean(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """No encoder, no subset state, no remembered count, and an empty cache folder (returned)."""
    monkeypatch.setattr(_bpe, "_encodings", {})
    monkeypatch.setattr(_bpe, "_load_seconds", {})
    monkeypatch.setattr(_subset, "_states", {})
    monkeypatch.setattr(tokens, "_COUNTS", {})
    monkeypatch.setenv("RUNNER_CACHE_DIR", str(tmp_path / "cache"))
    return tmp_path / "cache"


@pytest.fixture
def second_process(clean: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """As a process that starts after another has counted once: the bucket file is written,
    and nothing is built or remembered in this one yet."""
    tokens.count_text("x", "gpt-4o")  # the first process builds the full encoder, writes the file
    monkeypatch.setattr(_bpe, "_encodings", {})
    monkeypatch.setattr(tokens, "_COUNTS", {})
    return clean
