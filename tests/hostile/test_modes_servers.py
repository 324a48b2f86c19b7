"""Servers that are not OpenAI: no json_schema response_format (a 400, or llama.cpp's 500), no
response_format at all, and replies with no content. Each case checks the exit code, that there
is no traceback, the number of ledger lines, what the line says, and that the key never shows."""

from __future__ import annotations

import json
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

from runner.providers import SCHEMA_INSTRUCTION

KEY = "modes-key-77aa31"
SCHEMA = {
    "type": "object",
    "properties": {"answer": {"type": "string"}},
    "required": ["answer"],
    "additionalProperties": False,
}


def write_spec(
    tmp_path: Path, *, mode: str | None, base_url: str | None = None, **extra: Any
) -> Path:
    (tmp_path / ".git").mkdir(exist_ok=True)
    output: dict[str, Any] = {"schema": SCHEMA}
    if mode is not None:
        output["mode"] = mode
    spec: dict[str, Any] = {
        "name": "modes",
        "model": "gpt-4o-mini",
        "messages": [
            {"role": "system", "content": "Be brief."},
            {"role": "user", "content": "Say hi."},
        ],
        "retry": {"attempts": 3, "backoff": {"initial": "0s", "max": "0s"}},
        "output": output,
        **extra,
    }
    if base_url:
        spec["provider"] = {"base_url": base_url}
    path = tmp_path / "modes.yaml"
    path.write_text(json.dumps(spec), encoding="utf-8")
    return path


def no_json_schema_spec(tmp_path: Path, mode: str | None) -> Path:
    return write_spec(tmp_path, mode=mode, provider={"headers": {"X-Mock-Fault": "no_json_schema"}})


LEDGER = Path("runs/ledger.jsonl")


def test_a_server_without_json_schema_fails_once_and_names_the_mode_to_use(tmp_path: Path) -> None:
    spec = no_json_schema_spec(tmp_path, None)
    with time_limit(20):
        result = run_cli("exec", str(spec), "--mock")
    assert result.exit_code == 1
    assert_clean(result, [KEY])
    (line,) = ledger_lines(tmp_path / LEDGER)
    assert line["error"]["kind"] == "output_mode"
    assert len(line["attempts"]) == 1  # resending the same request cannot help
    assert "output.mode: json_object" in result.stderr
    assert line["output_mode"] == "json_schema"


def test_auto_falls_back_to_json_object_and_the_line_says_so(tmp_path: Path) -> None:
    spec = no_json_schema_spec(tmp_path, "auto")
    with time_limit(20):
        result = run_cli("exec", str(spec), "--mock")
    assert result.exit_code == 0, result.stderr
    assert_clean(result, [KEY])
    assert "answer" in json.loads(result.stdout)
    (line,) = ledger_lines(tmp_path / LEDGER)
    assert line["status"] == "ok"
    assert line["output_mode"] == "json_object"
    first, second = line["attempts"]
    assert (first["n"], first["outcome"], second["n"], second["outcome"]) == (
        1,
        "output_mode",
        2,
        "ok",
    )
    assert "falling back to json_object" in first["message"]
    assert SCHEMA_INSTRUCTION in line["messages"][0]["content"]


@pytest.mark.parametrize("mode", ["prompt", "json_object"])
def test_modes_that_carry_the_schema_in_the_prompt_answer(tmp_path: Path, mode: str) -> None:
    spec = no_json_schema_spec(tmp_path, mode)
    with time_limit(20):
        result = run_cli("exec", str(spec), "--mock", "--dry-run")
        body = json.loads(result.stdout)
        result = run_cli("exec", str(spec), "--mock")
    assert result.exit_code == 0, result.stderr
    assert_clean(result, [KEY])
    assert body.get("response_format") == (
        {"type": "json_object"} if mode == "json_object" else None
    )
    assert body["messages"][0]["content"].startswith("Be brief.\n\n" + SCHEMA_INSTRUCTION)
    (line,) = ledger_lines(tmp_path / LEDGER)
    assert (line["status"], line["output_mode"], len(line["attempts"])) == ("ok", mode, 1)


def llama_cpp(refuse_json_object: bool) -> Any:
    """llama.cpp-like: a 500 for json_schema; optionally a 400 for json_object too."""

    def script(path: str, headers: dict[str, str], body: Any) -> tuple[int, dict[str, str], bytes]:
        kind = (body.get("response_format") or {}).get("type")
        if kind == "json_schema":
            error = {"code": 500, "message": "Unsupported response_format type: json_schema"}
            return 500, JSON, json.dumps({"error": error}).encode()
        if kind == "json_object" and refuse_json_object:
            error = {"message": "response_format is not supported", "type": "invalid_request"}
            return 400, JSON, json.dumps({"error": error}).encode()
        return 200, JSON, completion('{"answer": "hi"}')

    return script


