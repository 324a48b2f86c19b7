"""Hostile replies: whatever a server sends back — JSON of any shape, wrong types, huge numbers,
deep nesting, cut bodies, endless streams, huge bodies or headers — the client returns a
Completion or raises a RunnerError, never anything else, and never reads more than its cap."""

from __future__ import annotations

import asyncio
import contextlib
import gzip
import json
import re
import socket
import subprocess
import sys
import threading
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx2
import pytest
from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from runner.cli import cli
from runner.errors import (
    ConnectFailed,
    ReplyTooLarge,
    RunnerError,
    ServerFailed,
    StreamBroken,
)
from runner.providers import ChatClient
from runner.providers.openai_chat import build_body
from runner.types import Completion

ROOT = Path(__file__).resolve().parents[2]
USER = [{"role": "user", "content": "hi"}]
REPLY = {
    "id": "chatcmpl-1",
    "model": "gpt-4o-mini",
    "choices": [{"index": 0, "message": {"content": "Hello"}, "finish_reason": "stop"}],
    "usage": {"prompt_tokens": 9, "completion_tokens": 1},
}


def _client(handler: Any, **kwargs: Any) -> ChatClient:
    return ChatClient(transport=httpx2.MockTransport(handler), environ={}, api_key="sk-x", **kwargs)


def _call(content: bytes, *, stream: bool = False, **kwargs: Any) -> Completion | RunnerError:
    """One call answered with `content`: the Completion, or the RunnerError it raised. Any
    other exception (a BaseException included) fails the test that asked."""
    kind = "text/event-stream" if stream else "application/json"

    def handler(request: httpx2.Request) -> httpx2.Response:
        return httpx2.Response(200, content=content, headers={"content-type": kind})

    async def go() -> Completion | RunnerError:
        async with _client(handler, **kwargs) as client:
            try:
                if stream:
                    return await client.stream(build_body("gpt-4o-mini", USER, stream=True))
                return await client.complete(build_body("gpt-4o-mini", USER))
            except RunnerError as exc:
                return exc

    return asyncio.run(go())


def _well_formed(completion: Completion) -> None:
    """What the engine relies on: plain types all the way, tool calls two levels deep."""
    assert isinstance(completion.id, str) and isinstance(completion.model, str)
    for choice in completion.choices:
        assert isinstance(choice.index, int)
        assert choice.text is None or isinstance(choice.text, str)
        assert choice.finish_reason is None or isinstance(choice.finish_reason, str)
        assert choice.refusal is None or isinstance(choice.refusal, str)
        for call in choice.tool_calls:
            for value in call.values():
                assert isinstance(value, str) or (
                    isinstance(value, dict) and all(isinstance(v, str) for v in value.values())
                )
    if completion.usage is not None:
        usage = completion.usage
        counts = [usage.prompt, usage.completion, usage.cached, usage.reasoning]
        assert all(isinstance(v, int) and not isinstance(v, bool) for v in counts)
        # Counts the server sent that cannot be read are an estimate to fill in, saying why;
        # odd ones (negative, inconsistent) are kept as said, for the engine to flag
        # (tests/hostile/test_trust_recorded_replies.py).
        assert not usage.unreadable or usage.estimated


# --- random bodies ------------------------------------------------------------------------------

_SCALARS = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats()
    | st.text(max_size=12)
)
_JSON = st.recursive(
    _SCALARS,
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=6), inner, max_size=4)
    ),
    max_leaves=16,
)


