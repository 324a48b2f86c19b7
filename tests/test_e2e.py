"""End to end over real sockets: runner's mock server on 127.0.0.1 in a thread, the real client,
the CLI, and the ledger. Also a hostile server that echoes the API key back in its error."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from _ledger_schema import LINE_VALIDATOR
from click.testing import CliRunner, Result

from runner.cli import cli
from runner.ledger.reading import read_records
from runner.mock import serve

ROOT = Path(__file__).resolve().parent.parent
CITY_SCHEMA = json.loads((ROOT / "schemas" / "city.json").read_text("utf-8"))
FAKE_KEY = "sk-proj-E2EFAKEKEYdoNotLeak0123456789abcdefABCDEF"


@pytest.fixture(scope="module")
def mock_url() -> Iterator[str]:
    """`runner mock-server` on a free loopback port, in a thread, for the whole module."""
    ready = threading.Event()
    stop = threading.Event()
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


class _EchoKey(BaseHTTPRequestHandler):
    """A server that puts the caller's Authorization header into its 401 body and headers."""

    def do_POST(self) -> None:  # noqa: N802 - the stdlib's name
        self.rfile.read(int(self.headers.get("content-length") or 0))
        key = self.headers.get("authorization", "")
        body = json.dumps(
            {"error": {"message": f"Incorrect API key provided: {key}", "code": "invalid_api_key"}}
        ).encode()
        self.send_response(401)
        self.send_header("content-type", "application/json")
        self.send_header("x-request-id", "req_echo")
        self.send_header("x-echo", key)
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture
def echo_url() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _EchoKey)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/v1"
    server.shutdown()
    server.server_close()


def spec_at(folder: Path, base_url: str, fault: str = "") -> Path:
    """The city spec against `base_url`; `fault` goes into an X-Mock-Fault header."""
    (folder / "city.json").write_text(json.dumps(CITY_SCHEMA), encoding="utf-8")
    headers = f", headers: {{X-Mock-Fault: '{fault}'}}" if fault else ""
    path = folder / "city.yaml"
    path.write_text(
        "name: city\nmodel: gpt-4o-mini\n"
        f"provider: {{base_url: '{base_url}'{headers}}}\n"
        "params: {max_tokens: 300}\n"
        "inputs: {type: object, properties: {city: {type: string}}, required: [city]}\n"
        "messages: [{role: user, content: 'Tell me about {{ city }}.'}]\n"
        "output: {schema: city.json}\n"
        "retry: {attempts: 3, backoff: {initial: 10ms, max: 20ms}}\n",
        encoding="utf-8",
    )
    return path


def run(*args: str, env: dict[str, str]) -> Result:
    return CliRunner().invoke(cli, list(args), env=env, catch_exceptions=False)


def records(path: Path) -> list[dict[str, Any]]:
    found = list(read_records(path))
    for record in found:
        LINE_VALIDATOR.validate(record)
    return found


def test_exec_over_http(tmp_path: Path, mock_url: str) -> None:
    led = tmp_path / "l.jsonl"
    spec = spec_at(tmp_path, mock_url)
    env = {"OPENAI_API_KEY": FAKE_KEY}
    result = run("exec", str(spec), "--var", "city=Oslo", "--ledger", str(led), env=env)
    assert result.exit_code == 0, result.output
    jsonschema.validate(json.loads(result.stdout), CITY_SCHEMA)
    [line] = records(led)
    assert line["mock"] is False  # a real HTTP server, as far as runner knows
    assert line["request_id"].startswith("req_")
    assert line["usage"]["prompt"] == line["usage"]["estimated_prompt"]


def test_streamed_and_plain_agree_over_http(tmp_path: Path, mock_url: str) -> None:
    led = tmp_path / "l.jsonl"
    spec = spec_at(tmp_path, mock_url)
    env = {"OPENAI_API_KEY": FAKE_KEY}
    plain = run("exec", str(spec), "--var", "city=Rome", "--ledger", str(led), env=env)
    streamed = run(
        "exec", str(spec), "--var", "city=Rome", "--stream", "--ledger", str(led), env=env
    )
    assert plain.exit_code == streamed.exit_code == 0
    assert json.loads(plain.stdout) == json.loads(streamed.stdout)
    first, second = records(led)
    assert first["request_sha256"] == second["request_sha256"]
    assert first["ttft_ms"] is None and second["ttft_ms"] is not None


def test_retries_over_http_then_success(tmp_path: Path, mock_url: str) -> None:
    led = tmp_path / "l.jsonl"
    spec = spec_at(tmp_path, mock_url, fault="status=429;fail_first=2")
    result = run("exec", str(spec), "--var", "city=Lima", "--ledger", str(led), env={})
    assert result.exit_code == 0, result.output
    [line] = records(led)
    assert [a["outcome"] for a in line["attempts"]] == ["rate_limit", "rate_limit", "ok"]
    assert [a.get("status") for a in line["attempts"]] == [429, 429, None]


def test_the_api_key_never_reaches_stdout_stderr_or_the_ledger(
    tmp_path: Path, echo_url: str
) -> None:
    led = tmp_path / "l.jsonl"
    spec = spec_at(tmp_path, echo_url)
    env = {"OPENAI_API_KEY": FAKE_KEY, "RUNNER_DEBUG": "1"}  # tracebacks on, too
    result = run("exec", str(spec), "--var", "city=Oslo", "--ledger", str(led), "--json", env=env)
    assert result.exit_code == 1
    assert "401" in result.stderr and "Incorrect API key" in result.stderr
    for text in (result.stdout, result.stderr, led.read_text("utf-8")):
        assert FAKE_KEY not in text
        assert FAKE_KEY[10:30] not in text  # not even a slice of it
    [line] = records(led)
    assert line["error"]["status"] == 401 and len(line["attempts"]) == 1
