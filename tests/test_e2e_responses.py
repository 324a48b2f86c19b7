"""A spec with `provider: {api: responses}` through the CLI, end to end: exec (plain, --stream,
data sets with --resume, --batch and collect), runner test with judges on either API and
--replay, render --body, report --by api, every output mode; a server without /v1/responses
(404 from `runner mock-server --no-responses`, 405 from a raw server) is one clear error, never
retried; bad input is exit 2 with nothing sent."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx2
import jsonschema
import pytest
from _ledger_schema import LINE_VALIDATOR
from click.testing import CliRunner, Result

from runner.cli import cli
from runner.ledger.reading import read_records
from runner.mock import serve

ROOT = Path(__file__).resolve().parent.parent
CITY_SCHEMA = json.loads((ROOT / "schemas" / "city.json").read_text("utf-8"))
CITIES = ["Oslo", "Rome", "Lima", "Kyiv", "Pune", "Baku", "Doha", "Riga", "Bern", "Nice"]

CITY = """\
name: {name}
model: gpt-4o-mini
provider: {provider}
params: {params}
inputs: {{type: object, properties: {{city: {{type: string}}}}, required: [city]}}
messages:
  - {{role: system, content: You are a precise geography assistant.}}
  - {{role: user, content: '{prompt}'}}
output: {{schema: city.json{mode}}}
retry: {{attempts: 3, backoff: {{initial: 10ms, max: 20ms}}}}
tests:
  - name: oslo
    vars: {{city: Oslo}}
    expect:
      - schema_valid: true
      - {{judge: {judge}}}
"""
JUDGE = """\
name: {name}
model: gpt-4o-mini
provider: {provider}
params: {params}
inputs:
  type: object
  properties: {{output: {{}}, text: {{type: [string, "null"]}}, vars: {{type: object}}}}
  required: [output, text, vars]
messages:
  - {{role: system, content: You review answers.}}
  - {{role: user, content: 'Is this a good answer? {{{{ output | tojson }}}}'}}
output:
  schema:
    type: object
    properties: {{pass: {{type: boolean, const: true}}, reason: {{type: string}}}}
    required: [pass, reason]
    additionalProperties: false
