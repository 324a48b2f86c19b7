"""`output.mode: auto` notices a schema that a server took and ignored (HTTP 200, plain text)
and falls back to prompt mode, once per endpoint for the run; with `json_schema` alone the error
says so and is not retried. The mock plays that server with `X-Mock-Fault: ignore_json_schema`
(and a refusing one with `no_json_schema`)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from runner.cli import cli
from runner.engine.answer import schema_ignored
from runner.errors import OutputInvalid, OutputSchemaIgnored

SCHEMA = {
    "type": "object",
    "properties": {"name": {"type": "string"}},
    "required": ["name"],
    "additionalProperties": False,
}


@pytest.mark.parametrize(
    ("text", "schema", "ignored"),
    [
        ("Paris is a city in France.", SCHEMA, "not JSON at all"),
        ('  "just a string"', SCHEMA, "JSON where the schema asks for object"),
        ("[1, 2]", SCHEMA, "JSON where the schema asks for object"),
        ('{"name": "Paris"}', SCHEMA, None),
        ('{"name": "Par', SCHEMA, None),  # the right start, cut: ordinary invalid output
        ('{"wrong": 1}', SCHEMA, None),  # an object that breaks the schema: invalid output
        ("[1, 2]", {"type": "array"}, None),
        ("{}", {"type": "array"}, "JSON where the schema asks for array"),
        ("12", {"type": ["integer", "null"]}, None),
        ("true", {"type": "integer"}, "JSON where the schema asks for integer"),
        ("1.5", {"type": "integer"}, "JSON of another type (float)"),
        ("hello", {}, "not JSON at all"),  # no type: any JSON value, but not prose
        ("", SCHEMA, None),  # no text is OutputEmpty's business
    ],
)
def test_which_replies_prove_the_schema_was_ignored(
    text: str, schema: dict[str, Any], ignored: str | None
) -> None:
    found = schema_ignored(text, schema)
    if ignored is None:
        assert found is None
    else:
        assert found is not None and found.startswith(ignored), found


def _spec(folder: Path, mode: str, fault: str, *, api: str = "chat") -> Path:
    (folder / "out.json").write_text(json.dumps(SCHEMA))
    limit = "max_output_tokens" if api == "responses" else "max_tokens"
    path = folder / "s.yaml"
    path.write_text(
        "name: s\nmodel: gpt-4o-mini\n"
        f"provider: {{api: {api}, headers: {{X-Mock-Fault: {fault}}}}}\n"
        f"params: {{{limit}: 100}}\n"
        "messages:\n  - {role: user, content: 'Name a city near {{ q }}.'}\n"
        f"output: {{schema: out.json, mode: {mode}}}\n"
        "retry: {attempts: 3, backoff: {initial: 1ms, max: 1ms}}\n"
        "rate: {rpm: 100000, concurrency: 4}\n",
        encoding="utf-8",
    )
    return path


def _lines(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


@pytest.mark.parametrize("api", ["chat", "responses"])
def test_auto_falls_back_to_prompt_once_for_a_whole_data_set(repo: Path, api: str) -> None:
    spec = _spec(repo, "auto", "ignore_json_schema", api=api)
    rows = repo / "rows.jsonl"
    rows.write_text("".join(json.dumps({"id": str(i), "q": f"c{i}"}) + "\n" for i in range(20)))
    ledger = repo / "l.jsonl"
    result = CliRunner().invoke(
        cli,
        ["exec", str(spec), "--input", str(rows), "--mock", "--ledger", str(ledger),
         "--concurrency", "1"],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    lines = _lines(ledger)
    assert len(lines) == 20 and all(line["status"] == "ok" for line in lines)
    assert all(line["output_mode"] == "prompt" for line in lines)
    ignored = [a for line in lines for a in line["attempts"] if a["outcome"] == "schema_ignored"]
    assert len(ignored) == 1, "the run falls back once, not once per row"
    fallbacks = [line["output_fallback"] for line in lines]
    assert sum(not f["learned"] for f in fallbacks) == 1
    assert {(f["from"], f["to"], f["why"]) for f in fallbacks} == {
        ("json_schema", "prompt", "ignored")
    }
    assert "falling back to prompt" in ignored[0]["message"]


def test_a_refused_schema_is_learned_for_the_run_too(repo: Path) -> None:
    spec = _spec(repo, "auto", "no_json_schema")
    rows = repo / "rows.jsonl"
    rows.write_text("".join(json.dumps({"id": str(i), "q": f"c{i}"}) + "\n" for i in range(5)))
    ledger = repo / "l.jsonl"
    args = ["exec", str(spec), "--input", str(rows), "--mock", "--ledger", str(ledger)]
    result = CliRunner().invoke(cli, [*args, "--concurrency", "1"])
    assert result.exit_code == 0, result.output
    lines = _lines(ledger)
    refused = [a for line in lines for a in line["attempts"] if a["outcome"] == "output_mode"]
    assert len(refused) == 1
    assert {line["output_mode"] for line in lines} == {"json_object"}
    assert [line["output_fallback"]["learned"] for line in lines] == [False] + [True] * 4
    assert {line["output_fallback"]["why"] for line in lines} == {"refused"}


def test_json_schema_mode_says_the_schema_is_ignored_and_does_not_retry(repo: Path) -> None:
    spec = _spec(repo, "json_schema", "ignore_json_schema")
    ledger = repo / "l.jsonl"
    result = CliRunner().invoke(
        cli, ["exec", str(spec), "--var", "q=Lyon", "--mock", "--ledger", str(ledger)]
    )
    assert result.exit_code == 1
    assert "Traceback" not in result.output
    assert "seems to ignore the output schema" in result.stderr
    assert "output.mode: auto" in result.stderr and "output.mode: prompt" in result.stderr
    [line] = _lines(ledger)
    assert line["error"]["kind"] == "schema_ignored"
    assert len(line["attempts"]) == 1, "the identical request is not paid for again"
    assert "output_fallback" not in line


def test_prompt_mode_replies_that_are_not_json_stay_invalid_output(repo: Path) -> None:
    spec = _spec(repo, "prompt", "invalid_output")
    ledger = repo / "l.jsonl"
    result = CliRunner().invoke(
        cli, ["exec", str(spec), "--var", "q=Lyon", "--mock", "--ledger", str(ledger)]
    )
    assert result.exit_code == 1
    [line] = _lines(ledger)
    assert line["error"]["kind"] == "invalid_output"
    assert len(line["attempts"]) == 3  # invalid output is retried, as before


@pytest.mark.parametrize(
    ("text", "outcome"),
    [
        ('{"name": "Paris"}', "value"),
        ('{"wrong": 1}', "OutputInvalid"),  # the right start, breaks the schema
        ('{"name": "Par', "OutputInvalid"),  # cut JSON
        ('{"name": ' + "[" * 100_000, "OutputInvalid"),  # nested past the parser
        ("Paris is a city.", "OutputSchemaIgnored"),
        ("[1, 2]", "OutputSchemaIgnored"),
    ],
)
def test_a_json_schema_reply_is_parsed_once(
    monkeypatch: pytest.MonkeyPatch, text: str, outcome: str
) -> None:
    """The check for an ignored schema and the reply's value share one parse of the reply
    (it was parsed twice on every call), with the same outcome as before."""
    from runner.engine import answer
    from runner.engine.results import Preflight
    from runner.spec.model import OutputConfig
    from runner.types import Choice, Completion, Cost, Usage

    parses: list[str] = []
    real = answer.reply_json

    def counted(raw: str) -> Any:
        parses.append(raw)
        return real(raw)

    monkeypatch.setattr(answer, "reply_json", counted)
    completion = Completion("c", "m", (Choice(0, text, "stop"),), Usage(prompt=3, completion=2))
    pre = Preflight("m", {}, [], {}, 1, None, None, Cost(None, "x"))
    output = OutputConfig(SCHEMA, None)
    try:
        value, _ = answer.completion_values(completion, output, pre, mode="json_schema")
        found = "value"
        assert value == {"name": "Paris"}
    except (OutputInvalid, OutputSchemaIgnored) as exc:
        found = type(exc).__name__
    assert found == outcome
    assert len(parses) <= 1
