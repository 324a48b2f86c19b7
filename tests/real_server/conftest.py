"""Fixtures for the real-server tests: `mlx_lm.server` (Apple's MLX, CPU wheels on PyPI)
serving a tiny random-weight llama that _mlx_model.py builds offline (_mlx_server.py finds the
Python and runs the server).

The tests are skipped only when no Python imports mlx_lm; once one does, a model that does not
build or a server that does not start is a failure. The model is built once per test run
(pytest-xdist's workers share it under a file lock), and each worker starts one server on a
free loopback port, reused by every test and killed at the end.
"""

from __future__ import annotations

import fcntl
import os
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from _mlx_server import BUILDER, MlxServer, find_mlx_python, server_environ


@pytest.fixture(scope="session")
def mlx_python() -> str:
    python, why = find_mlx_python()
    if python is None:
        pytest.skip(why)
    return python


@pytest.fixture(scope="session")
def mlx_model(mlx_python: str, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The tiny model's folder, built once per run: pytest-xdist's workers share the base
    temporary folder's parent, and the first one to take the lock builds."""
    if os.environ.get("PYTEST_XDIST_WORKER"):
        shared = tmp_path_factory.getbasetemp().parent
    else:
        shared = tmp_path_factory.mktemp("mlx")
    model = shared / "mlx-tiny-llama"
    with (shared / "mlx-tiny-llama.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not (model / "model.safetensors").exists():
            building = shared / f"mlx-tiny-llama.{os.getpid()}"
            built = subprocess.run(
                [mlx_python, str(BUILDER), str(building)],
                capture_output=True,
                text=True,
                timeout=120,
                env=server_environ(shared / "hf"),
            )
            assert built.returncode == 0, f"building the model failed:\n{built.stderr[-3000:]}"
            building.rename(model)
    return model


@pytest.fixture(scope="session")
def start_mlx_server(
    mlx_python: str, mlx_model: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Callable[[], MlxServer]]:
    """Start a server of one's own (a test that stops it); every one is killed at the end."""
    started: list[MlxServer] = []

    def start() -> MlxServer:
        server = MlxServer(mlx_python, mlx_model, tmp_path_factory.mktemp("mlx-server"))
        started.append(server)
        return server.start()

    try:
        yield start
    finally:
        for server in started:
            server.stop()


@pytest.fixture(scope="session")
def mlx_server(start_mlx_server: Callable[[], MlxServer]) -> str:
    """The base URL (no /v1) of the server every test of this worker shares."""
    return start_mlx_server().url