"""
RESPONSES = {"provider": "{api: responses}", "params": "{max_output_tokens: 300}"}
CHAT = {"provider": "{api: chat}", "params": "{max_tokens: 300}"}


def write_specs(
    folder: Path,
    *,
    prompt: str = "Tell me about {{ city }}.",
    mode: str = "",
    provider: str = "{api: responses}",
    params: str = "{max_output_tokens: 300}",
) -> Path:
    """city-resp.yaml (judged by a chat judge), city-chat.yaml (judged by a responses judge)."""
    (folder / "city.json").write_text(json.dumps(CITY_SCHEMA), encoding="utf-8")
    (folder / "judge-chat.yaml").write_text(JUDGE.format(name="judge-chat", **CHAT), "utf-8")
    (folder / "judge-resp.yaml").write_text(JUDGE.format(name="judge-resp", **RESPONSES), "utf-8")
    mode = f", mode: {mode}" if mode else ""
    (folder / "city-chat.yaml").write_text(
        CITY.format(name="city-chat", prompt=prompt, mode=mode, judge="judge-resp.yaml", **CHAT),
        encoding="utf-8",
    )
    spec = folder / "city-resp.yaml"
    spec.write_text(
        CITY.format(
            name="city-resp",
            prompt=prompt,
            mode=mode,
            judge="judge-chat.yaml",
            provider=provider,
            params=params,
        ),
        encoding="utf-8",
    )
    return spec


def run(*args: str, env: dict[str, str] | None = None) -> Result:
    return CliRunner().invoke(cli, list(args), env=env, catch_exceptions=False)


def lines(path: Path) -> list[dict[str, Any]]:
    if not path.exists():
        return []
    found = list(read_records(path))
    for line in found:
        LINE_VALIDATOR.validate(line)
    return found


def write_rows(folder: Path, cities: list[str] = CITIES) -> Path:
    rows = folder / "rows.jsonl"
    rows.write_text("".join(json.dumps({"city": c}) + "\n" for c in cities), encoding="utf-8")
    return rows


# --- exec -------------------------------------------------------------------------------------


def test_exec_plain_and_streamed(tmp_path: Path) -> None:
    spec = write_specs(tmp_path)
    ledger = tmp_path / "l.jsonl"
    outputs = []
    for flag in ("--no-stream", "--stream"):
        result = run(
            "exec", str(spec), "--var", "city=Oslo", "--mock", flag, "--ledger", str(ledger)
        )
        assert result.exit_code == 0, result.output
        value = json.loads(result.stdout)
        jsonschema.validate(value, CITY_SCHEMA)
        outputs.append(value)
    assert outputs[0] == outputs[1]
    plain, streamed = lines(ledger)
    for line in (plain, streamed):
        assert line["api"] == "responses" and line["status"] == "ok" and line["mock"] is True
        assert len(line["attempts"]) == 1
        # The prompt counted before sending is exactly what the server billed.
        assert line["usage"]["prompt"] == line["usage"]["estimated_prompt"] > 0
        assert line["output"]["finish_reason"] == "stop"
        assert line["messages"][0] == {
            "role": "system",
            "content": "You are a precise geography assistant.",
        }
        assert line["params"] == {"max_output_tokens": 300}
    assert plain["ttft_ms"] is None and streamed["ttft_ms"] is not None
    assert plain["usage"] == streamed["usage"]
    assert plain["request_sha256"] == streamed["request_sha256"]  # stream is not the request


def test_exec_cut_json_names_max_output_tokens(tmp_path: Path) -> None:
    spec = write_specs(tmp_path, params="{max_output_tokens: 16}")
    ledger = tmp_path / "l.jsonl"
    result = run("exec", str(spec), "--var", "city=Oslo", "--mock", "--ledger", str(ledger))
    assert result.exit_code == 1
    assert "max_output_tokens 16" in result.stderr and "raise max_output_tokens" in result.stderr
    [line] = lines(ledger)
    assert line["error"]["kind"] == "length"
    assert line["usage"]["completion"] == 16


def test_stream_faults_through_exec_are_retried_then_recorded(tmp_path: Path) -> None:
    spec = write_specs(tmp_path, provider="{api: responses, headers: {X-Mock-Fault: error_event}}")
    ledger = tmp_path / "l.jsonl"
    result = run(
        "exec", str(spec), "--var", "city=Oslo", "--mock", "--stream", "--ledger", str(ledger)
    )
    assert result.exit_code == 1
    assert "error mid-stream" in result.stderr and "(code server_error)" in result.stderr
    [line] = lines(ledger)
    assert [a["outcome"] for a in line["attempts"]] == ["connection"] * 3
    assert line["error"]["kind"] == "connection"


# --- data sets --------------------------------------------------------------------------------


def test_a_data_set_then_resume(tmp_path: Path) -> None:
    spec = write_specs(tmp_path)
    rows = write_rows(tmp_path)
    ledger = tmp_path / "l.jsonl"
    args = ["exec", str(spec), "--input", str(rows), "--mock", "--ledger", str(ledger)]
    result = run(*args)
    assert result.exit_code == 0, result.output
    first = lines(ledger)
    assert len(first) == 10 and {line["api"] for line in first} == {"responses"}
    assert sorted(line["vars"]["city"] for line in first) == sorted(CITIES)
    assert all(line["usage"]["prompt"] == line["usage"]["estimated_prompt"] for line in first)
    assert len(result.stdout.splitlines()) == 10

    again = run(*args, "--resume")
    assert again.exit_code == 0, again.output
    assert len(lines(ledger)) == 10  # nothing re-run
    assert "10 already ok in the ledger" in again.stderr

    write_rows(tmp_path, [c if c != "Rome" else "Milan" for c in CITIES])
    changed = run(*args, "--resume")
    assert changed.exit_code == 0, changed.output
    after = lines(ledger)
    assert len(after) == 11 and after[-1]["vars"] == {"city": "Milan"}

    write_specs(tmp_path, prompt="Describe {{ city }}.")  # the prompt changed: every row
    rerun = run(*args, "--resume")
    assert rerun.exit_code == 0, rerun.output
    assert len(lines(ledger)) == 21


# --- runner test ------------------------------------------------------------------------------


def test_runner_test_with_judges_on_either_api(tmp_path: Path) -> None:
    write_specs(tmp_path)
    ledger = tmp_path / "t.jsonl"
    result = run(
        "test",
        str(tmp_path / "city-resp.yaml"),
        str(tmp_path / "city-chat.yaml"),
        "--mock",
        "--ledger",
        str(ledger),
    )
    assert result.exit_code == 0, result.output
    assert "2 passed, 0 failed" in result.output
    found = {(line["spec"]["name"], line["case"]): line["api"] for line in lines(ledger)}
    assert found == {
        ("city-resp", "oslo"): "responses",
        ("judge-chat", "city-resp/oslo"): "chat",
        ("city-chat", "oslo"): "chat",
        ("judge-resp", "city-chat/oslo"): "responses",
    }


def test_runner_test_replay(tmp_path: Path) -> None:
    spec = write_specs(tmp_path)
    recorded = tmp_path / "rec.jsonl"
    first = run(
        "test", str(spec), "--replay", str(recorded), "--record-missing", "--mock",
        "--ledger", str(tmp_path / "run1.jsonl"),
    )  # fmt: skip
    assert first.exit_code == 0, first.output
    assert [line["api"] for line in lines(recorded)] == ["responses", "chat"]

    # No --mock, no key, no server: only the recording answers.
    ledger = tmp_path / "run2.jsonl"
    again = run("test", str(spec), "--replay", str(recorded), "--ledger", str(ledger))
    assert again.exit_code == 0, again.output
    assert "replayed" in again.output
    replayed = lines(ledger)
    assert len(replayed) == 2 and all(line["replayed"] for line in replayed)
    assert [line["output"] for line in replayed] == [line["output"] for line in lines(recorded)]

    write_specs(tmp_path, prompt="Describe {{ city }}.")
    changed = run("test", str(spec), "--replay", str(recorded), "--ledger", str(ledger))
    assert changed.exit_code == 1
    assert "request changed since it was recorded" in changed.output
    assert "-Tell me about Oslo." in changed.output and "+Describe Oslo." in changed.output

    write_specs(tmp_path, params="{max_output_tokens: 200}")
    changed = run("test", str(spec), "--replay", str(recorded), "--ledger", str(ledger))
    assert changed.exit_code == 1
    assert "-max_output_tokens: 300" in changed.output
    assert "+max_output_tokens: 200" in changed.output


# --- render, report, output modes -------------------------------------------------------------


def test_render_body_shows_the_responses_body(tmp_path: Path) -> None:
    spec = write_specs(tmp_path)
    result = run("render", str(spec), "--var", "city=Oslo", "--body")
    assert result.exit_code == 0, result.output
    body = json.loads(result.stdout)
    assert body["instructions"] == "You are a precise geography assistant."
    assert body["input"] == [{"role": "user", "content": "Tell me about Oslo."}]
    assert body["text"]["format"]["type"] == "json_schema"
    assert body["text"]["format"]["name"] == "city-resp"
    assert body["text"]["format"]["schema"] == CITY_SCHEMA
    assert body["store"] is False and body["max_output_tokens"] == 300
    assert "messages" not in body and "response_format" not in body
    shown = json.loads(run("render", str(spec), "--var", "city=Oslo", "--json").stdout)
    assert shown["api"] == "responses" and shown["body"] == body


def test_report_by_api_separates_the_apis(tmp_path: Path) -> None:
    write_specs(tmp_path)
    ledger = tmp_path / "l.jsonl"
    for name, times in (("city-resp", 3), ("city-chat", 2)):
        for city in CITIES[:times]:
            spec = str(tmp_path / f"{name}.yaml")
            result = run("exec", spec, "--var", f"city={city}", "--mock", "--ledger", str(ledger))
            assert result.exit_code == 0, result.output
    result = run("report", "--ledger", str(ledger), "--by", "api", "--format", "json")
    assert result.exit_code == 0, result.output
    groups = {g["api"]: g for g in json.loads(result.stdout)}
    assert set(groups) == {"chat", "responses"}
    assert (groups["responses"]["calls"], groups["chat"]["calls"]) == (3, 2)
    prompts = {api: sum(line["usage"]["prompt"] for line in lines(ledger) if line["api"] == api)
               for api in groups}  # fmt: skip
    assert {api: g["prompt_tokens"] for api, g in groups.items()} == prompts


@pytest.mark.parametrize("mode", ["auto", "json_schema", "json_object", "prompt"])
def test_output_modes(tmp_path: Path, mode: str) -> None:
    spec = write_specs(tmp_path, mode=mode)
    body = json.loads(run("render", str(spec), "--var", "city=Oslo", "--body").stdout)
    fmt = body.get("text", {}).get("format")
    if mode in ("auto", "json_schema"):
        assert fmt["type"] == "json_schema"
        assert body["instructions"] == "You are a precise geography assistant."
    else:
        assert fmt == ({"type": "json_object"} if mode == "json_object" else None)
        assert "It must conform to this JSON Schema" in body["instructions"]
    ledger = tmp_path / "l.jsonl"
    result = run("exec", str(spec), "--var", "city=Oslo", "--mock", "--ledger", str(ledger))
    assert result.exit_code == 0, result.output
    jsonschema.validate(json.loads(result.stdout), CITY_SCHEMA)
    [line] = lines(ledger)
    assert line["output_mode"] == mode.replace("auto", "json_schema")
    assert line["usage"]["prompt"] == line["usage"]["estimated_prompt"]


def test_auto_falls_back_when_the_server_refuses_text_format(tmp_path: Path) -> None:
    spec = write_specs(
        tmp_path, mode="auto", provider="{api: responses, headers: {X-Mock-Fault: no_json_schema}}"
    )
    ledger = tmp_path / "l.jsonl"
    result = run("exec", str(spec), "--var", "city=Oslo", "--mock", "--ledger", str(ledger))
    assert result.exit_code == 0, result.output
    [line] = lines(ledger)
    assert [a["outcome"] for a in line["attempts"]] == ["output_mode", "ok"]
    assert "text.format" in line["attempts"][0]["message"]
    assert line["output_mode"] == "json_object"
    # Without auto, the refusal is the call's error, and says what to do.
    write_specs(tmp_path, provider="{api: responses, headers: {X-Mock-Fault: no_json_schema}}")
    result = run("exec", str(spec), "--var", "city=Oslo", "--mock", "--ledger", str(ledger))
    assert result.exit_code == 1
    assert "output.mode: auto" in result.stderr


# --- batches ----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def mock_url() -> Iterator[str]:
    """`runner mock-server`'s app on a free loopback port, in a thread, for the module."""
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


