"""Shared test fixtures. Every test runs with RUNNER_*/OPENAI_* variables stripped (but for
RUNNER_CACHE_DIR, a folder of the run's own) and the current directory in a temporary folder,
so nothing leaks in from the developer's shell or into their home."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

import pytest

# Fixtures kept in a module of their own: the token subset's state (`clean`, `second_process`).
pytest_plugins = ["_token_cache"]

ROOT = Path(__file__).resolve().parent.parent
DATA = Path(__file__).resolve().parent / "data"


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--update-golden",
        action="store_true",
        default=False,
        help="rewrite golden files under tests/data/golden instead of comparing with them",
    )


def pytest_xdist_auto_num_workers(config: pytest.Config) -> int:
    """`-n auto` runs up to twice as many workers as there are cores (at most four more): much
    of the suite's wall time is spent waiting (child processes, servers, signals, deadlines),
    and the extra workers fill it. On 2 cores: 4 min 43 s with 2 workers, 3 min 46 s with 3,
    3 min 10 s to 3 min 26 s with 4."""
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        cores = os.cpu_count() or 1
    return min(2 * cores, cores + 4)


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


# A command run with its stdout on a pseudo-terminal: (what the terminal showed, with \r\n as
# \n; stderr, a pipe; exit status). `columns` is the terminal's width (COLUMNS), `env` is
# added to this process's environment (NO_COLOR removed unless given).
InTerminal = Callable[..., tuple[str, str, int]]


@pytest.fixture
def in_terminal(tmp_path: Path) -> InTerminal:
    import pty

    def run(
        args: Sequence[str],
        *,
        columns: int = 80,
        env: Mapping[str, str] | None = None,
        cwd: Path | None = None,
        stderr_too: bool = False,
    ) -> tuple[str, str, int]:
        primary, secondary = pty.openpty()
        environ = {k: v for k, v in os.environ.items() if k not in ("NO_COLOR", "COLUMNS")}
        environ |= {"COLUMNS": str(columns), "TERM": "xterm-256color", **(env or {})}
        proc = subprocess.Popen(
            [sys.executable, "-m", "runner", *args],
            stdout=secondary,
            stderr=secondary if stderr_too else subprocess.PIPE,
            stdin=subprocess.DEVNULL,
            env=environ,
            cwd=cwd or tmp_path,
        )
        os.close(secondary)
        out = b""
        try:
            while True:
                try:
                    chunk = os.read(primary, 65536)
                except OSError:  # the last writer closed its end
                    break
                if not chunk:
                    break
                out += chunk
        finally:
            os.close(primary)
        _, err = proc.communicate(timeout=120)
        text = out.decode("utf-8", "replace").replace("\r\n", "\n")
        return text, (err or b"").decode("utf-8", "replace"), proc.returncode

    return run
