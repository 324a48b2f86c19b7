"""runner.probe.run against the in-process mock app behind a transport that counts every
request: one ledger line per model request sent (the GETs none), the model picked from the
server's list, the Responses API's table, rate-limit headers that are there, a server without
the Batch API, and an environment that cannot change what the probe sends."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from runner.engine.session import Session
from runner.probe import ProbeReport, planned_requests, probe_environ, run_probe, wanted_model

BASE = "http://probe.test/v1"


def probe(
    transport: Any,
    tmp_path: Path,
    *,
    model: str | None = None,
    api: str = "chat",
    environ: dict[str, str] | None = None,
) -> tuple[ProbeReport, list[tuple[str, str]]]:
    steps: list[tuple[str, str]] = []

    async def go() -> ProbeReport:
        async with Session(
            base_url=BASE,
            environ=probe_environ(environ or {}),
            ledger=tmp_path / "l.jsonl",
            transport=transport,
        ) as session:
            return await run_probe(
                session, model=model, api=api, on_step=lambda c, w: steps.append((c, w))
            )

    return asyncio.run(go()), steps


def records(tmp_path: Path) -> list[dict[str, Any]]:
    text = (tmp_path / "l.jsonl").read_text(encoding="utf-8")
    return [json.loads(line) for line in text.splitlines()]


def test_one_ledger_line_per_model_request_and_none_per_get(
    counting_transport: Callable[..., Any], tmp_path: Path
) -> None:
    transport = counting_transport()
    report, steps = probe(transport, tmp_path)
    posts = [s for s in transport.seen if s.startswith("POST ")]
    gets = [s for s in transport.seen if s.startswith("GET ")]
    assert gets == [
        "GET /v1/models",
        "GET /v1/files",
        "GET /v1/batches",
        "GET /v1/models/runner-no-such-model",
    ]
    assert posts == ["POST /v1/chat/completions"] * 5 + [
        "POST /v1/responses",
        "POST /v1/chat/completions",
    ]
    lines = records(tmp_path)
    assert len(lines) == len(posts) == 7
    # Every model call priced as any call is (the mock's usage, the model's price).
    priced = [line for line in lines if line["model"] == "gpt-4o-mini"]
    assert len(priced) == 6 and all(line["cost"]["usd"] is not None for line in priced)
    assert [c for c, _ in steps] == [
        "models",
        "files",
        "batches",
        "json_schema",
        "json_object",
        "stream_usage",
        "n",
        "tools",
        "responses",
        "error_shape",
        "error_shape",
    ]
    assert report.model == "gpt-4o-mini" and report.base_url == BASE


@pytest.mark.filterwarnings("ignore:unknown model 'local-llama'")
def test_without_a_model_the_first_one_listed_is_probed(
    counting_transport: Callable[..., Any], tmp_path: Path
) -> None:
    transport = counting_transport(models=("local-llama", "local-other"))
    report, _ = probe(transport, tmp_path)
    assert report.model == "local-llama"
    assert report.finding("models").detail == "lists 2 model(s); local-llama is among them"
    assert {line["model"] for line in records(tmp_path)} == {
        "local-llama",
        "runner-no-such-model",
    }


def test_a_named_model_is_probed_even_when_it_is_not_listed(
    counting_transport: Callable[..., Any], tmp_path: Path
) -> None:
    transport = counting_transport(models=("local-llama",))
    report, _ = probe(transport, tmp_path, model="gpt-4.1")
    assert report.model == "gpt-4.1"
    assert report.finding("models").detail == "lists 1 model(s); gpt-4.1 is not among them"


def test_the_responses_api_has_no_n(counting_transport: Callable[..., Any], tmp_path: Path) -> None:
    transport = counting_transport()
    report, _ = probe(transport, tmp_path, api="responses")
    assert report.verdicts() == {
        "json_schema": "enforced",
        "json_object": "enforced",
        "stream_usage": "honoured",
        "n": "n/a",
        "tools": "honoured",
        "responses": "works",
        "files": "present",
        "batches": "present",
        "models": "present",
        "error_shape": "openai",
        "rate_limit_headers": "absent",
    }
    n = report.finding("n")
    assert (n.sent, n.detail) == ("nothing", "this API has no n: not asked")
    assert [s for s in transport.seen if s.startswith("POST")] == ["POST /v1/responses"] * 6
    assert {line["api"] for line in records(tmp_path)} == {"responses"}


def test_rate_limit_headers_that_are_there(
    counting_transport: Callable[..., Any], tmp_path: Path
) -> None:
    headers = {"x-ratelimit-limit-requests": "500", "x-ratelimit-remaining-requests": "499"}
    report, _ = probe(counting_transport(extra_headers=headers), tmp_path)
    found = report.finding("rate_limit_headers")
    assert (found.verdict, found.detail) == (
        "present",
        "x-ratelimit-limit-requests, x-ratelimit-remaining-requests",
    )
    assert [s.setting for s in report.suggestions] == ["output.mode: json_schema"]


def test_a_server_without_the_batch_api(
    counting_transport: Callable[..., Any], tmp_path: Path
) -> None:
    report, _ = probe(counting_transport(batch_api=False), tmp_path)
    for capability, path in (("files", "files"), ("batches", "batches")):
        found = report.finding(capability)
        assert (found.verdict, found.detail) == ("absent", f"404: Invalid URL (GET /v1/{path})")
    assert [s.setting for s in report.suggestions] == [
        "output.mode: json_schema",
        "no --batch",
        "rate: {rpm, tpm, concurrency}",
    ]


def test_runner_stream_and_runner_model_cannot_change_what_is_sent(
    counting_transport: Callable[..., Any], tmp_path: Path
) -> None:
    """RUNNER_STREAM=1 would stream every call, RUNNER_MODEL would rename the model that
    cannot exist: the probe's Session sees neither; RUNNER_MODEL picks the model instead."""
    environ = {"RUNNER_STREAM": "1", "RUNNER_MODEL": "gpt-4.1"}
    assert probe_environ(environ) == {}
    model = wanted_model(None, environ)
    assert model == "gpt-4.1" and wanted_model("o3-mini", environ) == "o3-mini"
    report, _ = probe(counting_transport(), tmp_path, model=model, environ=environ)
    lines = {line["spec"]["name"]: line for line in records(tmp_path)}
    streamed = {name for name, line in lines.items() if line["ttft_ms"] is not None}
    assert streamed == {"probe.stream_usage"}
    assert lines["probe.error_shape"]["model"] == "runner-no-such-model"
    assert lines["probe.json_schema"]["model"] == "gpt-4.1"
    assert report.finding("stream_usage").verdict == "honoured"


