"""Tests for runner.mock.faults and how the app applies them: realistic error bodies, seeded
and reproducible rolls, fail_first, invalid output, truncated/malformed/dropped replies,
latency through the injected sleep, the X-Mock-Fault header and the parsers."""

from __future__ import annotations

import json
from typing import Any

import pytest
from _mock_helpers import CITY, MODEL, WEATHER_TOOL, body, chat, in_process, schema_format, valid

from runner.mock import (
    Faults,
    create_app,
    parse_fault_header,
    parse_statuses,
)

# --- faults -----------------------------------------------------------------------------------


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("status", "code", "type_", "message"),
    [
        (
            429,
            429,
            "requests",
            f"Rate limit reached for {MODEL} on requests per min (RPM): "
            "Limit 500, Used 500, Requested 1. (mock fault)",
        ),
        (
            "quota",
            429,
            "insufficient_quota",
            "You exceeded your current quota, please check your plan and billing details.",
        ),
        (
            500,
            500,
            "server_error",
            "The server had an error while processing your request. Sorry about that!",
        ),
        (
            503,
            503,
            "server_error",
            "The engine is currently overloaded, please try again later.",
        ),
        (502, 502, "server_error", "The server returned status 502. (mock fault)"),
        (400, 400, "invalid_request_error", "Mock fault: status 400."),
    ],
)
async def test_fault_statuses_have_realistic_bodies(
    status: int | str, code: int, type_: str, message: str
) -> None:
    faults = Faults(fail_rate=1.0, statuses=(status,), retry_after=1.5)
    async with in_process(faults=faults) as client:
        reply = await chat(client, body())
    assert reply.status_code == code
    error = reply.json()["error"]
    assert (error["type"], error["message"]) == (type_, message)
    expected_code = {429: "rate_limit_exceeded", "quota": "insufficient_quota"}.get(status)
    assert error["code"] == expected_code
    assert reply.headers["retry-after"] == "1.5"
    assert reply.headers["retry-after-ms"] == "1500"


@pytest.mark.anyio
async def test_no_retry_after_unless_configured() -> None:
    async with in_process(faults=Faults(fail_rate=1.0, statuses=(429,))) as client:
        reply = await chat(client, body())
    assert reply.status_code == 429
    assert "retry-after" not in reply.headers


@pytest.mark.anyio
async def test_fail_first_fails_each_distinct_request_n_times() -> None:
    async with in_process(faults=Faults(fail_first=2, statuses=(503,))) as client:
        first = [await chat(client, body("one")) for _ in range(3)]
        second = [(await chat(client, body("two"))).status_code for _ in range(3)]
        streamed = (await chat(client, body("one", stream=True))).status_code
    assert [r.status_code for r in first] == second == [503, 503, 200]
    assert streamed == 200  # the same request, streamed: its fourth try
    assert len({r.headers["x-request-id"] for r in first}) == 3  # one id per attempt


async def _statuses(faults: Faults, count: int = 30) -> list[int]:
    async with in_process(faults=faults) as client:
        return [(await chat(client, body(f"question {i}"))).status_code for i in range(count)]


@pytest.mark.anyio
async def test_fault_rolls_are_reproducible() -> None:
    faults = Faults(fail_rate=0.5, statuses=(429, 500), seed=1)
    first = await _statuses(faults)
    assert first == await _statuses(faults)
    assert {200, 429, 500} <= set(first)
    assert first != await _statuses(Faults(fail_rate=0.5, statuses=(429, 500), seed=2))
    assert set(await _statuses(Faults(fail_rate=0.0))) == {200}


@pytest.mark.anyio
async def test_invalid_output_breaks_what_was_asked() -> None:
    async with in_process(faults=Faults(invalid_output_rate=1.0)) as client:
        structured = (await chat(client, body(response_format=schema_format(CITY)))).json()
        loose = (await chat(client, body("json", response_format={"type": "json_object"}))).json()
        tool = (await chat(client, body(tools=[WEATHER_TOOL]))).json()
        text = (await chat(client, body())).json()
    assert not valid(CITY, json.loads(structured["choices"][0]["message"]["content"]))
    with pytest.raises(json.JSONDecodeError):
        json.loads(loose["choices"][0]["message"]["content"])
    args = tool["choices"][0]["message"]["tool_calls"][0]["function"]["arguments"]
    assert not valid(WEATHER_TOOL["function"]["parameters"], json.loads(args))
    assert text["choices"][0]["message"]["content"].startswith("Mock answer")


@pytest.mark.anyio
async def test_non_stream_truncate_and_malformed_bodies() -> None:
    async with in_process(faults=Faults(truncate_rate=1.0)) as client:
        cut = await chat(client, body())
    async with in_process(faults=Faults(malformed_rate=1.0)) as client:
        bad = await chat(client, body())
    async with in_process() as client:
        whole = await chat(client, body())
    assert cut.status_code == bad.status_code == 200
    assert whole.content.startswith(cut.content)
    assert int(cut.headers["content-length"]) == len(cut.content) < len(whole.content)
    assert bad.content == b"{not json"


