"""What a user sees: specs run from another directory, retry waits that are explained, the
README's mock-server recipe, `--base-url`, `exec --json` errors, capped problem lists and the
mock server's options. Each case checks the exit code, no traceback, the number of ledger lines
and that the key never shows."""

from __future__ import annotations

import json
import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from _trust_b_http import assert_clean, ledger_lines, run_cli, time_limit

from runner.mock.server import serve

ROOT = Path(__file__).resolve().parents[2]
KEY = "ux-key-5f3e9c21"
LEDGER = Path("runs/ledger.jsonl")


@contextmanager
def mock_server_on_loopback(**kw: Any) -> Iterator[str]:
    """`runner mock-server` (the same serve()) on a free loopback port, in a thread."""
    stop, ready = threading.Event(), threading.Event()
    port: list[int] = []

    def on_ready(actual: int) -> None:
        port.append(actual)
        ready.set()

    thread = threading.Thread(
        target=serve, kwargs={"port": 0, "ready": on_ready, "stop": stop, **kw}, daemon=True
    )
    thread.start()
    assert ready.wait(15), "the mock server did not start"
    try:
        yield f"http://127.0.0.1:{port[0]}/v1"
    finally:
        stop.set()
        thread.join(10)


def test_the_readme_recipe_sends_city_yaml_to_the_mock_server(tmp_path: Path) -> None:
    command = (
        "OPENAI_API_KEY=anything runner exec prompts/city.yaml --var city=Paris "
        "--base-url http://127.0.0.1:8008/v1"
    )
    assert command in (ROOT / "README.md").read_text(encoding="utf-8")
    with time_limit(30), mock_server_on_loopback() as base:
        result = run_cli(
            "exec",
            str(ROOT / "prompts" / "city.yaml"),
            "--var",
            "city=Paris",
            "--base-url",
            base,
            env={"OPENAI_API_KEY": "anything"},
        )
    assert result.exit_code == 0, result.stderr
    assert_clean(result, [])
    assert set(json.loads(result.stdout)) >= {"country", "population"}
    (line,) = ledger_lines(tmp_path / LEDGER)
    assert line["status"] == "ok" and line["mock"] is False  # a real HTTP call, to loopback


@pytest.mark.parametrize(
    ("flag", "runner_env", "expected"),
    [
        ("http://flag.invalid/v1", "http://env.invalid/v1", "http://flag.invalid/v1"),
        (None, "http://env.invalid/v1", "http://env.invalid/v1"),
        (None, None, "http://spec.invalid/v1"),
    ],
)
def test_base_url_precedence(
    tmp_path: Path, flag: str | None, runner_env: str | None, expected: str
) -> None:
    spec = tmp_path / "s.yaml"
    spec.write_text(
        "name: s\nmodel: gpt-4o-mini\nprovider: {base_url: 'http://spec.invalid/v1'}\n"
        "messages: [{role: user, content: hi}]\nretry: {attempts: 1}\n",
        encoding="utf-8",
    )
    env = {"OPENAI_BASE_URL": "http://openai-env.invalid/v1", "OPENAI_API_KEY": KEY}
    if runner_env:
        env["RUNNER_BASE_URL"] = runner_env
    args = ["exec", str(spec), "--json"] + (["--base-url", flag] if flag else [])
    with time_limit(30):
        result = run_cli(*args, env=env)
    assert result.exit_code == 1  # nothing answers at *.invalid
    assert_clean(result, [KEY])
    assert expected in result.stderr
    assert json.loads(result.stdout)["error"]["kind"] == "connection"
    assert len(ledger_lines(tmp_path / LEDGER)) == 1


@pytest.mark.parametrize("value", ["", "ftp://x/v1", "127.0.0.1:8008/v1"])
def test_a_bad_base_url_is_a_usage_error(tmp_path: Path, value: str) -> None:
    with time_limit(20):
        result = run_cli("exec", str(ROOT / "prompts" / "city.yaml"), "--base-url", value)
    assert result.exit_code == 2
    assert_clean(result, [])
    assert "--base-url" in result.stderr
    assert not (tmp_path / LEDGER).exists()


