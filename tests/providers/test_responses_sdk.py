"""runner's ResponsesClient and the official SDK's `client.responses.create`, on the same mock
server (loopback), given the same body built from a spec by `runner render --body`: the same
text and the same usage, and the prompt runner counted before sending is the one the server
billed."""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import openai
import pytest
from click.testing import CliRunner

from runner.cli import cli
from runner.mock import serve
from runner.providers import ResponsesClient

SPEC = """\
name: trip
model: {model}
provider: {{api: responses}}
params: {params}
inputs: {{type: object, properties: {{city: {{type: string}}}}, required: [city]}}
messages:
  - {{role: system, content: You plan trips.}}
  - {{role: user, content: 'Three days in {{{{ city }}}}?'}}
{output}
"""
SCHEMA = {
    "type": "object",
    "properties": {"days": {"type": "array", "items": {"type": "string"}}},
    "required": ["days"],
    "additionalProperties": False,
}


@pytest.fixture(scope="module")
def mock_url() -> Iterator[str]:
    ready, stop = threading.Event(), threading.Event()
    port: list[int] = []

    def on_ready(actual: int) -> None:
        port.append(actual)
        ready.set()

    thread = threading.Thread(
        target=serve, kwargs={"port": 0, "ready": on_ready, "stop": stop}, daemon=True
    )
    thread.start()
    assert ready.wait(30), "the mock server did not start"
    yield f"http://127.0.0.1:{port[0]}/v1"
    stop.set()
    thread.join(10)


def rendered(tmp_path: Path, model: str, params: str, output: str) -> dict[str, Any]:
    (tmp_path / "days.json").write_text(json.dumps(SCHEMA), encoding="utf-8")
    spec = tmp_path / "trip.yaml"
    spec.write_text(SPEC.format(model=model, params=params, output=output), encoding="utf-8")
    result = CliRunner().invoke(
        cli, ["render", str(spec), "--var", "city=Lima", "--json"], catch_exceptions=False
    )
    assert result.exit_code == 0, result.output
    shown: dict[str, Any] = json.loads(result.stdout)
    assert shown["api"] == "responses"
    return shown


@pytest.mark.parametrize(
    ("model", "params", "output"),
    [
        ("gpt-4o-mini", "{max_output_tokens: 300, temperature: 0.2}", ""),
        ("gpt-4o-mini", "{max_output_tokens: 300}", "output: {schema: days.json, strict: true}"),
        ("gpt-4o-mini", "{max_output_tokens: 16}", ""),  # incomplete
        ("o3-mini", "{reasoning: {effort: low, summary: auto}, max_output_tokens: 500}", ""),
    ],
    ids=["text", "json_schema", "incomplete", "reasoning"],
)
def test_runner_and_the_sdk_get_the_same_answer(
    tmp_path: Path, mock_url: str, model: str, params: str, output: str
) -> None:
    shown = rendered(tmp_path, model, params, output)
    body = shown["body"]
    assert body["store"] is False and "instructions" in body

    async def ours() -> Any:
        async with ResponsesClient(base_url=mock_url, api_key="sk-test", environ={}) as client:
            return await client.complete(body)

    done = asyncio.run(ours())
    with openai.OpenAI(base_url=mock_url, api_key="sk-test", max_retries=0) as sdk:
        theirs = sdk.responses.create(**body)
    assert theirs.usage is not None and done.usage is not None
    assert done.text == theirs.output_text
    assert done.id == theirs.id
    assert (done.usage.prompt, done.usage.completion) == (
        theirs.usage.input_tokens,
        theirs.usage.output_tokens,
    )
    assert done.usage.cached == theirs.usage.input_tokens_details.cached_tokens
    assert done.usage.reasoning == theirs.usage.output_tokens_details.reasoning_tokens
    assert done.usage.prompt == shown["prompt_tokens"]  # counted exactly before sending
    finish = "length" if theirs.status == "incomplete" else "stop"
    assert done.choices[0].finish_reason == finish
    assert (theirs.status == "incomplete") is ("max_output_tokens: 16" in params)
    if model == "o3-mini":
        assert done.usage.reasoning > 0
    if output:
        assert set(json.loads(done.text or "")) == {"days"}