@pytest.mark.anyio
async def test_a_drop_in_process_surfaces_as_a_reset_connection() -> None:
    async with in_process(faults=Faults(drop_rate=1.0)) as client:
        with pytest.raises(ConnectionResetError, match="dropped the connection"):
            await chat(client, body())


@pytest.mark.anyio
async def test_latency_waits_with_the_injected_sleep() -> None:
    waits: list[float] = []

    async def sleep(seconds: float) -> None:
        waits.append(seconds)

    app = create_app(Faults(latency=0.1), sleep=sleep)
    async with in_process(app) as client:
        await chat(client, body())
        await chat(client, body(), {"x-mock-fault": "latency=250ms"})
        await chat(client, body(), {"x-mock-fault": "status=500;latency=2s"})
    assert waits == [0.1, 0.25, 2.0]


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("header", "statuses"),
    [
        ("status=503", [503, 503, 503]),
        ("status=429;retry_after=2s", [429, 429, 429]),
        ("fail_first=2", [500, 500, 200]),
        ("fail_first=1;status=quota", [429, 200, 200]),
        (" status = 502 ; ", [502, 502, 502]),
        ("", [200, 200, 200]),
    ],
)
async def test_the_fault_header_forces_statuses(header: str, statuses: list[int]) -> None:
    async with in_process() as client:
        got = [(await chat(client, body(), {"X-Mock-Fault": header})).status_code for _ in "abc"]
        plain = (await chat(client, body())).status_code
    assert got == statuses
    assert plain == 200  # the header's counter is its own


@pytest.mark.anyio
async def test_the_fault_header_retry_after() -> None:
    async with in_process() as client:
        reply = await chat(client, body(), {"X-Mock-Fault": "status=429;retry_after=2"})
    assert reply.headers["retry-after"] == "2"
    assert reply.headers["retry-after-ms"] == "2000"


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("header", "message"),
    [
        (
            "explode",
            "invalid x-mock-fault header: unknown fault 'explode'; use status, "
            "fail_first, retry_after, latency, no_json_schema, ignore_json_schema, drop, "
            "truncate, malformed, invalid_output, response_failed, error_event",
        ),
        (
            "status=200",
            "invalid x-mock-fault header: invalid status '200' in '200': use HTTP "
            "error statuses (400-599) or quota, separated by commas",
        ),
        (
            "fail_first=x",
            "invalid x-mock-fault header: fail_first must be a whole number, not 'x'",
        ),
        ("fail_first=-1", "invalid x-mock-fault header: fail_first must be 0 or more, not -1"),
        (
            "latency=soon",
            "invalid x-mock-fault header: not a duration: 'soon' "
            "(use e.g. 250ms, 30s, 2m, 1h or 1m30s)",
        ),
    ],
)
async def test_a_bad_fault_header_is_a_400(header: str, message: str) -> None:
    async with in_process() as client:
        reply = await chat(client, body(), {"X-Mock-Fault": header})
    assert reply.status_code == 400
    assert reply.json()["error"] == {
        "message": message,
        "type": "invalid_request_error",
        "param": None,
        "code": "invalid_mock_fault",
    }


def test_parse_fault_header_sets_rates() -> None:
    base = Faults(fail_rate=0.3, drop_rate=0.2, seed=4)
    assert parse_fault_header("drop;truncate;malformed;invalid_output", base) == Faults(
        fail_rate=0.3,
        drop_rate=1.0,
        truncate_rate=1.0,
        malformed_rate=1.0,
        invalid_output_rate=1.0,
        seed=4,
    )
    assert parse_fault_header("fail_first=2", base).fail_rate == 0.0


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"fail_rate": 1.5}, "fail_rate must be between 0 and 1, not 1.5"),
        ({"drop_rate": -0.1}, "drop_rate must be between 0 and 1, not -0.1"),
        ({"invalid_output_rate": 2}, "invalid_output_rate must be between 0 and 1, not 2"),
        ({"statuses": ()}, "statuses must name at least one status"),
        ({"statuses": (200,)}, "status 200 is not an HTTP error status (400-599) or quota"),
        (
            {"statuses": ("teapot",)},
            "status 'teapot' is not an HTTP error status (400-599) or quota",
        ),
        ({"latency": -1.0}, "latency must be 0 or more seconds, not -1.0"),
        ({"retry_after": float("nan")}, "retry_after must be 0 or more seconds, not nan"),
        ({"fail_first": -2}, "fail_first must be 0 or more, not -2"),
    ],
)
def test_faults_are_validated(kwargs: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError) as info:
        Faults(**kwargs)
    assert str(info.value) == message


def test_parse_statuses() -> None:
    assert parse_statuses("429,500, 503") == (429, 500, 503)
    assert parse_statuses("QUOTA,429") == ("quota", 429)
    with pytest.raises(ValueError) as info:
        parse_statuses("429,,500")
    assert str(info.value) == (
        "invalid status '' in '429,,500': use HTTP error statuses (400-599) or quota, "
        "separated by commas"
    )
