"""An httpx2 transport that serves requests from an ASGI app in-process and streams the reply
body chunk by chunk. It knows nothing about Chat Completions and must not translate errors
(the client does that, as for any other transport).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from typing import Any

import httpx2

__all__ = ["ASGIStreamTransport"]

_END = object()
_Receive = Callable[[], Awaitable[dict[str, Any]]]
_Send = Callable[[Mapping[str, Any]], Awaitable[None]]


class _QueueStream(httpx2.AsyncByteStream):
    def __init__(self, queue: asyncio.Queue[Any], task: asyncio.Task[None], gone: asyncio.Event):
        self._queue, self._task, self._gone = queue, task, gone

    async def __aiter__(self) -> AsyncIterator[bytes]:
        while True:
            item = await self._queue.get()
            if item is _END:
                return
            if isinstance(item, BaseException):
                raise item
            yield item

    async def aclose(self) -> None:
        self._gone.set()
        if not self._task.done():
            self._task.cancel()
            # wait() never raises the task's error; a cancellation of our own still propagates.
            await asyncio.wait({self._task})


class ASGIStreamTransport(httpx2.AsyncBaseTransport):
    """Serve requests from an ASGI app in-process, handing body chunks over as the app sends
    them (httpx2.ASGITransport buffers the whole reply, which would flatten a stream).

    An app that fails before starting its reply looks like a server that hung up
    (RemoteProtocolError); one that fails or stops mid-reply looks like a dropped connection
    (ReadError). The lifespan protocol is not run.
    """

    def __init__(self, app: Any) -> None:
        self.app = app

    async def handle_async_request(self, request: httpx2.Request) -> httpx2.Response:
        body = await request.aread()
        scope = {
            "type": "http",
            "asgi": {"version": "3.0"},
            "http_version": "1.1",
            "method": request.method,
            "headers": [(k.lower(), v) for k, v in request.headers.raw],
            "scheme": request.url.scheme,
            "path": request.url.path,
            "raw_path": request.url.raw_path.split(b"?")[0],
            "query_string": request.url.query,
            "server": (request.url.host, request.url.port),
            "client": ("127.0.0.1", 123),
            "root_path": "",
        }
        loop = asyncio.get_running_loop()
        started: asyncio.Future[tuple[int, list[tuple[bytes, bytes]]]] = loop.create_future()
        queue: asyncio.Queue[Any] = asyncio.Queue()
        gone = asyncio.Event()
        state = {"sent_request": False, "finished": False}

        async def receive() -> dict[str, Any]:
            if not state["sent_request"]:
                state["sent_request"] = True
                return {"type": "http.request", "body": body, "more_body": False}
            await gone.wait()
            return {"type": "http.disconnect"}

        async def send(message: Mapping[str, Any]) -> None:
            if message["type"] == "http.response.start" and not started.done():
                started.set_result((message["status"], list(message.get("headers", []))))
            elif message["type"] == "http.response.body" and not state["finished"]:
                if message.get("body"):
                    queue.put_nowait(bytes(message["body"]))
                if not message.get("more_body", False):
                    state["finished"] = True
                    queue.put_nowait(_END)

        def app_done(task: asyncio.Task[None]) -> None:
            error = None if task.cancelled() else task.exception()
            if not started.done():
                detail = f": the app raised {error!r}" if error else ""
                started.set_exception(
                    httpx2.RemoteProtocolError(f"Server disconnected without a response{detail}")
                )
            elif not state["finished"]:
                state["finished"] = True
                why = f"the app raised {error!r}" if error else "the app stopped"
                queue.put_nowait(httpx2.ReadError(f"{why} before the reply was complete"))

        task = asyncio.ensure_future(self.app(scope, receive, send))
        task.add_done_callback(app_done)
        try:
            status, headers = await started
        except BaseException:
            gone.set()
            task.cancel()
            raise
        return httpx2.Response(status, headers=headers, stream=_QueueStream(queue, task, gone))
