"""Tests for runner.engine: one call end to end against the in-process mock server or a scripted
transport, the ledger line it writes, the Python API and the session statistics."""

from __future__ import annotations

import json
import logging
import warnings
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx2
import jsonschema
import pytest
from _ledger_schema import LINE_VALIDATOR

import runner
from runner.engine.answer import completion_values
from runner.engine.session import Session
from runner.errors import (
    AuthenticationFailed,
    ConfigError,
    ConnectFailed,
    InputsInvalid,
    OutputInvalid,
    OutputRefused,
    OutputTruncated,
    ReadTimedOut,
    RunnerError,
)
from runner.ledger.reading import read_records
from runner.mock import create_app
from runner.providers import ASGIStreamTransport
from runner.types import Choice, Completion, StreamDelta, Usage

ROOT = Path(__file__).resolve().parents[2]
FAKE_KEY = "sk-test-RUNNERFAKEKEY0123456789abcdefXYZ"

CITY_SCHEMA = {
    "type": "object",
    "properties": {
        "name": {"type": "string"},
        "country": {"type": "string"},
        "population": {"type": "integer"},
        "landmarks": {"type": "array", "items": {"type": "string"}},
    },
    "required": ["name", "country", "population", "landmarks"],
    "additionalProperties": False,
}


def write_spec(folder: Path, body: str, *, name: str = "city") -> Path:
    """A spec file (and its output schema) in `folder`; `body` adds or overrides YAML keys."""
    (folder / "city.json").write_text(json.dumps(CITY_SCHEMA), encoding="utf-8")
    base = {
        "name": name,
        "model": "gpt-4o-mini",
        "params": "{temperature: 0, max_tokens: 200}",
        "inputs": "{type: object, properties: {city: {type: string, minLength: 1}}, "
        "required: [city]}",
        "messages": '[{role: user, content: "Tell me about {{ city }}."}]',
        "output": "{schema: city.json}",
        "retry": "{attempts: 3, backoff: {initial: 1ms, max: 5ms}}",
    }
    lines = {}
    for line in body.strip().splitlines():
        key, _, value = line.partition(":")
        lines[key.strip()] = value.strip()
    merged = {**base, **lines}
    text = "\n".join(f"{k}: {v}" for k, v in merged.items() if v != "DROP") + "\n"
    path = folder / f"{name}.yaml"
    path.write_text(text, encoding="utf-8")
    return path


@pytest.fixture
def ledger_path(tmp_path: Path) -> Path:
    return tmp_path / "runs" / "ledger.jsonl"


@pytest.fixture
def session(ledger_path: Path) -> Iterator[Session]:
    with Session(mock=True, ledger=ledger_path, environ={}) as s:
        yield s


def lines(path: Path) -> list[dict[str, Any]]:
    found = list(read_records(path))
    for record in found:
        LINE_VALIDATOR.validate(record)
    return found


# --- scripted replies -------------------------------------------------------------------------


def completion(content: str | None, *, finish: str = "stop", **message: Any) -> dict[str, Any]:
    return {
        "id": "chatcmpl-test",
        "object": "chat.completion",
        "created": 1,
        "model": "gpt-4o-mini-2024-07-18",
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": content, **message},
                "finish_reason": finish,
            }
        ],
        "usage": {"prompt_tokens": 20, "completion_tokens": 10, "total_tokens": 30},
    }


def scripted(*replies: tuple[int, dict[str, Any]]) -> tuple[httpx2.MockTransport, list[Any]]:
    """A transport answering each request with the next (status, body); it records requests."""
    seen: list[Any] = []
    queue = list(replies)

    def handler(request: httpx2.Request) -> httpx2.Response:
        seen.append(json.loads(request.content))
        status, body = queue.pop(0) if len(queue) > 1 else queue[0]
        return httpx2.Response(status, json=body, headers={"x-request-id": f"req_{len(seen)}"})

    return httpx2.MockTransport(handler), seen


def real_session(ledger: Path, transport: Any, **environ: str) -> Session:
    return Session(ledger=ledger, environ=environ, transport=transport)


VALID = json.dumps({"name": "Paris", "country": "France", "population": 2, "landmarks": []})