def test_a_batch_of_responses_rows(tmp_path: Path, mock_url: str) -> None:
    spec = write_specs(tmp_path)
    rows = write_rows(tmp_path)
    ledger = tmp_path / "l.jsonl"
    env = {"OPENAI_API_KEY": "sk-test"}
    started = run(
        "exec", str(spec), "--input", str(rows), "--batch", "--no-wait",
        "--base-url", mock_url, "--ledger", str(ledger), env=env,
    )  # fmt: skip
    assert started.exit_code == 0, started.output
    [batch_id] = re.findall(r"batch_[0-9a-f]+", started.stdout)
    assert lines(ledger) == []

    with httpx2.Client(base_url=mock_url, headers={"Authorization": "Bearer sk-test"}) as http:
        batch = http.get(f"/batches/{batch_id}").json()
        uploaded = http.get(f"/files/{batch['input_file_id']}/content").text.splitlines()
    assert batch["endpoint"] == "/v1/responses"
    requests = [json.loads(line) for line in uploaded]
    assert len(requests) == 10
    rendered = json.loads(run("render", str(spec), "--var", "city=Oslo", "--body").stdout)
    for request in requests:
        assert request["method"] == "POST" and request["url"] == "/v1/responses"
        assert set(request["body"]) == set(rendered)  # the exact body a live call sends
        assert request["body"]["store"] is False
    assert requests[0]["body"] == rendered

    collected = run("batch", "collect", batch_id, "--ledger", str(ledger), env=env)
    assert collected.exit_code == 0, collected.output
    written = lines(ledger)
    assert len(written) == 10
    for line in written:
        assert line["api"] == "responses" and line["batch_id"] == batch_id
        assert line["status"] == "ok"
        assert line["usage"]["prompt"] == line["usage"]["estimated_prompt"]
        assert line["messages"][0]["role"] == "system"
        assert "batch" in line["cost"]["source"]
    assert sorted(line["vars"]["city"] for line in written) == sorted(CITIES)
    # Collected twice: nothing written again.
    assert run("batch", "collect", batch_id, "--ledger", str(ledger), env=env).exit_code == 0
    assert len(lines(ledger)) == 10


