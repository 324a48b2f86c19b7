"""The built-in OpenAI-compatible server: the Starlette app (routes, API key, per-app attempt
counters and answer cache, fault rolls applied to replies; the Files and Batches routes, whose
handlers live in mock.files and mock.batches), in-process for `--mock` or served on loopback by
uvicorn. It owns starlette and uvicorn; one handler serves chat completions and responses,
leaving each wire format to mock.wires and faults to mock.faults. It must import nothing of
runner but errors, tokens and the mock modules.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import socket
import threading
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Sequence
from typing import TYPE_CHECKING, Any

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from runner.errors import HTTPStatusFailure
from runner.mock.batches import (
    BatchFaults,
    BatchStore,
    cancel_batch,
    create_batch,
    list_batches,
    retrieve_batch,
)
from runner.mock.faults import (
    FAULT_HEADER,
    Decision,
    Faults,
    decide,
    fault_error,
    parse_fault_header,
)
from runner.mock.files import FileStore, file_content, list_files, retrieve_file, upload
from runner.mock.reply import dumps
from runner.mock.request import api_error, digest
from runner.mock.transport import (
    DROP_MESSAGE,
    Reply,
    authorize,
    error_reply,
    read_body,
    reply_headers,
)
from runner.mock.wires import CHAT, RESPONSES, Wire

if TYPE_CHECKING:
    pass

__all__ = ["DEFAULT_MODELS", "create_app", "serve"]

DEFAULT_MODELS = ("gpt-4o-mini", "gpt-4o", "gpt-4.1", "gpt-4.1-mini", "gpt-4.1-nano", "o3-mini")
_CACHE_SIZE = 4096  # answers and attempt counters kept per app, least recently used first out


# --- the app ----------------------------------------------------------------------------------


class _State:
    """Per-app memory: attempt counters (for fail_first and fault dice) and cached answers."""

    def __init__(
        self,
        faults: Faults,
        api_key: str | None,
        models: Sequence[str],
        sleep: Callable[[float], Awaitable[Any]],
    ) -> None:
        self.faults = faults
        self.sleep = sleep
        self.api_key = api_key
        self.models = tuple(models)
        self.attempts: OrderedDict[str, int] = OrderedDict()
        self.answers: OrderedDict[tuple[str, str, int, bool], Any] = OrderedDict()

    def next_attempt(self, key: str) -> int:
        count = self.attempts.pop(key, 0) + 1
        self.attempts[key] = count
        if len(self.attempts) > _CACHE_SIZE:
            self.attempts.popitem(last=False)
        return count

    async def answer(self, wire: Wire, asked: Any, seed: int, invalid: bool) -> Any:
        # Safe to cache: the answer is a pure function of the request, the seed and the flag.
        # Built in a worker thread: a slow answer must not hold up other clients.
        key = (wire.path, wire.ask(asked).key, seed, invalid)
        found = self.answers.pop(key, None)
        if found is None:
            found = await asyncio.to_thread(wire.build, asked, seed, invalid)
        self.answers[key] = found
        if len(self.answers) > _CACHE_SIZE:
            self.answers.popitem(last=False)
        return found


def _answering(wire: Wire) -> Callable[[Request], Awaitable[Response]]:
    """The handler of an answering endpoint (chat completions, responses): API key, parsing,
    faults, answer, then the body or the stream, broken as the fault dice say."""

    async def endpoint(request: Request) -> Response:
        started = time.perf_counter()
        state: _State = request.app.state.mock
        try:
            raw = await read_body(request)
        except HTTPStatusFailure as err:
            return error_reply(err, f"req_{digest('large', time.time_ns())[:32]}", started)
        request_id = f"req_{hashlib.sha256(raw).hexdigest()[:32]}"
        try:
            authorize(state.api_key, request)
            # Parsing and every answer run in worker threads: the event loop stays free for
            # other clients whatever one request asks for (each is bounded: runner.mock.generate).
            faults = state.faults
            header = request.headers.get(FAULT_HEADER)
            if header is not None:
                try:
                    faults = parse_fault_header(header, faults)
                except ValueError as exc:
                    raise api_error(400, str(exc), code="invalid_mock_fault") from None
            asked = await asyncio.to_thread(
                wire.parse, raw, ignore_format=faults.ignore_json_schema
            )
            ask = wire.ask(asked)
            if faults.no_json_schema:
                wire.refuse_json_schema(asked)
            attempt = state.next_attempt(f"{ask.key}:{header or ''}")
            request_id = f"req_{digest(ask.key, header, faults.seed, attempt)[:32]}"
            decision = decide(faults, ask.key, attempt)
            if faults.latency:
                await state.sleep(faults.latency)
            if decision.status is not None:
                raise fault_error(decision.status, faults, ask.model)
            answer = await state.answer(wire, asked, faults.seed, decision.invalid_output)
        except HTTPStatusFailure as err:
            return error_reply(err, request_id, started)
        created = int(time.time())
        if ask.stream:
            return await asyncio.to_thread(
                _stream_reply,
                wire,
                answer,
                asked,
                decision,
                created,
                faults.seed,
                request_id,
                started,
            )
        body = await asyncio.to_thread(wire.body, answer, asked, created, decision)
        headers = reply_headers(request_id, "application/json", started)
        headers["content-length"] = str(len(body))
        if decision.drop:  # announce the whole body, send half of it
            return Reply(200, [body[: len(body) // 2]], headers, abort=True)
        if decision.truncate:  # a clean HTTP reply whose JSON stops half way
            body = body[: len(body) // 2]
        elif decision.malformed:
            body = b"{not json"
        headers["content-length"] = str(len(body))
        return Reply(200, [body], headers)

    return endpoint


def _stream_reply(
    wire: Wire,
    answer: Any,
    asked: Any,
    decision: Decision,
    created: int,
    seed: int,
    request_id: str,
    started: float,
) -> Reply:
    frames, before_finish = wire.frames(answer, asked, created, seed, decision)
    rng = decision.rng
    if decision.drop or decision.truncate:
        # Keep at least the opening frame and never reach a finishing one.
        before_finish = rng.randint(1, before_finish)
        frames = frames[:before_finish]
    if decision.malformed:
        frames.insert(rng.randint(1, before_finish), wire.garbage)
    headers = reply_headers(request_id, "text/event-stream; charset=utf-8", started)
    headers["cache-control"] = "no-cache"
    return Reply(200, frames, headers, abort=decision.drop)


def _model_object(model: str) -> dict[str, Any]:
    return {"id": model, "object": "model", "created": 1_700_000_000, "owned_by": "runner-mock"}


async def _models(request: Request) -> Response:
    started = time.perf_counter()
    state: _State = request.app.state.mock
    request_id = f"req_{digest('models', time.time_ns())[:32]}"
    try:
        authorize(state.api_key, request)
        model = request.path_params.get("model")
        if model is None:
            payload: Any = {"object": "list", "data": [_model_object(m) for m in state.models]}
        elif model in state.models:
            payload = _model_object(model)
        else:
            raise api_error(
                404,
                f"The model '{model}' does not exist or you do not have access to it.",
                param="model",
                code="model_not_found",
            )
    except HTTPStatusFailure as err:
        return error_reply(err, request_id, started)
    body = dumps(payload)
    headers = reply_headers(request_id, "application/json", started)
    headers["content-length"] = str(len(body))
    return Reply(200, [body], headers)


def _api(handler: Callable[[Request], Awaitable[dict[str, Any] | bytes]]) -> Any:
    """A Files or Batches endpoint (runner.mock.files, runner.mock.batches) behind the API key
    check, with OpenAI's error body and headers: a dict is sent as JSON, bytes as a file."""

    async def endpoint(request: Request) -> Response:
        started = time.perf_counter()
        request_id = f"req_{digest(request.url.path, time.time_ns())[:32]}"
        try:
            authorize(request.app.state.mock.api_key, request)
            payload = await handler(request)
        except HTTPStatusFailure as err:
            return error_reply(err, request_id, started)
        if isinstance(payload, bytes):
            body, content_type = payload, "application/octet-stream"
        else:
            body, content_type = dumps(payload), "application/json"
        headers = reply_headers(request_id, content_type, started)
        headers["content-length"] = str(len(body))
        return Reply(200, [body], headers)

    return endpoint


