"""Helpers for the batch trust tests: a scriptable Batch API (Files, Batches, chat completions)
on loopback that records where every request went and with which Authorization header, a
guard that fails loudly if anything but loopback is contacted, and the CLI run in a real
process. Not a test module."""

from __future__ import annotations

import json
import os
import re
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from runner.mock.files import parse_upload

ROOT = Path(__file__).resolve().parents[2]
FAKE_KEY = "sk-test-FAKEKEY0123456789abcdefXYZ"

# A result line of the output file, made from (custom_id, request body).
Answer = Callable[[str, dict[str, Any]], dict[str, Any]]


def chat_body(content: str, usage: Mapping[str, Any] | None = None) -> dict[str, Any]:
    return {
        "id": "chatcmpl-b",
        "object": "chat.completion",
        "created": 0,
        "model": "gpt-4o-mini-2024-07-18",
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": content},
                "finish_reason": "stop",
            }
        ],
        "usage": dict(usage or {"prompt_tokens": 12, "completion_tokens": 3, "total_tokens": 15}),
    }


def ok_line(custom_id: str, body: dict[str, Any] | None = None, **kw: Any) -> dict[str, Any]:
    return {
        "id": f"batch_req_{custom_id}",
        "custom_id": custom_id,
        "response": {
            "status_code": 200,
            "request_id": f"req_{custom_id}",
            "body": chat_body(f"hi {custom_id}", **kw) if body is None else body,
        },
        "error": None,
    }


def default_answer(custom_id: str, body: dict[str, Any]) -> dict[str, Any]:
    return ok_line(custom_id)


@dataclass
class Seen:
    method: str
    path: str
    host: str
    authorization: str


@dataclass
class FakeBatchAPI:
    """What the fake server holds: files, batches, and every request it saw. `answer` makes
    each output line; `output_lines` (set per test) replaces the output file's lines outright;
    `download_delay` slows every file download (so that concurrent collects overlap)."""

    url: str = ""
    files: dict[str, bytes] = field(default_factory=dict)
    batches: dict[str, dict[str, Any]] = field(default_factory=dict)
    seen: list[Seen] = field(default_factory=list)
    answer: Answer = default_answer
    output_lines: list[bytes] | None = None
    input_extra: list[bytes] = field(default_factory=list)
    download_delay: float = 0.0
    status: str = "completed"
    on_create: Callable[[dict[str, Any]], None] | None = None
    chat: Callable[[dict[str, Any]], bytes] = lambda body: json.dumps(chat_body("live")).encode()
    lock: threading.Lock = field(default_factory=threading.Lock)

    def paths(self, method: str | None = None) -> list[str]:
        return [s.path for s in self.seen if method is None or s.method == method]

    def uploads(self) -> int:
        return sum(1 for s in self.seen if s.method == "POST" and s.path.endswith("/files"))

    def creates(self) -> int:
        return sum(1 for s in self.seen if s.method == "POST" and s.path.endswith("/batches"))

    def _add_file(self, data: bytes) -> str:
        file_id = f"file-{len(self.files) + 1:04d}"
        self.files[file_id] = data
        return file_id

    def create(self, body: dict[str, Any]) -> dict[str, Any]:
        with self.lock:
            rows = [
                json.loads(line)
                for line in self.files[body["input_file_id"]].splitlines()
                if line.strip()
            ]
            batch_id = f"batch_{len(self.batches) + 1:04d}"
            if self.input_extra:  # the server's copy of the input holds more than was sent
                data = self.files[body["input_file_id"]] + b"".join(self.input_extra)
                input_id = self._add_file(data)
            else:
                input_id = body["input_file_id"]
            if self.output_lines is not None:
                out = b"".join(line.rstrip(b"\n") + b"\n" for line in self.output_lines)
            else:
                out = b"".join(
                    json.dumps(self.answer(r["custom_id"], r["body"])).encode() + b"\n"
                    for r in rows
                )
            batch = {
                "id": batch_id,
                "object": "batch",
                "endpoint": "/v1/chat/completions",
                "input_file_id": input_id,
                "completion_window": "24h",
                "status": self.status,
                "output_file_id": self._add_file(out) if out else None,
                "error_file_id": None,
                "created_at": int(time.time()),
                "completed_at": int(time.time()),
                "request_counts": {"total": len(rows), "completed": len(rows), "failed": 0},
                "metadata": body.get("metadata"),
            }
            self.batches[batch_id] = batch
        if self.on_create is not None:
            self.on_create(batch)
        return batch


