"""Whatever a server sends after a request went out ends in exactly one ledger line: wrong
types and shapes become a recorded error (or an ok with flagged usage), a missing usage is
counted locally and marked estimated, and implausible usage is kept as the server said it,
flagged, and never priced as if it were true."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from _trust_recorded import (
    Canned,
    assert_clean,
    canned_server,
    chunk,
    reply,
    run_cli,
    server_env,
    sse,
    write_spec,
)


def _exec(tmp_path: Path, *replies: Canned, extra: str = "", stream: bool = False) -> Any:
    ledger = tmp_path / "ledger.jsonl"
    args = ["exec", str(write_spec(tmp_path, extra)), "--var", "who=Ada"]
    if stream:
        args.append("--stream")
    with canned_server(*replies) as server:
        out = run_cli(args, ledger, env=server_env(server))
    return out, server


@pytest.mark.parametrize(
    "usage",
    [
        {"prompt_tokens": "lots", "completion_tokens": 3},
        {"prompt_tokens": 12, "completion_tokens": [3]},
        {"prompt_tokens": 12.5, "completion_tokens": 3},
        {"prompt_tokens": True, "completion_tokens": 3},
        {"prompt_tokens": 12, "completion_tokens": 3, "prompt_tokens_details": "x"},
        {"prompt_tokens": 12, "completion_tokens": 3, "completion_tokens_details": [1]},
        {
            "prompt_tokens": 12,
            "completion_tokens": 3,
            "prompt_tokens_details": {"cached_tokens": "a"},
        },
        "lots",
        [1, 2],
        7,
    ],
    ids=lambda u: repr(u)[:40],
)
def test_unreadable_usage_is_recorded_as_an_estimate(tmp_path: Path, usage: Any) -> None:
    out, _ = _exec(tmp_path, Canned(reply(usage=usage)))
    assert_clean(out, code=0, lines=1)
    [line] = out.lines
    assert line["status"] == "ok"
    assert line["usage"]["estimated"] is True
    assert line["usage"]["prompt"] == line["usage"]["estimated_prompt"]
    assert line["usage"]["completion"] == 2  # "hello there", counted locally
    assert line["cost"]["estimated"] is True and line["cost"]["usd"] is not None
    assert line["cost"]["reason"]


def test_integral_floats_are_read_as_integers(tmp_path: Path) -> None:
    usage = {"prompt_tokens": 12.0, "completion_tokens": 3.0, "total_tokens": 15.0}
    out, _ = _exec(tmp_path, Canned(reply(usage=usage)))
    assert_clean(out, code=0, lines=1)
    assert out.lines[0]["usage"]["prompt"] == 12
    assert "estimated" not in out.lines[0]["usage"]


@pytest.mark.parametrize(
    "body",
    [
        {"choices": [{"index": "a", "message": {"content": "x"}}, {"index": 0, "message": {}}]},
        {"choices": [{"index": None, "message": {"content": "x"}, "finish_reason": "stop"}]},
        {"choices": [{"message": {"content": "x", "tool_calls": "oops"}, "finish_reason": "x"}]},
        {"choices": [{"message": {"content": None, "function_call": "f"}, "finish_reason": "x"}]},
        {"choices": [{"message": {"tool_calls": [{"function": {"arguments": {"a": 1}}}]}}]},
        {"choices": [{"message": {"tool_calls": [{"function": "get"}]}}]},
        {"choices": [{"message": {"content": "x"}, "finish_reason": 5}]},
        {"choices": [{"message": "hi"}]},
        {"choices": ["hi"]},
        {"choices": {"0": {}}},
        {"choices": [], "usage": {"prompt_tokens": 1}},
        {"error": "boom"},
        [1, 2, 3],
        "text",
        None,
    ],
    ids=lambda b: repr(b)[:50],
)
def test_a_reply_of_an_unexpected_shape_is_recorded(tmp_path: Path, body: Any) -> None:
    out, server = _exec(tmp_path, Canned(body))
    assert len(server.requests) == 1
    assert out.code in (0, 1)
    assert_clean(out, code=out.code, lines=1)
    if out.code == 1:
        assert out.lines[0]["error"]["kind"]


@pytest.mark.parametrize(
    "events",
    [
        [
            chunk("hi"),
            {"choices": [{"index": "x", "delta": {"content": "a"}}]},
            chunk(finish="stop"),
        ],
        [chunk("hi"), {"choices": [{"index": 0, "delta": {"tool_calls": [{"index": "z"}]}}]}],
        [chunk("hi"), {"choices": [{"index": 0, "delta": {}, "finish_reason": 7}]}],
        [chunk("hi"), chunk(finish="stop"), chunk(usage={"prompt_tokens": "lots"})],
    ],
    ids=range(4),
)
def test_a_stream_of_an_unexpected_shape_is_recorded(tmp_path: Path, events: list[Any]) -> None:
    out, server = _exec(tmp_path, sse(*events), stream=True)
    assert len(server.requests) == 1
    assert_clean(out, code=out.code, lines=1)
    assert out.code in (0, 1)


def test_a_stream_without_usage_is_estimated_not_free(tmp_path: Path) -> None:
    """llama.cpp ignores stream_options.include_usage: no usage chunk at all."""
    out, _ = _exec(
        tmp_path, sse(chunk("hello"), chunk(" there"), chunk(finish="stop")), stream=True
    )
    assert_clean(out, code=0, lines=1)
    [line] = out.lines
    assert line["usage"]["estimated"] is True
    assert line["usage"]["prompt"] == line["usage"]["estimated_prompt"] > 0
    assert line["usage"]["completion"] == 2
    assert line["attempts"][0]["usage"]["estimated"] is True
    assert line["cost"]["estimated"] is True and line["cost"]["usd"] > 0


def test_a_reply_without_usage_is_estimated_not_free(tmp_path: Path) -> None:
    out, _ = _exec(tmp_path, Canned(reply(usage=None)))
    assert_clean(out, code=0, lines=1)
    [line] = out.lines
    assert line["usage"]["estimated"] is True and line["usage"]["completion"] == 2
    assert line["cost"]["usd"] > 0 and line["cost"]["estimated"] is True
    assert "estimate" in out.stderr  # the summary says the figures are local counts


def test_usage_on_only_some_attempts_is_summed_and_marked(tmp_path: Path) -> None:
    schema = (
        "{type: object, properties: {a: {type: integer}}, required: [a], "
        "additionalProperties: false}"
    )
    out, server = _exec(
        tmp_path,
        Canned(reply('{"b": "not the schema"}', usage=None)),
        Canned(reply('{"a": 1}')),
        extra=f"output: {{schema: {schema}}}\nretry: {{attempts: 2, backoff: {{initial: 1ms}}}}\n",
    )
    assert len(server.requests) == 2
    assert_clean(out, code=0, lines=1)
    [line] = out.lines
    first, second = line["attempts"]
    assert first["outcome"] == "invalid_output" and first["usage"]["estimated"] is True
    assert "estimated" not in second["usage"] and second["usage"]["prompt"] == 12
    assert line["usage"]["prompt"] == first["usage"]["prompt"] + 12
    assert line["usage"]["estimated"] is True and line["cost"]["estimated"] is True


@pytest.mark.parametrize(
    ("usage", "flag"),
    [
        ({"prompt_tokens": 12, "completion_tokens": 10**18}, "max_tokens"),
        ({"prompt_tokens": 10**18, "completion_tokens": 3}, "context window"),
        ({"prompt_tokens": -5, "completion_tokens": 3}, "negative"),
        (
            {
                "prompt_tokens": 12,
                "completion_tokens": 3,
                "prompt_tokens_details": {"cached_tokens": 40},
            },
            "cached",
        ),
        (
            {
                "prompt_tokens": 12,
                "completion_tokens": 3,
                "completion_tokens_details": {"reasoning_tokens": 9},
            },
            "reasoning",
        ),
        ({"prompt_tokens": 12, "completion_tokens": 3, "total_tokens": 99}, "total"),
    ],
    ids=lambda v: str(v)[:30],
)
def test_implausible_usage_is_kept_flagged_and_not_priced(
    tmp_path: Path, usage: dict[str, Any], flag: str
) -> None:
    out, _ = _exec(tmp_path, Canned(reply(usage=usage)))
    assert_clean(out, code=0, lines=1)
    [line] = out.lines
    assert line["usage"]["prompt"] == usage["prompt_tokens"]  # as the server said
    assert line["usage"]["completion"] == usage["completion_tokens"]
    assert any(flag in f for f in line["usage"]["implausible"]), line["usage"]
    assert line["cost"]["usd"] is None and "implausible" in line["cost"]["reason"]
    assert "Warning:" in out.stderr and "implausible" in out.stderr
    assert "750" not in out.stderr  # no made-up price in the summary


def test_plausible_usage_has_no_flags(tmp_path: Path) -> None:
    out, _ = _exec(tmp_path, Canned(reply()))
    assert_clean(out, code=0, lines=1)
    assert "implausible" not in out.lines[0]["usage"]
    assert "reason" not in out.lines[0]["cost"]
    assert out.lines[0]["cost"]["estimated"] is False


@pytest.mark.parametrize(
    "headers",
    [
        {"x-ratelimit-remaining-tokens": "lots", "x-ratelimit-reset-tokens": "soon"},
        {"x-ratelimit-limit-requests": "-5", "x-ratelimit-reset-requests": "1e999s"},
        {"x-ratelimit-remaining-requests": "NaN", "x-ratelimit-reset-requests": "-1s"},
        {"x-request-id": "req\u00e9"},
    ],
    ids=range(4),
)
def test_odd_rate_limit_headers_on_a_good_reply(tmp_path: Path, headers: dict[str, str]) -> None:
    out, _ = _exec(tmp_path, Canned(reply(), headers=headers))
    assert_clean(out, code=0, lines=1)


@pytest.mark.parametrize(
    ("status", "body", "headers"),
    [
        (400, {"error": "a plain string"}, {}),
        (400, {"error": {"message": 5, "code": [1], "type": {"a": 1}, "param": 2}}, {}),
        (500, {"error": []}, {"retry-after": "lots"}),
        (429, [1, 2], {"retry-after": "-3", "retry-after-ms": "NaN"}),
        (429, {"error": {"code": "insufficient_quota", "message": None}}, {}),
        (503, b"\xff\xfe not text", {"retry-after": "1e999"}),
        (302, {}, {"location": "http://127.0.0.1:1/elsewhere"}),
        (204, b"", {}),
        (100, b"", {}),
    ],
    ids=range(9),
)
def test_an_error_reply_of_any_shape_is_recorded(
    tmp_path: Path, status: int, body: Any, headers: dict[str, str]
) -> None:
    out, server = _exec(tmp_path, Canned(body, status=status, headers=headers))
    assert len(server.requests) == 1
    assert_clean(out, code=1, lines=1)
    assert out.lines[0]["status"] == "error"


def test_a_stream_that_breaks_after_text_counts_what_arrived(tmp_path: Path) -> None:
    out, server = _exec(tmp_path, sse(chunk("Hello"), chunk(" there"), done=False), stream=True)
    assert len(server.requests) == 1
    assert_clean(out, code=1, lines=1)
    [line] = out.lines
    assert line["error"]["kind"] == "connection"
    [attempt] = line["attempts"]
    assert attempt["usage"]["estimated"] is True and attempt["usage"]["completion"] == 2
    assert line["cost"]["estimated"] is True and line["cost"]["usd"] > 0


def test_an_http_error_consumes_nothing(tmp_path: Path) -> None:
    out, _ = _exec(tmp_path, Canned({"error": {"message": "down"}}, status=500))
    assert_clean(out, code=1, lines=1)
    [line] = out.lines
    assert "usage" not in line["attempts"][0]
    assert line["usage"]["total"] == 0 and "estimated" not in line["usage"]