_BATCH_ROUTES = [
    Route("/v1/files", _api(upload), methods=["POST"]),
    Route("/v1/files", _api(list_files), methods=["GET"]),
    Route("/v1/files/{file_id}", _api(retrieve_file), methods=["GET"]),
    Route("/v1/files/{file_id}/content", _api(file_content), methods=["GET"]),
    Route("/v1/batches", _api(create_batch), methods=["POST"]),
    Route("/v1/batches", _api(list_batches), methods=["GET"]),
    Route("/v1/batches/{batch_id}", _api(retrieve_batch), methods=["GET"]),
    Route("/v1/batches/{batch_id}/cancel", _api(cancel_batch), methods=["POST"]),
]


async def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    where = f"({request.method} {request.url.path})"
    if exc.status_code == 405:
        err = api_error(405, f"Invalid method for URL {where}", headers=exc.headers)
    else:
        err = api_error(exc.status_code, f"Invalid URL {where}")
    return error_reply(err, f"req_{digest(where, time.time_ns())[:32]}", time.perf_counter())


async def _crash(request: Request, exc: Exception) -> Response:
    err = api_error(
        500,
        "The server had an error while processing your request. Sorry about that!",
        type="server_error",
    )
    return error_reply(err, f"req_{digest('crash', time.time_ns())[:32]}", time.perf_counter())


