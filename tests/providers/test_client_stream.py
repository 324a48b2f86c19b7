"""runner.providers SSE assembly: captured streams decode identically at every chunk split, broken
streams fail the same way at every split, and the edge cases of a streamed reply."""

from __future__ import annotations

import json
import random
from collections.abc import Iterable
from typing import Any

import httpx2
import pytest
from _client_helpers import REPLY, SSE, URL, body, mock_client, sse_reply

from runner.errors import StreamBroken
from runner.providers import ChatClient
from runner.types import Choice, Completion, StreamDelta, Usage


def tool_call(id_: str, name: str, arguments: str) -> dict[str, Any]:
    """A tool call in the neutral shape every wire's Completion holds."""
    return {"id": id_, "name": name, "arguments": arguments}


EXPECTED_STREAMS: dict[str, tuple[str, str, tuple[Choice, ...], Usage | None, str | None]] = {
    "text.sse": (
        "chatcmpl-B9MHDbslfkBeAs8l4bebGdFOJ6PeG", "gpt-4o-2024-08-06",
        (Choice(0, "Paris is the capital of France — café 🗼.", "stop"),),
        Usage(prompt=19, completion=10, cached=6), "fp_f9f4fb6dbf",
    ),
    "n2.sse": (
        "chatcmpl-n2xYzAbC", "gpt-4o-2024-08-06",
        (Choice(0, "Red apples.", "length"), Choice(1, "Blue skies!", "stop")),
        Usage(prompt=19, completion=6), "fp_f9f4fb6dbf",
    ),
    "tool_calls.sse": (
        "chatcmpl-toolsAbC123", "gpt-4o-2024-08-06",
        (Choice(0, None, "tool_calls", tool_calls=(
            tool_call("call_DdmO9pD3xa9XTPNJ32zg2hcA", "get_weather",
                      '{"location":"Paris, France"}'),
            tool_call("call_ABCDEFghijk0123", "get_time", '{"tz":"Europe/Paris"}'),
        )),),
        Usage(prompt=80, completion=40), "fp_f9f4fb6dbf",
    ),
    "refusal.sse": (
        "chatcmpl-refusal987", "gpt-4o-2024-08-06",
        (Choice(0, None, "stop", refusal="I'm sorry, I can't help with that."),),
        Usage(prompt=19, completion=7), "fp_f9f4fb6dbf",
    ),
    "function_call.sse": (
        "chatcmpl-legacyfn", "gpt-3.5-turbo-0613",
        (Choice(0, None, "function_call", tool_calls=({
            "name": "get_weather", "arguments": '{\n  "location": "Boston, MA"\n}'},)),),
        None, None,
    ),
    "keepalive_no_done.sse": (
        "gen-1741570283-keepalive", "meta-llama/llama-3.1-8b-instruct",
        (Choice(0, "Hi there", "stop"),), Usage(prompt=5, completion=2), None,
    ),
}  # fmt: skip

BROKEN_STREAMS = {
    "error_event.sse": f"{URL} reported an error mid-stream: The server had an error while "
    "processing your request. Sorry about that! (type server_error)",
    "error_data.sse": f"{URL} reported an error mid-stream: Rate limit reached for gpt-4o in "
    "organization org-abc on tokens per min (TPM). (type tokens, code rate_limit_exceeded)",
    "truncated.sse": f"the stream from {URL} ended early: no [DONE] and no finish_reason for "
    "choice 0; the answer must start over",
    "malformed.sse": f"malformed event stream from {URL}: data is not JSON: "
    '\'{"id":"chatcmpl-bad","choices":[{"index":0,"delta":{"content":"x"\'',
}


def shape(done: Completion) -> tuple[Any, ...]:
    return (done.id, done.model, done.choices, done.usage, done.system_fingerprint)


def splits(raw: bytes) -> Iterable[list[bytes]]:
    """The stream in one piece, a byte at a time, at every single split point, and at 20
    random multi-way splits (seeded)."""
    yield [raw]
    yield [raw[i : i + 1] for i in range(len(raw))]
    for i in range(1, len(raw)):
        yield [raw[:i], raw[i:]]
    rng = random.Random(len(raw))
    for _ in range(20):
        cuts = sorted(rng.sample(range(1, len(raw)), 12))
        yield [raw[a:b] for a, b in zip([0, *cuts], [*cuts, len(raw)], strict=True)]


async def run_stream(
    client: ChatClient, holder: list[list[bytes]], chunks: list[bytes], n: int = 1
) -> tuple[Completion, list[StreamDelta]]:
    holder[0] = chunks
    deltas: list[StreamDelta] = []
    done = await client.stream(body(stream=True, n=n), on_delta=deltas.append)
    return done, deltas


@pytest.mark.parametrize("name", sorted(EXPECTED_STREAMS))
@pytest.mark.anyio
async def test_streams_decode_identically_at_every_split(name: str) -> None:
    raw = (SSE / name).read_bytes()
    holder: list[list[bytes]] = [[]]
    client, _ = mock_client(lambda r: sse_reply(holder[0], **{"x-request-id": "req_s"}))
    n = 2 if name == "n2.sse" else 1
    async with client:
        first, first_deltas = await run_stream(client, holder, [raw], n)
        assert shape(first) == EXPECTED_STREAMS[name]
        assert first.request_id == "req_s"
        for chunks in splits(raw):
            done, deltas = await run_stream(client, holder, chunks, n)
            assert shape(done) == shape(first), chunks
            assert deltas == first_deltas
    texts = {
        c.index: "".join(d.text for d in first_deltas if d.choice == c.index) for c in first.choices
    }
    refusals = "".join(d.refusal for d in first_deltas)
    assert texts == {c.index: c.text or "" for c in first.choices}
    assert refusals == (first.choices[0].refusal or "")
    assert (first.ttft_ms is not None) and 0 < first.ttft_ms <= first.latency_ms