def test_planned_requests_are_the_bodies_that_are_sent(
    counting_transport: Callable[..., Any], tmp_path: Path
) -> None:
    """--dry-run lists exactly what a probe sends: each planned body is the recorded one."""
    transport = counting_transport()
    session = Session(base_url=BASE, environ={}, ledger=tmp_path / "l.jsonl")
    planned = planned_requests(session, model="gpt-4o-mini", api="chat")
    session.close()
    assert transport.seen == [] and not (tmp_path / "l.jsonl").exists()
    probe(transport, tmp_path, model="gpt-4o-mini")
    sent = [f"{r.method} {r.url.removeprefix('http://probe.test')}" for r in planned]
    assert [s.replace("?limit=1", "") for s in sent] == transport.seen
    from runner.ledger.fingerprint import request_fingerprint

    planned_sha = [request_fingerprint(r.body) for r in planned if r.body is not None]
    assert planned_sha == [line["request_sha256"] for line in records(tmp_path)]


@pytest.mark.parametrize("api", ["chat", "responses"])
def test_every_model_call_asks_for_few_tokens(api: str, tmp_path: Path) -> None:
    session = Session(base_url=BASE, environ={}, ledger=tmp_path / "l.jsonl")
    planned = planned_requests(session, model="gpt-4o-mini", api=api)
    session.close()
    limits = [r.body.get("max_tokens", r.body.get("max_output_tokens")) for r in planned if r.body]
    assert limits and all(16 <= limit <= 64 for limit in limits)
