"""runner against a real OpenAI-compatible server: llama-cpp-python's `llama_cpp.server`, serving
a tiny random-weight llama GGUF that the test builds itself (tests/client/_llama_gguf.py).

The answers are nonsense; what is checked is the real server's wire behaviour as runner records
it: the usage it reports, its SSE stream, and what it does with a `json_schema` response_format.
Every reply is recorded on the way in (a transport that keeps the bytes), so each ledger line is
compared with what the server really sent.

Optional: it needs a Python with llama-cpp-python (`llama_cpp`) and `gguf`, which the project
does not install. It uses the current interpreter when it has them, else the one named by
RUNNER_LLAMA_PYTHON; without either it is skipped. Run it alone with `pytest -m real_model`.
"""

from __future__ import annotations

import importlib.util
import json
import os
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx2
import pytest
from click.testing import CliRunner

import runner
from runner.cli import cli
from runner.errors import OutputInvalid, OutputTruncated

pytestmark = [
    pytest.mark.real_model,
    # runner counts this model's prompts with o200k_base and says so, once per process.
    pytest.mark.filterwarnings("ignore:unknown model 'tiny-random-llama'"),
]

BUILDER = Path(__file__).resolve().parent / "_llama_gguf.py"
MODEL = "tiny-random-llama"  # a name no price list knows: the cost must be unknown, never 0
MAX_TOKENS = 8
# Read at import: tests/conftest.py strips RUNNER_* variables from each test's environment.
# A path is made absolute now, before the tests change directory.
_NAMED_PYTHON = os.environ.get("RUNNER_LLAMA_PYTHON", "")
if os.sep in _NAMED_PYTHON:
    _NAMED_PYTHON = os.path.abspath(os.path.expanduser(_NAMED_PYTHON))
_CHECK = (
    "import importlib.util as u, sys; "
    "sys.exit(0 if u.find_spec('llama_cpp') and u.find_spec('gguf') else 1)"
)


def llama_python() -> tuple[str | None, str]:
    """The interpreter that has llama_cpp and gguf, or None and why there is none."""
    if importlib.util.find_spec("llama_cpp") and importlib.util.find_spec("gguf"):
        return sys.executable, ""
    if not _NAMED_PYTHON:
        return None, (
            "needs llama-cpp-python and gguf: this interpreter lacks them and "
            "RUNNER_LLAMA_PYTHON (a Python that has them) is not set"
        )
    try:
        found = subprocess.run([_NAMED_PYTHON, "-c", _CHECK], timeout=30).returncode == 0
    except OSError as exc:
        return None, f"RUNNER_LLAMA_PYTHON={_NAMED_PYTHON} cannot be run: {exc}"
    if not found:
        return None, f"RUNNER_LLAMA_PYTHON={_NAMED_PYTHON} lacks llama_cpp or gguf"
    return _NAMED_PYTHON, ""


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _wait_ready(process: subprocess.Popen[bytes], url: str, log: Path, limit: float) -> None:
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        if process.poll() is not None:
            tail = log.read_text(errors="replace")[-3000:]
            code = process.returncode
            pytest.fail(f"llama_cpp.server exited ({code}) before it was ready:\n{tail}")
        try:
            with urllib.request.urlopen(f"{url}/models", timeout=2) as reply:
                if reply.status == 200:
                    return
        except OSError:
            pass
        time.sleep(0.1)
    tail = log.read_text(errors="replace")[-3000:]
    pytest.fail(f"llama_cpp.server did not answer {url}/models within {limit:g} s:\n{tail}")


@pytest.fixture(scope="module")
def llama_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A real llama_cpp.server on a free loopback port, serving a freshly built tiny model;
    killed when the module's tests are done, whatever happened."""
    python, why = llama_python()
    if python is None:
        pytest.skip(why)
    folder = tmp_path_factory.mktemp("llama")
    gguf = folder / "tiny.gguf"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("RUNNER_", "OPENAI_"))}
    built = subprocess.run(
        [python, str(BUILDER), str(gguf)], timeout=60, env=env, capture_output=True, text=True
    )
    assert built.returncode == 0, f"building the GGUF failed:\n{built.stderr[-3000:]}"
    assert 0 < gguf.stat().st_size < 5_000_000
    port = _free_port()
    log = folder / "server.log"
    with log.open("wb") as sink:
        process = subprocess.Popen(
            [
                python, "-m", "llama_cpp.server",
                "--model", str(gguf),
                "--model_alias", MODEL,
                "--host", "127.0.0.1",
                "--port", str(port),
                "--n_ctx", "512",
                "--n_threads", "2",
            ],
            stdout=sink,
            stderr=subprocess.STDOUT,
            env=env,
        )  # fmt: skip
    try:
        url = f"http://127.0.0.1:{port}/v1"
        _wait_ready(process, url, log, limit=60)
        yield url
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)


