"""Shared by the spec tests (test_spec, test_speccheck, test_yamldoc, test_outputschema,
test_spectests, test_promptspec): a minimal messages block, writing files into the current
directory and the problems load_spec reports. Not a test module (pytest does not collect it)."""

from __future__ import annotations

from pathlib import Path

import pytest

from runner.errors import SpecError
from runner.spec.load import load_spec

SPECS = Path(__file__).resolve().parents[1] / "data" / "specs"
OK = "messages:\n  - {role: user, content: hi}\n"


def write_file(name: str, text: str | bytes) -> Path:
    """Writes `text` (UTF-8) or `bytes` as-is to `name`, relative to the current directory."""
    path = Path(name)
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(text, bytes):
        path.write_bytes(text)
    else:
        path.write_text(text, encoding="utf-8")
    return path


def spec_problems(text: str | bytes, name: str = "spec.yaml") -> list[str]:
    """Writes a spec that must not load and returns its problems, one string each (exit code 2)."""
    write_file(name, text)
    with pytest.raises(SpecError) as info:
        load_spec(name)
    assert info.value.exit_code == 2
    return [str(p) for p in info.value.problems]
