"""Fixtures of the probe tests: runner's mock server on loopback in three configurations (as
`runner mock-server`, `--no-json-schema` and `--no-responses` start it), a server that only
counts the requests it gets, and an in-process mock behind a transport that counts requests
by method (and can add rate-limit headers to every reply)."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx2
import pytest
from click.testing import CliRunner, Result

from runner.cli import cli
from runner.mock import Faults, create_app, serve
from runner.providers import ASGIStreamTransport


def _serve(**kwargs: Any) -> Iterator[str]:
    ready = threading.Event()
    stop = threading.Event()
    port: list[int] = []

    def on_ready(actual: int) -> None:
        port.append(actual)
        ready.set()

    thread = threading.Thread(
        target=serve, kwargs={"port": 0, "ready": on_ready, "stop": stop, **kwargs}, daemon=True
    )
    thread.start()
    assert ready.wait(30), "the mock server did not start"
    yield f"http://127.0.0.1:{port[0]}/v1"
    stop.set()
    thread.join(10)


@pytest.fixture(scope="module")
def mock_url() -> Iterator[str]:
    """`runner mock-server`: everything enforced and honoured."""
    yield from _serve()


@pytest.fixture(scope="module")
def no_schema_url() -> Iterator[str]:
    """`runner mock-server --no-json-schema`: json_schema refused with a 400."""
    yield from _serve(faults=Faults(no_json_schema=True))


@pytest.fixture(scope="module")
def no_responses_url() -> Iterator[str]:
    """`runner mock-server --no-responses`: no POST /v1/responses."""
    yield from _serve(responses=False)


@pytest.fixture
def start_mock() -> Iterator[Callable[..., str]]:
    """Start a mock server of one's own (serve's keywords: faults, api_key...); each is
    stopped at the end of the test."""
    running: list[Iterator[str]] = []

    def start(**kwargs: Any) -> str:
        server = _serve(**kwargs)
        running.append(server)
        return next(server)

    yield start
    for server in running:
        next(server, None)


class _Counter(BaseHTTPRequestHandler):
    seen: list[str]

    def _count(self) -> None:
        self.seen.append(f"{self.command} {self.path}")
        body = json.dumps({"error": {"message": "counted", "type": "test"}}).encode()
        self.send_response(500)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    do_GET = do_POST = _count  # noqa: N815 - the stdlib's names

    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture
def counting_url() -> Iterator[tuple[str, list[str]]]:
    """A server on loopback that records every request it gets (and fails it)."""
    seen: list[str] = []
    handler = type("Counter", (_Counter,), {"seen": seen})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/v1", seen
    server.shutdown()
    server.server_close()


class CountingTransport(httpx2.AsyncBaseTransport):
    """The in-process mock app, each request counted ("GET /v1/models"), each reply given
    `extra_headers`."""

    def __init__(self, extra_headers: dict[str, str] | None = None, **app: Any) -> None:
        self.inner = ASGIStreamTransport(create_app(**app))
        self.seen: list[str] = []
        self.extra = extra_headers or {}

    async def handle_async_request(self, request: httpx2.Request) -> httpx2.Response:
        self.seen.append(f"{request.method} {request.url.path}")
        response = await self.inner.handle_async_request(request)
        response.headers.update(self.extra)
        return response


@pytest.fixture
def counting_transport() -> Callable[..., CountingTransport]:
    return CountingTransport


def run(*args: str, env: dict[str, str] | None = None) -> Result:
    return CliRunner().invoke(cli, ["probe", *args], env=env or {})


def lines(path: Path) -> list[dict[str, Any]]:
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


@pytest.fixture
def probe() -> Callable[..., Result]:
    """`runner probe ARGS` through click's runner."""
    return run


@pytest.fixture
def ledger_lines() -> Callable[[Path], list[dict[str, Any]]]:
    return lines
