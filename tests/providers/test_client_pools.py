"""The connection limit split over several pools: the total holds, every pool is used, and a
request goes to the pool with the most free connections."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import httpx2
import pytest

from runner.providers import ChatClient
from runner.providers._pools import MAX_POOLS, Pools

REPLY = json.dumps(
    {
        "id": "chatcmpl-1",
        "object": "chat.completion",
        "created": 1,
        "model": "gpt-4o-mini",
        "choices": [
            {
                "index": 0,
                "finish_reason": "stop",
                "message": {"role": "assistant", "content": "hi"},
            }
        ],
        "usage": {"prompt_tokens": 8, "completion_tokens": 1, "total_tokens": 9},
    }
).encode()


class _CountingServer:
    """A keep-alive HTTP/1.1 server on loopback that answers every POST after `delay` seconds
    and counts the connections open at once."""

    def __init__(self, delay: float) -> None:
        self.delay = delay
        self.open = 0
        self.peak = 0
        self.connections = 0

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.open += 1
        self.connections += 1
        self.peak = max(self.peak, self.open)
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                length = 0
                for line in head.split(b"\r\n"):
                    if line.lower().startswith(b"content-length:"):
                        length = int(line.split(b":", 1)[1])
                await reader.readexactly(length)
                await asyncio.sleep(self.delay)
                writer.write(
                    b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                    + f"Content-Length: {len(REPLY)}\r\n\r\n".encode()
                    + REPLY
                )
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            self.open -= 1
            writer.close()


BODY: dict[str, Any] = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}]}


@pytest.mark.parametrize("limit", [1, 5, 16, 100])
def test_the_split_keeps_the_total(limit: int) -> None:
    made: list[int] = []

    def make(size: int) -> httpx2.AsyncClient:
        made.append(size)
        return httpx2.AsyncClient()

    pools = Pools(make, limit, split=True)
    assert pools.sizes == made
    assert sum(made) == limit
    assert 1 <= len(made) <= MAX_POOLS
    assert max(made) - min(made) <= 1
    assert Pools(make, limit, split=False).sizes == [limit]  # a caller's transport: one client


def test_a_request_goes_to_the_pool_with_most_free_connections() -> None:
    pools = Pools(lambda size: httpx2.AsyncClient(), 24, split=True)
    assert pools.sizes == [8, 8, 8]
    with pools.lease() as first, pools.lease() as second, pools.lease() as third:
        assert len({id(first), id(second), id(third)}) == 3  # one in each pool
        with pools.lease() as fourth:
            assert fourth in (first, second, third)
            assert sorted(pools.busy) == [1, 1, 2]
    assert pools.busy == [0, 0, 0]  # released, also after the block


@pytest.mark.anyio
async def test_a_client_split_over_pools_opens_at_most_its_limit() -> None:
    server = _CountingServer(delay=0.05)
    listener = await asyncio.start_server(server.handle, "127.0.0.1", 0)
    port = listener.sockets[0].getsockname()[1]
    try:
        async with ChatClient(
            base_url=f"http://127.0.0.1:{port}/v1", api_key="sk-test", max_connections=16
        ) as client:
            replies = await asyncio.gather(*(client.complete(BODY) for _ in range(40)))
    finally:
        listener.close()
        await listener.wait_closed()
    assert [r.choices[0].text for r in replies] == ["hi"] * 40
    assert server.peak == 16  # two pools of 8, both full: never more than the limit
    assert server.connections == 16  # kept alive and reused, not reopened