class Recording(httpx2.AsyncHTTPTransport):
    """The real HTTP transport, keeping each request body and the reply's bytes as sent."""

    def __init__(self) -> None:
        super().__init__()
        self.exchanges: list[tuple[dict[str, Any], int, str, bytes]] = []

    async def handle_async_request(self, request: httpx2.Request) -> httpx2.Response:
        response = await super().handle_async_request(request)
        raw = await response.aread()
        sent = json.loads(request.content) if request.content else {}
        kind = response.headers.get("content-type", "")
        self.exchanges.append((sent, response.status_code, kind, raw))
        return httpx2.Response(
            response.status_code, headers=response.headers, content=raw, request=request
        )


def write_spec(folder: Path, url: str, **fields: Any) -> runner.PromptSpec:
    spec = {
        "name": "llama-real",
        "model": MODEL,
        "provider": {"base_url": url},
        "params": {"temperature": 0, "max_tokens": MAX_TOKENS, "seed": 7},
        "messages": [{"role": "user", "content": "Say hello to {{ who }}."}],
        "retry": {"attempts": 1},
        "timeout": "30s",
        **fields,
    }
    (folder / "pyproject.toml").write_text("", encoding="utf-8")  # the spec's project folder
    path = folder / f"{spec['name']}.yaml"
    path.write_text(json.dumps(spec), encoding="utf-8")  # JSON is YAML
    return runner.load(path)


