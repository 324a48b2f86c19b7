"""Several httpx2 connection pools that share one connection limit.

httpcore looks at every connection of a pool on each request (is it idle, has it expired: a
socket poll each), so the CPU a request costs grows with the pool's size: at 64 connections that
scan is a third of a request's CPU. Pools of a few connections each, every request going to the
one with the most free connections, keep the scan short and the total limit the same.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator

import httpx2

__all__ = ["Pools"]

# Connections per pool that the split aims at, and the most pools there are.
PER_POOL = 8
MAX_POOLS = 8


class Pools:
    """`max_connections` split over up to MAX_POOLS clients made by `make(size)` (one client
    when not `split`: a transport given by the caller does its own pooling)."""

    def __init__(
        self, make: Callable[[int], httpx2.AsyncClient], max_connections: int, *, split: bool
    ) -> None:
        count = max(1, min(MAX_POOLS, max_connections // PER_POOL)) if split else 1
        base, extra = divmod(max_connections, count)
        self.sizes = [base + (1 if i < extra else 0) for i in range(count)]
        self.clients = [make(size) for size in self.sizes]
        self.busy = [0] * count

    @property
    def first(self) -> httpx2.AsyncClient:
        return self.clients[0]

    @contextlib.contextmanager
    def lease(self) -> Iterator[httpx2.AsyncClient]:
        """The client with the most free connections, counted busy until the block ends."""
        busy, sizes = self.busy, self.sizes
        index = 0
        if len(busy) > 1:
            index = max(range(len(busy)), key=lambda i: sizes[i] - busy[i])
        busy[index] += 1
        try:
            yield self.clients[index]
        finally:
            busy[index] -= 1

    async def aclose(self) -> None:
        for client in self.clients:
            await client.aclose()