def test_a_batch_in_process(tmp_path: Path) -> None:
    spec = write_specs(tmp_path)
    rows = write_rows(tmp_path)
    ledger = tmp_path / "l.jsonl"
    result = run(
        "exec", str(spec), "--input", str(rows), "--batch", "--mock", "--ledger", str(ledger)
    )
    assert result.exit_code == 0, result.output
    written = lines(ledger)
    assert len(written) == 10
    assert {line["api"] for line in written} == {"responses"}
    assert len({line["batch_id"] for line in written}) == 1 and written[0]["batch_id"]


# --- a server without /v1/responses -----------------------------------------------------------


def _start_mock(*flags: str) -> tuple[subprocess.Popen[str], str]:
    exe = shutil.which("runner") or f"{sys.prefix}/bin/runner"
    proc = subprocess.Popen(
        [exe, "mock-server", "--port", "0", *flags],
        stderr=subprocess.PIPE,
        stdout=subprocess.DEVNULL,
        text=True,
    )
    assert proc.stderr is not None
    match = re.search(r"on http://[^:]+:(\d+)/v1", proc.stderr.readline())
    assert match is not None
    return proc, f"http://127.0.0.1:{match.group(1)}/v1"


def test_a_server_without_the_responses_api_404(tmp_path: Path) -> None:
    spec = write_specs(tmp_path)
    ledger = tmp_path / "l.jsonl"
    proc, url = _start_mock("--no-responses")
    try:
        result = run(
            "exec", str(spec), "--var", "city=Oslo", "--base-url", url, "--ledger", str(ledger),
            env={"OPENAI_API_KEY": "sk-test"},
        )  # fmt: skip
        # The same server answers the same prompt on Chat Completions.
        chat = run(
            "exec", str(tmp_path / "city-chat.yaml"), "--var", "city=Oslo", "--base-url", url,
            "--ledger", str(ledger), env={"OPENAI_API_KEY": "sk-test"},
        )  # fmt: skip
    finally:
        proc.terminate()
        proc.wait(timeout=10)
        assert proc.stderr is not None
        proc.stderr.close()
    assert result.exit_code == 1
    assert "404 from" in result.stderr and "/v1/responses" in result.stderr
    assert "set `provider.api: chat`" in result.stderr
    assert "after 1 attempt" in result.stderr
    assert chat.exit_code == 0, chat.output
    failed, ok = lines(ledger)
    assert len(failed["attempts"]) == 1  # retry.attempts is 3: nothing was retried
    assert failed["error"]["kind"] == "not_found" and failed["api"] == "responses"
    assert "provider.api: chat" in failed["error"]["message"]
    assert ok["api"] == "chat" and ok["status"] == "ok"