def ledger_lines(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def sse_chunks(raw: bytes) -> list[dict[str, Any]]:
    """The JSON chunks of an SSE body, and a check that it ends with [DONE]."""
    datas = [
        line[5:].strip() for line in raw.decode("utf-8").splitlines() if line.startswith("data:")
    ]
    assert datas and datas[-1] == "[DONE]", datas[-3:]
    return [json.loads(d) for d in datas[:-1]]


def run_once(
    spec: runner.PromptSpec, ledger: Path, **session: Any
) -> tuple[runner.Result | BaseException, Recording, dict[str, Any]]:
    transport = Recording()
    with runner.Session(ledger=ledger, transport=transport, **session) as s:
        try:
            result: runner.Result | BaseException = s.run(spec, {"who": "the world"})
        except runner.RunnerError as exc:
            result = exc
    (line,) = ledger_lines(ledger)
    return result, transport, line


def test_plain_completion_records_the_servers_usage(llama_url: str, tmp_path: Path) -> None:
    result, wire, line = run_once(write_spec(tmp_path, llama_url), tmp_path / "l.jsonl")
    assert isinstance(result, runner.Result), result

    ((sent, status, kind, raw),) = wire.exchanges
    assert status == 200 and kind.startswith("application/json")
    assert sent["max_tokens"] == MAX_TOKENS and "stream" not in sent
    reply = json.loads(raw)
    usage = reply["usage"]
    text = reply["choices"][0]["message"]["content"]
    assert usage["prompt_tokens"] > 0 and 0 < usage["completion_tokens"] <= MAX_TOKENS
    # The tiny model's SentencePiece pieces are not tiktoken's: the server's own counts win.
    assert line["status"] == "ok" and line["error"] is None
    assert line["usage"]["prompt"] == usage["prompt_tokens"]
    assert line["usage"]["completion"] == usage["completion_tokens"]
    assert line["usage"]["total"] == usage["total_tokens"]
    assert "estimated" not in line["usage"] and "implausible" not in line["usage"]
    assert line["output"]["text"] == text == result.text and text
    assert line["served_model"] == reply["model"] == MODEL
    assert line["mock"] is False
    # A model no price list knows: unknown, never a made-up 0.
    assert line["cost"]["usd"] is None and line["cost"]["source"] == "unknown"
    assert result.cost.usd is None
    assert result.usage.prompt == usage["prompt_tokens"]


def test_stream_without_usage_is_counted_locally(llama_url: str, tmp_path: Path) -> None:
    spec = write_spec(tmp_path, llama_url, stream=True)
    result, wire, line = run_once(spec, tmp_path / "l.jsonl")
    assert isinstance(result, runner.Result), result

    ((sent, status, kind, raw),) = wire.exchanges
    assert sent["stream"] is True and sent["stream_options"] == {"include_usage": True}
    assert status == 200 and kind.startswith("text/event-stream")
    chunks = sse_chunks(raw)
    streamed = "".join(
        c["choices"][0]["delta"].get("content") or "" for c in chunks if c.get("choices")
    )
    # llama-cpp-python ignores stream_options: no chunk carries usage.
    assert not any(c.get("usage") for c in chunks)
    assert chunks[-1]["choices"][0]["finish_reason"] == "length"

    assert line["status"] == "ok"
    assert line["output"]["text"] == streamed == result.text and streamed
    # No usage from the server: runner counts locally and says so, and prices nothing.
    assert line["usage"]["estimated"] is True
    assert line["usage"]["prompt"] > 0 and line["usage"]["completion"] > 0
    assert line["cost"]["usd"] is None and line["cost"]["source"] == "unknown"

    # The same request unstreamed, greedy: the same answer.
    plain, _, _ = run_once(write_spec(tmp_path, llama_url), tmp_path / "plain.jsonl")
    assert isinstance(plain, runner.Result) and plain.text == streamed


SCHEMA = {
    "type": "object",
    "properties": {"greeting": {"type": "string"}},
    "required": ["greeting"],
    "additionalProperties": False,
}


def test_json_schema_is_refused_once_as_output_mode(llama_url: str, tmp_path: Path) -> None:
    """llama-cpp-python's request model takes response_format types 'text' and 'json_object'
    only; its pydantic error comes back as a 500. runner must not retry it as a server error."""
    retry = {"attempts": 3, "backoff": {"initial": "0s", "max": "0s"}}
    spec = write_spec(tmp_path, llama_url, output={"schema": SCHEMA}, retry=retry)
    ledger = tmp_path / "l.jsonl"
    result = CliRunner().invoke(
        cli, ["exec", str(spec.path), "--var", "who=the world", "--ledger", str(ledger)]
    )
    assert result.exit_code == 1, result.output
    assert "Traceback" not in result.stderr
    assert "output.mode: json_object` or `prompt" in result.stderr

    (line,) = ledger_lines(ledger)
    assert line["status"] == "error" and line["output_mode"] == "json_schema"
    assert line["error"]["kind"] == "output_mode" and line["error"]["status"] == 500
    assert "Input should be 'text' or 'json_object'" in line["error"]["message"]
    assert [(a["outcome"], a["status"]) for a in line["attempts"]] == [("output_mode", 500)]
    assert line["usage"]["total"] == 0  # refused before any token was read
    assert line["cost"]["usd"] is None


def test_auto_falls_back_to_the_json_object_grammar(llama_url: str, tmp_path: Path) -> None:
    """With output.mode auto the call goes on as json_object, which the server honours with a
    JSON grammar: the random model starts a JSON object and is cut at max_tokens. The line
    says the output is unusable (kind length), with the server's usage of the answer."""
    spec = write_spec(tmp_path, llama_url, output={"schema": SCHEMA, "mode": "auto"})
    result, wire, line = run_once(spec, tmp_path / "l.jsonl")
    assert isinstance(result, OutputTruncated), result

    (first, _, _, _), (second, status, _, raw) = wire.exchanges
    assert first["response_format"]["type"] == "json_schema"
    assert second["response_format"] == {"type": "json_object"}
    assert status == 200
    reply = json.loads(raw)
    text = reply["choices"][0]["message"]["content"]
    assert text.startswith("{") and reply["choices"][0]["finish_reason"] == "length"

    assert line["status"] == "error" and line["output_mode"] == "json_object"
    assert line["error"]["kind"] == "length"
    assert [a["outcome"] for a in line["attempts"]] == ["output_mode", "length"]
    assert line["usage"]["prompt"] == reply["usage"]["prompt_tokens"]
    assert line["usage"]["completion"] == reply["usage"]["completion_tokens"] == MAX_TOKENS
    assert "estimated" not in line["usage"]
    assert line["cost"]["usd"] is None and line["cost"]["source"] == "unknown"
    assert line["output"]["text"] == text


def test_a_finished_answer_that_breaks_the_schema_is_invalid_output(
    llama_url: str, tmp_path: Path
) -> None:
    """json_object mode with a stop sequence: the grammar opens the object, the server stops at
    the first quote and calls the answer finished; runner records it as invalid_output, with
    the validation error, and no crash."""
    params = {"temperature": 0, "max_tokens": MAX_TOKENS, "stop": ['"', "}"]}
    output = {"schema": SCHEMA, "mode": "json_object"}
    spec = write_spec(tmp_path, llama_url, output=output, params=params)
    result, wire, line = run_once(spec, tmp_path / "l.jsonl")

    ((sent, status, _, raw),) = wire.exchanges
    assert sent["response_format"] == {"type": "json_object"} and sent["stop"] == ['"', "}"]
    assert status == 200
    reply = json.loads(raw)
    choice = reply["choices"][0]
    assert choice["finish_reason"] == "stop", choice
    assert isinstance(result, OutputInvalid), result
    assert line["status"] == "invalid_output" and line["error"]["kind"] == "invalid_output"
    assert line["error"]["errors"], line["error"]
    assert line["output"]["text"] == choice["message"]["content"]
    assert line["usage"]["prompt"] == reply["usage"]["prompt_tokens"]
    assert line["usage"]["completion"] == reply["usage"]["completion_tokens"]
    assert line["cost"]["usd"] is None
