"""Shared by the hostile tests of secrets, server modes and what a user sees: a scripted HTTP
server on loopback (a thread), a CLI runner that captures stdout and stderr apart, and the
checks every hostile case makes. Not a test module (pytest does not collect it)."""

from __future__ import annotations

import json
import signal
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from click.testing import CliRunner, Result

from runner.cli import cli

# (status, headers, body) for one request, given (path, request headers, parsed JSON body).
Script = Callable[[str, dict[str, str], Any], tuple[int, dict[str, str], bytes]]


class Seen:
    """What the server received: one (path, headers, body) per request."""

    def __init__(self) -> None:
        self.requests: list[tuple[str, dict[str, str], Any]] = []


@contextmanager
def scripted_server(script: Script) -> Iterator[tuple[str, Seen]]:
    """A loopback HTTP server answering each request with `script`; yields (base_url, seen)."""
    seen = Seen()

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: Any) -> None:  # quiet
            pass

        def _answer(self) -> None:
            length = int(self.headers.get("content-length") or 0)
            raw = self.rfile.read(length) if length else b""
            try:
                body = json.loads(raw) if raw else None
            except ValueError:
                body = raw
            headers = {k.lower(): v for k, v in self.headers.items()}
            seen.requests.append((self.path, headers, body))
            status, reply_headers, content = script(self.path, headers, body)
            self.send_response(status)
            for name, value in reply_headers.items():
                self.send_header(name, value)
            self.send_header("content-length", str(len(content)))
            self.end_headers()
            self.wfile.write(content)

        do_POST = _answer
        do_GET = _answer

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/v1", seen
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


def completion(content: str | None, **extra: Any) -> bytes:
    """A Chat Completions reply with one choice."""
    message: dict[str, Any] = {"role": "assistant", "content": content}
    message.update(extra.pop("message", {}))
    reply = {
        "id": "chatcmpl-1",
        "object": "chat.completion",
        "created": 0,
        "model": extra.pop("model", "gpt-4o-mini"),
        "choices": [
            {"index": 0, "message": message, "finish_reason": extra.pop("finish_reason", "stop")}
        ],
        "usage": {"prompt_tokens": 10, "completion_tokens": 5, "total_tokens": 15},
    }
    return json.dumps(reply).encode()


JSON = {"content-type": "application/json"}


def run_cli(*args: str, env: dict[str, str] | None = None) -> Result:
    """Run the CLI in-process with stdout and stderr captured apart."""
    return CliRunner().invoke(cli, list(args), env=env or {}, catch_exceptions=False)


def ledger_lines(path: Path) -> list[dict[str, Any]]:
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def assert_clean(
    result: Result, secrets: list[str], *extra_texts: str, debug: bool = False
) -> None:
    """No traceback (unless --debug asked for one) and no secret in stdout, stderr or any
    other text given."""
    texts = [result.stdout, result.stderr, *extra_texts]
    for text in texts:
        assert debug or "Traceback" not in text, text
        for secret in secrets:
            assert secret not in text, f"secret {secret!r} leaked in: {text[:2000]}"


class CaseTimedOut(BaseException):
    """Not an OSError (as TimeoutError is) nor an Exception: no handler in runner swallows it."""


@contextmanager
def time_limit(seconds: int) -> Iterator[None]:
    """Fail the case (instead of hanging the suite) if it runs longer than `seconds`."""

    def expire(signum: int, frame: Any) -> None:
        raise CaseTimedOut(f"the case ran longer than {seconds} s")

    previous = signal.signal(signal.SIGALRM, expire)
    signal.alarm(seconds)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)
