"""A Responses reply with reasoning tokens, through `runner exec` against a loopback server that
sends it: every output token (reasoning included) is priced at the model's output rate and
every input token at its input rate (cached ones at the cached rate), rates from genai-prices
via runner.pricing.PriceBook."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from decimal import Decimal
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from runner.cli import cli
from runner.ledger.reading import read_records
from runner.pricing import PriceBook

MODEL = "o3-mini"
USAGES = [
    {
        "input_tokens": 1000,
        "input_tokens_details": {"cached_tokens": 0},
        "output_tokens": 900,
        "output_tokens_details": {"reasoning_tokens": 850},
        "total_tokens": 1900,
    },
    {
        "input_tokens": 3000,
        "input_tokens_details": {"cached_tokens": 2048},
        "output_tokens": 700,
        "output_tokens_details": {"reasoning_tokens": 640},
        "total_tokens": 3700,
    },
]


class _Canned(BaseHTTPRequestHandler):
    """Answers POST /v1/responses with a completed response carrying the next usage."""

    usages: list[dict[str, Any]] = []
    paths: list[str] = []

    def do_POST(self) -> None:  # noqa: N802 - the stdlib's name
        sent = json.loads(self.rfile.read(int(self.headers.get("content-length") or 0)))
        self.paths.append(self.path)
        reply = {
            "id": "resp_1",
            "object": "response",
            "model": sent["model"],
            "status": "completed",
            "output": [
                {"type": "reasoning", "id": "rs_1", "summary": []},
                {
                    "type": "message",
                    "id": "msg_1",
                    "role": "assistant",
                    "content": [{"type": "output_text", "text": "Lima.", "annotations": []}],
                },
            ],
            "usage": self.usages.pop(0),
        }
        data = json.dumps(reply).encode()
        self.send_response(200)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture
def canned_url() -> Iterator[str]:
    _Canned.usages = [dict(u) for u in USAGES]
    _Canned.paths = []
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Canned)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/v1"
    server.shutdown()
    server.server_close()


def test_reasoning_tokens_are_priced_as_output(tmp_path: Path, canned_url: str) -> None:
    spec = tmp_path / "r.yaml"
    spec.write_text(
        f"name: r\nmodel: {MODEL}\nprovider: {{api: responses}}\n"
        "params: {reasoning: {effort: high}, max_output_tokens: 4000}\n"
        # Long enough that 3000 billed input tokens are plausible against the local count.
        f"messages: [{{role: user, content: '{'Which capital? ' * 250}'}}]\n",
        encoding="utf-8",
    )
    ledger = tmp_path / "l.jsonl"
    for _ in USAGES:
        result = CliRunner().invoke(
            cli,
            ["exec", str(spec), "--base-url", canned_url, "--ledger", str(ledger)],
            env={"OPENAI_API_KEY": "sk-test"},
            catch_exceptions=False,
        )
        assert result.exit_code == 0, result.output
        assert result.stdout == "Lima.\n"
    assert _Canned.paths == ["/v1/responses", "/v1/responses"]

    price = PriceBook().price(MODEL)
    assert price is not None and price.output > price.input > 0
    million = Decimal(1_000_000)
    lines = list(read_records(ledger))
    assert len(lines) == 2
    for line, usage in zip(lines, USAGES, strict=True):
        assert line["api"] == "responses"
        recorded = line["usage"]
        assert (recorded["prompt"], recorded["completion"]) == (
            usage["input_tokens"],
            usage["output_tokens"],
        )
        assert recorded["reasoning"] == usage["output_tokens_details"]["reasoning_tokens"]
        assert recorded["cached"] == usage["input_tokens_details"]["cached_tokens"]
        cached = recorded["cached"]
        cached_rate = price.input if price.cached_input is None else price.cached_input
        expected = (
            (recorded["prompt"] - cached) * price.input
            + cached * cached_rate
            + recorded["completion"] * price.output  # reasoning is inside completion
        ) / million
        assert Decimal(str(line["cost"]["usd"])) == expected
        # Not priced as if only the visible answer were output.
        visible_only = (
            (recorded["prompt"] - cached) * price.input
            + cached * cached_rate
            + (recorded["completion"] - recorded["reasoning"]) * price.output
        ) / million
        assert Decimal(str(line["cost"]["usd"])) > visible_only
    first = lines[0]
    assert Decimal(str(first["cost"]["usd"])) == (1000 * price.input + 900 * price.output) / million
