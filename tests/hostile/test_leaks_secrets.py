"""Hostile servers and settings that try to make runner leak a secret (the API key, whatever its
shape; credential headers; URL userinfo) or, with content off, the prompt and the reply. Each
case checks the exit code, that there is no traceback, the number of ledger lines, and that the
secret appears nowhere: stdout, stderr, the ledger, exception text and repr, debug logs."""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import pytest
from _trust_b_http import (
    JSON,
    assert_clean,
    completion,
    ledger_lines,
    run_cli,
    scripted_server,
    time_limit,
)

import runner
from runner.errors import RunnerError
from runner.settings import resolve

# Neither key has the `sk-` shape, so only masking the actual value can catch them.
KEY = "k9Xq2LmZ7vT4pR8s"
TOKEN = "azure-4f1c9e77d2b8a6"
PASSWORD = "hunter2hunter2"
MARKER = "PRIVATE-REPLY-7731"
PROMPT_MARKER = "PRIVATE-PROMPT-5512"

SCHEMA = {
    "type": "object",
    "properties": {"answer": {"type": "string", "maxLength": 3}},
    "required": ["answer"],
    "additionalProperties": False,
}


def write_spec(tmp_path: Path, base_url: str, **extra: Any) -> Path:
    (tmp_path / ".git").mkdir(exist_ok=True)
    spec: dict[str, Any] = {
        "name": "leak",
        "model": "gpt-4o-mini",
        "provider": {"base_url": base_url, **extra.pop("provider", {})},
        "messages": [{"role": "user", "content": "Say {{ word }}."}],
        "inputs": {"type": "object", "properties": {"word": {"type": "string"}}},
        "retry": {"attempts": 2, "backoff": {"initial": "0s", "max": "0s"}},
        "output": {"schema": SCHEMA},
        **extra,
    }
    path = tmp_path / "leak.yaml"
    path.write_text(json.dumps(spec), encoding="utf-8")
    return path


def everything(tmp_path: Path) -> str:
    ledger = tmp_path / "runs" / "ledger.jsonl"
    return ledger.read_text(encoding="utf-8") if ledger.exists() else ""


def test_a_key_echoed_in_x_request_id_stays_out_of_the_ledger(tmp_path: Path) -> None:
    def script(path: str, headers: dict[str, str], body: Any) -> tuple[int, dict[str, str], bytes]:
        reply = completion('{"answer": "ok"}', model=f"served-{KEY}")
        return 200, {**JSON, "x-request-id": f"req-{KEY}"}, reply

    with time_limit(20), scripted_server(script) as (base, _):
        spec = write_spec(tmp_path, base)
        result = run_cli("exec", str(spec), "--var", "word=hi", env={"OPENAI_API_KEY": KEY})
    assert result.exit_code == 0, result.stderr
    lines = ledger_lines(tmp_path / "runs" / "ledger.jsonl")
    assert len(lines) == 1
    assert lines[0]["request_id"] == "req-sk-***" or "[redacted]" in lines[0]["request_id"]
    assert_clean(result, [KEY], everything(tmp_path))


def test_a_key_echoed_deep_in_a_long_text_error_body_is_masked_before_the_cut(
    tmp_path: Path,
) -> None:
    # The key straddles the 200-character cut of a non-JSON body.
    text = ("x" * 190 + f" bad key {KEY} " + "y" * 400).encode()

    def script(path: str, headers: dict[str, str], body: Any) -> tuple[int, dict[str, str], bytes]:
        return 400, {"content-type": "text/plain", "x-request-id": KEY}, text

    with time_limit(20), scripted_server(script) as (base, _):
        spec = write_spec(tmp_path, base)
        result = run_cli("exec", str(spec), "--var", "word=hi", env={"OPENAI_API_KEY": KEY})
    assert result.exit_code == 1
    assert len(ledger_lines(tmp_path / "runs" / "ledger.jsonl")) == 1
    for fragment in (KEY[:8], KEY[-8:]):
        assert fragment not in result.stderr
    assert_clean(result, [KEY], everything(tmp_path))


def test_credential_headers_of_a_spec_are_masked_everywhere(tmp_path: Path) -> None:
    def script(path: str, headers: dict[str, str], body: Any) -> tuple[int, dict[str, str], bytes]:
        got = headers.get("x-auth-token", "") + " / " + headers.get("authorization", "")
        error = {"error": {"message": f"key {got} is not valid", "code": got}}
        return 401, {**JSON, "x-request-id": got}, json.dumps(error).encode()

    with time_limit(20), scripted_server(script) as (base, _):
        spec = write_spec(
            tmp_path,
            base,
            provider={"headers": {"X-Auth-Token": TOKEN}},
        )
        result = run_cli(
            "--debug", "exec", str(spec), "--var", "word=hi", env={"OPENAI_API_KEY": KEY}
        )
    assert result.exit_code == 1
    assert len(ledger_lines(tmp_path / "runs" / "ledger.jsonl")) == 1
    assert "Traceback" in result.stderr  # --debug shows it, masked
    assert_clean(result, [KEY, TOKEN], everything(tmp_path), debug=True)


