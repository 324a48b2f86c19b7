"""Synchronous clients: a wire's async client run on a private event loop in a background thread,
so there is one request code path. `SyncChatClient` takes exactly ChatClient's arguments (it
passes them on untouched, so the two cannot drift apart). It adds no request logic of its own.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Coroutine, Mapping
from typing import Any, TypeVar

from runner.providers._stream import OnDelta
from runner.providers.client import ChatClient, ModelClient, ResponsesClient
from runner.types import Completion

__all__ = ["SyncChatClient", "SyncModelClient", "SyncResponsesClient"]

T = TypeVar("T")


class SyncModelClient:
    """A ModelClient for synchronous callers: the async client runs on a private event loop in
    a background thread. `on_delta` runs in that thread."""

    def __init__(self, client: ModelClient) -> None:
        self._client = client  # built first, so a configuration error leaves no thread behind
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(
            target=self._loop.run_forever, name="runner-client", daemon=True
        )
        self._thread.start()
        self._closed = False

    def __repr__(self) -> str:
        return f"Sync{self._client!r}"

    def __enter__(self) -> SyncModelClient:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def _run(self, coro: Coroutine[Any, Any, T]) -> T:
        if self._closed:
            coro.close()
            raise RuntimeError(f"this {type(self).__name__} is closed")
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


class SyncChatClient(SyncModelClient):
    """ChatClient for synchronous callers; takes ChatClient's arguments."""

    def __init__(self, **http: Any) -> None:
        super().__init__(ChatClient(**http))


class SyncResponsesClient(SyncModelClient):
    """ResponsesClient for synchronous callers; takes ResponsesClient's arguments."""

    def __init__(self, **http: Any) -> None:
        super().__init__(ResponsesClient(**http))
