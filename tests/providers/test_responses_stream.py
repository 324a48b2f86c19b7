"""Responses API streams through ResponsesClient: against the mock app in-process (asgi_app=) and
against `runner mock-server` on loopback. Deltas join to the final text, usage comes from
response.completed, the incomplete ending, the mock's stream faults mapped to runner's errors, a
runaway stream cut, and the same stream decoded identically at every byte split."""

from __future__ import annotations

import json
import random
import threading
from collections.abc import Iterable, Iterator
from typing import Any

import httpx2
import pytest

from runner.errors import ReplyTooLarge, RunnerError, StreamBroken
from runner.mock import Faults, create_app, serve
from runner.providers import ASGIStreamTransport, ResponsesClient, WireRequest
from runner.providers.openai_responses import body_for
from runner.providers.wire import OutputFormat
from runner.tokens import count_messages
from runner.types import Completion, StreamDelta

MODEL = "gpt-4o-mini"
MESSAGES = [
    {"role": "system", "content": "Be brief."},
    {"role": "user", "content": "Tell me about Paris."},
]
CITY = {
    "type": "object",
    "properties": {"name": {"type": "string"}, "population": {"type": "integer"}},
    "required": ["name", "population"],
    "additionalProperties": False,
}


def body(stream: bool, **kw: Any) -> dict[str, Any]:
    params = kw.pop("params", {})
    return body_for(
        WireRequest(MODEL, kw.pop("messages", MESSAGES), params=params, stream=stream, **kw)
    )


def client(fault: str | None = None, **kw: Any) -> ResponsesClient:
    headers = {"X-Mock-Fault": fault} if fault else None
    kw.setdefault("asgi_app", create_app())
    return ResponsesClient(environ={}, api_key="sk-test", headers=headers, **kw)


async def both(c: ResponsesClient, **kw: Any) -> tuple[Completion, Completion, list[StreamDelta]]:
    deltas: list[StreamDelta] = []
    plain = await c.complete(body(False, **kw))
    streamed = await c.stream(body(True, **kw), on_delta=deltas.append)
    return plain, streamed, deltas


def check_agree(plain: Completion, streamed: Completion, deltas: list[StreamDelta]) -> None:
    assert streamed.choices == plain.choices
    assert streamed.usage == plain.usage and streamed.usage is not None
    assert (streamed.id, streamed.model) == (plain.id, plain.model)
    assert deltas
    assert "".join(d.text for d in deltas) == (streamed.text or "")
    assert "".join(d.refusal for d in deltas) == (streamed.choices[0].refusal or "")
    assert streamed.ttft_ms is not None and 0 < streamed.ttft_ms <= streamed.latency_ms
    assert plain.ttft_ms is None


@pytest.mark.anyio
async def test_stream_in_process_equals_the_plain_reply() -> None:
    async with client() as c:
        plain, streamed, deltas = await both(c)
    check_agree(plain, streamed, deltas)
    assert len(deltas) > 1  # prose comes a few words at a time
    assert streamed.text is not None and streamed.text.startswith('Mock answer to "Tell me')
    assert streamed.choices[0].finish_reason == "stop"
    assert streamed.usage is not None
    # The mock counts the prompt as runner does before sending: exact.
    assert streamed.usage.prompt == count_messages(MESSAGES, MODEL)
    assert streamed.request_id is not None and streamed.request_id.startswith("req_")


@pytest.mark.anyio
async def test_stream_json_schema_tools_and_refusal() -> None:
    schema = OutputFormat("json_schema", CITY, name="city", strict=True)
    tool = {
        "type": "function",
        "function": {
            "name": "get_weather",
            "parameters": {
                "type": "object",
                "properties": {"city": {"type": "string"}},
                "required": ["city"],
            },
        },
    }
    async with client() as c:
        plain, streamed, deltas = await both(c, output=schema)
        check_agree(plain, streamed, deltas)
        assert set(json.loads(streamed.text or "")) == {"name", "population"}

        called = await c.stream(body(True, tools=[tool], tool_choice="required"))
        [call] = called.choices[0].tool_calls
        assert call["name"] == "get_weather" and call["id"].startswith("call_")
        assert "city" in json.loads(call["arguments"])
        assert called.choices[0].finish_reason == "tool_calls"

        refuse = [{"role": "user", "content": "[[refuse]] Do it."}]
        plain, streamed, deltas = await both(c, messages=refuse)
        check_agree(plain, streamed, deltas)
        assert streamed.choices[0].refusal and streamed.text is None


@pytest.mark.anyio
async def test_the_incomplete_ending_is_length() -> None:
    async with client() as c:
        plain, streamed, deltas = await both(c, params={"max_output_tokens": 16})
    check_agree(plain, streamed, deltas)
    assert streamed.choices[0].finish_reason == "length"
    assert streamed.usage is not None and streamed.usage.completion == 16