def create_app(
    faults: Faults | None = None,
    *,
    api_key: str | None = None,
    models: Sequence[str] = DEFAULT_MODELS,
    sleep: Callable[[float], Awaitable[Any]] = asyncio.sleep,
    batch_delay: float = 0.0,
    batch_api: bool = True,
    responses: bool = True,
) -> Starlette:
    """Return the mock server's ASGI app. With `api_key`, requests must carry that bearer key;
    `models` is what GET /v1/models lists; `sleep` waits out Faults.latency (tests inject one).
    The Files and Batches endpoints answer unless `batch_api` is False; a batch ends
    `batch_delay` seconds after it was created. Without `responses`, POST /v1/responses is a
    404, as on a server that has only Chat Completions (and batches refuse that endpoint)."""
    app = Starlette(
        routes=[
            Route(CHAT.path, _answering(CHAT), methods=["POST"]),
            *(
                [Route(RESPONSES.path, _answering(RESPONSES), methods=["POST"])]
                if responses
                else []
            ),
            Route("/v1/models", _models, methods=["GET"]),
            Route("/v1/models/{model:path}", _models, methods=["GET"]),
            *(_BATCH_ROUTES if batch_api else []),
        ],
        exception_handlers={HTTPException: _http_error, Exception: _crash},
    )
    app.state.mock = _State(faults or Faults(), api_key, models, sleep)
    app.state.files = FileStore()
    endpoints = (CHAT.path, RESPONSES.path) if responses else (CHAT.path,)
    app.state.batches = BatchStore(
        app.state.files, faults or Faults(), BatchFaults(batch_delay), endpoints
    )
    return app


# --- serving on a port ------------------------------------------------------------------------


class _QuietDrops(logging.Filter):
    """Keeps uvicorn from logging a traceback for each connection dropped on purpose."""

    def filter(self, record: logging.LogRecord) -> bool:
        exc = record.exc_info[1] if record.exc_info else None
        return not (isinstance(exc, ConnectionResetError) and str(exc) == DROP_MESSAGE)


_QUIET_DROPS = _QuietDrops()


def _bind(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    # IPPROTO_TCP explicitly: asyncio sets TCP_NODELAY only on sockets that say so, and without
    # it Nagle's algorithm and delayed ACKs add 40 ms to every reply on a kept-alive connection.
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
        sock.listen(2048)
    except BaseException:  # OSError (in use), OverflowError (port > 65535), Ctrl-C...
        sock.close()
        raise
    return sock


def serve(
    *,
    host: str = "127.0.0.1",
    port: int = 0,
    faults: Faults | None = None,
    api_key: str | None = None,
    log_level: str = "warning",
    ready: Callable[[int], None] | None = None,
    stop: threading.Event | None = None,
    batch_delay: float = 0.0,
    batch_api: bool = True,
    responses: bool = True,
) -> None:
    """Serve the mock app with uvicorn until Ctrl-C (or until `stop` is set); blocking.

    `port=0` picks a free port. `ready(port)` is called once the socket is listening, before
    the first request is accepted. OSError when the address cannot be bound.
    """
    import uvicorn

    from runner import tokens

    tokens.encoding_for(DEFAULT_MODELS[0])  # load the tokenizer now, not on the first request
    sock = _bind(host, port)
    try:
        config = uvicorn.Config(
            create_app(
                faults,
                api_key=api_key,
                batch_delay=batch_delay,
                batch_api=batch_api,
                responses=responses,
            ),
            log_level=log_level,
            lifespan="off",
            http="h11",
            ws="none",
        )
        server = uvicorn.Server(config)
        logging.getLogger("uvicorn.error").addFilter(_QUIET_DROPS)
        if stop is not None:
            threading.Thread(target=_stop_when_set, args=(stop, server), daemon=True).start()
        if ready is not None:
            ready(sock.getsockname()[1])
        server.run(sockets=[sock])
    finally:
        sock.close()


def _stop_when_set(stop: threading.Event, server: Any) -> None:
    stop.wait()
    server.should_exit = True
