"""Fuzzing the stream decoder: a captured SSE stream cut at a random byte and split into random
chunks decodes to the same answer as the whole stream, or fails cleanly as StreamBroken (or
another RunnerError) — never another exception, never a made-up answer."""

from __future__ import annotations

import asyncio

from _client_helpers import SSE, body, mock_client, sse_reply
from hypothesis import given, settings
from hypothesis import strategies as st

from runner.errors import RunnerError
from runner.types import Completion

STREAMS = ["text.sse", "tool_calls.sse", "n2.sse", "refusal.sse", "function_call.sse"]


def _decode(data: bytes, splits: list[int]) -> Completion | RunnerError:
    cuts = sorted({s % (len(data) + 1) for s in splits})
    chunks = [data[a:b] for a, b in zip([0, *cuts], [*cuts, len(data)], strict=True) if b > a]
    client, _ = mock_client(lambda request: sse_reply(chunks), api_key="sk-x")

    async def go() -> Completion:
        try:
            return await client.stream(body(stream=True))
        finally:
            await client.aclose()

    try:
        return asyncio.run(go())
    except RunnerError as exc:
        return exc


def _answer(completion: Completion) -> list[tuple[object, ...]]:
    return [(c.index, c.text, c.finish_reason, c.refusal, c.tool_calls) for c in completion.choices]


@settings(max_examples=120, deadline=None)
@given(
    name=st.sampled_from(STREAMS),
    cut=st.integers(min_value=0),
    splits=st.lists(st.integers(min_value=0), max_size=6),
)
def test_a_cut_stream_is_the_whole_answer_or_a_clean_error(
    name: str, cut: int, splits: list[int]
) -> None:
    whole = (SSE / name).read_bytes()
    expected = _decode(whole, [])
    assert isinstance(expected, Completion)
    cut_data = whole[: cut % (len(whole) + 1)]
    got = _decode(cut_data, splits)
    if isinstance(got, Completion):
        # A stream cut after every choice finished is the whole answer (servers that never send
        # [DONE] end that way); its usage chunk may be what was cut, and then usage is missing
        # (None, recorded as missing by the engine), never wrong.
        assert _answer(got) == _answer(expected)
        assert got.usage in (expected.usage, None)
    else:
        assert isinstance(got, RunnerError)