@pytest.mark.anyio
async def test_reasoning_tokens_come_from_response_completed() -> None:
    params = {"reasoning": {"effort": "low", "summary": "auto"}, "max_output_tokens": 400}
    async with client() as c:
        plain = await c.complete(body_for(WireRequest("o3-mini", MESSAGES, params=params)))
        streamed = await c.stream(
            body_for(WireRequest("o3-mini", MESSAGES, params=params, stream=True))
        )
    assert streamed.usage == plain.usage and streamed.usage is not None
    assert 0 < streamed.usage.reasoning < streamed.usage.completion
    assert streamed.text == plain.text


@pytest.mark.parametrize(
    ("fault", "message"),
    [
        ("response_failed", "the response failed: The server had an error"),
        ("error_event", "error mid-stream: The server had an error"),
        ("truncate", "ended early: no response.completed event; the answer must start over"),
        ("malformed", "malformed event stream from http://mock/v1/responses: data is not JSON"),
    ],
)
@pytest.mark.anyio
async def test_stream_faults_are_stream_broken(fault: str, message: str) -> None:
    deltas: list[StreamDelta] = []
    async with client(fault, base_url="http://mock/v1") as c:
        with pytest.raises(StreamBroken) as info:
            await c.stream(body(True), on_delta=deltas.append)
    assert message in str(info.value)
    assert info.value.kind == "connection" and info.value.retryable
    assert info.value.request_id is not None and info.value.request_id.startswith("req_")
    if fault in ("response_failed", "error_event"):
        assert str(info.value).endswith("(code server_error)")


@pytest.mark.anyio
async def test_a_plain_failed_response_is_its_error() -> None:
    async with client("response_failed") as c:
        with pytest.raises(StreamBroken, match="the response failed: .* \\(code server_error\\)"):
            await c.complete(body(False))


@pytest.mark.anyio
async def test_a_failed_response_with_a_rate_limit_code_is_rate_limited() -> None:
    events = [
        ("response.created", {"response": {"id": "r", "status": "in_progress", "output": []}}),
        (
            "response.failed",
            {
                "response": {
                    "id": "r",
                    "status": "failed",
                    "output": [],
                    "error": {"code": "rate_limit_exceeded", "message": "Slow down."},
                }
            },
        ),
    ]
    async with canned([sse(events)]) as c:
        with pytest.raises(RunnerError) as info:
            await c.stream(body(True))
    assert info.value.kind == "rate_limit" and info.value.retryable
    error = [("error", {"code": "invalid_prompt", "message": "No.", "param": None})]
    async with canned([sse(error)]) as c:
        with pytest.raises(RunnerError) as info:
            await c.stream(body(True))
    assert info.value.kind == "bad_request" and not info.value.retryable
    assert str(info.value).endswith("error mid-stream: No. (code invalid_prompt)")


def sse(events: list[tuple[str, dict[str, Any]]]) -> bytes:
    return b"".join(
        f"event: {kind}\ndata: {json.dumps({'type': kind, **fields})}\n\n".encode()
        for kind, fields in events
    )


class Chunks(httpx2.AsyncByteStream):
    def __init__(self, chunks: Iterable[bytes]) -> None:
        self.chunks = list(chunks)

    async def __aiter__(self) -> Any:
        for chunk in self.chunks:
            yield chunk


def canned(chunks: list[bytes], holder: list[list[bytes]] | None = None) -> ResponsesClient:
    """A client whose every stream is `chunks` (or holder[0], when given)."""

    def handler(request: httpx2.Request) -> httpx2.Response:
        parts = holder[0] if holder is not None else chunks
        return httpx2.Response(
            200, headers={"content-type": "text/event-stream"}, stream=Chunks(parts)
        )

    return ResponsesClient(transport=httpx2.MockTransport(handler), environ={}, api_key="sk-x")


