"""`runner probe` against runner's own mock server on loopback, as `runner mock-server`,
`--no-json-schema` and `--no-responses` start it: three different tables, each asserted row by
row; the ledger (one line per model request, with its cost), `--json`, `--dry-run` (nothing
sent, nothing written), no secret anywhere, and the exit codes. The table of a real server that
nobody here wrote is tests/real_server/test_mlx_probe.py."""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from _ledger_schema import LINE_VALIDATOR
from click.testing import Result

from runner.probe import CAPABILITIES

ROOT = Path(__file__).resolve().parents[2]
FAKE_KEY = "sk-proj-PROBEFAKEKEYdoNotLeak0123456789abcdefABCDEF"
Probe = Callable[..., Result]
Lines = Callable[[Path], list[dict[str, Any]]]

OPENAI_404 = '404: {"error": {"message", "type", "param", "code"}}'
# runner's mock, as `runner mock-server` starts it: every capability there.
DEFAULT = {
    "json_schema": ("enforced", 'JSON that fits: {"probe_token": "runner-probe"}'),
    "json_object": ("enforced", "JSON that fits: {}"),
    "stream_usage": ("honoured", "usage at the end: 28 prompt + 16 completion tokens"),
    "n": ("honoured", "2 choices"),
    "tools": ("honoured", 'a call of runner_probe({"ok": true})'),
    "responses": ("works", 'a response: "Mock answer to \\"Say hello in a few word…"'),
    "files": ("present", "lists 0 file(s)"),
    "batches": ("present", "lists 0 batch(es)"),
    "models": ("present", "lists 6 model(s); gpt-4o-mini is among them"),
    # The mock answers any model name: the error is its 404 for GET /models/{that name}.
    "error_shape": ("openai", f"the model call was answered; the GET: {OPENAI_404}"),
    "rate_limit_headers": ("absent", "none on any of the 11 replies"),
}
NO_SCHEMA = {
    **DEFAULT,
    "json_schema": (
        "refused",
        "400: response_format type 'json_schema' is not supported by this server; use 'json_o…",
    ),
}
NO_RESPONSES = {**DEFAULT, "responses": ("absent", "404: Invalid URL (POST /v1/responses)")}
RATE = {
    "setting": "rate: {rpm, tpm, concurrency}",
    "why": "the server sends no x-ratelimit-* headers for runner's limiter to follow: set the "
    "limits it can take yourself",
}
SUGGESTED = {
    "default": [
        {
            "setting": "output.mode: json_schema",
            "why": "the server enforces a strict JSON Schema (the default mode)",
        },
        RATE,
    ],
    "no_schema": [
        {
            "setting": "output.mode: json_object",
            "why": "the server refuses json_schema, and answers json_object with JSON; "
            "`output.mode: auto` falls back to it by itself",
        },
        RATE,
    ],
    "no_responses": [
        {
            "setting": "output.mode: json_schema",
            "why": "the server enforces a strict JSON Schema (the default mode)",
        },
        {"setting": "provider.api: chat", "why": "the server has no Responses API"},
        RATE,
    ],
}
TABLES = {"default": DEFAULT, "no_schema": NO_SCHEMA, "no_responses": NO_RESPONSES}
SERVERS = {"default": "mock_url", "no_schema": "no_schema_url", "no_responses": "no_responses_url"}


def test_the_three_tables_differ() -> None:
    """What the three servers are for: each shows a different table."""
    verdicts = [tuple(v for v, _ in table.values()) for table in TABLES.values()]
    assert len(set(verdicts)) == 3


