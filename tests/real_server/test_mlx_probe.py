"""`runner probe` against a real server nobody here wrote: `mlx_lm.server` on its tiny
random-weight model (conftest.py). Its table differs from the mock's on almost every row: it
answers json_schema and json_object with a 200 and ignores them, ignores tools and `n`, sends
usage at the end of a stream, has no /v1/responses, /v1/files or /v1/batches, answers an unknown
model with `{"error": "<string>"}` and sends no rate-limit headers."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
from _mlx_server import MODEL
from click.testing import CliRunner, Result

from runner.cli import cli

pytestmark = [
    pytest.mark.real_server,
    # runner counts the prompts of a model it does not know with o200k_base, and warns.
    pytest.mark.filterwarnings("ignore:unknown model"),
]


def probe(server: str, ledger: Path, *args: str) -> Result:
    argv = ["probe", "--base-url", f"{server}/v1", "--model", MODEL, "--ledger", str(ledger)]
    return CliRunner().invoke(cli, [*argv, *args])


def lines(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def test_the_mlx_table(mlx_server: str, tmp_path: Path) -> None:
    ledger = tmp_path / "l.jsonl"
    result = probe(mlx_server, ledger, "--json")

    assert result.exit_code == 0, result.output
    found = json.loads(result.stdout)
    records = {r["spec"]["name"].removeprefix("probe."): r for r in lines(ledger)}
    assert list(records) == [
        "json_schema",
        "json_object",
        "stream_usage",
        "n",
        "tools",
        "responses",
        "error_shape",
    ]
    verdicts = {k: v["verdict"] for k, v in found.items() if k != "suggested"}
    assert verdicts == {
        "json_schema": "ignored",
        "json_object": "ignored",
        "stream_usage": "honoured",
        "n": "ignored",
        "tools": "ignored",
        "responses": "absent",
        "files": "absent",
        "batches": "absent",
        "models": "present",
        "error_shape": "other",
        "rate_limit_headers": "absent",
    }
    # The schemas ignored: a 200 whose text (the model's nonsense) runs to the token limit. A
    # json_schema request answered so is kind schema_ignored; a json_object one, length.
    kinds = {"json_schema": "schema_ignored", "json_object": "length"}
    for mode in ("json_schema", "json_object"):
        line = records[mode]
        assert line["status"] == "error" and line["error"]["kind"] == kinds[mode]
        assert line["output_mode"] == mode
        shown = " ".join(line["output"]["text"].split())[:39]
        assert found[mode]["detail"].startswith(f"not the JSON asked for: {json.dumps(shown)[:-1]}")
        if mode == "json_object":  # json_schema's is caught before the limit is considered
            assert found[mode]["detail"].endswith(" (stopped at the 64-token limit)")
    usage = records["stream_usage"]["usage"]
    assert "estimated" not in usage and records["stream_usage"]["ttft_ms"] is not None
    assert found["stream_usage"]["detail"] == (
        f"usage at the end: {usage['prompt']} prompt + {usage['completion']} completion tokens"
    )
    assert found["n"]["detail"] == "1 choice"
    assert records["n"]["status"] == "ok" and len(records["n"]["output"].get("choices", [1])) == 1
    tools = records["tools"]
    assert tools["status"] == "ok" and tools["output"]["text"]
    assert found["tools"]["detail"].startswith('text, no call: "')
    # mlx_lm.server answers every path it does not know with a plain-text 404.
    for capability in ("responses", "files", "batches"):
        assert found[capability]["detail"] == "404: Not Found"
    assert records["responses"]["error"]["kind"] == "not_found"
    # It lists the model by its path, not by the name it answers to.
    assert found["models"]["detail"] == f"lists 1 model(s); {MODEL} is not among them"
    assert found["error_shape"]["detail"] == '404: {"error": "<string>"}'
    assert records["error_shape"]["model"] == "runner-no-such-model"
    assert found["rate_limit_headers"]["detail"] == "none on any of the 11 replies"
    assert [s["setting"] for s in found["suggested"]] == [
        "output.mode: prompt",
        "provider.api: chat",
        "no params.n",
        "no tools",
        "no --batch",
        "rate: {rpm, tpm, concurrency}",
    ]
    # Every model call recorded, priced as unknown (no price for this model), one request each.
    for line in records.values():
        assert len(line["attempts"]) == 1
        assert line["cost"] == {"usd": None, "source": "unknown", "estimated": False}


def test_the_mlx_table_as_printed(mlx_server: str, tmp_path: Path) -> None:
    result = probe(mlx_server, tmp_path / "l.jsonl")
    assert result.exit_code == 0, result.output
    table = result.stdout.split("\n\n")[1]  # between the title and the suggestions
    rows = dict(
        re.findall(r"^(\S+(?: \S+)*)  .*?(\S+)$", table, flags=re.M)[2:]  # past the heading
    )
    assert rows == {
        "json_schema": "ignored",
        "json_object": "ignored",
        "usage in streams": "honoured",
        "n": "ignored",
        "tools": "ignored",
        "responses API": "absent",
        "files API": "absent",
        "batches API": "absent",
        "models list": "present",
        "error shape": "other",
        "rate-limit headers": "absent",
    }
    assert result.stdout.startswith(f"runner probe of {mlx_server}/v1: model {MODEL}, api chat\n")
    assert "\nSuggested:\n  output.mode: prompt " in result.stdout