def test_exec_json_prints_an_error_object_when_the_call_fails(tmp_path: Path) -> None:
    spec = tmp_path / "s.yaml"
    spec.write_text(
        "name: s\nmodel: gpt-4o-mini\nmessages: [{role: user, content: hi}]\n"
        "retry: {attempts: 1}\nprovider: {headers: {X-Mock-Fault: 'status=503'}}\n",
        encoding="utf-8",
    )
    with time_limit(20):
        result = run_cli("exec", str(spec), "--mock", "--json")
    assert result.exit_code == 1
    assert_clean(result, [])
    out = json.loads(result.stdout)
    (line,) = ledger_lines(tmp_path / LEDGER)
    assert out == {
        "status": "error",
        "error": {"kind": "server_error", "message": line["error"]["message"], "status": 503},
        "ledger_id": line["id"],
        "exit_code": 1,
    }


def test_exec_json_prints_an_error_object_for_bad_input_too(tmp_path: Path) -> None:
    with time_limit(20):
        result = run_cli("exec", str(ROOT / "prompts" / "city.yaml"), "--mock", "--json")
    assert result.exit_code == 2
    assert_clean(result, [])
    out = json.loads(result.stdout)
    assert (out["status"], out["error"]["kind"], out["ledger_id"], out["exit_code"]) == (
        "error",
        "inputs",
        None,
        2,
    )
    assert not (tmp_path / LEDGER).exists()


def test_long_retry_waits_are_explained_on_stderr(tmp_path: Path) -> None:
    spec = tmp_path / "s.yaml"
    spec.write_text(
        "name: s\nmodel: gpt-4o-mini\nmessages: [{role: user, content: hi}]\n"
        "retry: {attempts: 3, backoff: {initial: 0s, max: 0s}}\n"
        "provider: {headers: {X-Mock-Fault: 'fail_first=1;status=429;retry_after=1s'}}\n",
        encoding="utf-8",
    )
    with time_limit(20):
        result = run_cli("exec", str(spec), "--mock")
    assert result.exit_code == 0, result.stderr
    assert_clean(result, [])
    assert (
        "Waiting 1.0 s before attempt 2 of 3: the server answered 429 (Retry-After 1 s)."
        in result.stderr
    )
    (line,) = ledger_lines(tmp_path / LEDGER)
    assert [a["outcome"] for a in line["attempts"]] == ["rate_limit", "ok"]


def test_short_waits_and_quiet_runs_say_nothing(tmp_path: Path) -> None:
    spec = tmp_path / "s.yaml"
    spec.write_text(
        "name: s\nmodel: gpt-4o-mini\nmessages: [{role: user, content: hi}]\n"
        "retry: {attempts: 3, backoff: {initial: 0s, max: 0s}}\n"
        "provider: {headers: {X-Mock-Fault: 'fail_first=1;status=500'}}\n",
        encoding="utf-8",
    )
    with time_limit(20):
        result = run_cli("exec", str(spec), "--mock")
    assert result.exit_code == 0
    assert_clean(result, [])
    assert "Waiting" not in result.stderr
    assert len(ledger_lines(tmp_path / LEDGER)) == 1


