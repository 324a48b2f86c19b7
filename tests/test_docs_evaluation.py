"""The examples of docs/evaluation.md marked `<!-- checked -->` are real output: each block's
commands run again against the mock (no key, no network) in a folder holding the example
prompts, and their output must match the page, every figure but latencies and times (the
mock's latency varies from run to run). `pytest --update-golden` rewrites the blocks."""

from __future__ import annotations

import re
import shlex
import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner

from runner.cli import cli

ROOT = Path(__file__).resolve().parents[1]
PAGE = ROOT / "docs" / "evaluation.md"
_CHECKED = re.compile(r"<!-- checked -->\n```console\n(.*?)```\n", re.S)
_RULE = re.compile(r"^-+( +-+)+$")


def _blocks() -> list[str]:
    return _CHECKED.findall(PAGE.read_text(encoding="utf-8"))


def _commands(block: str) -> list[str]:
    return [line[2:] for line in block.splitlines() if line.startswith("$ ")]


def _expected(block: str) -> str:
    return "".join(line + "\n" for line in block.splitlines() if not line.startswith("$ "))


def _masked(text: str) -> str:
    """Latency columns of every table, a case line's latency and times, each as `#`s."""
    lines = text.splitlines()
    spans: list[tuple[int, int]] = []
    for i, line in enumerate(lines):
        if _RULE.match(line) and not spans:  # under a header (a second one opens the total)
            header = lines[i - 1]
            spans = [
                (m.start(), m.end())
                for m in re.finditer(r"-+", line)
                if header[m.start() : m.end()].strip().endswith("ms")
            ]
            continue
        if _RULE.match(line):
            continue
        if not line.strip():
            spans = []
        for start, end in spans:
            line = line[:start] + "#" * len(line[start:end]) + line[end:]
        line = re.sub(r"\b[\d,]+ ms$", "# ms", line)
        lines[i] = re.sub(r"\d{4}-\d\d-\d\d \d\d:\d\d", "<time>", line)
    return "\n".join(lines)


def _run(block: str) -> str:
    out = ""
    for command in _commands(block):
        args = shlex.split(command)
        quiet = args[-2:] == [">", "/dev/null"]  # the one shell redirection a block may use
        args = args[:-2] if quiet else args
        assert args[0] == "runner", command
        result = CliRunner().invoke(cli, args[1:], catch_exceptions=False)
        assert result.exit_code in (0, 1), (command, result.output)
        out += "" if quiet else result.stdout
    return out


def test_the_page_has_checked_examples() -> None:
    blocks = _blocks()
    assert len(blocks) >= 2
    assert any("--price-as" in b for b in blocks) and any("--repeat" in b for b in blocks)


@pytest.mark.parametrize("index", range(len(_blocks())))
def test_a_checked_example_is_real_output(index: int, tmp_path: Path, update_golden: bool) -> None:
    shutil.copytree(ROOT / "prompts", tmp_path / "prompts")
    shutil.copytree(ROOT / "schemas", tmp_path / "schemas")
    (tmp_path / "pyproject.toml").write_text("", encoding="utf-8")
    block = _blocks()[index]
    found = _run(block)
    if update_golden:
        commands = "".join(f"$ {c}\n" for c in _commands(block))
        text = PAGE.read_text(encoding="utf-8")
        PAGE.write_text(text.replace(block, commands + found, 1), encoding="utf-8")
        return
    assert _masked(found) == _masked(_expected(block))