def test_llama_cpp_500_is_not_retried_as_a_server_failure(tmp_path: Path) -> None:
    with time_limit(20), scripted_server(llama_cpp(False)) as (base, seen):
        spec = write_spec(tmp_path, mode=None, base_url=base)
        result = run_cli("exec", str(spec), env={"OPENAI_API_KEY": KEY})
    assert result.exit_code == 1
    assert_clean(result, [KEY], (tmp_path / LEDGER).read_text())
    (line,) = ledger_lines(tmp_path / LEDGER)
    assert [a["outcome"] for a in line["attempts"]] == ["output_mode"]
    assert len(seen.requests) == 1


# What llama-cpp-python's server (0.3.x) really answers to a json_schema response_format: its
# request model takes only 'text' and 'json_object', and its route handler turns pydantic's
# validation error into a 500 (the message is the error's text, with a traceback line). A
# FastAPI server without that handler sends the same refusal as a 422 `detail` list.
_PYDANTIC_MSG = "Input should be 'text' or 'json_object'"
LLAMA_CPP_PYTHON_500 = json.dumps(
    {
        "error": {
            "message": "1 validation error:\n  {'type': 'literal_error', 'loc': ('body', "
            f"'response_format', 'type'), 'msg': \"{_PYDANTIC_MSG}\", 'input': 'json_schema', "
            "'ctx': {'expected': \"'text' or 'json_object'\"}}\n\n  File \"/venv/lib/"
            'python3.11/site-packages/llama_cpp/server/app.py", line 376, in '
            "create_chat_completion\n    POST /v1/chat/completions",
            "type": "internal_server_error",
            "param": None,
            "code": None,
        }
    }
).encode()
FASTAPI_422 = json.dumps(
    {
        "detail": [
            {
                "type": "literal_error",
                "loc": ["body", "response_format", "type"],
                "msg": _PYDANTIC_MSG,
                "input": "json_schema",
            }
        ]
    }
).encode()


def pydantic_server(status: int, refusal: bytes) -> Any:
    def script(path: str, headers: dict[str, str], body: Any) -> tuple[int, dict[str, str], bytes]:
        if (body.get("response_format") or {}).get("type") == "json_schema":
            return status, JSON, refusal
        return 200, JSON, completion('{"answer": "hi"}')

    return script


@pytest.mark.parametrize(
    ("status", "refusal"), [(500, LLAMA_CPP_PYTHON_500), (422, FASTAPI_422)], ids=["500", "422"]
)
def test_a_pydantic_refusal_of_json_schema_is_an_output_mode_error(
    tmp_path: Path, status: int, refusal: bytes
) -> None:
    """Before, the 500 was a server_error: retried (three requests) and never fallen back."""
    with time_limit(20), scripted_server(pydantic_server(status, refusal)) as (base, seen):
        spec = write_spec(tmp_path, mode=None, base_url=base)
        result = run_cli("exec", str(spec), env={"OPENAI_API_KEY": KEY})
    assert result.exit_code == 1
    assert_clean(result, [KEY], (tmp_path / LEDGER).read_text())
    (line,) = ledger_lines(tmp_path / LEDGER)
    assert line["error"]["kind"] == "output_mode"
    assert [a["outcome"] for a in line["attempts"]] == ["output_mode"]
    assert len(seen.requests) == 1
    assert "output.mode: json_object` or `prompt" in result.stderr


@pytest.mark.parametrize(
    ("status", "refusal"), [(500, LLAMA_CPP_PYTHON_500), (422, FASTAPI_422)], ids=["500", "422"]
)
def test_auto_falls_back_from_a_pydantic_refusal(
    tmp_path: Path, status: int, refusal: bytes
) -> None:
    with time_limit(20), scripted_server(pydantic_server(status, refusal)) as (base, seen):
        spec = write_spec(tmp_path, mode="auto", base_url=base)
        result = run_cli("exec", str(spec), env={"OPENAI_API_KEY": KEY})
    assert result.exit_code == 0, result.stderr
    (line,) = ledger_lines(tmp_path / LEDGER)
    assert [a["outcome"] for a in line["attempts"]] == ["output_mode", "ok"]
    assert line["output_mode"] == "json_object"
    assert seen.requests[-1][2]["response_format"] == {"type": "json_object"}


def test_auto_falls_back_twice_to_prompt(tmp_path: Path) -> None:
    with time_limit(20), scripted_server(llama_cpp(True)) as (base, seen):
        spec = write_spec(tmp_path, mode="auto", base_url=base)
        result = run_cli("exec", str(spec), env={"OPENAI_API_KEY": KEY})
    assert result.exit_code == 0, result.stderr
    assert_clean(result, [KEY], (tmp_path / LEDGER).read_text())
    (line,) = ledger_lines(tmp_path / LEDGER)
    assert [a["outcome"] for a in line["attempts"]] == ["output_mode", "output_mode", "ok"]
    assert [a["n"] for a in line["attempts"]] == [1, 2, 3]
    assert line["output_mode"] == "prompt"
    last = seen.requests[-1][2]
    assert "response_format" not in last
    assert SCHEMA_INSTRUCTION in last["messages"][0]["content"]