def _maybe(value: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    return st.one_of(value, _JSON)


_CALL = st.fixed_dictionaries(
    {},
    optional={
        "id": _maybe(st.text(max_size=8)),
        "type": _maybe(st.just("function")),
        "index": _maybe(st.integers(0, 3)),
        "function": _maybe(
            st.fixed_dictionaries(
                {}, optional={"name": _maybe(st.text(max_size=8)), "arguments": _JSON}
            )
        ),
    },
)
_CHOICE = st.fixed_dictionaries(
    {},
    optional={
        "index": _maybe(st.integers(0, 3)),
        "finish_reason": _maybe(st.sampled_from(["stop", "length", "tool_calls"])),
        "message": _maybe(
            st.fixed_dictionaries(
                {},
                optional={
                    "content": _maybe(st.text(max_size=20)),
                    "refusal": _JSON,
                    "tool_calls": _maybe(st.lists(_CALL, max_size=3)),
                    "function_call": _maybe(_CALL),
                },
            )
        ),
        "delta": _maybe(
            st.fixed_dictionaries(
                {},
                optional={
                    "content": _maybe(st.text(max_size=20)),
                    "tool_calls": _maybe(st.lists(_CALL, max_size=3)),
                },
            )
        ),
    },
)
_USAGE = st.fixed_dictionaries(
    {},
    optional={
        "prompt_tokens": _JSON,
        "completion_tokens": _maybe(st.integers(0, 10**30)),
        "prompt_tokens_details": _JSON,
    },
)
_REPLIES = st.fixed_dictionaries(
    {},
    optional={
        "id": _JSON,
        "model": _JSON,
        "choices": _maybe(st.lists(_CHOICE, max_size=4)),
        "usage": _maybe(_USAGE),
        "error": _JSON,
        "system_fingerprint": _JSON,
    },
)


def _deep(depth: int) -> bytes:
    return b'{"choices": ' + b"[" * depth + b"]" * depth + b"}"


_BODIES = st.one_of(
    _REPLIES.map(lambda r: json.dumps(r).encode()),
    _JSON.map(lambda v: json.dumps(v).encode()),
    st.tuples(_REPLIES, st.floats(0, 1)).map(
        lambda t: json.dumps(t[0]).encode()[: int(len(json.dumps(t[0])) * t[1])]
    ),  # cut short
    st.sampled_from([100, 1_000, 10_000, 200_000]).map(_deep),
    st.sampled_from([b"1e999", b"-1e999", b"NaN", b"9" * 5000, b'{"choices": [], "usage": 1e999}']),
    st.binary(max_size=64),
)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(content=_BODIES)
def test_any_json_body_gives_a_completion_or_a_runner_error(content: bytes) -> None:
    result = _call(content)
    if isinstance(result, Completion):
        _well_formed(result)
    else:
        assert isinstance(result, StreamBroken), result


_EVENTS = st.lists(
    st.one_of(
        _REPLIES.map(json.dumps),
        st.sampled_from(["[DONE]", "", "{not json", "[" * 5000 + "]" * 5000]),
        st.text(max_size=20),
    ),
    max_size=6,
)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(events=_EVENTS, names=st.lists(st.sampled_from(["", "error", "x"]), max_size=6))
def test_any_event_stream_gives_a_completion_or_a_runner_error(
    events: list[str], names: list[str]
) -> None:
    frames = []
    for i, data in enumerate(events):
        name = names[i] if i < len(names) else ""
        head = f"event: {name}\n" if name else ""
        frames.append(head + "".join(f"data: {line}\n" for line in data.split("\n")) + "\n")
    result = _call("".join(frames).encode(), stream=True)
    if isinstance(result, Completion):
        _well_formed(result)
    else:
        assert isinstance(result, StreamBroken), result


# --- size caps ----------------------------------------------------------------------------------


class _Endless(httpx2.AsyncByteStream):
    """A body that never ends; counts the chunks the client pulled."""

    def __init__(self, chunk: bytes, prefix: bytes = b"") -> None:
        self.chunk, self.prefix, self.pulled = chunk, prefix, 0

    async def __aiter__(self) -> AsyncIterator[bytes]:
        yield self.prefix
        while True:
            self.pulled += 1
            yield self.chunk


def _reply_with(
    stream: httpx2.AsyncByteStream, kind: str, status: int = 200, **headers: str
) -> Any:
    def handler(request: httpx2.Request) -> httpx2.Response:
        return httpx2.Response(status, stream=stream, headers={"content-type": kind, **headers})

    return handler


async def _complete(handler: Any, *, stream: bool = False, **kwargs: Any) -> Completion:
    async with _client(handler, **kwargs) as client:
        if stream:
            return await client.stream(build_body("gpt-4o-mini", USER, stream=True))
        return await client.complete(build_body("gpt-4o-mini", USER))


@pytest.mark.anyio
async def test_an_endless_json_body_stops_at_the_cap() -> None:
    body = _Endless(b"x" * 65536, b'{"choices": [{"message": {"content": "')
    with pytest.raises(ReplyTooLarge) as info:
        await _complete(_reply_with(body, "application/json"), max_reply_bytes=1 << 20)
    assert 16 <= body.pulled <= 17  # 1 MiB in 64 KiB chunks, and not one more
    assert info.value.retryable is False and info.value.kind == "reply_too_large"
    assert "max_reply_bytes" in str(info.value)


@pytest.mark.anyio
async def test_an_announced_length_past_the_cap_is_not_read() -> None:
    body = _Endless(b"x" * 65536)
    handler = _reply_with(body, "application/json", **{"content-length": str(10**12)})
    with pytest.raises(ReplyTooLarge, match="announces 1,000,000,000,000 bytes"):
        await _complete(handler)
    assert body.pulled == 0


@pytest.mark.anyio
async def test_a_gzip_bomb_is_counted_after_decompression() -> None:
    bomb = gzip.compress(b'{"choices": [{"message": {"content": "' + b"0" * (64 << 20))
    assert len(bomb) < 200_000

    def handler(request: httpx2.Request) -> httpx2.Response:
        headers = {"content-type": "application/json", "content-encoding": "gzip"}
        return httpx2.Response(200, content=bomb, headers=headers)

    with pytest.raises(ReplyTooLarge):
        await _complete(handler)


@pytest.mark.anyio
async def test_an_endless_event_stream_stops_at_the_cap() -> None:
    delta = {"choices": [{"index": 0, "delta": {"content": "x" * 1000}}]}
    body = _Endless(b"data: " + json.dumps(delta).encode() + b"\n\n")
    with pytest.raises(ReplyTooLarge, match="streams more event data"):
        await _complete(
            _reply_with(body, "text/event-stream"), stream=True, max_reply_bytes=1 << 20
        )
    assert body.pulled < 1100


@pytest.mark.anyio
async def test_a_huge_error_body_is_read_only_to_its_excerpt() -> None:
    body = _Endless(b"x" * 65536, b'{"error": {"message": "boom"')
    with pytest.raises(ServerFailed) as info:
        await _complete(_reply_with(body, "application/json", status=500))
    assert body.pulled <= 2
    assert len(info.value.body_excerpt) <= 500


def test_too_many_choices_or_tool_calls_are_malformed() -> None:
    many = {"choices": [{"index": 0, "message": {"content": "x"}}] * 129}
    calls = {"choices": [{"message": {"tool_calls": [{"id": "c"}] * 1025}}]}
    for reply in (many, calls):
        result = _call(json.dumps(reply).encode())
        assert isinstance(result, StreamBroken), result
        assert "more than 128" in str(result) or "at most 1024" in str(result)


@pytest.mark.anyio
async def test_huge_header_values_are_not_kept() -> None:
    def handler(request: httpx2.Request) -> httpx2.Response:
        headers = {"x-request-id": "r" * 100_000, "x-ratelimit-remaining-tokens": "9" * 100_000}
        return httpx2.Response(200, json=REPLY, headers=headers)

    completion = await _complete(handler)
    assert completion.request_id is None and completion.rate_headers == {}


# --- over a real socket -------------------------------------------------------------------------


@contextlib.contextmanager
def _loopback(reply: bytes) -> Iterator[str]:
    """A loopback server that reads one whole request and answers with raw bytes."""
    listener = socket.create_server(("127.0.0.1", 0))
    port = listener.getsockname()[1]

    def run() -> None:
        try:
            conn, _ = listener.accept()
        except OSError:
            return
        with conn:
            request = b""
            while b"\r\n\r\n" not in request:
                request += conn.recv(65536)
            head, _, content = request.partition(b"\r\n\r\n")
            length = re.search(rb"(?i)content-length: *(\d+)", head)
            while length and len(content) < int(length.group(1)):
                content += conn.recv(65536)
            try:
                conn.sendall(reply)
            except OSError:
                pass

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{port}/v1"
    finally:
        listener.close()
        thread.join(timeout=10)


@pytest.mark.anyio
async def test_a_huge_header_over_http_is_a_connection_failure() -> None:
    reply = b"HTTP/1.1 200 OK\r\nx-big: " + b"a" * 200_000 + b"\r\ncontent-length: 2\r\n\r\n{}"
    with _loopback(reply) as base:
        async with ChatClient(base_url=base, api_key="sk-x", environ={}) as client:
            with pytest.raises(ConnectFailed):
                await client.complete(build_body("gpt-4o-mini", USER), timeout=10)


def test_a_300_mb_reply_keeps_memory_small() -> None:
    """In a process of its own, so its peak memory is the reply's: 934 MiB before the cap."""
    started = time.perf_counter()
    proc = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "bench_hostile.py"), "reply", "300"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert time.perf_counter() - started < 60
    assert proc.returncode == 0, proc.stderr
    line = proc.stdout.strip()
    assert "ReplyTooLarge" in line, line
    peak = float(line.split("peak ")[1].split(" MiB")[0])
    assert peak < 200, line