class _NoResponses(BaseHTTPRequestHandler):
    """A server whose /v1/responses allows GET only: every POST is a 405."""

    posts: list[str] = []

    def do_POST(self) -> None:  # noqa: N802 - the stdlib's name
        self.rfile.read(int(self.headers.get("content-length") or 0))
        self.posts.append(self.path)
        body = b'{"detail": "Method Not Allowed"}'
        self.send_response(405)
        self.send_header("allow", "GET")
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture
def raw_url() -> Iterator[tuple[str, list[str]]]:
    _NoResponses.posts = []
    server = ThreadingHTTPServer(("127.0.0.1", 0), _NoResponses)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/v1", _NoResponses.posts
    server.shutdown()
    server.server_close()


def test_a_server_without_the_responses_api_405(
    tmp_path: Path, raw_url: tuple[str, list[str]]
) -> None:
    url, posts = raw_url
    spec = write_specs(tmp_path)
    ledger = tmp_path / "l.jsonl"
    result = run(
        "exec", str(spec), "--var", "city=Oslo", "--base-url", url, "--ledger", str(ledger),
        env={"OPENAI_API_KEY": "sk-test"},
    )  # fmt: skip
    assert result.exit_code == 1
    assert "405 from" in result.stderr and "set `provider.api: chat`" in result.stderr
    assert posts == ["/v1/responses"]  # exactly one request: nothing retried
    [line] = lines(ledger)
    assert len(line["attempts"]) == 1 and line["error"]["kind"] == "bad_request"


