"""runner against a real OpenAI-compatible server it did not write: `mlx_lm.server`, serving a
tiny random-weight llama (conftest.py starts it; _mlx_model.py builds the model).

Every test runs runner as a user would (the CLI on a spec file), then asks the server directly
(httpx2) for its own figures and compares them with the ledger. The model writes printable
nonsense and never ends a turn on its own, so every answer stops at max_tokens; greedy decoding
(temperature 0) makes a repeated request give the same text.

Some tests pin down what runner does TODAY with the server's quirks where it is wrong (an
ignored `json_schema`, ignored tools, the 404's hint): each says so, and what should change.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx2
import pytest
from _mlx_server import MODEL, MlxServer
from click.testing import CliRunner, Result

from runner.cli import cli

pytestmark = [
    pytest.mark.real_server,
    # runner counts the prompts of a model it does not know with o200k_base, and warns.
    pytest.mark.filterwarnings("ignore:unknown model"),
]

MAX_TOKENS = 8
SCHEMA = {
    "type": "object",
    "properties": {"greeting": {"type": "string"}},
    "required": ["greeting"],
    "additionalProperties": False,
}


def write_spec(folder: Path, server: str, name: str, **fields: Any) -> Path:
    """A spec file aimed at the server. No key: a base_url that is not OpenAI's needs none."""
    spec = {
        "name": name,
        "model": MODEL,
        "provider": {"base_url": f"{server}/v1"},
        "params": {"temperature": 0, "max_tokens": MAX_TOKENS, "seed": 7},
        "messages": [{"role": "user", "content": "Say hello to {{ who }}."}],
        "retry": {"attempts": 1},
        "timeout": "30s",
        **fields,
    }
    (folder / "pyproject.toml").touch()  # the spec's project folder
    path = folder / f"{name}.yaml"
    path.write_text(json.dumps(spec), encoding="utf-8")  # JSON is YAML
    return path


def run(*args: str) -> Result:
    return CliRunner().invoke(cli, list(args))