@pytest.mark.parametrize("name", sorted(BROKEN_STREAMS))
@pytest.mark.anyio
async def test_broken_streams_at_every_split(name: str) -> None:
    raw = (SSE / name).read_bytes()
    holder: list[list[bytes]] = [[]]
    client, _ = mock_client(lambda r: sse_reply(holder[0], **{"x-request-id": "req_b"}))
    async with client:
        for chunks in splits(raw):
            with pytest.raises(StreamBroken) as info:
                await run_stream(client, holder, chunks)
            assert str(info.value) == BROKEN_STREAMS[name]
            assert info.value.kind == "connection" and info.value.retryable
            assert info.value.request_id == "req_b"


@pytest.mark.anyio
async def test_stream_edge_cases() -> None:
    raw = (SSE / "n2.sse").read_bytes()
    # Choice 0 finished, choice 1 never did, and no [DONE]: broken.
    partial = b"".join(
        part + b"\n\n"
        for part in raw.split(b"\n\n")
        if part and b'"index":1,"delta":{}' not in part and b"[DONE]" not in part
    )
    holder: list[list[bytes]] = [[]]
    client, _ = mock_client(lambda r: sse_reply(holder[0]))
    async with client:
        with pytest.raises(StreamBroken, match="no finish_reason for choice 1"):
            await run_stream(client, holder, [partial], n=2)
        with pytest.raises(StreamBroken, match="no finish_reason for choice 0"):
            await run_stream(client, holder, [b""])
        # [DONE] ends the stream: anything after it is not read.
        done, _ = await run_stream(client, holder, [(SSE / "text.sse").read_bytes() + b"junk"])
        assert done.text == "Paris is the capital of France — café 🗼."
        for data, problem in [
            (b'{"choices": [{"index": 0, "delta": {"content": 7}}]}',
             "delta content is int, not a string"),
            (b'{"choices": ["x"]}', "'str' object has no attribute 'get'"),
            (b"[1, 2]", "data is not an object"),
        ]:  # fmt: skip
            with pytest.raises(StreamBroken) as info:
                await run_stream(client, holder, [b"data: " + data + b"\n\n"])
            assert str(info.value) == f"malformed event stream from {URL}: {problem}"

        # An error in the caller's callback is the caller's, not a broken stream.
        def explode(delta: StreamDelta) -> None:
            raise KeyError("callback bug")

        holder[0] = [(SSE / "text.sse").read_bytes()]
        with pytest.raises(KeyError, match="callback bug"):
            await client.stream(body(stream=True), on_delta=explode)


@pytest.mark.anyio
async def test_stream_request_answered_with_plain_json_or_wrong_type() -> None:
    replies = iter(
        [
            httpx2.Response(200, json=REPLY),
            httpx2.Response(200, content=b"<html></html>", headers={"content-type": "text/html"}),
        ]
    )
    client, _ = mock_client(lambda r: next(replies))
    async with client:
        done = await client.stream(body(stream=True))
        assert done.text == "Hello" and done.usage == Usage(9, 1)
        with pytest.raises(StreamBroken) as info:
            await client.stream(body(stream=True))
    assert str(info.value) == (
        f"malformed event stream from {URL} (Expected response with content type "
        "'text/event-stream', got 'text/html'.)"
    )


def _deltas(text: str, count: int) -> bytes:
    chunk = {"choices": [{"index": 0, "delta": {"content": text}}]}
    return (b"data: " + json.dumps(chunk).encode() + b"\n\n") * count


@pytest.mark.anyio
async def test_a_stream_past_what_the_request_allowed_is_cut() -> None:
    """max_tokens 10 × n 2 allows 20 tokens: no token is longer than 128 bytes, so past
    20 × 256 characters (+ slack) the answer has certainly overrun. Cut there, whatever the
    chunking; a stream within the allowance is read whole."""
    from runner.errors import ReplyTooLarge
    from runner.providers._stream import OVERRUN_CHARS_PER_TOKEN, OVERRUN_SLACK

    room = 20 * OVERRUN_CHARS_PER_TOKEN + OVERRUN_SLACK
    holder: list[list[bytes]] = [[]]
    client, _ = mock_client(lambda r: sse_reply(holder[0]))
    async with client:
        holder[0] = [_deltas("abcd" * 100, room // 400 + 50)]  # never a finish_reason
        deltas: list[StreamDelta] = []
        with pytest.raises(ReplyTooLarge) as info:
            await client.stream(body(stream=True, max_tokens=10, n=2), on_delta=deltas.append)
        assert info.value.kind == "reply_too_large" and not info.value.retryable
        assert "far more than the request allowed (20 output tokens" in str(info.value)
        assert room - 400 < sum(len(d.text or "") for d in deltas) <= room
        # Within the allowance's room, a long answer (a server counting tokens its own way)
        # is read whole.
        finish = b'data: {"choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]}\n\n'
        holder[0] = [_deltas("abcd" * 100, room // 400 - 1) + finish + b"data: [DONE]\n\n"]
        done = await client.stream(body(stream=True, max_tokens=10, n=2))
        assert len(done.text or "") == (room // 400 - 1) * 400
