"""The seam holds: no module outside runner/providers/ and runner/mock/ names a field of a wire
format. Each word below is a field, path or parameter name that belongs to OpenAI's Chat
Completions or Responses wire; a string in code that holds one means that module reads or
builds a wire body itself (a docstring or a comment may mention them: they are not code).
The few places where such a word is runner's own name for something are listed, each with
why."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "runner"

# The words of the two wire formats (fields, endpoint paths, parameters that only one API takes).
WIRE_WORDS = (
    "choices",
    "finish_reason",
    "prompt_tokens",
    "completion_tokens",
    "prompt_tokens_details",
    "completion_tokens_details",
    "input_tokens",
    "output_tokens",
    "input_tokens_details",
    "output_tokens_details",
    "total_tokens",
    "response_format",
    "json_schema",
    "max_tokens",
    "max_completion_tokens",
    "max_output_tokens",
    "reasoning_effort",
    "tool_calls",
    "function_call",
    "chat/completions",
    "/responses",
    "text.format",
    "instructions",
    "output_text",
    "stream_options",
    "incomplete_details",
)
# Inside the seam, and the mock (which fakes the wires on purpose).
INSIDE = ("providers", "mock")
# (module, word): where the word is runner's own vocabulary, not the wire's.
OWN_WORDS = {
    # The ledger's format (schemas/ledger-line.schema.json) names an answer's finish reason, its
    # tool calls and every choice's value in these words; the modules that write and read lines
    # use them.
    ("ledger/line.py", "finish_reason"): "the ledger format's output.finish_reason",
    ("ledger/line.py", "tool_calls"): "the ledger format's output.tool_calls",
    ("ledger/line.py", "choices"): "the ledger format's output.choices",
    ("ledger/encoding.py", "finish_reason"): "the ledger format's output.finish_reason",
    ("ledger/recorded.py", "finish_reason"): "the ledger format's output.finish_reason",
    ("ledger/recorded.py", "tool_calls"): "the ledger format's output.tool_calls",
    ("ledger/recorded.py", "choices"): "the ledger format's output.choices",
    ("testing/compare.py", "tool_calls"): "the ledger format's output.tool_calls",
    ("cli/_log_output.py", "tool_calls"): "the ledger format's output.tool_calls",
    ("report/calls.py", "tool_calls"): "the ledger format's output.tool_calls",
    # `exec --json` and `render --json` print runner's own result objects with these keys.
    ("engine/results.py", "finish_reason"): "Result.to_dict, documented in the README",
    ("engine/results.py", "choices"): "Result.to_dict: every choice's value when n > 1",
    ("engine/results.py", "prompt_tokens"): "Preflight.to_dict, `render --json`",
    ("engine/results.py", "max_output_tokens"): "Preflight.to_dict, `render --json`",
    ("cli/render.py", "prompt_tokens"): "`render --json`'s keys, in its help",
    ("cli/exec_dataset.py", "prompt_tokens"): "`exec --input --dry-run --json` figures",
    ("cli/exec_dataset.py", "max_output_tokens"): "`exec --input --dry-run --json` figures",
    # `max_tokens` is also a `runner test` expectation (a cap on a case's tokens).
    ("testing/expectations.py", "max_tokens"): "the `max_tokens` expectation of a test case",
    ("spec/testcases.py", "max_tokens"): "the `max_tokens` expectation of a test case",
    # Output modes are runner's words (`output.mode: json_schema | json_object | prompt`).
    ("spec/output.py", "json_schema"): "the output mode's name",
    ("engine/call.py", "json_schema"): "the output mode's name",
    ("engine/modes.py", "json_schema"): "the output mode's name",
    ("engine/answer.py", "json_schema"): "the output mode's name",
    ("engine/preflight.py", "json_schema"): "the output mode's name",
    # `runner probe` asks whether a server enforces each output mode, and suggests one.
    ("probe/findings.py", "json_schema"): "the output mode's name: a row of the probe",
    ("probe/specs.py", "json_schema"): "the output mode of the probe's spec",
    ("probe/run.py", "json_schema"): "the output mode's name: a row of the probe",
    ("probe/suggest.py", "json_schema"): "the output mode it suggests",
    # The report's figures and the `ledger` view's columns (docs/report.md) are runner's words.
    **{
        (f"report/{module}.py", word): "a figure or column of runner report"
        for module in ("html", "model", "query", "render", "sql")
        for word in ("prompt_tokens", "completion_tokens")
    },
    ("report/sql.py", "total_tokens"): "a column of the `ledger` view",
    # runner's messages are Chat-shaped ({role, content, tool_calls, tool_call_id}: docs/spec.md),
    # and the tokenizer counts them as OpenAI bills them; `truncate(text, max_tokens)`.
    ("tokens/__init__.py", "tool_calls"): "runner's message format",
    ("tokens/__init__.py", "function_call"): "runner's message format (a legacy call)",
    ("tokens/__init__.py", "max_tokens"): "truncate()'s own argument",
    # Both wires switch streaming with these fields: a fingerprint leaves them out (a streamed
    # and a plain call of one request are one request), and a batch line cannot carry them.
    ("ledger/fingerprint.py", "stream_options"): "left out of request fingerprints",
    ("batch/build.py", "stream_options"): "left out of batch lines",
    # `mock-server --no-json-schema` describes the mock's behaviour (it fakes the wires).
    ("cli/mock_server.py", "response_format"): "the mock server's flag, which fakes the wire",
    ("cli/mock_server.py", "json_schema"): "the mock server's flag, which fakes the wire",
}
# The spec's `params` block is written in the chosen API's own words by design (docs/spec.md):
# the module that checks it and the tables it checks by name them.
PARAMS_CHECKERS = ("spec/check.py", "spec/params.py")


def _code_strings(path: Path) -> list[tuple[int, str]]:
    """Every string constant in code (f-string parts included), docstrings left out."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    docstrings = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef):
            body = node.body
            if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant):
                docstrings.add(id(body[0].value))
    return [
        (node.lineno, node.value)
        for node in ast.walk(tree)
        if isinstance(node, ast.Constant)
        and isinstance(node.value, str)
        and id(node) not in docstrings
    ]