def lines(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def sent_body(spec: Path, *args: str) -> dict[str, Any]:
    """The exact request body runner sends for this spec (`runner exec --dry-run`)."""
    result = run("exec", str(spec), "--dry-run", *args)
    assert result.exit_code == 0, result.output
    return dict(json.loads(result.stdout))


def post(server: str, body: dict[str, Any]) -> httpx2.Response:
    return httpx2.post(f"{server}/v1/chat/completions", json=body, timeout=30)


def server_usage(usage: dict[str, Any]) -> dict[str, int]:
    """The server's usage object in the ledger's words."""
    return {
        "prompt": usage["prompt_tokens"],
        "completion": usage["completion_tokens"],
        "cached": usage["prompt_tokens_details"]["cached_tokens"],
        "total": usage["total_tokens"],
    }


def ledger_usage(line: dict[str, Any]) -> dict[str, int]:
    usage = line["usage"]
    assert "estimated" not in usage and "implausible" not in usage, usage
    assert usage["reasoning"] == 0
    return {k: usage[k] for k in ("prompt", "completion", "cached", "total")}


def sse_events(raw: bytes) -> list[dict[str, Any]]:
    """An SSE body's JSON data events; it must end with [DONE]."""
    datas = [ln[5:].strip() for ln in raw.decode().splitlines() if ln.startswith("data:")]
    assert datas and datas[-1] == "[DONE]", datas[-3:]
    return [json.loads(d) for d in datas[:-1]]


def test_usage_is_the_servers_own_cached_tokens_included(mlx_server: str, tmp_path: Path) -> None:
    spec = write_spec(
        tmp_path, mlx_server, "usage", messages=[{"role": "user", "content": "Usage: {{ who }}."}]
    )
    ledger = tmp_path / "l.jsonl"
    for _ in range(2):  # the second call's prompt is in the server's prompt cache
        result = run("exec", str(spec), "--var", "who=the cache", "--ledger", str(ledger))
        assert result.exit_code == 0, result.output
    first, second = lines(ledger)

    # The same request, straight to the server, a third time: its own figures.
    reply = post(mlx_server, sent_body(spec, "--var", "who=the cache"))
    assert reply.status_code == 200
    answer = reply.json()
    choice = answer["choices"][0]
    assert choice["finish_reason"] == "length" and answer["object"] == "chat.completion"
    assert answer["usage"]["completion_tokens"] == MAX_TOKENS

    # A repeated prompt comes mostly from the cache (all but its last token, in mlx_lm 0.32),
    # and runner keeps the server's cached count.
    expected = server_usage(answer["usage"])
    assert 0 < expected["cached"] <= expected["prompt"]
    assert ledger_usage(second) == expected
    assert second["attempts"][0]["usage"] == {**expected, "reasoning": 0}
    # The first call paid the same prompt, less of it cached (only the chat template's
    # opening, shared with earlier prompts, can be).
    assert ledger_usage(first) == {**expected, "cached": first["usage"]["cached"]}
    assert first["usage"]["cached"] < expected["cached"]

    text = choice["message"]["content"]
    for line in (first, second):
        assert line["status"] == "ok" and line["error"] is None and line["mock"] is False
        assert line["output"] == {"text": text, "json": None, "finish_reason": "length"}
        assert line["served_model"] == answer["model"] == MODEL
        # A model no price list knows: unknown, never a made-up 0.
        assert line["cost"]["usd"] is None and line["cost"]["source"] == "unknown"
    assert result.stdout == text + "\n"


def test_stream_ends_with_a_chat_completion_event_without_choices(
    mlx_server: str, tmp_path: Path
) -> None:
    spec = write_spec(
        tmp_path,
        mlx_server,
        "stream",
        messages=[{"role": "user", "content": "Stream: {{ who }}."}],
    )
    ledger = tmp_path / "l.jsonl"
    args = ("exec", str(spec), "--var", "who=the river", "--stream", "--ledger", str(ledger))
    first = run(*args)
    assert first.exit_code == 0, first.output

    body = sent_body(spec, "--var", "who=the river", "--stream")
    assert body["stream"] is True and body["stream_options"] == {"include_usage": True}
    reply = post(mlx_server, body)
    assert reply.status_code == 200
    assert reply.headers["content-type"].startswith("text/event-stream")
    events = sse_events(reply.content)
    # mlx_lm.server's stream (0.32): keep-alive comments (": keepalive 1/1") before the first
    # event, chunks that all repeat the role, a finish chunk without content, then the usage in
    # an event that is not a chunk: "object": "chat.completion" and "choices": [] (OpenAI sends
    # a chat.completion.chunk with choices: []).
    *chunks, last = events
    assert {e["object"] for e in chunks} == {"chat.completion.chunk"}
    assert chunks[-1]["choices"][0]["finish_reason"] == "length"
    assert last["object"] == "chat.completion" and last["choices"] == []
    streamed = "".join(c["choices"][0]["delta"].get("content") or "" for c in chunks)
    assert streamed

    again = run(*args)  # a repeat, like the direct call: the same cache state
    assert again.exit_code == 0, again.output
    cold, warm = lines(ledger)
    assert ledger_usage(warm) == server_usage(last["usage"])
    assert ledger_usage(cold) == {**server_usage(last["usage"]), "cached": cold["usage"]["cached"]}
    for line in (cold, warm):
        assert line["status"] == "ok" and line["ttft_ms"] is not None
        assert line["output"]["text"] == streamed
        assert line["output"]["finish_reason"] == "length"
        assert line["cost"]["usd"] is None
    assert first.stdout.rstrip("\n") == streamed == again.stdout.rstrip("\n")


@pytest.mark.parametrize("mode", ["json_schema", "auto"])
def test_an_ignored_json_schema_is_noticed(mlx_server: str, tmp_path: Path, mode: str) -> None:
    """mlx_lm.server accepts response_format json_schema with a 200 and ignores it: the answer
    is the one it gives without response_format. With `json_schema`, runner says the server
    seems to ignore the schema (kind schema_ignored, names `output.mode: auto` or `prompt`) and
    does not pay for the same request again; with `auto`, it falls back once to `prompt` mode
    and records why (this random-weight model then writes no JSON in prompt mode either: its
    answer runs to max_tokens, kind `length`)."""
    spec = write_spec(
        tmp_path,
        mlx_server,
        f"ignored-{mode}".replace("_", "-"),
        messages=[{"role": "user", "content": "Answer in JSON: {{ who }}."}],
        output={"schema": SCHEMA, "mode": mode},
        retry={"attempts": 3, "backoff": {"initial": "0s", "max": "0s"}},
    )
    ledger = tmp_path / "l.jsonl"
    result = run("exec", str(spec), "--var", "who=the schema", "--ledger", str(ledger))

    body = sent_body(spec, "--var", "who=the schema")
    assert body["response_format"]["type"] == "json_schema"
    assert body["response_format"]["json_schema"]["schema"] == SCHEMA
    with_schema = post(mlx_server, body)
    without = post(mlx_server, {k: v for k, v in body.items() if k != "response_format"})
    assert with_schema.status_code == without.status_code == 200
    text = with_schema.json()["choices"][0]["message"]["content"]
    assert text == without.json()["choices"][0]["message"]["content"]  # ignored, not enforced
    with pytest.raises(ValueError):
        json.loads(text)

    assert result.exit_code == 1, result.output
    assert "Traceback" not in result.output
    (line,) = lines(ledger)
    if mode == "json_schema":
        assert line["status"] == "error" and line["output_mode"] == "json_schema"
        assert line["error"]["kind"] == "schema_ignored"
        assert "seems to ignore the output schema" in line["error"]["message"]
        assert "output.mode: auto" in result.stderr and "output.mode: prompt" in result.stderr
        # One attempt: the same request would be ignored again.
        assert [a["outcome"] for a in line["attempts"]] == ["schema_ignored"]
        assert line["output"]["text"] == text
        assert "output_fallback" not in line
        expected = server_usage(with_schema.json()["usage"])
        assert ledger_usage(line) == {**expected, "cached": line["usage"]["cached"]}
    else:
        assert line["output_mode"] == "prompt"
        assert line["output_fallback"] == {
            "from": "json_schema",
            "to": "prompt",
            "why": "ignored",
            "learned": False,
        }
        outcomes = [a["outcome"] for a in line["attempts"]]
        assert (
            outcomes[0] == "schema_ignored"
            and "falling back to prompt" in (line["attempts"][0]["message"])
        )
        assert outcomes[1:] == ["length"], outcomes
        assert "is not JSON" in line["error"]["message"]


def test_an_ignored_json_schema_with_a_finished_answer_is_not_paid_for_twice(
    mlx_server: str, tmp_path: Path
) -> None:
    """The same ignored schema when the answer ends before max_tokens (a stop sequence, taken
    from the server's own answer, ends it after a few tokens): the text is not JSON at all, so
    runner says the schema was ignored, once, instead of retrying the very same request (which
    the server would answer the same way, for the same tokens)."""
    messages = [{"role": "user", "content": "Finish in JSON: {{ who }}."}]
    probe = write_spec(tmp_path, mlx_server, "probe", messages=messages)
    body = sent_body(probe, "--var", "who=the stop")
    reply = post(mlx_server, {**body, "stream": True})
    events = sse_events(reply.content)
    pieces = [e["choices"][0]["delta"].get("content") or "" for e in events if e["choices"]]
    # A one-character piece (a token of its own) that the text before it lacks: a stop the
    # server ends the answer at. mlx_lm.server only stops at a stop string that is whole tokens;
    # one inside a token is cut out of the text and the answer runs on to max_tokens.
    stops = [
        p for i, p in enumerate(pieces) if i > 0 and len(p) == 1 and p not in "".join(pieces[:i])
    ]
    assert stops, f"no usable stop in the server's answer {pieces}"
    stop = stops[0]
    params = {"temperature": 0, "max_tokens": MAX_TOKENS, "stop": [stop]}
    retry = {"attempts": 2, "backoff": {"initial": "0s", "max": "0s"}}
    spec = write_spec(
        tmp_path,
        mlx_server,
        "stopped",
        messages=messages,
        params=params,
        output={"schema": SCHEMA},
        retry=retry,
    )
    ledger = tmp_path / "l.jsonl"
    result = run("exec", str(spec), "--var", "who=the stop", "--ledger", str(ledger))

    direct = post(mlx_server, sent_body(spec, "--var", "who=the stop")).json()
    choice = direct["choices"][0]
    assert choice["finish_reason"] == "stop"
    assert choice["message"]["content"] == "".join(pieces[: pieces.index(stop)])

    assert result.exit_code == 1, result.output
    (line,) = lines(ledger)
    assert line["status"] == "error" and line["output_mode"] == "json_schema"
    assert line["error"]["kind"] == "schema_ignored"
    assert [a["outcome"] for a in line["attempts"]] == ["schema_ignored"]
    assert line["output"]["text"] == choice["message"]["content"]
    assert line["usage"]["prompt"] == direct["usage"]["prompt_tokens"]
    assert line["usage"]["completion"] == direct["usage"]["completion_tokens"]


def test_ignored_tools_pass_as_text_today(mlx_server: str, tmp_path: Path) -> None:
    """mlx_lm.server ignores `tools` (and `tool_choice: required`) for a model whose chat
    template has no tool calling, and answers text. Today runner records that as ok, though
    the spec required a tool call. (Part 3: `runner probe` reports tools as ignored.)"""
    tool = {
        "type": "function",
        "function": {
            "name": "get_weather",
            "parameters": {
                "type": "object",
                "properties": {"city": {"type": "string"}},
                "required": ["city"],
                "additionalProperties": False,
            },
        },
    }
    spec = write_spec(
        tmp_path,
        mlx_server,
        "tools",
        messages=[{"role": "user", "content": "Weather in {{ who }}?"}],
        tools=[tool],
        tool_choice="required",
    )
    ledger = tmp_path / "l.jsonl"
    result = run("exec", str(spec), "--var", "who=Lyon", "--ledger", str(ledger))
    body = sent_body(spec, "--var", "who=Lyon")
    assert body["tools"] == [tool] and body["tool_choice"] == "required"
    message = post(mlx_server, body).json()["choices"][0]["message"]
    assert "tool_calls" not in message and message["content"]

    assert result.exit_code == 0, result.output
    (line,) = lines(ledger)
    assert line["status"] == "ok"
    assert line["output"] == {"text": message["content"], "json": None, "finish_reason": "length"}


def test_unknown_model_is_a_404_with_a_string_error(mlx_server: str, tmp_path: Path) -> None:
    """mlx_lm.server treats `model` as a path or a Hugging Face repository to load; one it
    cannot find is a 404 whose body is `{"error": "<string>"}`, not OpenAI's error object.
    runner shows the string, then a hint about /v1 that is wrong here: the URL already ends
    in /v1. (Part 4: the hint only when the URL does not end in /v1.)"""
    spec = write_spec(tmp_path, mlx_server, "nomodel", model="no-such-model")
    ledger = tmp_path / "l.jsonl"
    result = run("exec", str(spec), "--var", "who=nobody", "--ledger", str(ledger))

    reply = post(mlx_server, sent_body(spec, "--var", "who=nobody"))
    assert reply.status_code == 404
    body = reply.json()
    assert list(body) == ["error"] and isinstance(body["error"], str) and body["error"]

    url = f"{mlx_server}/v1/chat/completions"
    # runner's hint for a 404 names `model` alone when the body's message says "model"; the
    # offline Hugging Face error the server relays here does not, and the URL already ends in
    # /v1, so the hint names both (never the wrong "/v1" one).
    hint = (
        "Check `model`: this server does not serve it to this key."
        if "model" in body["error"].lower()
        else "Check base_url and `model`: the server has nothing at this URL."
    )
    message = f"404 from {url}: {body['error']} {hint}"
    assert result.exit_code == 1, result.output
    assert f"Error: {message}\n" in result.stderr
    assert "Traceback" not in result.output
    (line,) = lines(ledger)
    assert line["status"] == "error"
    assert line["error"] == {
        "kind": "not_found",
        "type": "NotFound",
        "message": message,
        "status": 404,
    }
    assert [(a["outcome"], a["status"]) for a in line["attempts"]] == [("not_found", 404)]
    assert line["usage"]["total"] == 0 and line["output"] is None

    as_json = run("exec", str(spec), "--var", "who=nobody", "--ledger", str(ledger), "--json")
    assert as_json.exit_code == 1
    assert json.loads(as_json.stdout)["error"] == {
        "kind": "not_found",
        "message": message,
        "status": 404,
    }
    # The server dropped its model while trying the unknown one; the next call loads it again.
    fine = write_spec(tmp_path, mlx_server, "after-404")
    assert run("exec", str(fine), "--var", "who=you", "--ledger", str(ledger)).exit_code == 0


def test_a_20_row_data_set_at_4_in_flight(mlx_server: str, tmp_path: Path) -> None:
    spec = write_spec(
        tmp_path,
        mlx_server,
        "rows",
        messages=[{"role": "user", "content": "Row greeting for {{ who }}."}],
    )
    rows = tmp_path / "rows.jsonl"
    # Prompts of different lengths: a usage figure on the wrong row would show.
    names = [f"guest {i}" + " and friend" * (i % 7) for i in range(20)]
    rows.write_text("".join(json.dumps({"who": n}) + "\n" for n in names), encoding="utf-8")
    ledger = tmp_path / "l.jsonl"
    out = tmp_path / "out.jsonl"
    result = run(
        "exec", str(spec), "--input", str(rows), "--concurrency", "4",
        "--ledger", str(ledger), "--output", str(out),
    )  # fmt: skip
    assert result.exit_code == 0, result.output

    answers = lines(out)
    assert sorted(int(a["row"]) for a in answers) == list(range(1, 21))
    assert all(a["status"] == "ok" and a["error"] is None for a in answers)
    recorded = lines(ledger)
    assert len(recorded) == 20
    by_row = {line["row"]: line for line in recorded}
    assert sorted(by_row, key=int) == [str(i) for i in range(1, 21)]

    for row, name in enumerate(names, start=1):
        line = by_row[str(row)]
        assert line["status"] == "ok" and line["vars"] == {"who": name}
        assert line["messages"] == [{"role": "user", "content": f"Row greeting for {name}."}]
        # The server's own count of this row's request, asked directly.
        reply = post(mlx_server, {"model": MODEL, "messages": line["messages"], **line["params"]})
        expected = server_usage(reply.json()["usage"])
        assert ledger_usage(line) == {**expected, "cached": line["usage"]["cached"]}
        assert 0 <= line["usage"]["cached"] < line["usage"]["prompt"]
        assert line["attempts"][0]["usage"] == {**ledger_usage(line), "reasoning": 0}
        assert line["cost"]["usd"] is None


def test_replay_of_a_recorded_real_run_needs_no_server(
    start_mlx_server: Callable[[], MlxServer], tmp_path: Path
) -> None:
    server = start_mlx_server()  # its own server: this test stops it
    cases = [
        {"name": name, "vars": {"who": name}, "expect": [{"text_matches": "^[ -~]+$"}]}
        for name in ("ada", "grace", "linus")
    ]
    spec = write_spec(tmp_path, server.url, "replayed", tests=cases)
    baseline = tmp_path / "baseline.jsonl"
    recording = tmp_path / "record.jsonl"
    recorded = run(
        "test", str(spec), "--replay", str(baseline), "--record-missing",
        "--ledger", str(recording),
    )  # fmt: skip
    assert recorded.exit_code == 0, recorded.output
    assert recorded.stdout.splitlines()[-1] == "3 passed, 0 failed"
    live = {line["case"]: line for line in lines(baseline)}
    assert sorted(live) == ["ada", "grace", "linus"]
    assert all("replayed" not in line and line["status"] == "ok" for line in live.values())

    server.stop()  # from here on, nothing answers on that port
    replay = tmp_path / "replay.jsonl"
    again = run("test", str(spec), "--replay", str(baseline), "--ledger", str(replay))
    assert again.exit_code == 0, again.output
    assert again.stdout.splitlines()[-1] == "3 passed, 0 failed"
    assert all(ln.endswith("replayed") for ln in again.stdout.splitlines()[:-1])
    for line in lines(replay):
        source = live[line["case"]]
        assert line["replayed"] == {"from": str(baseline), "id": source["id"]}
        assert line["output"] == source["output"] and line["usage"] == source["usage"]
        assert line["request_sha256"] == source["request_sha256"]

    # The same run live fails: the server really is gone.
    gone = run("test", str(spec), "--ledger", str(tmp_path / "live.jsonl"))
    assert gone.exit_code == 1, gone.output
    assert gone.stdout.splitlines()[-1] == "0 passed, 3 failed"
