"""Helpers for the trust tests (every call that is sent gets its ledger line; no made-up
cost): a canned OpenAI-compatible server on loopback, a spec writer, the CLI run in-process
with the checks every hostile case makes. Not a test module."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from _ledger_schema import LINE_VALIDATOR
from click.testing import CliRunner

from runner.cli import cli
from runner.ledger.reading import read_records

ROOT = Path(__file__).resolve().parents[2]
FAKE_KEY = "sk-test-TRUSTFAKEKEY0123456789abcdefXYZ"


@dataclass
class Canned:
    """One reply: a status, a body (bytes, or a JSON value) and its content type."""

    body: Any
    status: int = 200
    content_type: str = "application/json"
    # Seconds to wait before sending the body; with `split`, the first `split` bytes go out
    # at once and the rest after the wait (a stream that stalls mid-answer).
    delay: float = 0.0
    split: int = 0
    headers: Mapping[str, str] = field(default_factory=dict)

    def raw(self) -> bytes:
        if isinstance(self.body, bytes):
            return self.body
        return json.dumps(self.body).encode()


@dataclass
class CannedServer:
    """A loopback server answering POST /v1/chat/completions with the next canned reply (the
    last one repeats); `requests` holds every request body it received."""

    replies: list[Canned]
    requests: list[dict[str, Any]] = field(default_factory=list)
    url: str = ""
    in_flight: threading.Event = field(default_factory=threading.Event)


@contextmanager
def canned_server(*replies: Canned) -> Iterator[CannedServer]:
    state = CannedServer(list(replies))

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802 - http.server's naming
            size = int(self.headers.get("content-length") or 0)
            state.requests.append(json.loads(self.rfile.read(size)))
            queue = state.replies
            reply = queue.pop(0) if len(queue) > 1 else queue[0]
            raw = reply.raw()
            self.send_response(reply.status)
            self.send_header("content-type", reply.content_type)
            self.send_header("content-length", str(len(raw)))
            self.send_header("x-request-id", f"req_{len(state.requests)}")
            for name, value in reply.headers.items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(raw[: reply.split])
            self.wfile.flush()
            state.in_flight.set()
            time.sleep(reply.delay)
            try:
                self.wfile.write(raw[reply.split :])
            except OSError:  # the client went away
                pass

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    state.url = f"http://127.0.0.1:{server.server_address[1]}/v1"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield state
    finally:
        server.shutdown()
        server.server_close()


def reply(
    content: str = "hello there",
    *,
    usage: Any = "default",
    finish: str = "stop",
    extra: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """A chat.completion body; `usage` replaces the usage object (None leaves it out)."""
    body: dict[str, Any] = {
        "id": "chatcmpl-trust",
        "object": "chat.completion",
        "model": "gpt-4o-mini-2024-07-18",
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": content},
                "finish_reason": finish,
            }
        ],
    }
    if usage == "default":
        usage = {"prompt_tokens": 12, "completion_tokens": 3, "total_tokens": 15}
    if usage is not None:
        body["usage"] = usage
    body.update(extra or {})
    return body


def sse(*chunks: Any, done: bool = True) -> Canned:
    """A streamed reply made of these chunks (dicts as JSON, strings as they are)."""
    parts = [f"data: {c if isinstance(c, str) else json.dumps(c)}\n\n" for c in chunks]
    if done:
        parts.append("data: [DONE]\n\n")
    return Canned("".join(parts).encode(), content_type="text/event-stream")


def chunk(text: str | None = None, *, finish: str | None = None, usage: Any = None) -> Any:
    out: dict[str, Any] = {"id": "c1", "object": "chat.completion.chunk", "model": "m"}
    if text is not None or finish is not None:
        delta = {} if text is None else {"content": text}
        out["choices"] = [{"index": 0, "delta": delta, "finish_reason": finish}]
    else:
        out["choices"] = []
    if usage is not None:
        out["usage"] = usage
    return out


def write_spec(folder: Path, extra: str = "", *, name: str = "trust") -> Path:
    """A text spec (no output schema) with a short timeout and no retries unless `extra` says."""
    text = (
        f"name: {name}\n"
        "model: gpt-4o-mini\n"
        "params: {temperature: 0, max_tokens: 50}\n"
        "messages:\n"
        '  - {role: user, content: "Say hi to {{ who }}."}\n'
        "timeout: 5s\n"
        "deadline: 20s\n"
        "retry: {attempts: 1}\n"
    )
    keys = {line.split(":", 1)[0] for line in extra.splitlines() if line.strip()}
    kept = [line for line in text.splitlines() if line.split(":", 1)[0] not in keys]
    path = folder / f"{name}.yaml"
    path.write_text("\n".join(kept) + "\n" + extra, encoding="utf-8")
    return path


@dataclass
class Outcome:
    code: int
    stdout: str
    stderr: str
    lines: list[dict[str, Any]]
    seconds: float


def run_cli(
    args: Sequence[str],
    ledger: Path,
    *,
    env: Mapping[str, str] | None = None,
    input: str | None = None,
) -> Outcome:
    """Run `runner ARGS --ledger LEDGER` in-process; read back and validate the ledger."""
    started = time.monotonic()
    result = CliRunner().invoke(
        cli, [*args, "--ledger", str(ledger)], env=dict(env or {}), input=input
    )
    seconds = time.monotonic() - started
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise AssertionError(f"an exception escaped: {result.exception!r}")
    found = list(read_records(ledger)) if ledger.is_file() else []
    for line in found:
        LINE_VALIDATOR.validate(line)
    return Outcome(result.exit_code, result.stdout, result.stderr, found, seconds)


def assert_clean(out: Outcome, *, code: int, lines: int, limit: float = 15.0) -> None:
    """What every hostile case checks: the exit code, no traceback, the number of ledger
    lines, no secret anywhere, and a bounded wall time."""
    shown = f"stdout={out.stdout!r} stderr={out.stderr!r}"
    assert out.code == code, shown
    assert "Traceback" not in out.stdout + out.stderr, shown
    assert len(out.lines) == lines, (out.lines, shown)
    everything = out.stdout + out.stderr + json.dumps(out.lines)
    assert FAKE_KEY not in everything
    assert FAKE_KEY[8:] not in everything
    assert out.seconds < limit


def server_env(server: CannedServer) -> dict[str, str]:
    return {"OPENAI_BASE_URL": server.url, "OPENAI_API_KEY": FAKE_KEY}
