"""Finding a Python with mlx_lm and running `mlx_lm.server` on loopback, for the fixtures in
conftest.py and the tests that start a server of their own.

mlx cannot be a project dependency, so it lives in a Python of its own, found in this order:
RUNNER_MLX_PYTHON, `.mlx-venv/bin/python` at the repository root (what .ci/run creates), then
the test interpreter itself. The server runs with Hugging Face's offline switches: an unknown
model name makes it look the name up on the Hub, and no test may use the network.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
BUILDER = Path(__file__).resolve().parent / "_mlx_model.py"
# mlx_lm.server's own name for the model given with --model.
MODEL = "default_model"
READY_WITHIN = 60.0
INSTALL = 'python3 -m venv .mlx-venv && .mlx-venv/bin/pip install "mlx[cpu]" mlx-lm'
# Read at import: tests/conftest.py strips RUNNER_* variables from each test's environment.
_NAMED = os.environ.get("RUNNER_MLX_PYTHON", "")
if os.sep in _NAMED:
    _NAMED = os.path.abspath(os.path.expanduser(_NAMED))
_CHECK = "import mlx.core, mlx_lm, tokenizers"


def _has_mlx(python: str) -> bool:
    try:
        return (
            subprocess.run([python, "-c", _CHECK], capture_output=True, timeout=60).returncode == 0
        )
    except (OSError, subprocess.TimeoutExpired):
        return False


def find_mlx_python() -> tuple[str | None, str]:
    """The interpreter that has mlx and mlx-lm, or None and why there is none."""
    if _NAMED:
        if _has_mlx(_NAMED):
            return _NAMED, ""
        return None, (
            f"RUNNER_MLX_PYTHON={_NAMED} cannot import mlx.core, mlx_lm and tokenizers "
            f"(install them there, or unset it and create .mlx-venv: {INSTALL})"
        )
    venv = ROOT / ".mlx-venv" / "bin" / "python"
    if venv.exists() and _has_mlx(str(venv)):
        return str(venv), ""
    if _has_mlx(sys.executable):
        return sys.executable, ""
    return None, (
        "needs a Python with mlx and mlx-lm: RUNNER_MLX_PYTHON is not set, and neither "
        f"{venv} nor this interpreter has them; to create one, at the repository root: {INSTALL}"
    )


def server_environ(hf_home: Path) -> dict[str, str]:
    """The server's environment: no runner or OpenAI variables, Hugging Face offline, and a
    Hugging Face cache of its own (mlx_lm.server lists the cache's models in /v1/models, and
    its /v1/models fails when the cache folder is missing)."""
    (hf_home / "hub").mkdir(parents=True, exist_ok=True)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("RUNNER_", "OPENAI_"))}
    env.update(
        HF_HOME=str(hf_home),
        HF_HUB_OFFLINE="1",
        TRANSFORMERS_OFFLINE="1",
        HF_HUB_DISABLE_TELEMETRY="1",
        TOKENIZERS_PARALLELISM="false",
    )
    return env


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class MlxServer:
    """One `mlx_lm.server` process on a free loopback port; `url` has no /v1."""

    def __init__(self, python: str, model: Path, folder: Path) -> None:
        self.python = python
        self.model = model
        self.folder = folder
        self.log = folder / "server.log"
        self.port = _free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> MlxServer:
        command = [
            self.python, "-m", "mlx_lm", "server",
            "--model", str(self.model),
            "--host", "127.0.0.1",
            "--port", str(self.port),
            "--max-tokens", "16",  # a request without max_tokens stays short too
        ]  # fmt: skip
        with self.log.open("ab") as sink:
            self.process = subprocess.Popen(
                command,
                stdout=sink,
                stderr=subprocess.STDOUT,
                env=server_environ(self.folder / "hf"),
                cwd=self.folder,
            )
        self._wait_ready()
        return self

    def _tail(self) -> str:
        return self.log.read_text(errors="replace")[-3000:]

    def _wait_ready(self) -> None:
        assert self.process is not None
        deadline = time.monotonic() + READY_WITHIN
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                code = self.process.returncode
                pytest.fail(f"mlx_lm.server exited ({code}) before it was ready:\n{self._tail()}")
            try:
                with urllib.request.urlopen(f"{self.url}/v1/models", timeout=2) as reply:
                    if reply.status == 200 and json.loads(reply.read())["data"]:
                        return
            except (OSError, ValueError, KeyError):
                pass
            time.sleep(0.1)
        self.stop()
        pytest.fail(
            f"mlx_lm.server did not answer /v1/models in {READY_WITHIN:g} s:\n{self._tail()}"
        )

    def stop(self) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        self.process.terminate()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=10)