# --- bad input --------------------------------------------------------------------------------

BAD = [
    ("responses", "{max_tokens: 20}", ["4:10: params: max_tokens is a Chat Completions parameter"]),
    (
        "responses",
        "{n: 2, seed: 1, reasoning_effort: low}",
        [
            "4:10: params: n is a Chat Completions parameter",
            "4:16: params: seed is a Chat Completions parameter",
            "4:25: params: reasoning_effort is a Chat Completions parameter; with provider.api: "
            "responses (Responses API), use reasoning: {effort: ...}",
        ],
    ),
    (
        "chat",
        "{max_output_tokens: 20, reasoning: {effort: low}}",
        [
            "4:10: params: max_output_tokens is a Responses API parameter; with provider.api: "
            "chat (Chat Completions), use max_tokens (or max_completion_tokens)",
            "4:33: params: reasoning is a Responses API parameter",
        ],
    ),
    ("respons", "{}", ["3:17: provider.api: 'respons' is not one of: chat, responses"]),
]


@pytest.mark.parametrize(("api", "params", "problems"), BAD)
def test_bad_input_is_exit_2_and_nothing_is_sent(
    tmp_path: Path, raw_url: tuple[str, list[str]], api: str, params: str, problems: list[str]
) -> None:
    url, posts = raw_url
    spec = tmp_path / "bad.yaml"
    spec.write_text(
        f"name: bad\nmodel: gpt-4o-mini\nprovider: {{api: {api}}}\nparams: {params}\n"
        "messages: [{role: user, content: hi}]\n",
        encoding="utf-8",
    )
    checked = run("validate", str(spec))
    assert checked.exit_code == 2
    for problem in problems:
        assert f"{spec}:{problem}" in checked.output
    ledger = tmp_path / "l.jsonl"
    sent = run(
        "exec", str(spec), "--base-url", url, "--ledger", str(ledger),
        env={"OPENAI_API_KEY": "sk-test"},
    )  # fmt: skip
    assert sent.exit_code == 2
    assert problems[0] in sent.stderr
    assert posts == [] and lines(ledger) == []


