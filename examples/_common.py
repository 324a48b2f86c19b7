"""Shared by the examples: where the repository is, and whether to use the mock server.

Every example runs against the built-in mock server unless OPENAI_API_KEY is set (or
RUNNER_MOCK=1 forces the mock even then). Ledger lines go to runs/ledger.jsonl.
"""

from __future__ import annotations

import os
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PROMPTS = ROOT / "prompts"


def use_mock() -> bool:
    if os.environ.get("RUNNER_MOCK", "").lower() in {"1", "true", "yes", "on"}:
        return True
    return not os.environ.get("OPENAI_API_KEY")