def test_a_spec_outside_git_loads_from_inside_another_repository(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    specs = tmp_path / "home" / "specs"
    specs.mkdir(parents=True)
    (specs / "x.json").write_text(json.dumps({"type": "object"}), encoding="utf-8")
    (specs / "x.yaml").write_text(
        "name: x\nmodel: gpt-4o-mini\nmessages: [{role: user, content: 'Answer in JSON.'}]\n"
        "output: {schema: x.json, strict: false}\n",
        encoding="utf-8",
    )
    other = tmp_path / "work" / "repo"
    (other / ".git").mkdir(parents=True)
    monkeypatch.chdir(other)
    with time_limit(20):
        result = run_cli("exec", str(specs / "x.yaml"), "--mock")
        validated = run_cli("validate", str(specs / "x.yaml"))
    assert result.exit_code == 0, result.stderr
    assert validated.exit_code == 0, validated.stdout
    assert_clean(result, [])
    assert len(ledger_lines(other / LEDGER)) == 1


def test_thousands_of_unknown_variables_are_listed_once_and_capped(tmp_path: Path) -> None:
    # The reported case had 100,000; 5,000 shows the same cap in a fraction of the time (each
    # unknown key costs a did-you-mean lookup in runner.schema).
    spec = tmp_path / "s.yaml"
    spec.write_text(
        "name: s\nmodel: gpt-4o-mini\n"
        "inputs: {type: object, properties: {a: {type: string}}, additionalProperties: false}\n"
        "messages: [{role: user, content: 'hi {{ a }}'}]\n",
        encoding="utf-8",
    )
    many = tmp_path / "vars.json"
    many.write_text(json.dumps({f"x{i}": 1 for i in range(5_000)}), encoding="utf-8")
    with time_limit(60):
        result = run_cli("exec", str(spec), "--mock", "--vars-file", str(many))
    assert result.exit_code == 2
    assert_clean(result, [])
    lines = result.stderr.splitlines()
    assert len(lines) <= 25, lines[:30]
    assert lines[-1].strip() == "... and 4980 more"
    assert len(set(lines)) == len(lines)  # nothing printed twice
    assert not (tmp_path / LEDGER).exists()


def test_validate_caps_the_problems_of_one_file(tmp_path: Path) -> None:
    body = "\n".join(
        f"  - {{role: user, content: '{{{{ v{i} | nosuchfilter{i} }}}}'}}" for i in range(60)
    )
    spec = tmp_path / "s.yaml"
    spec.write_text(f"name: s\nmodel: gpt-4o-mini\nmessages:\n{body}\n", encoding="utf-8")
    with time_limit(30):
        result = run_cli("validate", str(spec))
        as_json = run_cli("validate", "--format", "json", str(spec))
    assert result.exit_code == as_json.exit_code == 2
    assert_clean(result, [])
    problems = json.loads(as_json.stdout)
    assert len(problems) > 25
    assert len(result.stdout.splitlines()) == 21
    assert result.stdout.splitlines()[-1].endswith(f"... and {len(problems) - 20} more")


@pytest.mark.parametrize(
    "args",
    [
        ["--host", ""],
        ["--retry-after", ""],
        ["--api-key-env", ""],
        ["--status", ""],
        ["--latency", ""],
        ["--fail-rate", "nan"],
        ["--fail-first", "-1"],
        ["--port", "70000"],
        ["--latency", "inf"],
    ],
)
def test_mock_server_options_are_checked_without_a_traceback(args: list[str]) -> None:
    with time_limit(20):
        result = run_cli("mock-server", "--port", "0", *args)
    assert result.exit_code == 2, result.output
    assert_clean(result, [])
    assert "Error" in result.stderr


def test_runner_yaml_takes_decimal_strings(tmp_path: Path) -> None:
    (tmp_path / "runner.yaml").write_text(
        'prices:\n  my-model: {input: "0.30", output: "1.20", cached_input: "0.15"}\n',
        encoding="utf-8",
    )
    spec = tmp_path / "s.yaml"
    spec.write_text(
        "name: s\nmodel: my-model\nmessages: [{role: user, content: hi}]\n", encoding="utf-8"
    )
    with time_limit(20):
        result = run_cli("exec", str(spec), "--mock")
    assert result.exit_code == 0, result.stderr
    assert_clean(result, [])
    (line,) = ledger_lines(tmp_path / LEDGER)
    assert line["cost"]["usd"] is not None and "runner.yaml" in line["cost"]["source"]
    assert os.path.exists(tmp_path / "runner.yaml")


def test_a_template_with_many_undefined_variables_names_the_first_twenty(tmp_path: Path) -> None:
    used = " ".join(f"{{{{ v{i:02d} }}}}" for i in range(30))
    # Declared, none required: the spec is valid, and the render finds every one missing.
    props = json.dumps({f"v{i:02d}": {"type": "string"} for i in range(30)})
    spec = tmp_path / "s.yaml"
    spec.write_text(
        f"name: s\nmodel: gpt-4o-mini\ninputs: {{type: object, properties: {props}}}\n"
        f"messages: [{{role: user, content: '{used}'}}]\n",
        encoding="utf-8",
    )
    with time_limit(20):
        result = run_cli("exec", str(spec), "--mock")
    assert result.exit_code == 2
    assert_clean(result, [])
    assert "'v19', ... and 10 more" in result.stderr
    assert "'v20'" not in result.stderr
    assert not (tmp_path / LEDGER).exists()