def test_exec_records_a_deeply_nested_reply_as_one_failed_call(tmp_path: Path) -> None:
    reply = _deep(100_000)
    head = f"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {len(reply)}"
    with _loopback(head.encode() + b"\r\n\r\n" + reply) as base:
        spec = tmp_path / "deep.yaml"
        spec.write_text(
            "model: gpt-4o-mini\nmessages: [{role: user, content: hi}]\nretry: {attempts: 1}\n",
            encoding="utf-8",
        )
        ledger = tmp_path / "ledger.jsonl"
        env = {"OPENAI_API_KEY": "sk-test-0123456789abcdef0123", "OPENAI_BASE_URL": base}
        result = CliRunner().invoke(
            cli, ["exec", str(spec), "--ledger", str(ledger)], env=env, catch_exceptions=False
        )
        assert result.exit_code == 1, result.output
        assert "Traceback" not in result.output and "nests too deeply" in result.stderr
        lines = ledger.read_text().splitlines()
        assert len(lines) == 1
        assert json.loads(lines[0])["error"]["kind"] == "connection"


@pytest.mark.parametrize(
    "header", ["retry-after: 1e308", "retry-after-ms: 99999999999999999999", "retry-after: -5"]
)
def test_an_enormous_retry_after_ends_the_call_at_once(tmp_path: Path, header: str) -> None:
    error = b'{"error": {"message": "slow down", "type": "requests", "code": null}}'
    reply = (
        f"HTTP/1.1 429 Too Many Requests\r\ncontent-type: application/json\r\n{header}\r\n"
        f"content-length: {len(error)}\r\nconnection: close\r\n\r\n"
    ).encode() + error
    with _loopback(reply) as base:
        spec = tmp_path / "wait.yaml"
        spec.write_text(
            "model: gpt-4o-mini\nmessages: [{role: user, content: hi}]\nretry: {attempts: 1}\n",
            encoding="utf-8",
        )
        ledger = tmp_path / "ledger.jsonl"
        env = {"OPENAI_API_KEY": "sk-test-0123456789abcdef0123", "OPENAI_BASE_URL": base}
        started = time.perf_counter()
        result = CliRunner().invoke(
            cli, ["exec", str(spec), "--ledger", str(ledger)], env=env, catch_exceptions=False
        )
        assert time.perf_counter() - started < 10
    assert result.exit_code == 1, result.output
    assert "Traceback" not in result.output
    assert len(ledger.read_text().splitlines()) == 1


@pytest.mark.parametrize("content", ["[" * 100_000 + "]" * 100_000, "1" * 5_000])
def test_exec_records_reply_text_that_json_cannot_read(tmp_path: Path, content: str) -> None:
    reply = json.dumps(
        {"choices": [{"index": 0, "message": {"content": content}, "finish_reason": "stop"}]}
    ).encode()
    head = f"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {len(reply)}"
    with _loopback(head.encode() + b"\r\n\r\n" + reply) as base:
        spec = tmp_path / "out.yaml"
        spec.write_text(
            "model: gpt-4o-mini\nmessages: [{role: user, content: hi}]\nretry: {attempts: 1}\n"
            "output: {strict: false, schema: {type: array}}\n",
            encoding="utf-8",
        )
        ledger = tmp_path / "ledger.jsonl"
        env = {"OPENAI_API_KEY": "sk-test-0123456789abcdef0123", "OPENAI_BASE_URL": base}
        result = CliRunner().invoke(cli, ["exec", str(spec), "--ledger", str(ledger)], env=env)
    assert (
        result.exit_code == 1
        and result.exception is None
        or isinstance(result.exception, SystemExit)
    )
    assert len(ledger.read_text().splitlines()) == 1
