"""Every script in examples/ runs in mock mode and prints what it promises."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"

EXPECTED = {
    "01_basic_call.py": "tokens, cost $",
    "02_schema_output.py": "refused before any call",
    "03_streaming.py": "first token after",
    "04_tokens_and_cost.py": "unknown:  unknown",
    "05_resilience.py": "attempt 3: ok",
    "06_usage_statistics.py": '"calls": 3',
}


def test_every_example_is_listed() -> None:
    assert sorted(p.name for p in EXAMPLES.glob("0*.py")) == sorted(EXPECTED)


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_example_runs_in_mock_mode(name: str, tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OPENAI_", "RUNNER_"))}
    env["RUNNER_MOCK"] = "1"
    proc = subprocess.run(
        [sys.executable, str(EXAMPLES / name)],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env=env,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    assert EXPECTED[name] in proc.stdout
    assert (tmp_path / "runs" / "ledger.jsonl").exists() or name == "05_resilience.py"