def _pattern(word: str) -> re.Pattern[str]:
    return re.compile(rf"(?<![\w/.]){re.escape(word)}(?![\w])")


PATTERNS = {word: _pattern(word) for word in WIRE_WORDS}
OUTSIDE = sorted(
    p
    for p in PACKAGE.rglob("*.py")
    if p.relative_to(PACKAGE).parts[0] not in INSIDE
    and p.relative_to(PACKAGE).as_posix() not in PARAMS_CHECKERS
)


@pytest.mark.parametrize("path", OUTSIDE, ids=lambda p: p.relative_to(PACKAGE).as_posix())
def test_no_wire_field_outside_the_providers(path: Path) -> None:
    module = path.relative_to(PACKAGE).as_posix()
    found = []
    for line, text in _code_strings(path):
        for word, pattern in PATTERNS.items():
            if pattern.search(text) and (module, word) not in OWN_WORDS:
                found.append(f"{module}:{line}: {word!r} in {text[:60]!r}")
    assert not found, "wire fields named outside runner/providers/:\n" + "\n".join(found)


def test_every_allowance_is_used() -> None:
    """An allowance no string needs any more is stale: remove it."""
    used = set()
    for path in OUTSIDE:
        module = path.relative_to(PACKAGE).as_posix()
        for _, text in _code_strings(path):
            used.update((module, w) for w, p in PATTERNS.items() if p.search(text))
    assert not set(OWN_WORDS) - used, sorted(set(OWN_WORDS) - used)


def test_the_check_can_fail(tmp_path: Path) -> None:
    bad = tmp_path / "bad.py"
    bad.write_text('"""Docs may say choices."""\nx = body["choices"][0]["finish_reason"]\n')
    words = {w for _, text in _code_strings(bad) for w, p in PATTERNS.items() if p.search(text)}
    assert words == {"choices", "finish_reason"}