def test_credentials_in_base_url_are_never_shown(tmp_path: Path) -> None:
    def script(path: str, headers: dict[str, str], body: Any) -> tuple[int, dict[str, str], bytes]:
        return 500, JSON, json.dumps({"error": {"message": "down"}}).encode()

    with time_limit(20), scripted_server(script) as (base, _):
        secret_base = base.replace("http://", f"http://admin:{PASSWORD}@")
        spec = write_spec(tmp_path, secret_base)
        result = run_cli(
            "--debug", "exec", str(spec), "--var", "word=hi", env={"OPENAI_API_KEY": KEY}
        )
    # Refused before anything is sent: httpx would send user:pass as Basic auth, in place of
    # the key (a server that echoes its headers put base64(admin:pass) into the ledger).
    assert result.exit_code == 2
    assert not (tmp_path / "runs" / "ledger.jsonl").exists()
    assert "user:pass@host) is refused" in result.stderr
    assert_clean(result, [PASSWORD, KEY], everything(tmp_path), debug=True)


def test_no_content_keeps_every_reply_and_prompt_text_out_of_the_line(tmp_path: Path) -> None:
    replies = iter(
        [
            completion(json.dumps({"answer": MARKER})),  # breaks maxLength: quotes the reply
            completion(None, message={"refusal": f"I refuse: {MARKER}"}),
        ]
    )

    def script(path: str, headers: dict[str, str], body: Any) -> tuple[int, dict[str, str], bytes]:
        return 200, JSON, next(replies)

    with time_limit(20), scripted_server(script) as (base, _):
        spec = write_spec(tmp_path, base)
        result = run_cli(
            "exec",
            str(spec),
            "--var",
            f"word={PROMPT_MARKER}",
            "--no-content",
            env={"OPENAI_API_KEY": KEY},
        )
    assert result.exit_code == 1
    lines = ledger_lines(tmp_path / "runs" / "ledger.jsonl")
    assert len(lines) == 1
    assert [a["outcome"] for a in lines[0]["attempts"]] == ["invalid_output", "refusal"]
    text = everything(tmp_path)
    assert MARKER not in text and PROMPT_MARKER not in text
    assert_clean(result, [KEY], text)


def test_ledger_content_false_drops_tool_call_arguments(tmp_path: Path) -> None:
    call = {"id": "c1", "type": "function", "function": {"name": "f", "arguments": MARKER}}

    def script(path: str, headers: dict[str, str], body: Any) -> tuple[int, dict[str, str], bytes]:
        return 200, JSON, completion(None, message={"tool_calls": [call]})

    with time_limit(20), scripted_server(script) as (base, _):
        spec = write_spec(
            tmp_path,
            base,
            ledger={"content": False},
            tools=[{"type": "function", "function": {"name": "f", "parameters": {}}}],
        )
        data = json.loads(spec.read_text())
        del data["output"]
        spec.write_text(json.dumps(data))
        result = run_cli("exec", str(spec), "--var", "word=hi", env={"OPENAI_API_KEY": KEY})
    assert result.exit_code == 0, result.stderr
    assert len(ledger_lines(tmp_path / "runs" / "ledger.jsonl")) == 1
    assert MARKER not in everything(tmp_path)
    assert_clean(result, [KEY])


def test_library_errors_reprs_and_debug_logs_hold_no_secret(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    def script(path: str, headers: dict[str, str], body: Any) -> tuple[int, dict[str, str], bytes]:
        echoed = headers.get("authorization", "") + headers.get("x-goog-api-key", "")
        error = {"error": {"message": "no " * 150 + echoed}}
        return 403, {**JSON, "x-request-id": KEY}, json.dumps(error).encode()

    caplog.set_level(logging.DEBUG)
    with time_limit(20), scripted_server(script) as (base, _):
        # (a base URL with user:pass@ is refused when the spec loads: test_trust_testing.py)
        spec = runner.load(
            write_spec(tmp_path, base, provider={"headers": {"X-Goog-Api-Key": TOKEN}})
        )
        environ = {"OPENAI_API_KEY": KEY}
        with runner.Session(environ=environ) as session:
            settings = resolve({}, environ, spec)
            with pytest.raises(RunnerError) as info:
                session.run(spec, {"word": "hi"})
            texts = [
                str(info.value),
                repr(info.value),
                repr(info.value.args),
                repr(vars(info.value)),
                repr(settings),
                repr(session.client(settings, spec)),
                caplog.text,
                everything(tmp_path),
            ]
    assert len(ledger_lines(tmp_path / "runs" / "ledger.jsonl")) == 1
    for text in texts:
        for secret in (KEY, TOKEN, PASSWORD):
            assert secret not in text, text


@pytest.mark.anyio
async def test_azure_style_api_key_header_of_a_library_client_is_masked() -> None:
    from runner.providers import ChatClient

    def script(path: str, headers: dict[str, str], body: Any) -> tuple[int, dict[str, str], bytes]:
        error = {"error": {"message": f"{'z' * 290} {headers.get('api-key')}"}}
        return 401, {**JSON, "x-request-id": headers.get("api-key", "")}, json.dumps(error).encode()

    with time_limit(20), scripted_server(script) as (base, _):
        async with ChatClient(base_url=base, headers={"api-key": TOKEN}, environ={}) as client:
            with pytest.raises(RunnerError) as info:
                await client.complete(
                    {"model": "m", "messages": [{"role": "user", "content": "x"}]}
                )
            texts = [str(info.value), repr(info.value.args), repr(vars(info.value)), repr(client)]
    for text in texts:
        assert TOKEN not in text and TOKEN[:12] not in text, text