# --- the happy path ---------------------------------------------------------------------------


def test_a_mock_call_returns_schema_valid_json_and_writes_one_line(
    tmp_path: Path, session: Session, ledger_path: Path
) -> None:
    spec = runner.load(write_spec(tmp_path, ""))
    result = session.run(spec, {"city": "Paris"})
    jsonschema.validate(result.value, CITY_SCHEMA)
    assert result.mock is True
    assert result.usage.prompt > 0 and result.usage.completion > 0
    assert result.cost.usd is not None and result.cost.estimated
    [line] = lines(ledger_path)
    assert line["status"] == "ok"
    assert line["mock"] is True
    assert line["id"] == result.ledger_id
    assert line["output"]["json"] == result.value
    assert line["usage"]["prompt"] == result.usage.prompt
    assert line["usage"]["estimated_prompt"] == result.usage.prompt  # same tokenizer
    assert line["cost"]["estimated"] is True
    assert line["vars"] == {"city": "Paris"}
    assert line["spec"]["name"] == "city"
    assert line["request_sha256"] and len(line["request_sha256"]) == 64


def test_a_streamed_call_gives_the_same_answer_and_measures_ttft(
    tmp_path: Path, session: Session
) -> None:
    spec = runner.load(write_spec(tmp_path, ""))
    plain = session.run(spec, {"city": "Oslo"})
    deltas: list[StreamDelta] = []
    with Session(mock=True, stream=True, ledger=tmp_path / "l2.jsonl", environ={}) as s:
        streamed = s.run(spec, {"city": "Oslo"}, on_delta=deltas.append)
    assert streamed.value == plain.value
    assert "".join(d.text for d in deltas) == streamed.text
    assert streamed.ttft_ms is not None
    [line] = lines(tmp_path / "l2.jsonl")
    assert (
        line["request_sha256"]
        == next(iter(lines(tmp_path / "runs" / "ledger.jsonl")))["request_sha256"]
    )  # streaming does not change the request's fingerprint