@contextmanager
def fake_batch_api(**kw: Any) -> Iterator[FakeBatchAPI]:
    state = FakeBatchAPI(**kw)

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: Any) -> None:
            pass

        def _send(self, status: int, content: bytes, kind: str = "application/json") -> None:
            self.send_response(status)
            self.send_header("content-type", kind)
            self.send_header("content-length", str(len(content)))
            self.end_headers()
            self.wfile.write(content)

        def _json(self, value: Any, status: int = 200) -> None:
            self._send(status, json.dumps(value).encode())

        def _missing(self, what: str) -> None:
            error = {"error": {"message": f"No such {what}", "type": "invalid_request_error"}}
            self._json(error, 404)

        def _handle(self) -> None:
            size = int(self.headers.get("content-length") or 0)
            raw = self.rfile.read(size) if size else b""
            state.seen.append(
                Seen(
                    self.command,
                    self.path,
                    self.headers.get("host", ""),
                    self.headers.get("authorization", ""),
                )
            )
            path = self.path.split("?")[0]
            if self.command == "POST" and path == "/v1/files":
                _, _, data = parse_upload(self.headers.get("content-type", ""), raw)
                file_id = state._add_file(data)
                self._json(
                    {"id": file_id, "object": "file", "bytes": len(data), "purpose": "batch"}
                )
            elif self.command == "POST" and path == "/v1/batches":
                self._json(state.create(json.loads(raw)))
            elif self.command == "POST" and path == "/v1/chat/completions":
                self._send(200, state.chat(json.loads(raw)))
            elif m := re.fullmatch(r"/v1/batches/([^/]+)", path):
                batch = state.batches.get(m.group(1))
                self._json(batch) if batch else self._missing("batch")
            elif m := re.fullmatch(r"/v1/batches/([^/]+)/cancel", path):
                batch = state.batches.get(m.group(1))
                if batch is None:
                    self._missing("batch")
                elif batch["status"] in ("completed", "failed", "expired", "cancelled"):
                    message = f"Cannot cancel a batch with status '{batch['status']}'."
                    self._json({"error": {"message": message}}, 400)
                else:
                    batch["status"] = "cancelled"
                    self._json(batch)
            elif m := re.fullmatch(r"/v1/files/([^/]+)/content", path):
                data = state.files.get(m.group(1))
                if data is None:
                    self._missing("file")
                    return
                time.sleep(state.download_delay)
                self._send(200, data, "application/jsonl")
            else:
                self._missing("endpoint")

        do_GET = _handle
        do_POST = _handle

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


# --- no host but loopback --------------------------------------------------------------------

_LOOPBACK = ("127.0.0.1", "localhost", "::1")

GUARD = """
import os, socket
_real = socket.getaddrinfo
def _guarded(host, *a, **kw):
    if isinstance(host, bytes):
        host = host.decode()
    if host not in ("127.0.0.1", "localhost", "::1", None):
        with open(os.environ["RUNNER_TEST_FOREIGN_HOSTS"], "a") as f:
            f.write(str(host) + "\\n")
        raise OSError("this test allows loopback only, not " + str(host))
    return _real(host, *a, **kw)
socket.getaddrinfo = _guarded
"""


@contextmanager
def loopback_only(folder: Path) -> Iterator[Path]:
    """In this process and in the processes it starts (through sitecustomize): resolving any
    host but loopback fails loudly and is written to the file yielded."""
    record = folder / "foreign-hosts.txt"
    site = folder / "site"
    site.mkdir(exist_ok=True)
    (site / "sitecustomize.py").write_text(GUARD, encoding="utf-8")
    real = socket.getaddrinfo

    def guarded(host: Any, *a: Any, **kw: Any) -> Any:
        if isinstance(host, bytes):
            host = host.decode()
        if host not in (*_LOOPBACK, None):
            with record.open("a") as f:
                f.write(f"{host}\n")
            raise OSError(f"this test allows loopback only, not {host}")
        return real(host, *a, **kw)

    socket.getaddrinfo = guarded  # type: ignore[assignment]
    try:
        yield record
    finally:
        socket.getaddrinfo = real  # type: ignore[assignment]


def foreign_hosts(record: Path) -> list[str]:
    return record.read_text().split() if record.exists() else []


# --- the CLI in a real process -----------------------------------------------------------------


def child_env(folder: Path, extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """A clean environment: no RUNNER_*/OPENAI_* from outside, no proxy, the loopback guard."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("RUNNER_", "OPENAI_")) and "proxy" not in k.lower()
    }
    if "RUNNER_CACHE_DIR" in os.environ:  # the run's tokenizer cache (tests/conftest.py)
        env["RUNNER_CACHE_DIR"] = os.environ["RUNNER_CACHE_DIR"]
    site = folder / "site"
    env["PYTHONPATH"] = os.pathsep.join(
        [str(site)] * site.is_dir() + [str(ROOT)] + env.get("PYTHONPATH", "").split(os.pathsep)
    ).rstrip(os.pathsep)
    env["RUNNER_TEST_FOREIGN_HOSTS"] = str(folder / "foreign-hosts.txt")
    env["OPENAI_API_KEY"] = FAKE_KEY
    env.update(extra or {})
    return env


def start(
    args: Sequence[str], folder: Path, env: Mapping[str, str] | None = None
) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "runner", *args],
        cwd=folder,
        env=child_env(folder, env),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def assert_no_secret(*texts: str) -> None:
    for text in texts:
        assert FAKE_KEY not in text
        assert FAKE_KEY[8:] not in text


def write_batch_spec(folder: Path, extra: str = "", *, name: str = "greet") -> Path:
    """A text spec (no schema) whose rows are {id, who}."""
    text = (
        f"name: {name}\n"
        "model: gpt-4o-mini\n"
        "params: {temperature: 0, max_tokens: 50}\n"
        "inputs: {type: object, properties: {who: {type: string}}, required: [who]}\n"
        "messages:\n"
        '  - {role: user, content: "Say hi to {{ who }}."}\n'
        "timeout: 5s\n"
        "retry: {attempts: 1}\n" + extra
    )
    path = folder / f"{name}.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def write_batch_rows(folder: Path, count: int, name: str = "rows.jsonl") -> Path:
    path = folder / name
    path.write_text(
        "".join(json.dumps({"id": f"r{i}", "who": f"w{i}"}) + "\n" for i in range(count)),
        encoding="utf-8",
    )
    return path