@pytest.mark.anyio
async def test_a_runaway_stream_past_max_output_tokens_is_cut() -> None:
    from runner.providers._stream import OVERRUN_CHARS_PER_TOKEN, OVERRUN_SLACK

    room = 16 * OVERRUN_CHARS_PER_TOKEN + OVERRUN_SLACK
    delta = sse([("response.output_text.delta", {"delta": "abcd" * 100})])
    opening = sse([("response.created", {"response": {"id": "r", "output": []}})])
    deltas: list[StreamDelta] = []
    async with canned([opening, delta * (room // 400 + 50)]) as c:
        with pytest.raises(ReplyTooLarge) as info:
            await c.stream(body(True, params={"max_output_tokens": 16}), on_delta=deltas.append)
    assert info.value.kind == "reply_too_large" and not info.value.retryable
    assert "far more than the request allowed (16 output tokens: max_output_tokens)" in str(
        info.value
    )
    assert room - 400 < sum(len(d.text) for d in deltas) <= room
    # Function call arguments count too.
    args = sse([("response.function_call_arguments.delta", {"delta": "x" * 400})])
    async with canned([opening, args * (room // 400 + 50)]) as c:
        with pytest.raises(ReplyTooLarge):
            await c.stream(body(True, params={"max_output_tokens": 16}))
    # Without a limit nothing is cut for its length (the size cap still holds).
    end = sse([("response.completed", {"response": {"id": "r", "status": "completed"}})])
    async with canned([opening, delta * (room // 400 + 50), end]) as c:
        done = await c.stream(body(True))
    assert len(done.text or "") == (room // 400 + 50) * 400


# --- every byte split ---------------------------------------------------------------------------


def splits(raw: bytes) -> Iterator[list[bytes]]:
    """The stream whole, a byte at a time, at 200 single split points, and at 20 random
    multi-way splits (seeded)."""
    yield [raw]
    yield [raw[i : i + 1] for i in range(len(raw))]
    rng = random.Random(len(raw))
    for i in sorted(rng.sample(range(1, len(raw)), min(200, len(raw) - 1))):
        yield [raw[:i], raw[i:]]
    for _ in range(20):
        cuts = sorted(rng.sample(range(1, len(raw)), 12))
        yield [raw[a:b] for a, b in zip([0, *cuts], [*cuts, len(raw)], strict=True)]


async def mock_stream_bytes(fault: str | None = None, **kw: Any) -> bytes:
    headers = {"X-Mock-Fault": fault} if fault else {}
    async with httpx2.AsyncClient(transport=ASGIStreamTransport(create_app())) as http:
        reply = await http.post("http://mock/v1/responses", json=body(True, **kw), headers=headers)
    assert reply.status_code == 200
    return reply.content


@pytest.mark.parametrize(
    "kw",
    [
        {},
        {"params": {"max_output_tokens": 16}},
        {"messages": [{"role": "user", "content": "[[refuse]] No."}]},
        {
            "tools": [{"type": "function", "function": {"name": "now", "parameters": {}}}],
            "tool_choice": "required",
        },
    ],
    ids=["text", "incomplete", "refusal", "tool"],
)
@pytest.mark.anyio
async def test_a_mock_stream_decodes_the_same_at_every_split(kw: dict[str, Any]) -> None:
    raw = await mock_stream_bytes(**kw)
    holder: list[list[bytes]] = [[raw]]
    async with canned([], holder) as c:
        first_deltas: list[StreamDelta] = []
        first = await c.stream(body(True, **kw), on_delta=first_deltas.append)
        for chunks in splits(raw):
            holder[0] = chunks
            deltas: list[StreamDelta] = []
            done = await c.stream(body(True, **kw), on_delta=deltas.append)
            assert (done.choices, done.usage, done.id) == (first.choices, first.usage, first.id)
            assert deltas == first_deltas


@pytest.mark.parametrize("fault", ["truncate", "malformed", "error_event", "response_failed"])
@pytest.mark.anyio
async def test_a_broken_mock_stream_fails_the_same_at_every_split(fault: str) -> None:
    raw = await mock_stream_bytes(fault)
    holder: list[list[bytes]] = [[raw]]
    async with canned([], holder) as c:
        with pytest.raises(StreamBroken) as first:
            await c.stream(body(True))
        for chunks in splits(raw):
            holder[0] = chunks
            with pytest.raises(StreamBroken) as info:
                await c.stream(body(True))
            assert str(info.value) == str(first.value)


# --- on loopback --------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def mock_url() -> Iterator[str]:
    """`runner mock-server` on a free loopback port, in a thread."""
    ready, stop = threading.Event(), threading.Event()
    port: list[int] = []

    def on_ready(actual: int) -> None:
        port.append(actual)
        ready.set()

    thread = threading.Thread(
        target=serve,
        kwargs={"port": 0, "ready": on_ready, "stop": stop, "faults": Faults(seed=3)},
        daemon=True,
    )
    thread.start()
    assert ready.wait(30), "the mock server did not start"
    yield f"http://127.0.0.1:{port[0]}/v1"
    stop.set()
    thread.join(10)


@pytest.mark.anyio
async def test_stream_over_loopback(mock_url: str) -> None:
    async with ResponsesClient(base_url=mock_url, api_key="sk-test", environ={}) as c:
        plain, streamed, deltas = await both(c)
        check_agree(plain, streamed, deltas)
        cut_plain, cut, cut_deltas = await both(c, params={"max_output_tokens": 16})
        check_agree(cut_plain, cut, cut_deltas)
        assert cut.choices[0].finish_reason == "length"
    for fault, words in (
        ("response_failed", "the response failed"),
        ("error_event", "error mid-stream"),
        ("truncate", "ended early"),
        ("malformed", "data is not JSON"),
    ):
        async with ResponsesClient(
            base_url=mock_url, api_key="sk-test", environ={}, headers={"X-Mock-Fault": fault}
        ) as c:
            with pytest.raises(StreamBroken, match=words):
                await c.stream(body(True))