def test_messages_the_responses_api_cannot_carry_are_exit_2(
    tmp_path: Path, raw_url: tuple[str, list[str]]
) -> None:
    url, posts = raw_url
    spec = tmp_path / "fn.yaml"
    spec.write_text(
        "name: fn\nmodel: gpt-4o-mini\nprovider: {api: responses}\nmessages:\n"
        "  - {role: user, content: hi, name: bob}\n"
        "  - {role: assistant, content: null, function_call: {name: f, arguments: '{}'}}\n"
        "  - {role: function, name: f, content: '42'}\n"
        "  - {role: assistant, content: ok, refusal: Sorry}\n",
        encoding="utf-8",
    )
    checked = run("validate", str(spec))
    assert checked.exit_code == 2
    assert f"{spec}:5:31: messages[0]: 'name' has no place on the Responses API" in checked.output
    assert f"{spec}:6:38: messages[1]: 'function_call' has no place" in checked.output
    assert f"{spec}:7:12: messages[2]: the Responses API has no function role" in checked.output
    assert f"{spec}:8:36: messages[3]: 'refusal' has no place" in checked.output
    sent = run("exec", str(spec), "--base-url", url, env={"OPENAI_API_KEY": "sk-test"})
    assert sent.exit_code == 2 and posts == []
    # The same messages are fine on chat.
    spec.write_text(spec.read_text("utf-8").replace("{api: responses}", "{api: chat}"), "utf-8")
    assert run("validate", str(spec)).exit_code == 0


CONVERSATION = """\
name: conv
model: gpt-4o-mini
provider: {api: responses}
inputs: {type: object, properties: {city: {type: string}}, required: [city]}
messages:
  - {role: system, content: Use tools.}
  - {role: user, content: 'Weather in {{ city }}?'}
  - role: assistant
    content: Let me check.
    tool_calls:
      - {id: call_1, type: function, function: {name: get_weather, arguments: '{"city":"x"}'}}
      - {id: call_2, type: function, function: {name: get_weather, arguments: '{"city":"y"}'}}
  - {role: tool, tool_call_id: call_1, content: '4 C'}
  - {role: tool, tool_call_id: call_2, content: '9 C'}
  - role: user
    content:
      - {type: text, text: 'And in this picture?'}
      - {type: image_url, image_url: {url: 'https://x.test/a.png', detail: low}}
tools:
  - type: function
    function: {name: get_weather, parameters: {type: object, properties: {city: {type: string}}}}
"""


def test_a_tool_conversation_is_counted_exactly_live_and_in_a_batch(tmp_path: Path) -> None:
    """An assistant turn with text and two calls, tool results and a low-detail image: the
    prompt counted before sending is what the mock bills, and a batch row read back from its
    input file counts (and records) the same conversation."""
    spec = tmp_path / "conv.yaml"
    spec.write_text(CONVERSATION, encoding="utf-8")
    ledger = tmp_path / "l.jsonl"
    for flag in ("--no-stream", "--stream"):
        result = run(
            "exec", str(spec), "--var", "city=Oslo", "--mock", flag, "--ledger", str(ledger)
        )
        assert result.exit_code == 0, result.output
    rows = write_rows(tmp_path, ["Oslo", "Rome"])
    result = run(
        "exec", str(spec), "--input", str(rows), "--batch", "--mock", "--ledger", str(ledger)
    )
    assert result.exit_code == 0, result.output
    found = lines(ledger)
    assert len(found) == 4 and [bool(line.get("batch_id")) for line in found] == [0, 0, 1, 1]
    for line in found:
        assert line["usage"]["prompt"] == line["usage"]["estimated_prompt"], line.get("batch_id")
    live, batched = found[0], next(x for x in found[2:] if x["vars"] == {"city": "Oslo"})
    assert batched["messages"] == live["messages"]  # read back from the batch's body
    assert live["messages"][2]["tool_calls"][1]["id"] == "call_2"
    assert live["messages"][5]["content"][1]["image_url"]["detail"] == "low"