def test_module_level_run_and_arun(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RUNNER_MOCK", "1")
    path = write_spec(tmp_path, "")
    result = runner.run(path, city="Lima")
    assert result.mock and isinstance(result.value, dict)
    assert (tmp_path / "runs" / "ledger.jsonl").exists()  # the default ledger, relative to cwd


@pytest.mark.anyio
async def test_arun_in_an_event_loop(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RUNNER_MOCK", "1")
    result = await runner.arun(runner.load(write_spec(tmp_path, "")), city="Quito")
    assert result.value["population"] >= 0


def test_the_mock_is_not_paced_by_the_accounts_rpm_and_tpm(
    tmp_path: Path, ledger_path: Path
) -> None:
    """rpm and tpm are a real account's limits: 30 mock calls of a spec at 60 rpm take well
    under the 29 s the limiter would space them over; concurrency still holds."""
    import time

    spec = runner.load(write_spec(tmp_path, "rate: {rpm: 60, tpm: 1000, concurrency: 3}"))
    with Session(mock=True, ledger=ledger_path, environ={}) as mock:
        started = time.monotonic()
        for i in range(30):
            mock.run(spec, {"city": f"c{i}"})
        assert time.monotonic() - started < 10
        guard = mock.call_parts(spec, {"city": "x"}).guard
        assert (guard.limiter.rpm, guard.limiter.tpm, guard.limiter.concurrency) == (None, None, 3)
    with Session(ledger=ledger_path, environ={"OPENAI_API_KEY": "sk-test"}) as real:
        guard = real.call_parts(spec, {"city": "x"}).guard
        assert (guard.limiter.rpm, guard.limiter.tpm) == (60, 1000)


def test_every_line_has_the_fingerprint_of_the_body_it_sent(
    tmp_path: Path, session: Session, ledger_path: Path
) -> None:
    """The Session fingerprints a spec's calls with one Fingerprinter (runner.ledger.fingerprint):
    each line must still carry request_fingerprint of its own body, which resume, replay and
    --cache look rows up by."""
    from runner.ledger.fingerprint import request_fingerprint

    spec = runner.load(write_spec(tmp_path, ""))
    cities = ["Paris", "Rome", "Paris", "Bern", "Lima"]
    bodies = [session.preflight(spec, {"city": c}).body for c in cities]
    for city in cities:
        session.run(spec, {"city": city})
    sent = [line["request_sha256"] for line in lines(ledger_path)]
    assert sent == [request_fingerprint(body) for body in bodies]
    assert sent[0] == sent[2] != sent[1]


def test_each_line_gets_its_own_copy_of_the_specs_place_in_git(
    tmp_path: Path, session: Session, ledger_path: Path
) -> None:
    """The spec's reference is found once per spec and session; a record handed to a caller
    that changes it must not change the next call's line."""
    spec = runner.load(write_spec(tmp_path, ""))
    handed: list[Any] = []
    session.run(spec, {"city": "Paris"}, on_record=handed.append)
    handed[0]["spec"]["path"] = "changed by a caller"
    session.run(spec, {"city": "Rome"}, on_record=handed.append)
    first, second = lines(ledger_path)
    assert first["spec"] == second["spec"] == handed[1]["spec"]
    assert second["spec"]["path"].endswith("city.yaml")
    assert handed[0]["spec"] is not handed[1]["spec"]


def test_session_stats_add_up(tmp_path: Path, session: Session) -> None:
    spec = runner.load(write_spec(tmp_path, ""))
    results = [session.run(spec, {"city": c}) for c in ("Paris", "Rome", "Bern")]
    stats = session.stats
    assert stats.calls == 3 and stats.failures == 0
    assert stats.usage.total == sum(r.usage.total for r in results)
    assert stats.cost_usd == sum((r.cost.usd or Decimal(0)) for r in results)
    assert stats.average_tokens == pytest.approx(stats.usage.total / 3)
    assert stats.to_dict()["calls"] == 3


def test_text_output_without_schema(tmp_path: Path, session: Session) -> None:
    spec = runner.load(write_spec(tmp_path, "output: DROP"))
    result = session.run(spec, {"city": "Paris"})
    assert isinstance(result.value, str) and result.value == result.text


def test_tool_calls_are_the_value(tmp_path: Path, session: Session) -> None:
    spec = runner.load(ROOT / "prompts" / "weather-tool.yaml")
    result = session.run(spec, {"question": "Is it raining in Oslo?"})
    [call] = result.value
    assert call["name"] == "get_weather"
    assert isinstance(call["arguments"], dict)


# --- bad input stops before any call ------------------------------------------------------------


def test_vars_that_break_inputs_write_no_line(
    tmp_path: Path, session: Session, ledger_path: Path
) -> None:
    spec = runner.load(write_spec(tmp_path, ""))
    with pytest.raises(InputsInvalid) as info:
        session.run(spec, {"city": ""})
    assert info.value.exit_code == 2
    assert not ledger_path.exists()


def test_no_key_and_no_mock_is_a_config_error(tmp_path: Path, ledger_path: Path) -> None:
    spec = runner.load(write_spec(tmp_path, ""))
    with Session(ledger=ledger_path, environ={}) as s, pytest.raises(ConfigError) as info:
        s.run(spec, {"city": "Paris"})
    message = str(info.value)
    assert "OPENAI_API_KEY" in message and "--mock" in message
    assert info.value.exit_code == 2
    assert not ledger_path.exists()


def test_a_prompt_that_cannot_fit_the_context_window(tmp_path: Path, session: Session) -> None:
    spec = runner.load(write_spec(tmp_path, "params: {max_tokens: 127000}"))
    with pytest.raises(ConfigError, match="context window of gpt-4o-mini"):
        session.run(spec, {"city": "Paris " * 2000})


# --- faults: each ends in exactly one ledger line -----------------------------------------------


def test_schema_breaking_json_that_never_validates(
    tmp_path: Path, session: Session, ledger_path: Path
) -> None:
    spec = runner.load(write_spec(tmp_path, "provider: {headers: {X-Mock-Fault: invalid_output}}"))
    with pytest.raises(OutputInvalid) as info:
        session.run(spec, {"city": "Paris"})
    assert info.value.exit_code == 1
    assert len(info.value.attempts) == 3  # invalid_output is retried by default
    [line] = lines(ledger_path)
    assert line["status"] == "invalid_output"
    assert line["error"]["kind"] == "invalid_output"
    assert line["error"]["errors"]  # the validation errors, one per line
    assert [a["outcome"] for a in line["attempts"]] == ["invalid_output"] * 3
    # every attempt consumed tokens: usage and cost add them all up
    assert line["usage"]["completion"] == sum(a["usage"]["completion"] for a in line["attempts"])


def test_invalid_then_valid_json_succeeds_on_retry_and_costs_both(
    tmp_path: Path, ledger_path: Path
) -> None:
    bad = json.dumps({"name": "Paris"})  # missing required keys
    transport, seen = scripted((200, completion(bad)), (200, completion(VALID)))
    spec = runner.load(write_spec(tmp_path, ""))
    with real_session(ledger_path, transport, OPENAI_API_KEY=FAKE_KEY) as s:
        result = s.run(spec, {"city": "Paris"})
    assert result.value["country"] == "France"
    assert [a.outcome for a in result.attempts] == ["invalid_output", "ok"]
    assert result.usage.prompt == 40 and result.usage.completion == 20  # both attempts
    assert seen[0] == seen[1]  # without repair, the same request is sent again
    [line] = lines(ledger_path)
    assert line["status"] == "ok" and line["served_model"] == "gpt-4o-mini-2024-07-18"
    # priced per attempt: 40 prompt + 20 completion tokens of gpt-4o-mini
    assert Decimal(str(line["cost"]["usd"])) == Decimal("0.000018")


def test_repair_re_asks_with_the_validation_errors(tmp_path: Path, ledger_path: Path) -> None:
    bad = json.dumps({"name": "Paris"})
    transport, seen = scripted((200, completion(bad)), (200, completion(VALID)))
    spec = runner.load(write_spec(tmp_path, "output: {schema: city.json, repair: true}"))
    with real_session(ledger_path, transport, OPENAI_API_KEY=FAKE_KEY) as s:
        s.run(spec, {"city": "Paris"})
    first, second = seen
    assert len(second["messages"]) == len(first["messages"]) + 2
    assert second["messages"][-2] == {"role": "assistant", "content": bad}
    assert "country" in second["messages"][-1]["content"]  # names what was missing


def test_output_that_is_not_json(tmp_path: Path, ledger_path: Path) -> None:
    # In prompt mode the server never saw the schema: prose is invalid output (retried).
    transport, _ = scripted((200, completion("Paris is lovely.")))
    body = "retry: {attempts: 1}\noutput: {schema: city.json, mode: prompt}"
    spec = runner.load(write_spec(tmp_path, body))
    with (
        real_session(ledger_path, transport, OPENAI_API_KEY=FAKE_KEY) as s,
        pytest.raises(OutputInvalid, match="not JSON"),
    ):
        s.run(spec, {"city": "Paris"})
    [line] = lines(ledger_path)
    assert line["status"] == "invalid_output"
    assert line["output"]["text"] == "Paris is lovely."


def test_prose_for_a_json_schema_request_is_an_ignored_schema(
    tmp_path: Path, ledger_path: Path
) -> None:
    # The server was sent the schema as json_schema and answered prose: it ignored it.
    from runner.errors import OutputSchemaIgnored

    transport, _ = scripted((200, completion("Paris is lovely.")))
    spec = runner.load(write_spec(tmp_path, "retry: {attempts: 3}"))
    with (
        real_session(ledger_path, transport, OPENAI_API_KEY=FAKE_KEY) as s,
        pytest.raises(OutputSchemaIgnored, match="seems to ignore the output schema"),
    ):
        s.run(spec, {"city": "Paris"})
    [line] = lines(ledger_path)
    assert line["error"]["kind"] == "schema_ignored" and len(line["attempts"]) == 1


def test_finish_reason_length_fails_a_schema_output(
    tmp_path: Path, session: Session, ledger_path: Path
) -> None:
    spec = runner.load(write_spec(tmp_path, "params: {max_tokens: 3}"))
    with pytest.raises(OutputTruncated, match="max_tokens 3"):
        session.run(spec, {"city": "Paris"})
    [line] = lines(ledger_path)
    assert line["error"]["kind"] == "length"
    assert len(line["attempts"]) == 1  # not retried: the same request would stop there again


def test_finish_reason_length_is_reported_for_text(
    tmp_path: Path, session: Session, ledger_path: Path
) -> None:
    spec = runner.load(write_spec(tmp_path, "params: {max_tokens: 3}\noutput: DROP"))
    result = session.run(spec, {"city": "Paris"})
    assert result.finish_reason == "length"
    assert result.usage.completion == 3
    [line] = lines(ledger_path)
    assert line["status"] == "ok" and line["output"]["finish_reason"] == "length"


def test_a_refusal_is_reported_as_a_refusal(
    tmp_path: Path, session: Session, ledger_path: Path
) -> None:
    spec = runner.load(write_spec(tmp_path, ""))
    with pytest.raises(OutputRefused) as info:
        session.run(spec, {"city": "[[refuse]]"})
    assert "refused" in str(info.value)
    [line] = lines(ledger_path)
    assert line["status"] == "error" and line["error"]["kind"] == "refusal"


def test_a_401_is_tried_once_and_shows_the_servers_message(
    tmp_path: Path, ledger_path: Path
) -> None:
    app = create_app(api_key="sk-the-right-key-000000000000000000")
    spec = runner.load(write_spec(tmp_path, "provider: {base_url: 'http://mock.test/v1'}"))
    with (
        real_session(ledger_path, ASGIStreamTransport(app), OPENAI_API_KEY=FAKE_KEY) as s,
        pytest.raises(AuthenticationFailed) as info,
    ):
        s.run(spec, {"city": "Paris"})
    assert len(info.value.attempts) == 1
    assert "401" in str(info.value) and "API key" in str(info.value)
    [line] = lines(ledger_path)
    assert line["error"]["status"] == 401 and line["error"]["kind"] == "auth"


def test_server_errors_are_retried_then_succeed(
    tmp_path: Path, session: Session, ledger_path: Path
) -> None:
    spec = runner.load(
        write_spec(tmp_path, "provider: {headers: {X-Mock-Fault: 'status=503;fail_first=2'}}")
    )
    result = session.run(spec, {"city": "Paris"})
    assert [a.outcome for a in result.attempts] == ["server_error", "server_error", "ok"]
    assert [a.status for a in result.attempts] == [503, 503, None]
    [line] = lines(ledger_path)
    assert line["status"] == "ok" and len(line["attempts"]) == 3


def test_an_unreachable_server(tmp_path: Path, ledger_path: Path) -> None:
    spec = runner.load(write_spec(tmp_path, "provider: {base_url: 'http://127.0.0.1:9/v1'}"))
    with Session(ledger=ledger_path, environ={}) as s, pytest.raises(ConnectFailed) as info:
        s.run(spec, {"city": "Paris"})
    assert len(info.value.attempts) == 3
    assert "127.0.0.1:9" in str(info.value)
    [line] = lines(ledger_path)
    assert line["error"]["kind"] == "connection"


def test_a_slow_reply_times_out_each_attempt(
    tmp_path: Path, session: Session, ledger_path: Path
) -> None:
    spec = runner.load(
        write_spec(
            tmp_path,
            "provider: {headers: {X-Mock-Fault: 'latency=5s'}}\ntimeout: 50ms\n"
            "retry: {attempts: 2, backoff: {initial: 1ms, max: 1ms}}",
        )
    )
    with pytest.raises(ReadTimedOut):
        session.run(spec, {"city": "Paris"})
    [line] = lines(ledger_path)
    assert [a["outcome"] for a in line["attempts"]] == ["timeout", "timeout"]
    assert line["latency_ms"] < 2000


def test_a_broken_stream_restarts_and_says_so(tmp_path: Path, ledger_path: Path) -> None:
    spec = runner.load(
        write_spec(tmp_path, "provider: {headers: {X-Mock-Fault: 'truncate'}}\noutput: DROP")
    )
    seen: list[StreamDelta] = []
    with (
        Session(mock=True, stream=True, ledger=ledger_path, environ={}) as s,
        pytest.raises(RunnerError),
    ):
        s.run(spec, {"city": "Paris"}, on_delta=seen.append)
    assert any(d.restart for d in seen)  # a later attempt announced that the text starts over
    [line] = lines(ledger_path)
    assert [a["outcome"] for a in line["attempts"]] == ["connection"] * 3


# --- secrets and privacy ----------------------------------------------------------------------


def test_the_api_key_reaches_no_output_ledger_or_log(
    tmp_path: Path, ledger_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    echo = {"error": {"message": f"Incorrect API key provided: {FAKE_KEY}", "code": "bad"}}
    transport, _ = scripted((401, echo))
    spec = runner.load(write_spec(tmp_path, ""))
    caplog.set_level(logging.DEBUG)
    with (
        real_session(ledger_path, transport, OPENAI_API_KEY=FAKE_KEY) as s,
        pytest.raises(AuthenticationFailed) as info,
    ):
        s.run(spec, {"city": "Paris"})
    assert FAKE_KEY not in str(info.value) and FAKE_KEY not in repr(info.value)
    assert FAKE_KEY not in ledger_path.read_text("utf-8")
    assert FAKE_KEY not in caplog.text
    assert FAKE_KEY not in repr(s.settings_for(spec))


def test_ledger_content_false_keeps_figures_not_content(tmp_path: Path, ledger_path: Path) -> None:
    spec = runner.load(write_spec(tmp_path, "ledger: {content: false}"))
    with Session(mock=True, ledger=ledger_path, environ={}) as s:
        result = s.run(spec, {"city": "Secretville"})
    text = ledger_path.read_text("utf-8")
    assert "Secretville" not in text
    assert json.dumps(result.value["name"]) not in text
    [line] = lines(ledger_path)
    assert line["content"] is False
    assert line["usage"]["total"] == result.usage.total and line["request_sha256"]


def test_a_torn_last_line_does_not_swallow_the_next_record(
    tmp_path: Path, session: Session, ledger_path: Path
) -> None:
    ledger_path.parent.mkdir(parents=True)
    ledger_path.write_text('{"v":1,"id":"torn', encoding="utf-8")
    spec = runner.load(write_spec(tmp_path, ""))
    session.run(spec, {"city": "Paris"})
    warnings: list[str] = []
    records = list(read_records(ledger_path, warn=warnings.append))
    assert [r["status"] for r in records] == ["ok"]
    assert warnings and ":1:" in warnings[0]


# --- helpers exercised directly ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("overrides", "expected"),
    [
        ({}, 200),
        ({"params": "{max_completion_tokens: 50}"}, 50),
    ],
)
def test_preflight_bounds_the_cost(
    tmp_path: Path, session: Session, overrides: dict[str, str], expected: int
) -> None:
    body = "\n".join(f"{k}: {v}" for k, v in overrides.items())
    spec = runner.load(write_spec(tmp_path, body))
    pre = session.preflight(spec, {"city": "Paris"})
    assert pre.max_output_tokens == expected
    assert pre.max_cost.usd is not None
    # gpt-4o-mini: $0.15 per 1M prompt tokens, $0.60 per 1M output tokens
    want = (Decimal(pre.prompt_tokens) * Decimal("0.15") + Decimal(expected) * Decimal("0.6")) / (
        Decimal(1_000_000)
    )
    assert pre.max_cost.usd == want


def test_an_unknown_price_is_unknown_not_zero(tmp_path: Path, ledger_path: Path) -> None:
    transport, _ = scripted((200, completion(VALID)))
    spec = runner.load(
        write_spec(tmp_path, "model: my-local-model\nprovider: {base_url: 'http://local.test/v1'}")
    )
    with real_session(ledger_path, transport) as s, pytest.warns(runner.RunnerWarning):
        result = s.run(spec, {"city": "Paris"})
    assert result.cost.usd is None and str(result.cost) == "unknown"
    [line] = lines(ledger_path)
    assert line["cost"]["usd"] is None and line["cost"]["source"] == "unknown"
    assert s.stats.unpriced_calls == 1 and s.stats.cost_usd == 0


def test_price_overrides_price_an_unknown_model(tmp_path: Path, ledger_path: Path) -> None:
    transport, _ = scripted((200, completion(VALID)))
    spec = runner.load(
        write_spec(tmp_path, "model: my-priced-model\nprovider: {base_url: 'http://local.test/v1'}")
    )
    prices = {"my-priced-model": {"input": 1, "output": 2}}
    with (
        Session(ledger=ledger_path, environ={}, transport=transport, prices=prices) as s,
        pytest.warns(runner.RunnerWarning),
    ):
        result = s.run(spec, {"city": "Paris"})
    assert result.cost.usd == Decimal(20 * 1 + 10 * 2) / Decimal(1_000_000)
    assert "runner.yaml" in result.cost.source


def _completion(choices: int) -> Completion:
    return Completion(
        id="c",
        model="m",
        choices=tuple(Choice(i, f"text {i}", "stop") for i in range(choices)),
        usage=Usage(prompt=3, completion=2),
    )


def _asked(n: int = 1) -> Any:
    """What a request asked for, as completion_values reads it (its preflight)."""
    from runner.engine.results import Preflight
    from runner.types import Cost

    return Preflight("m", {}, [], {}, 1, None, None, Cost(None, "x"), choices=n)


def test_fewer_choices_than_n_are_used_with_a_warning() -> None:
    # llama-cpp-python's server ignores `n` and sends one choice.
    asked = r"sent 1 choice\(s\), not the 2 that `n` asks for"
    with pytest.warns(runner.RunnerWarning, match=asked):
        value, values = completion_values(_completion(1), None, _asked(2))
    assert (value, values) == ("text 0", ("text 0",))


def test_as_many_choices_as_n_raise_no_warning() -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        _, values = completion_values(_completion(2), None, _asked(2))
        assert values == ("text 0", "text 1")
        assert completion_values(_completion(1), None, _asked())[1] == ("text 0",)


def test_a_session_reuses_a_specs_client_and_makes_a_new_one_after_closing(
    tmp_path: Path, ledger_path: Path
) -> None:
    """A spec's client, guard and ledger are found once per session, not per call; closing
    the session forgets them, so a call after that opens fresh ones (never a closed client)."""
    spec = runner.load(write_spec(tmp_path, ""))
    other = runner.load(write_spec(tmp_path, "model: gpt-4o", name="other"))
    with Session(mock=True, ledger=ledger_path, environ={}) as s:
        first = s.call_parts(spec, {"city": "Paris"})
        again = s.call_parts(spec, {"city": "Lima"})
        assert again.client is first.client and again.guard is first.guard
        assert again.ledger is first.ledger
        assert s.call_parts(other, {"city": "Oslo"}).guard is not first.guard  # its own model
        assert s.run(spec, {"city": "Paris"}).value is not None
        s.close()
        after = s.call_parts(spec, {"city": "Paris"})
        assert after.client is not first.client and after.ledger is not first.ledger
        assert s.run(spec, {"city": "Quito"}).value is not None
    assert len(list(read_records(ledger_path))) == 2


def test_a_call_without_a_budget_never_prices_its_worst_case(
    tmp_path: Path, ledger_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Only a budget and `runner render` read a preflight's worst-case cost: it is worked out
    when first read, once, and is what worst_cost gives."""
    from runner.engine import preflight as pf

    calls: list[int] = []
    real = pf.worst_cost

    def counted(*args: Any, **kwargs: Any) -> Any:
        calls.append(1)
        return real(*args, **kwargs)

    monkeypatch.setattr(pf, "worst_cost", counted)
    spec = runner.load(write_spec(tmp_path, ""))
    with Session(mock=True, ledger=ledger_path, environ={}) as s:
        assert s.run(spec, {"city": "Paris"}).value is not None
        pre = s.preflight(spec, {"city": "Paris"})
        assert calls == []
        first = pre.max_cost
        assert pre.max_cost is first and len(calls) == 1
        settings = s.settings_for(spec)
        expected = real(spec, settings, s.pricebook, pre.prompt_tokens, pre.context_window)
        assert first == expected and first.usd is not None and first.usd > 0
        assert pre.to_dict()["max_cost_usd"] == float(first.usd)
        # Two preflights of one request are equal, whether or not their cost was read.
        again = s.preflight(spec, {"city": "Paris"})
        assert again == pre and "functools.partial" not in repr(again)
        assert again != s.preflight(spec, {"city": "Lima"})
