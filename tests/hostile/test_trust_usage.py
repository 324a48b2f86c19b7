"""Usage that cannot be right, on every path: a batch row that reports 10^18 tokens is flagged
and not priced, as a live reply is; a stream that never stops is cut once it has certainly sent
more than the request allowed, its estimate never exceeds that allowance, and the process's
memory stays bounded. Each case checks the exit code, no traceback, the exact number of ledger
lines, that the key appears nowhere, and a wall-time bound."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from _trust_batch import (
    FAKE_KEY,
    assert_no_secret,
    chat_body,
    child_env,
    fake_batch_api,
    ok_line,
    write_batch_rows,
    write_batch_spec,
)
from click.testing import CliRunner

from runner.cli import cli
from runner.ledger.reading import read_records

LEDGER = Path("runs/ledger.jsonl")


def lines(ledger: Path = LEDGER) -> list[dict[str, Any]]:
    return list(read_records(ledger)) if ledger.is_file() else []


def run(*args: str, env: dict[str, str] | None = None) -> tuple[int, str, str, float]:
    started = time.monotonic()
    result = CliRunner().invoke(cli, list(args), env={"OPENAI_API_KEY": FAKE_KEY, **(env or {})})
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise AssertionError(f"an exception escaped: {result.exception!r}\n{result.stderr}")
    return result.exit_code, result.stdout, result.stderr, time.monotonic() - started


# --- 8. absurd usage on the batch path -----------------------------------------------------------


def test_absurd_batch_usage_is_flagged_and_not_priced(tmp_path: Path) -> None:
    absurd = {"prompt_tokens": 10**18, "completion_tokens": 10**18, "total_tokens": 2 * 10**18}
    with fake_batch_api() as api:
        api.output_lines = [
            json.dumps(ok_line("r0")).encode(),
            json.dumps(ok_line("r1", chat_body("hi", usage=absurd))).encode(),
        ]
        spec, rows = write_batch_spec(tmp_path), write_batch_rows(tmp_path, 2)
        code, out, err, seconds = run(
            "exec", str(spec), "--input", str(rows), "--batch", "--base-url", api.url
        )
    assert code == 0, err
    assert "Traceback" not in out + err
    found = {line["row"]: line for line in lines()}
    assert len(found) == 2
    bad = found["r1"]
    assert bad["usage"].get("implausible"), bad["usage"]
    assert bad["cost"]["usd"] is None and "implausible" in bad["cost"]["reason"]
    assert found["r0"]["cost"]["usd"] is not None
    assert "implausible" in err
    code, out, err, _ = run("report", "--format", "json")
    assert code == 0 and "Traceback" not in out + err
    assert "375000000000" not in out.replace(",", "") and "3.75e" not in out
    assert_no_secret(out, err, LEDGER.read_text())
    assert seconds < 20


def test_batch_usage_over_max_tokens_is_flagged_like_a_live_one(tmp_path: Path) -> None:
    over = {"prompt_tokens": 12, "completion_tokens": 5000, "total_tokens": 5012}
    with fake_batch_api() as api:
        api.answer = lambda cid, body: ok_line(cid, chat_body("hi", usage=over))
        spec, rows = write_batch_spec(tmp_path), write_batch_rows(tmp_path, 3)
        code, out, err, seconds = run(
            "exec", str(spec), "--input", str(rows), "--batch", "--base-url", api.url
        )
    assert code == 0 and "Traceback" not in out + err
    found = lines()
    assert len(found) == 3
    for line in found:
        assert any("max_tokens 50" in flag for flag in line["usage"]["implausible"])
        assert line["cost"]["usd"] is None
    assert_no_secret(out, err, LEDGER.read_text())
    assert seconds < 20


# --- 9. a stream that never stops ----------------------------------------------------------------


@contextmanager
def endless_stream(*, limit: int = 40 * 1024 * 1024, piece: str = "lorem ") -> Iterator[str]:
    """A server whose streams send tiny content deltas until the client leaves (or `limit`
    bytes), never a finish_reason, never [DONE]."""

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args: Any) -> None:
            pass

        def do_POST(self) -> None:  # noqa: N802
            self.rfile.read(int(self.headers.get("content-length") or 0))
            self.send_response(200)
            self.send_header("content-type", "text/event-stream")
            self.end_headers()
            event = (
                "data: "
                + json.dumps(
                    {
                        "id": "c",
                        "object": "chat.completion.chunk",
                        "model": "gpt-4o-mini",
                        "choices": [{"index": 0, "delta": {"content": piece}}],
                    }
                )
                + "\n\n"
            ).encode()
            burst = event * 256
            sent = 0
            try:
                while sent < limit:
                    self.wfile.write(burst)
                    sent += len(burst)
            except OSError:
                return

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/v1"
    finally:
        server.shutdown()
        server.server_close()


# Runs the command given as its arguments and prints its peak RSS (bytes). A small process of
# its own: a child forked from the (large) test process would count the parent's pages too.
_MEASURE = """
import os, subprocess, sys
child = subprocess.Popen(sys.argv[2:], stdout=open(sys.argv[1] + ".out", "wb"),
                         stderr=open(sys.argv[1] + ".err", "wb"))