def test_a_strict_schema_complaint_is_not_taken_for_a_missing_feature(tmp_path: Path) -> None:
    def script(path: str, headers: dict[str, str], body: Any) -> tuple[int, dict[str, str], bytes]:
        message = "Invalid schema for response_format 'modes': 'minLength' is not permitted."
        error = {"message": message, "param": "response_format", "code": None}
        return 400, JSON, json.dumps({"error": error}).encode()

    with time_limit(20), scripted_server(script) as (base, _):
        spec = write_spec(tmp_path, mode="auto", base_url=base)
        result = run_cli("exec", str(spec), env={"OPENAI_API_KEY": KEY})
    assert result.exit_code == 1
    assert_clean(result, [KEY])
    (line,) = ledger_lines(tmp_path / LEDGER)
    assert [a["outcome"] for a in line["attempts"]] == ["bad_request"]


@pytest.mark.parametrize("message", [None, {"role": "assistant", "content": None}])
def test_a_reply_with_no_content_is_not_ok(tmp_path: Path, message: Any) -> None:
    def script(path: str, headers: dict[str, str], body: Any) -> tuple[int, dict[str, str], bytes]:
        reply = json.loads(completion("x"))
        reply["choices"][0]["message"] = message
        return 200, JSON, json.dumps(reply).encode()

    with time_limit(20), scripted_server(script) as (base, seen):
        spec = write_spec(tmp_path, mode=None, base_url=base)
        result = run_cli("exec", str(spec), env={"OPENAI_API_KEY": KEY})
    assert result.exit_code == 1
    assert_clean(result, [KEY])
    (line,) = ledger_lines(tmp_path / LEDGER)
    assert line["status"] == "invalid_output"
    assert "no content" in line["error"]["message"]
    assert len(line["attempts"]) == len(seen.requests) == 3  # retried like invalid output


def test_attempts_after_a_fall_back_are_numbered_on(tmp_path: Path) -> None:
    served: list[str] = []

    def script(path: str, headers: dict[str, str], body: Any) -> tuple[int, dict[str, str], bytes]:
        kind = (body.get("response_format") or {}).get("type")
        served.append(kind)
        if kind == "json_schema":
            error = {"code": 500, "message": "Unsupported response_format type: json_schema"}
            return 500, JSON, json.dumps({"error": error}).encode()
        return 503, JSON, json.dumps({"error": {"message": "busy"}}).encode()

    with time_limit(20), scripted_server(script) as (base, _):
        spec = write_spec(tmp_path, mode="auto", base_url=base)
        result = run_cli("exec", str(spec), env={"OPENAI_API_KEY": KEY})
    assert result.exit_code == 1
    assert_clean(result, [KEY])
    (line,) = ledger_lines(tmp_path / LEDGER)
    assert [a["n"] for a in line["attempts"]] == [1, 2, 3, 4]
    assert [a["outcome"] for a in line["attempts"]] == ["output_mode"] + ["server_error"] * 3
    assert line["output_mode"] == "json_object"
    assert served == ["json_schema"] + ["json_object"] * 3


def test_a_repair_after_a_fall_back_stays_in_the_fall_back_mode(tmp_path: Path) -> None:
    replies = iter([completion("not json"), completion('{"answer": "hi"}')])

    def script(path: str, headers: dict[str, str], body: Any) -> tuple[int, dict[str, str], bytes]:
        if (body.get("response_format") or {}).get("type") == "json_schema":
            error = {"code": 500, "message": "Unsupported response_format type: json_schema"}
            return 500, JSON, json.dumps({"error": error}).encode()
        return 200, JSON, next(replies)

    with time_limit(20), scripted_server(script) as (base, seen):
        spec = write_spec(tmp_path, mode="auto", base_url=base)
        data = json.loads(spec.read_text())
        data["output"]["repair"] = True
        spec.write_text(json.dumps(data))
        result = run_cli("exec", str(spec), env={"OPENAI_API_KEY": KEY})
    assert result.exit_code == 0, result.stderr
    assert_clean(result, [KEY])
    (line,) = ledger_lines(tmp_path / LEDGER)
    assert [a["outcome"] for a in line["attempts"]] == ["output_mode", "invalid_output", "ok"]
    repaired = seen.requests[-1][2]
    assert repaired["response_format"] == {"type": "json_object"}
    assert SCHEMA_INSTRUCTION in repaired["messages"][0]["content"]
    assert repaired["messages"][-2] == {"role": "assistant", "content": "not json"}