@pytest.mark.parametrize("server", list(TABLES))
def test_each_mock_gives_its_own_table(
    server: str, request: pytest.FixtureRequest, probe: Probe, ledger_lines: Lines, tmp_path: Path
) -> None:
    url = request.getfixturevalue(SERVERS[server])
    ledger = tmp_path / "l.jsonl"
    result = probe("--base-url", url, "--ledger", str(ledger), "--json")

    assert result.exit_code == 0, result.output
    found = json.loads(result.stdout)
    assert list(found) == [*CAPABILITIES, "suggested"]
    assert {k: (v["verdict"], v["detail"]) for k, v in found.items() if k != "suggested"} == (
        TABLES[server]
    )
    assert found["suggested"] == SUGGESTED[server]
    # Each request was announced on stderr before it went.
    steps = [line for line in result.stderr.splitlines() if line.startswith("probe: ")]
    assert steps[0] == "probe: models list: GET /models"
    assert steps[-1] == "probe: error shape: GET /models/runner-no-such-model"
    assert len(steps) == 11
    # Seven model calls, seven lines: each recorded with its cost and its own spec name.
    records = ledger_lines(ledger)
    assert [r["spec"]["name"] for r in records] == [
        "probe.json_schema",
        "probe.json_object",
        "probe.stream_usage",
        "probe.n",
        "probe.tools",
        "probe.responses",
        "probe.error_shape",
    ]
    for record in records:
        LINE_VALIDATOR.validate(record)
        assert record["spec"]["path"].startswith("runner-probe/")
        assert record["spec"]["commit"] is None and record["spec"]["dirty"] is None
        assert len(record["attempts"]) == 1  # one request each: no retries
        assert record["cost"]["source"]  # priced, or "unknown" for the model that cannot exist
    statuses = {r["spec"]["name"]: r["status"] for r in records}
    assert statuses["probe.json_schema"] == ("error" if server == "no_schema" else "ok")
    assert statuses["probe.responses"] == ("error" if server == "no_responses" else "ok")
    assert records[-1]["model"] == "runner-no-such-model"
    assert records[-1]["cost"] == {"usd": None, "source": "unknown", "estimated": False}


def test_the_table_as_printed(no_responses_url: str, probe: Probe, tmp_path: Path) -> None:
    result = probe("--base-url", no_responses_url, "--ledger", str(tmp_path / "l.jsonl"))
    assert result.exit_code == 0, result.output
    shown = result.stdout.replace(no_responses_url, "URL")
    assert shown == (
        """\
runner probe of URL: model gpt-4o-mini, api chat

capability          sent                           came back                               verdict
------------------  -----------------------------  --------------------------------------  -------
json_schema         POST /chat/completions: a      JSON that fits: {"probe_token":         enforced
                    strict schema, output.mode     "runner-probe"}
                    json_schema
json_object         POST /chat/completions:        JSON that fits: {}                      enforced
                    output.mode json_object
usage in streams    POST /chat/completions:        usage at the end: 28 prompt + 16        honoured
                    streamed, usage asked for      completion tokens
n                   POST /chat/completions: n 2    2 choices                               honoured
tools               POST /chat/completions: one    a call of runner_probe({"ok": true})    honoured
                    tool, a call required
responses API       POST /responses: a short       404: Invalid URL (POST /v1/responses)   absent
                    request
files API           GET /files?limit=1             lists 0 file(s)                         present
batches API         GET /batches?limit=1           lists 0 batch(es)                       present
models list         GET /models                    lists 6 model(s); gpt-4o-mini is among  present
                                                   them
error shape         POST /chat/completions: model  the model call was answered; the GET:   openai
                    runner-no-such-model; GET      404: {"error": {"message", "type",
                    /models/runner-no-such-model   "param", "code"}}
rate-limit headers  (every reply above)            none on any of the 11 replies           absent

Suggested:
  output.mode: json_schema       the server enforces a strict JSON Schema (the default mode)
  provider.api: chat             the server has no Responses API
  rate: {rpm, tpm, concurrency}  the server sends no x-ratelimit-* headers for runner's limiter to
                                 follow: set the limits it can take yourself
"""
    )