_, status, usage = os.wait4(child.pid, 0)
print(os.waitstatus_to_exitcode(status), usage.ru_maxrss * 1024)
"""


def run_measured(
    args: list[str], folder: Path, env: dict[str, str]
) -> tuple[int, str, str, int, float]:
    """Run `python -m runner ARGS` as a grandchild; (code, stdout, stderr, peak RSS in bytes,
    seconds)."""
    started = time.monotonic()
    base = folder / "measured"
    done = subprocess.run(
        [sys.executable, "-c", _MEASURE, str(base), sys.executable, "-m", "runner", *args],
        cwd=folder,
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    code, rss = (int(x) for x in done.stdout.split())
    out = Path(f"{base}.out").read_text()
    err = Path(f"{base}.err").read_text()
    return code, out, err, rss, time.monotonic() - started


def test_a_runaway_stream_is_cut_and_its_estimate_stays_within_max_tokens(tmp_path: Path) -> None:
    spec = write_batch_spec(tmp_path, "stream: true\n")
    rows = write_batch_rows(tmp_path, 4)
    with endless_stream() as url:
        code, out, err, rss, seconds = run_measured(
            ["exec", str(spec), "--input", str(rows), "--concurrency", "4"],
            tmp_path,
            child_env(tmp_path, {"OPENAI_BASE_URL": url}),
        )
    assert code == 1, err
    assert "Traceback" not in out + err
    found = lines(tmp_path / LEDGER)
    assert len(found) == 4
    for line in found:
        assert line["status"] == "error" and line["error"]["kind"] == "reply_too_large", line
        assert line["usage"]["completion"] <= 50 and line["usage"]["estimated"], line["usage"]
    total = sum(line["cost"]["usd"] or 0 for line in found)
    assert total < 0.001, total  # 4 × (prompt + 50 output tokens) of gpt-4o-mini
    assert rss < 300 * 1024 * 1024, rss
    assert seconds < 30
    assert_no_secret(out, err, (tmp_path / LEDGER).read_text())


def test_a_runaway_stream_without_max_tokens_keeps_memory_bounded(tmp_path: Path) -> None:
    """No max_tokens: only the 32 MiB reply cap stops each of 3 streams at once; the estimate
    stays within the context window, and memory stays bounded: the process's baseline plus
    about one copy of each reply (4 such streams took 672 MB before, 5.4 M tokens a row)."""
    spec = write_batch_spec(tmp_path, "stream: true\n")
    text = (
        spec.read_text().replace("max_tokens: 50", "seed: 1").replace("timeout: 5s", "timeout: 60s")
    )
    spec.write_text(text)
    rows = write_batch_rows(tmp_path, 3)
    with endless_stream(piece="lorem ipsum " * 300) as url:
        code, out, err, rss, seconds = run_measured(
            ["exec", str(spec), "--input", str(rows), "--concurrency", "3"],
            tmp_path,
            child_env(tmp_path, {"OPENAI_BASE_URL": url}),
        )
    assert code == 1, err
    assert "Traceback" not in out + err
    found = lines(tmp_path / LEDGER)
    assert len(found) == 3
    for line in found:
        assert line["error"]["kind"] == "reply_too_large", line["error"]
        assert 0 < line["usage"]["completion"] <= 128_000 and line["usage"]["estimated"]
    assert rss < 300 * 1024 * 1024, rss
    assert seconds < 45
    assert_no_secret(out, err, (tmp_path / LEDGER).read_text())


def test_a_non_stream_reply_longer_than_allowed_is_estimated_within_max_tokens(
    tmp_path: Path,
) -> None:
    body = json.dumps({**chat_body("word " * 200_000), "usage": None}).encode()

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args: Any) -> None:
            pass

        def do_POST(self) -> None:  # noqa: N802
            self.rfile.read(int(self.headers.get("content-length") or 0))
            self.send_response(200)
            self.send_header("content-type", "application/json")
            self.send_header("content-length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        spec = write_batch_spec(tmp_path)
        code, out, err, seconds = run(
            "exec",
            str(spec),
            "--var",
            "who=x",
            env={"OPENAI_BASE_URL": f"http://127.0.0.1:{server.server_address[1]}/v1"},
        )
    finally:
        server.shutdown()
        server.server_close()
    assert "Traceback" not in out + err
    [line] = lines()
    assert line["usage"]["completion"] <= 50 and line["usage"]["estimated"]
    assert seconds < 20
    assert_no_secret(out, err, LEDGER.read_text())
