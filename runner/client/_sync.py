"""SyncChatClient: ChatClient for synchronous callers, run on a private event loop in a background
thread so there is one request code path. It adds no request logic of its own.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Coroutine, Mapping
from typing import Any, TypeVar

import httpx2

from runner.client._client import ChatClient
from runner.client._stream import OnDelta
from runner.types import Completion

__all__ = ["SyncChatClient"]

T = TypeVar("T")


class SyncChatClient:
    """ChatClient for synchronous callers: the async client runs on a private event loop in a
    background thread, so there is one request code path. `on_delta` runs in that thread."""

    def __init__(
        self,
        *,
        base_url: str | None = None,
        api_key: str | None = None,
        organization: str | None = None,
        project: str | None = None,
        headers: Mapping[str, str] | None = None,
        timeout: float = 120.0,
        connect_timeout: float = 10.0,
        max_connections: int = 100,
        transport: httpx2.AsyncBaseTransport | None = None,
        asgi_app: Any | None = None,
        environ: Mapping[str, str] | None = None,
    ) -> None:
        # Built first, so a configuration error leaves no thread behind.
        self._client = ChatClient(
            base_url=base_url,
            api_key=api_key,
            organization=organization,
            project=project,
            headers=headers,
            timeout=timeout,
            connect_timeout=connect_timeout,
            max_connections=max_connections,
            transport=transport,
            asgi_app=asgi_app,
            environ=environ,
        )
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(
            target=self._loop.run_forever, name="runner-client", daemon=True
        )
        self._thread.start()
        self._closed = False

    def __repr__(self) -> str:
        return f"Sync{self._client!r}"

    def __enter__(self) -> SyncChatClient:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def _run(self, coro: Coroutine[Any, Any, T]) -> T:
        if self._closed:
            coro.close()
            raise RuntimeError("this SyncChatClient is closed")
        future = asyncio.run_coroutine_threadsafe(coro, self._loop)
        try:
            return future.result()
        except BaseException:
            future.cancel()  # e.g. KeyboardInterrupt: cancel the request in the loop too
            raise

    def complete(self, body: Mapping[str, Any], *, timeout: float | None = None) -> Completion:
        """Send a non-streaming request and return the whole completion."""
        return self._run(self._client.complete(body, timeout=timeout))

    def stream(
        self,
        body: Mapping[str, Any],
        *,
        timeout: float | None = None,
        on_delta: OnDelta | None = None,
    ) -> Completion:
        """Send a streaming request; `on_delta` is called from the client's thread."""
        return self._run(self._client.stream(body, timeout=timeout, on_delta=on_delta))

    def list_models(self) -> list[str]:
        """Return the ids of the models the server offers, sorted."""
        return self._run(self._client.list_models())

    def close(self) -> None:
        """Close the connection pool and stop the background loop."""
        if self._closed:
            return
        try:
            self._run(self._client.aclose())
        finally:
            self._closed = True
            self._stop()

    def _stop(self) -> None:
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join()
        self._loop.close()