def test_dry_run_sends_nothing_and_writes_nothing(
    counting_url: tuple[str, list[str]], probe: Probe, tmp_path: Path
) -> None:
    url, seen = counting_url
    ledger = tmp_path / "l.jsonl"
    result = probe("--base-url", url, "--ledger", str(ledger), "--dry-run")

    assert result.exit_code == 0, result.output
    assert seen == []
    assert not ledger.exists()
    requests = re.findall(r"^(GET|POST) (\S+)  \((\w+)\)$", result.stdout, flags=re.M)
    assert requests == [
        ("GET", f"{url}/models", "models"),
        ("GET", f"{url}/files?limit=1", "files"),
        ("GET", f"{url}/batches?limit=1", "batches"),
        *[
            ("POST", f"{url}/chat/completions", c)
            for c in ("json_schema", "json_object", "stream_usage", "n", "tools")
        ],
        ("POST", f"{url}/responses", "responses"),
        ("POST", f"{url}/chat/completions", "error_shape"),
        ("GET", f"{url}/models/runner-no-such-model", "error_shape"),
    ]
    assert result.stdout.startswith("runner probe --dry-run: 11 requests, none sent.\n")

    as_json = probe("--base-url", url, "--ledger", str(ledger), "--dry-run", "--json")
    assert as_json.exit_code == 0 and seen == [] and not ledger.exists()
    planned = json.loads(as_json.stdout)["requests"]
    assert [(r["method"], r["url"], r["capability"]) for r in planned] == requests
    assert all(list(r) == ["capability", "method", "url", "body"] for r in planned)
    assert all((r["body"] is None) == (r["method"] == "GET") for r in planned)
    # The exact bodies: what each model call would send.
    bodies = {r["capability"]: r["body"] for r in planned if r["body"] is not None}
    assert bodies["n"]["n"] == 2 and bodies["stream_usage"]["stream"] is True
    assert bodies["error_shape"]["model"] == "runner-no-such-model"
    assert bodies["json_schema"]["response_format"]["json_schema"]["strict"] is True
    assert bodies["tools"]["tool_choice"] == "required"


def test_dry_run_with_the_responses_api(counting_url: tuple[str, list[str]], probe: Probe) -> None:
    url, seen = counting_url
    result = probe("--base-url", url, "--api", "responses", "--dry-run", "--json")
    assert result.exit_code == 0, result.output
    planned = json.loads(result.stdout)["requests"]
    posts = [(r["url"], r["capability"]) for r in planned if r["method"] == "POST"]
    # No n on the Responses API: six model calls, all to /responses.
    assert posts == [
        (f"{url}/responses", c)
        for c in ("json_schema", "json_object", "stream_usage", "tools", "responses", "error_shape")
    ]
    assert seen == []


def test_no_secret_in_the_output_or_the_ledger(
    start_mock: Callable[..., str], probe: Probe, ledger_lines: Lines, tmp_path: Path
) -> None:
    """A server that requires the key (so it was sent on every request) never sees it come
    back in what runner prints or records."""
    url = start_mock(api_key=FAKE_KEY)
    ledger = tmp_path / "l.jsonl"
    env = {"OPENAI_API_KEY": FAKE_KEY}
    as_text = probe("--base-url", url, "--ledger", str(ledger), env=env)
    as_json = probe("--base-url", url, "--ledger", str(ledger), "--json", env=env)
    dry = probe("--base-url", url, "--ledger", str(ledger), "--dry-run", env=env)
    wrong = probe("--base-url", url, "--ledger", str(ledger), "--json")
    for result in (as_text, as_json, dry, wrong):
        assert result.exit_code == 0, result.output
        assert FAKE_KEY not in result.stdout + result.stderr
    assert FAKE_KEY not in ledger.read_text(encoding="utf-8")
    assert json.loads(as_json.stdout)["json_schema"]["verdict"] == "enforced"
    # Without the key every request is a 401: the probe still runs, and says so.
    refused = json.loads(wrong.stdout)
    assert refused["json_schema"]["verdict"] == "failed"
    assert refused["json_schema"]["detail"].startswith("401: ")
    assert refused["models"]["verdict"] == "failed"
    assert len(ledger_lines(ledger)) == 3 * 7


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_an_unreachable_server_exits_1_with_nothing_recorded(probe: Probe, tmp_path: Path) -> None:
    url = f"http://127.0.0.1:{_closed_port()}/v1"
    ledger = tmp_path / "l.jsonl"
    result = probe("--base-url", url, "--ledger", str(ledger))
    assert result.exit_code == 1, result.output
    assert result.stdout == ""
    assert result.stderr.splitlines()[-1].startswith(f"Error: could not connect to {url}/models (")
    assert "check base_url and the network" in result.stderr
    assert "Traceback" not in result.output
    assert not ledger.exists()


def test_openai_without_a_key_is_a_usage_error(probe: Probe, tmp_path: Path) -> None:
    ledger = tmp_path / "l.jsonl"
    result = probe("--ledger", str(ledger))
    assert result.exit_code == 2, result.output
    assert result.stderr.startswith("Error: no API key: set OPENAI_API_KEY")
    assert "probe: " not in result.stderr  # nothing was sent
    assert not ledger.exists()
    # A dry run needs no key: it lists what would go to OpenAI's API.
    dry = probe("--ledger", str(ledger), "--dry-run")
    assert dry.exit_code == 0, dry.output
    assert "GET https://api.openai.com/v1/models  (models)" in dry.stdout
    assert '"model": "gpt-4o-mini"' in dry.stdout


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--mock", "--base-url", "http://127.0.0.1:1/v1"], "give --mock or --base-url, not both"),
        (["--base-url", "localhost:8080"], "'localhost:8080' is not an http:// or https:// URL"),
        (["--api", "grpc"], "'grpc' is not one of 'chat', 'responses'"),
    ],
)
def test_bad_usage_exits_2(args: list[str], message: str, probe: Probe) -> None:
    result = probe(*args)
    assert result.exit_code == 2
    assert message in result.stderr


def test_the_in_process_mock(probe: Probe, ledger_lines: Lines, tmp_path: Path) -> None:
    """--mock: the built-in mock, no key, no socket; its calls are marked mock in the ledger."""
    ledger = tmp_path / "l.jsonl"
    result = probe("--mock", "--ledger", str(ledger), "--json")
    assert result.exit_code == 0, result.output
    found = json.loads(result.stdout)
    assert {k: (v["verdict"], v["detail"]) for k, v in found.items() if k != "suggested"} == DEFAULT
    records = ledger_lines(ledger)
    assert len(records) == 7 and all(r["mock"] for r in records)
    assert all(r["cost"]["estimated"] for r in records)
    assert records[0]["cost"]["usd"] is not None  # gpt-4o-mini has a price


def test_ctrl_c_exits_130_with_the_call_in_flight_recorded(
    start_mock: Callable[..., str], tmp_path: Path
) -> None:
    """SIGINT while a model call waits on a slow server: exit 130, that call's line written,
    no table."""
    from runner.mock import Faults

    url = start_mock(faults=Faults(latency=4.0))  # long enough to be in flight at the signal
    ledger = tmp_path / "l.jsonl"
    exe = Path(sys.executable).with_name("runner")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("RUNNER_", "OPENAI_"))}
    proc = subprocess.Popen(
        [str(exe), "probe", "--base-url", url, "--ledger", str(ledger)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    try:
        assert proc.stderr is not None
        for line in proc.stderr:  # the GETs are quick; the first model call waits 4 s
            if line.startswith("probe: json_schema"):
                break
        time.sleep(1.0)  # the request goes out
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 130, err
    assert out == ""
    assert "Interrupted." in err
    (record,) = [json.loads(line) for line in ledger.read_text(encoding="utf-8").splitlines()]
    assert record["spec"]["name"] == "probe.json_schema"
    assert record["status"] == "error" and record["error"]["kind"] == "interrupted"
